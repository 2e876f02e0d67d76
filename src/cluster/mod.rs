//! Several replicas on one PostgreSQL database (`DORA_DATABASE_URL`): one
//! harvesting leader, every replica serving.
//!
//! - [`db`]: the only module that speaks SQL: schema, pool, statements.
//! - [`lease`]: the leader election (advisory lock, lease row, epoch) and
//!   the [`lease::Permit`] the harvester asks before and while it calls
//!   Jira.
//! - [`sync`]: every instance follows the database: the newest snapshot,
//!   the definitions in force and job progress, through `LISTEN` and, when
//!   notifications are lost, polling.
//! - [`leader`]: what only the leader does: harvest on taking the lead, run
//!   the schedule and queued refreshes, mirror job progress, and write
//!   snapshots fenced by its epoch.
//! - [`member`]: this instance's shared state and what the API asks of it.
//!
//! No child imports this module: [`start`] wires the tasks (`lease`,
//! `sync`, `leader`) around the [`member`] they share.
//!
//! Without a database URL none of this runs and the service keeps its
//! snapshot files. Must not depend on `api` (it knows no tonic): the API
//! calls [`Cluster`] and maps [`ClusterError`] to a status.

pub mod db;
mod leader;
pub mod lease;
mod member;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::{ClusterSettings, Config};
use crate::definitions::DefinitionSet;
use crate::harvest::Harvester;
use crate::store::Store;
pub use db::{Database, DbError};
pub use lease::Role;
pub use member::{Cluster, ClusterError, LoadedSnapshot};

/// How long a start waits for the database before giving up.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// Connects, and creates or upgrades the schema; retries for a while, since
/// replicas and the database often start together.
pub async fn open(settings: &ClusterSettings) -> Result<Database, DbError> {
    let holder = format!("{}-{}-{:08x}", settings.instance, std::process::id(), fastrand::u32(..));
    let db = Database::new(&settings.database_url, &holder)?;
    let deadline = tokio::time::Instant::now() + START_PATIENCE;
    loop {
        match db.migrate().await {
            Ok(version) => {
                info!(schema = version, "database schema ready");
                return Ok(db);
            }
            Err(e @ (DbError::SchemaTooNew { .. } | DbError::Url | DbError::Tls(_))) => return Err(e),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(e) => {
                warn!(error = %e, "database not ready; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The definitions in force: the newest version in the database, the
/// folder's set seeding version 1 of a new database.
pub async fn definitions_in_force(db: &Database, folder: DefinitionSet) -> Result<DefinitionSet, DbError> {
    db.seed_definitions(folder.content_hash(), &member::file_pairs(&folder)).await?;
    let Some(newest) = db.newest_definitions().await? else {
        return Ok(folder.numbered(1));
    };
    if newest.hash == folder.content_hash() {
        return Ok(folder.numbered(newest.number));
    }
    let files = member::files_of(newest.files);
    match tokio::task::spawn_blocking(move || DefinitionSet::compile(files)).await {
        Ok(Ok(set)) => Ok(set.numbered(newest.number)),
        _ => {
            warn!(
                number = newest.number,
                "the definitions in force in the database do not compile here; the folder's are used"
            );
            Ok(folder.numbered(newest.number))
        }
    }
}

/// Joins the cluster: loads the newest snapshot into `store` and
/// `harvester`, then starts the election, the follower and the leader's
/// duties. [`Cluster::stop`] ends them.
pub async fn start(db: Database, config: &Config, store: Arc<Store>, harvester: Arc<Harvester>) -> Arc<Cluster> {
    let cluster = Cluster::new(db, config, store, harvester);
    crate::telemetry::cluster_role(None);
    info!(instance = %cluster.holder, lease_ms = cluster.settings.lease.as_millis() as u64, "joining the cluster");
    if let Err(e) = cluster.catch_up_snapshot(true).await {
        warn!(error = %e, "no snapshot loaded from the database");
    }
    let lease_task = tokio::spawn(lease::run(
        cluster.db.clone(),
        cluster.holder.clone(),
        cluster.settings.lease,
        cluster.settings.heartbeat,
        cluster.role.clone(),
        Arc::clone(&cluster.permit),
        cluster.stop_lease.subscribe(),
    ));
    let sync_task = tokio::spawn(sync::run(Arc::clone(&cluster), cluster.stop_duties.subscribe()));
    let duties_task = tokio::spawn(leader::run(Arc::clone(&cluster), cluster.stop_duties.subscribe()));
    *cluster.tasks.lock().expect("tasks lock") =
        vec![("duties", duties_task), ("sync", sync_task), ("lease", lease_task)];
    cluster
}
