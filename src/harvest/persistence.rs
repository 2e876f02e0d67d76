//! The snapshot lifecycle: restore the newest valid snapshot before the
//! service answers, then write one after refreshes (debounced),
//! periodically (only when something changed since the last write) and at
//! shutdown.
//!
//! Wiring between the store, the harvester's records and the data
//! directory; the format is `store::snapshot`, the file handling
//! `store::snapshot_dir`. A bad snapshot is reported and skipped, never
//! fatal; only a data directory that cannot be written stops the start.
//!
//! Must not depend on `recompute`, `watch` or `schedule`.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::in_force::{DefinitionAudit, Origin};
use super::refresh::Harvester;
use crate::config::{SnapshotSettings, is_project_key};
use crate::store::Store;
use crate::store::snapshot::{
    ActivationOrigin, ActivationRecord, DefinitionsRecord, Encoded, Encoder, Snapshot, SnapshotParts,
};
use crate::store::snapshot_dir::{DataDirError, SnapshotDir};

/// The reason of a periodic snapshot.
const PERIODIC: &str = "periodic";

/// Restores and writes snapshots of one service.
pub struct Persistence {
    dir: SnapshotDir,
    store: Arc<Store>,
    harvester: Arc<Harvester>,
    settings: SnapshotSettings,
    next_seq: AtomicU64,
    /// The definitions recorded in the restored snapshot; written again as
    /// long as some project's figures were computed with them.
    restored_definitions: Vec<DefinitionsRecord>,
    /// Each project's bytes from the last snapshot.
    encoder: Mutex<Encoder>,
    /// The checksum of the content (all but `seq` and `taken_at`) last
    /// written, so that a periodic snapshot of an unchanged state is skipped.
    last_written: Mutex<Option<u32>>,
}

impl Persistence {
    /// Opens the data directory (creating it if absent) and loads the newest
    /// valid snapshot into `store` and `harvester`. Call before serving and
    /// before any refresh.
    pub fn restore(
        data_dir: &Path,
        settings: SnapshotSettings,
        store: Arc<Store>,
        harvester: Arc<Harvester>,
    ) -> Result<Arc<Self>, DataDirError> {
        let dir = SnapshotDir::open(data_dir)?;
        let loaded = dir.load();
        for r in &loaded.rejected {
            warn!(file = %dir.path(r.slot).display(), reason = %r.reason, "snapshot rejected; set aside as *.rejected");
        }
        let mut next_seq = 1;
        let mut restored_definitions = Vec::new();
        match loaded.snapshot {
            Some((s, slot, crc)) => {
                let seq = s.seq;
                // The version counter and the audit go on where they were
                // (the first definitions record is the one that was in force),
                // before the projects' versions are compared with it.
                if let Some(last) = s.definitions.first() {
                    let audit = s.activations.iter().filter_map(audit_of).collect();
                    if let Some(before) = harvester.in_force().continue_from(&last.version, audit) {
                        let now = harvester.definitions();
                        crate::telemetry::definitions_version(Some(&before), now.version());
                        info!(version = now.version(), "definitions version continued from the snapshot");
                    }
                }
                let applied = apply(&store, Some(&harvester), s);
                info!(
                    seq,
                    crc32 = crc,
                    file = slot.file_name(),
                    projects = applied.projects,
                    stale_projects = applied.stale,
                    age_seconds = (Utc::now() - applied.taken_at).num_seconds().max(0),
                    "snapshot loaded"
                );
                next_seq = seq + 1;
                restored_definitions = applied.definitions;
            }
            None if !loaded.rejected.is_empty() => warn!("no valid snapshot: starting empty"),
            None => info!(dir = %data_dir.display(), "no snapshot yet: starting empty"),
        }
        Ok(Arc::new(Self {
            dir,
            store,
            harvester,
            settings,
            next_seq: AtomicU64::new(next_seq),
            restored_definitions,
            encoder: Mutex::new(Encoder::new()),
            last_written: Mutex::new(None),
        }))
    }

    /// Takes and writes a snapshot now (blocking I/O), numbered with the
    /// next sequence number; a periodic one only when the state changed
    /// since the last write. Only projects whose data changed since the
    /// last snapshot are encoded again (`snapshot::Encoder`).
    pub fn write_now(&self, reason: &'static str) -> io::Result<()> {
        let started = Instant::now();
        let mut encoder = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
        encode_state(&mut encoder, &self.store, &self.harvester, &self.restored_definitions, |mut encoded, fresh| {
            // The content without its number and date.
            let content = Some(encoded.content_checksum());
            let mut last_written = self.last_written.lock().unwrap_or_else(|e| e.into_inner());
            if reason == PERIODIC && *last_written == content {
                debug!(reason, "snapshot unchanged; not rewritten");
                return Ok(());
            }
            let (seq, taken_at) = (self.next_seq.fetch_add(1, Ordering::Relaxed), Utc::now().timestamp_millis());
            encoded.number(seq, taken_at);
            let (crc, len) = (encoded.checksum(), encoded.file_len());
            debug!(seq, crc32 = crc, bytes = len, reason, "snapshot writing");
            match self.dir.write_pieces(&encoded.pieces()) {
                Ok(()) => {
                    *last_written = content;
                    crate::telemetry::snapshot(taken_at, len);
                    info!(
                        seq,
                        crc32 = crc,
                        bytes = len,
                        projects = encoded.projects(),
                        projects_encoded = fresh,
                        took_ms = started.elapsed().as_millis() as u64,
                        reason,
                        "snapshot written"
                    );
                    Ok(())
                }
                Err(e) => {
                    warn!(error = %e, seq, reason, "snapshot not written; the previous one stays");
                    Err(e)
                }
            }
        })
    }

    async fn write_blocking(self: &Arc<Self>, reason: &'static str) {
        let this = Arc::clone(self);
        let _ = tokio::task::spawn_blocking(move || this.write_now(reason)).await;
    }

    /// Writes snapshots until `shutdown` turns true, then writes a last one:
    /// `debounce` after a change signalled on `changes`, and every
    /// `interval`.
    pub async fn run(self: Arc<Self>, mut changes: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        let mut periodic = self.settings.interval.map(|p| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        let mut changes_open = true;
        let mut shutdown_in_debounce = shutdown.clone();
        loop {
            let reason = tokio::select! {
                () = stopped(&mut shutdown) => break,
                r = changes.changed(), if changes_open => {
                    if r.is_err() {
                        changes_open = false;
                        continue;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(self.settings.debounce) => {}
                        () = stopped(&mut shutdown_in_debounce) => break,
                    }
                    changes.borrow_and_update();
                    "refresh"
                }
                _ = async { periodic.as_mut().expect("guarded").tick().await }, if periodic.is_some() => PERIODIC,
            };
            self.write_blocking(reason).await;
        }
        self.write_blocking("shutdown").await;
    }
}

/// The state of `store` and `harvester`, encoded by `encoder` (only the
/// projects whose data changed since its last use are encoded anew) and
/// not yet numbered (`Encoded::number`), handed to `then` with how many
/// projects were encoded anew. The snapshot records the definitions in
/// force, and those of `earlier` that some project's figures were still
/// computed with.
pub fn encode_state<R>(
    encoder: &mut Encoder,
    store: &Store,
    harvester: &Harvester,
    earlier: &[DefinitionsRecord],
    then: impl FnOnce(Encoded<'_>, usize) -> R,
) -> R {
    let projects = store.entries();
    let (watermarks, jobs) = harvester.records();
    let definitions = definitions_records(harvester, earlier, |version| {
        projects.iter().any(|(_, p)| p.definitions_version == version)
    });
    let activations: Vec<ActivationRecord> = harvester.audit().iter().map(record_of).collect();
    let parts = SnapshotParts {
        seq: 0,
        taken_at: 0,
        projects: &projects,
        watermarks: &watermarks,
        jobs: &jobs,
        definitions: &definitions,
        activations: &activations,
    };
    let (encoded, fresh) = encoder.encode(&parts);
    then(encoded, fresh)
}

/// The definitions a snapshot records: those in force, and those of
/// `earlier` that some project's figures were still computed with (`used`).
fn definitions_records(
    harvester: &Harvester,
    earlier: &[DefinitionsRecord],
    used: impl Fn(&str) -> bool,
) -> Vec<DefinitionsRecord> {
    let defs = harvester.definitions();
    let in_force = DefinitionsRecord {
        version: defs.version().to_owned(),
        files: defs.files().iter().map(|f| (f.name.clone(), f.source.clone())).collect(),
    };
    let still_used = earlier.iter().filter(|d| d.version != defs.version() && used(&d.version)).cloned();
    std::iter::once(in_force).chain(still_used).collect()
}

/// What [`apply`] put in place.
#[derive(Debug)]
pub struct Applied {
    pub taken_at: DateTime<Utc>,
    pub projects: usize,
    /// Projects whose figures were computed with other definitions than
    /// those in force.
    pub stale: usize,
    /// The definitions the snapshot recorded.
    pub definitions: Vec<DefinitionsRecord>,
}

/// Replaces the figures in `store` with the snapshot's (projects it lacks
/// are dropped); `harvester`, when given (before any job runs), takes back
/// the operational records.
pub fn apply(store: &Store, harvester: Option<&Harvester>, snapshot: Snapshot) -> Applied {
    let taken_at = DateTime::<Utc>::from_timestamp_millis(snapshot.taken_at).unwrap_or_else(Utc::now);
    let mut keys = Vec::with_capacity(snapshot.projects.len());
    let mut stale = 0;
    for record in snapshot.projects {
        if !is_project_key(&record.key) {
            warn!("snapshot holds a project key that is not a key; skipped");
            continue;
        }
        let (key, data) = record.into_data();
        if let Some(h) = harvester {
            stale += usize::from(data.definitions_version != h.definitions().version());
        }
        store.put(&key, data);
        keys.push(key);
    }
    for gone in store.keys().into_iter().filter(|k| !keys.contains(k)) {
        store.remove(&gone);
    }
    if let Some(h) = harvester {
        h.restore(snapshot.watermarks, snapshot.jobs, taken_at);
    }
    if stale > 0 {
        info!(
            stale_projects = stale,
            "figures computed with other definitions are served flagged stale until refreshed"
        );
    }
    Applied { taken_at, projects: keys.len(), stale, definitions: snapshot.definitions }
}

/// An audit entry as the snapshot keeps it.
fn record_of(a: &DefinitionAudit) -> ActivationRecord {
    let origin = match a.origin {
        Origin::Startup => ActivationOrigin::Startup,
        Origin::Api => ActivationOrigin::Api,
        Origin::File => ActivationOrigin::File,
    };
    ActivationRecord { version: a.version.clone(), hash: a.hash.clone(), at: a.at.timestamp_millis(), origin }
}

/// A restored audit entry (`None` for an instant out of range).
fn audit_of(r: &ActivationRecord) -> Option<DefinitionAudit> {
    let origin = match r.origin {
        ActivationOrigin::Startup => Origin::Startup,
        ActivationOrigin::Api => Origin::Api,
        ActivationOrigin::File => Origin::File,
    };
    Some(DefinitionAudit {
        version: r.version.clone(),
        hash: r.hash.clone(),
        at: DateTime::from_timestamp_millis(r.at)?,
        origin,
    })
}

/// Resolves when `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
