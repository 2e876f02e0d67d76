//! Electing the one harvesting leader: a PostgreSQL session advisory lock
//! plus the lease row with a heartbeat and an epoch that grows with every
//! new leader.
//!
//! A standby tries the lock every heartbeat. Holding it, it takes the lease
//! once the previous holder's has expired (database clock), with a new
//! epoch. A leader renews every heartbeat on the same session; it counts
//! itself leader only until the moment it sent its last successful renewal
//! plus the lease, less a margin (its own monotonic clock), so it stops
//! before any standby may start. A frozen leader's session keeps the lock:
//! a standby that finds the lease expired ends that session
//! (`pg_terminate_backend`), which frees the lock. A lost session or a
//! failed renewal ends the leadership at once.
//!
//! Must not depend on `api`, `harvest` or `jira`: it publishes a [`Role`]
//! and a [`Permit`], and the rest follows them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use super::db::{Database, DbError, Dedicated};

/// What this instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// The harvesting leader with this epoch (fencing token).
    Leader {
        epoch: u64,
    },
}

impl Role {
    pub fn epoch(self) -> Option<u64> {
        match self {
            Role::Leader { epoch } => Some(epoch),
            Role::Follower => None,
        }
    }
}

/// Until when this instance may harvest: the local end of its lease. Read
/// on every poll of a harvest, so a leader resumed after a freeze sees its
/// lease gone before it sends anything.
#[derive(Debug, Default)]
pub struct Permit {
    /// Nanoseconds after [`anchor`]; 0 when not leading.
    until: AtomicU64,
}

fn anchor() -> Instant {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    *ANCHOR.get_or_init(Instant::now)
}

impl Permit {
    pub fn valid(&self) -> bool {
        let until = self.until.load(Ordering::SeqCst);
        until > 0 && (anchor().elapsed().as_nanos() as u64) < until
    }

    fn grant_until(&self, until: Instant) {
        let nanos = until.saturating_duration_since(anchor()).as_nanos() as u64;
        self.until.store(nanos.max(1), Ordering::SeqCst);
    }

    pub fn revoke(&self) {
        self.until.store(0, Ordering::SeqCst);
    }
}

/// The local end of a lease renewed at `sent`: the lease less a margin for
/// clock rate differences.
fn local_end(sent: Instant, lease: Duration) -> Instant {
    sent + lease - (lease / 10).min(Duration::from_secs(1))
}

/// Runs the election until `shutdown` turns true, then gives the lease up.
pub async fn run(
    db: Database,
    holder: String,
    lease: Duration,
    heartbeat: Duration,
    role: watch::Sender<Role>,
    permit: Arc<Permit>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut session: Option<Dedicated> = None;
    let mut reported_down = false;
    loop {
        let step = step(&db, &mut session, &holder, lease, &role, &permit).await;
        match step {
            Ok(()) => reported_down = false,
            Err(e) => {
                if role.borrow().epoch().is_some() {
                    warn!(error = %e, "leadership lost: harvesting stops");
                } else if !reported_down {
                    warn!(error = %e, "cannot reach the database for the leader election; serving what is loaded");
                }
                reported_down = true;
                demote(&role, &permit);
                session = None;
            }
        }
        let lost = async {
            match session.as_mut() {
                Some(s) => while s.notifications.recv().await.is_some() {},
                None => std::future::pending().await,
            }
        };
        let session_lost = tokio::select! {
            _ = tokio::time::sleep(heartbeat) => false,
            () = lost => true,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        if session_lost {
            if role.borrow().epoch().is_some() {
                warn!("leadership lost: the database session ended; harvesting stops");
            }
            demote(&role, &permit);
            session = None;
        }
    }
    let leading = role.borrow().epoch();
    if let (Some(epoch), Some(s)) = (leading, session.as_ref()) {
        permit.revoke();
        match Database::release_lease(&s.client, &holder, epoch).await {
            Ok(()) => info!(epoch, "lease given up"),
            Err(e) => warn!(error = %e, "lease not given up; it expires by itself"),
        }
    }
    demote(&role, &permit);
}

fn demote(role: &watch::Sender<Role>, permit: &Permit) {
    permit.revoke();
    if role.send_if_modified(|r| std::mem::replace(r, Role::Follower) != Role::Follower) {
        crate::telemetry::cluster_role(None);
    }
}

/// One heartbeat: renew as leader, or try to become one.
async fn step(
    db: &Database,
    session: &mut Option<Dedicated>,
    holder: &str,
    lease: Duration,
    role: &watch::Sender<Role>,
    permit: &Permit,
) -> Result<(), DbError> {
    if session.is_none() {
        *session = Some(db.dedicated().await?);
    }
    let s = session.as_mut().expect("connected above");
    let sent = Instant::now();
    let leading = role.borrow().epoch();
    if let Some(epoch) = leading {
        return if Database::renew_lease(&s.client, holder, epoch, lease).await? {
            permit.grant_until(local_end(sent, lease));
            Ok(())
        } else {
            Err(DbError::Fenced(epoch))
        };
    }
    let holds_lock = Database::try_leader_lock(&s.client).await?;
    let current = Database::lease(&s.client).await?;
    if current.remaining_ms == 0 && current.holder != holder {
        let ended = Database::end_stale_leader_sessions(&s.client, &current.holder).await?;
        if ended > 0 {
            warn!(
                epoch = current.epoch,
                sessions = ended,
                "the leader's lease expired while its sessions held on: they were ended"
            );
        }
    }
    if !holds_lock {
        return Ok(());
    }
    match Database::claim_lease(&mut s.client, holder, lease).await? {
        Some(epoch) => {
            permit.grant_until(local_end(sent, lease));
            role.send_replace(Role::Leader { epoch });
            crate::telemetry::cluster_role(Some(epoch));
            info!(epoch, "this instance is now the harvesting leader");
        }
        None => {
            // The previous leader's session is gone but its lease runs on:
            // keep the lock and wait for the lease to end.
        }
    }
    Ok(())
}
