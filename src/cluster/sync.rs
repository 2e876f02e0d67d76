//! Every instance follows the database: a dedicated connection `LISTEN`s on
//! the four channels; a snapshot notification loads the newest snapshot, a
//! definitions notification activates the newest version, job and refresh
//! notifications wake the watchers and the leader's runner. When the
//! connection is lost the same checks run every poll interval until it is
//! back (and every five intervals besides, as a safety net). A database
//! that is down changes nothing that is loaded: the figures in memory are
//! served meanwhile.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::watch;
use tracing::{info, warn};

use super::db::{CHANNELS, DbError, Dedicated};
use super::member::Cluster;

/// Connects and listens on every channel.
async fn listen(cluster: &Cluster) -> Result<Dedicated, DbError> {
    let connection = cluster.db.dedicated().await?;
    let statements: String = CHANNELS.iter().map(|c| format!("LISTEN {c};")).collect();
    connection.client.batch_execute(&statements).await?;
    Ok(connection)
}

/// What woke the follower.
enum Wake {
    Notified(String),
    Lost,
    Poll,
}

/// Follows the database until `stop` turns true.
pub(super) async fn run(cluster: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let mut listener: Option<Dedicated> = None;
    let mut down = false;
    loop {
        if listener.is_none() {
            match listen(&cluster).await {
                Ok(l) => {
                    if down {
                        info!("database reachable again: notifications resumed");
                    }
                    down = false;
                    listener = Some(l);
                    check_all(&cluster, &mut down).await;
                }
                Err(e) => {
                    if !down {
                        warn!(error = %e, "database unreachable: serving the figures in memory, polling for its return");
                    }
                    down = true;
                }
            }
        }
        let poll = if listener.is_some() { cluster.settings.poll * 5 } else { cluster.settings.poll };
        let wake = tokio::select! {
            n = async {
                match listener.as_mut() {
                    Some(l) => l.notifications.recv().await,
                    None => std::future::pending().await,
                }
            } => n.map_or(Wake::Lost, |n| Wake::Notified(n.channel)),
            _ = tokio::time::sleep(poll) => Wake::Poll,
            _ = stop.wait_for(|s| *s) => return,
        };
        match wake {
            Wake::Notified(channel) => {
                let result = match channel.as_str() {
                    "dora_snapshot" => cluster.catch_up_snapshot(false).await.map(drop),
                    "dora_definitions" => cluster.catch_up_definitions().await,
                    "dora_jobs" => {
                        bump(&cluster.jobs_changed);
                        Ok(())
                    }
                    "dora_refresh" => {
                        bump(&cluster.refresh_queued);
                        Ok(())
                    }
                    _ => Ok(()),
                };
                if let Err(e) = result {
                    warn!(error = %e, channel, "following the database failed; retrying on the next poll");
                }
            }
            Wake::Lost => {
                warn!("database notifications lost: polling until they are back");
                listener = None;
            }
            Wake::Poll => {
                if listener.is_some() || !down {
                    check_all(&cluster, &mut down).await;
                }
            }
        }
        if let Some(l) = cluster.loaded() {
            crate::telemetry::snapshot_age((Utc::now() - l.taken_at).to_std().unwrap_or_default());
        }
    }
}

fn bump(counter: &watch::Sender<u64>) {
    counter.send_modify(|v| *v += 1);
}

async fn check_all(cluster: &Cluster, down: &mut bool) {
    let result = async {
        cluster.catch_up_snapshot(false).await?;
        cluster.catch_up_definitions().await
    }
    .await;
    bump(&cluster.jobs_changed);
    bump(&cluster.refresh_queued);
    if let Err(e) = result {
        if !*down {
            warn!(error = %e, "following the database failed; retrying on the next poll");
        }
        *down = true;
    }
}
