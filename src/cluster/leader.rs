//! What only the leader does, for as long as it leads (one term per
//! epoch): catch up with the newest snapshot, harvest once (the first
//! refresh is a full one: facts are never persisted), run the schedule and
//! the refreshes queued by any instance, mirror job progress into the
//! database, and write snapshots fenced by its epoch. When the term ends
//! every duty stops; a harvest in flight stops through the permit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;
use tracing::{info, warn};

use super::db::DbError;
use super::lease::Role;
use super::member::{Cluster, record_json};
use crate::harvest::persistence;
use crate::store::snapshot::{self, JobRecord};

/// How often a running job's progress is mirrored.
const MIRROR_EVERY: Duration = Duration::from_millis(500);

/// Serves each leadership term until `stop` turns true.
pub(super) async fn run(cluster: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let mut role = cluster.role.subscribe();
    loop {
        let epoch = tokio::select! {
            r = role.wait_for(|r| r.epoch().is_some()) => match r.map(|r| *r) {
                Ok(Role::Leader { epoch }) => epoch,
                _ => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let (end_term, term) = watch::channel(false);
        if let Err(e) = cluster.catch_up_snapshot(true).await {
            warn!(error = %e, "could not check for a newer snapshot on taking the lead");
        }
        if let Err(e) = end_orphans(&cluster, epoch).await {
            warn!(error = %e, "jobs of the previous leader not closed");
        }
        let writer = tokio::spawn(write_snapshots(Arc::clone(&cluster), epoch, term.clone()));
        let runner = tokio::spawn(run_jobs(Arc::clone(&cluster), epoch, term.clone()));
        let schedule = tokio::spawn(Arc::clone(&cluster.harvester).schedule(
            cluster.duties.interval,
            cluster.duties.full_refresh_hour,
            term.clone(),
        ));
        if cluster.duties.harvest_on_start {
            match cluster.harvester.start(Vec::new(), true).await {
                Ok(job) => info!(epoch, job = %job, "first refresh of this term started (full)"),
                Err(e) => warn!(error = %e, "first refresh of this term not started"),
            }
        }
        let stopping = tokio::select! {
            _ = role.wait_for(|r| *r != Role::Leader { epoch }) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        end_term.send_replace(true);
        for task in [writer, runner, schedule] {
            if tokio::time::timeout(Duration::from_secs(30), task).await.is_err() {
                warn!("a leader duty did not stop within 30 s");
            }
        }
        info!(epoch, "leadership term ended");
        if stopping {
            return;
        }
    }
}

/// Writes snapshots: `debounce` after a change, at once when asked (new
/// definitions), periodically, again after a failed write, and a last one
/// when the term ends with unwritten changes.
async fn write_snapshots(cluster: Arc<Cluster>, epoch: u64, mut term: watch::Receiver<bool>) {
    let mut changes = cluster.harvester.changes();
    changes.borrow_and_update();
    let periodic = cluster.duties.periodic.unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + periodic, periodic);
    let mut pending = false;
    let mut term_in_debounce = term.clone();
    loop {
        let reason = tokio::select! {
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(cluster.duties.debounce) => {}
                    _ = term_in_debounce.wait_for(|t| *t) => {}
                }
                changes.borrow_and_update();
                if !cluster.store.keys().is_empty() {
                    cluster.ready.send_replace(true);
                }
                Some("refresh")
            }
            _ = cluster.write_now.notified() => Some("definitions"),
            _ = tick.tick() => Some("periodic"),
            _ = tokio::time::sleep(cluster.settings.poll), if pending => Some("retry"),
            () = ended(&mut term) => None,
        };
        let Some(reason) = reason else {
            if pending || changes.has_changed().unwrap_or(false) {
                write(&cluster, epoch, "term end").await;
            }
            return;
        };
        pending = !write(&cluster, epoch, reason).await;
    }
}

/// Resolves when the term ends.
async fn ended(term: &mut watch::Receiver<bool>) {
    let _ = term.wait_for(|t| *t).await;
}

/// One fenced snapshot write; false when it should be retried.
async fn write(cluster: &Arc<Cluster>, epoch: u64, reason: &'static str) -> bool {
    if !cluster.permit.valid() {
        return true;
    }
    let started = Instant::now();
    let newest = match cluster.db.newest_snapshot_seq().await {
        Ok(n) => n.unwrap_or(0),
        Err(e) => {
            warn!(error = %e, reason, "snapshot not written; retrying");
            return false;
        }
    };
    let seq = newest.max(cluster.loaded().map_or(0, |l| l.seq)) + 1;
    let now = Utc::now();
    let this = Arc::clone(cluster);
    let encoded = tokio::task::spawn_blocking(move || {
        let mut encoder = this.encoder.lock().unwrap_or_else(|e| e.into_inner());
        persistence::encode_state(&mut encoder, &this.store, &this.harvester, &[], |mut encoded, _| {
            encoded.number(seq, now.timestamp_millis());
            (encoded.to_vec(), encoded.projects())
        })
    });
    let Ok((bytes, projects)) = encoded.await else { return false };
    match cluster.db.write_snapshot(epoch, seq, now, &bytes).await {
        Ok(()) => {
            cluster.set_loaded(seq, now, bytes.len());
            info!(
                seq,
                epoch,
                projects,
                bytes = bytes.len(),
                took_ms = started.elapsed().as_millis() as u64,
                reason,
                "snapshot written"
            );
            true
        }
        Err(DbError::Fenced(_)) => {
            warn!(epoch, "snapshot not written: a newer leader holds the lease (fenced); harvesting stops");
            cluster.permit.revoke();
            true
        }
        Err(e) => {
            warn!(error = %e, seq, reason, "snapshot not written; retrying");
            false
        }
    }
}

/// Starts the refreshes queued in the database and mirrors the progress of
/// every job of this term into it.
async fn run_jobs(cluster: Arc<Cluster>, epoch: u64, mut term: watch::Receiver<bool>) {
    let mut queued = cluster.refresh_queued.subscribe();
    let mut tick = tokio::time::interval(MIRROR_EVERY);
    // The harvester's job id → the ids the database knows it by.
    let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
    let mut mirrored: HashMap<String, serde_json::Value> = HashMap::new();
    loop {
        let ended = tokio::select! {
            _ = queued.changed() => false,
            _ = tick.tick() => false,
            () = ended(&mut term) => true,
        };
        if ended {
            mirror(&cluster, epoch, &aliases, &mut mirrored).await;
            return;
        }
        if let Err(e) = claim(&cluster, epoch, &mut aliases, &mut mirrored).await {
            warn!(error = %e, "queued refreshes not read; retrying");
        }
        mirror(&cluster, epoch, &aliases, &mut mirrored).await;
    }
}

async fn claim(
    cluster: &Arc<Cluster>,
    epoch: u64,
    aliases: &mut HashMap<String, Vec<String>>,
    mirrored: &mut HashMap<String, serde_json::Value>,
) -> Result<(), DbError> {
    while let Some((id, projects, full)) = cluster.db.claim_refresh(epoch).await? {
        match cluster.harvester.start(projects, full).await {
            Ok(job) => {
                info!(job = %id, runs_as = %job, "queued refresh started");
                aliases.entry(job).or_default().push(id);
            }
            Err(e) => {
                warn!(job = %id, error = %e, "queued refresh not started");
                let now = Utc::now().timestamp_millis();
                let Some(mut record) =
                    cluster.db.job(&id).await?.and_then(|r| serde_json::from_value::<JobRecord>(r).ok())
                else {
                    continue;
                };
                for p in &mut record.projects {
                    p.state = snapshot::RecordedState::Failed;
                    p.error = Some(snapshot::bounded_error(&e.to_string()));
                }
                record.finished = Some(now);
                let json = record_json(&record);
                cluster.db.put_job(epoch, &id, &json).await?;
                mirrored.insert(id, json);
            }
        }
    }
    Ok(())
}

/// Closes the jobs a previous leader was running when its term ended: its
/// harvest stopped with the lease, so they will not end otherwise.
async fn end_orphans(cluster: &Cluster, epoch: u64) -> Result<(), DbError> {
    let now = Utc::now().timestamp_millis();
    for (id, record) in cluster.db.unfinished_jobs().await? {
        let Ok(mut record) = serde_json::from_value::<JobRecord>(record) else { continue };
        for p in &mut record.projects {
            if matches!(p.state, snapshot::RecordedState::Queued | snapshot::RecordedState::Running) {
                p.state = snapshot::RecordedState::Failed;
                p.error = Some(INTERRUPTED.to_owned());
            }
        }
        record.finished = Some(now);
        cluster.db.put_job(epoch, &id, &record_json(&record)).await?;
        info!(job = %id, "job of the previous leader closed as interrupted");
    }
    Ok(())
}

/// The error of a project whose harvest ended with its leader's term.
const INTERRUPTED: &str = "interrupted: the harvesting leader changed before this project's refresh ended";

/// Writes the records of jobs that changed since they were last written.
async fn mirror(
    cluster: &Cluster,
    epoch: u64,
    aliases: &HashMap<String, Vec<String>>,
    mirrored: &mut HashMap<String, serde_json::Value>,
) {
    let (_, records) = cluster.harvester.records();
    for record in records {
        let ids = std::iter::once(record.id.clone()).chain(aliases.get(&record.id).into_iter().flatten().cloned());
        for id in ids {
            let mut named = record.clone();
            named.id = id.clone();
            let json = record_json(&named);
            if mirrored.get(&id) == Some(&json) {
                continue;
            }
            match cluster.db.put_job(epoch, &id, &json).await {
                Ok(()) => {
                    mirrored.insert(id, json);
                }
                Err(e) => {
                    warn!(error = %e, "job progress not recorded; retrying");
                    return;
                }
            }
        }
    }
}
