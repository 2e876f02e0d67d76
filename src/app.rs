//! Wiring: definitions, Jira client (or the embedded demo site, with the
//! `demo` feature), store, harvester, schedule, definitions watcher,
//! snapshots and API server, and the shutdown order.
//!
//! The only module (with `main`) that may depend on every other; nothing
//! depends on it but `main` and the tests.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::api::auth::Access;
use crate::api::permission::PermissionChecker;
use crate::api::{self, Service};
use crate::cluster;
use crate::config::Config;
use crate::definitions::{DefinitionFile, DefinitionSet, DefinitionsLoadError};
use crate::harvest::{Harvester, Persistence};
use crate::jira::{JiraClient, JiraError};
use crate::store::Store;

/// A running service: its address and how to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub harvester: Arc<Harvester>,
    pub store: Arc<Store>,
}

/// Loads the definitions of the configured folder, refusing bad ones. When
/// the default folder does not exist (the binary runs outside a checkout),
/// the definitions built into the binary are used.
pub fn load_definitions(config: &Config) -> anyhow::Result<DefinitionSet> {
    let field_names = extra_fields(config);
    let complete = definitions_files(config);
    if config.defs_dir == std::path::Path::new(crate::config::DEFAULT_DEFS_DIR) && !config.defs_dir.exists() {
        info!("no metrics-defs folder here: using the built-in default definitions");
        return DefinitionSet::compile_for(complete(DefinitionSet::shipped_files()), &field_names)
            .map_err(|e| anyhow::anyhow!("the built-in definitions do not load: {e:?}"));
    }
    DefinitionSet::read_dir(&config.defs_dir)
        .and_then(|files| {
            DefinitionSet::compile_for(complete(files), &field_names).map_err(DefinitionsLoadError::Invalid)
        })
        .with_context(|| format!("the metric definitions in {} are not usable", config.defs_dir.display()))
}

/// What the service makes of the files of its definitions folder, at start
/// and when the folder watcher reads them: the files themselves, except on
/// the demo, whose shipped definitions get the demo's teams.
pub fn definitions_files(config: &Config) -> fn(Vec<DefinitionFile>) -> Vec<DefinitionFile> {
    fn as_they_are(files: Vec<DefinitionFile>) -> Vec<DefinitionFile> {
        files
    }
    if config.is_demo() { demo::with_teams } else { as_they_are }
}

/// The demo site's option fields, so that definitions tried on it can read
/// `issue.fields["Team"]`.
const DEMO_EXTRA_FIELDS: [&str; 2] = ["Team", "Severity"];

/// The custom fields issues carry (`jira.extra_fields`; the demo site's
/// option fields without a Jira).
pub fn extra_fields(config: &Config) -> Vec<String> {
    match &config.jira {
        Some(jira) => jira.extra_fields.clone(),
        None => DEMO_EXTRA_FIELDS.iter().map(|&name| name.to_owned()).collect(),
    }
}

/// Runs the service on `listener` until `shutdown` turns true.
pub async fn run(config: Config, listener: TcpListener, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    // The metrics recorder first, so nothing recorded from here on is lost.
    crate::telemetry::handle();
    // With a database, the definitions in force are the database's (the
    // folder seeds the first version).
    let (definitions, database) = match &config.cluster {
        None => (load_definitions(&config)?.numbered(1), None),
        Some(settings) => {
            let db = cluster::open(settings).await.context("the shared database (DORA_DATABASE_URL) is not usable")?;
            let definitions = cluster::definitions_in_force(&db, load_definitions(&config)?)
                .await
                .context("reading the definitions in force from the database")?;
            (definitions, Some(db))
        }
    };
    let definitions = Arc::new(definitions);
    info!(version = definitions.version(), "definitions loaded");
    crate::telemetry::definitions_version(None, definitions.version());

    // Without a Jira, serve the embedded demo site through the same HTTP
    // client and harvester as a real one.
    #[cfg(feature = "demo")]
    let (mut config, mut _demo_jira) = (config, None);
    let jira_config = match &config.jira {
        Some(c) => c.clone(),
        #[cfg(not(feature = "demo"))]
        None => anyhow::bail!("no Jira configured (jira.base_url, JIRA_BASE_URL), and this build has no demo site"),
        #[cfg(feature = "demo")]
        None => {
            let today = Utc::now().with_timezone(&config.report_tz).date_naive();
            let (fake, demo_config) = demo::start(today).await?;
            if config.ai_rollout_date.is_none() {
                config.ai_rollout_date = Some(demo::ai_rollout(today));
            }
            info!(jira = %demo_config.base_url, "no Jira configured: serving the embedded demo site");
            _demo_jira = Some(fake);
            demo_config
        }
    };
    let client = JiraClient::new(jira_config).context("building the Jira client")?;
    // Allow-listed fields that do not exist or could hold text stop the
    // start; a Jira that cannot be reached now is asked again at the first
    // harvest.
    match client.extra_fields().await {
        Err(e @ JiraError::ExtraFields(_)) => return Err(e).context("the configuration is not usable"),
        Err(e) => warn!(error = %e, "jira.extra_fields could not be checked yet"),
        Ok(_) => {}
    }
    let store = Arc::new(Store::with_answer_budget(config.answer_cache_bytes));
    let checker: Arc<dyn PermissionChecker> = Arc::new(client.clone());
    let access = Arc::new(Access::new(&config.auth, Some(checker)));
    if !access.enabled() {
        warn!(listen = %config.listen, "authentication is off: every caller on this loopback address can read and refresh everything");
    }
    let harvester = Arc::new(Harvester::new(
        client,
        Arc::clone(&store),
        definitions,
        config.report_tz,
        config.harvest.projects.clone(),
    ));
    harvester.set_reconcile_interval(config.harvest.reconcile_interval);
    if let Some(db) = database {
        // The demo Jira (when serving it) lives until `run` returns.
        return run_replica(db, config, listener, shutdown, store, harvester, access).await;
    }
    // The newest snapshot is served before any refresh runs.
    let persistence =
        Persistence::restore(&config.data_dir, config.snapshot.clone(), Arc::clone(&store), Arc::clone(&harvester))
            .context("snapshots need a writable data directory (data_dir, DORA_DATA_DIR)")?;
    // A project no longer configured is not kept: dropped from memory now
    // and so from the next snapshot.
    let dropped = store.retain_projects(&config.harvest.projects);
    if !dropped.is_empty() {
        info!(projects = ?dropped, "projects no longer configured were dropped");
    }
    let snapshots = tokio::spawn(persistence.run(harvester.changes(), shutdown.clone()));
    if config.harvest.on_start {
        // In the background: listing the projects asks Jira, and the
        // restored figures are served meanwhile.
        let harvester = Arc::clone(&harvester);
        tokio::spawn(async move {
            if let Err(e) = harvester.start(Vec::new(), true).await {
                warn!(error = %e, "initial harvest not started");
            }
        });
    }
    let schedule = tokio::spawn(Arc::clone(&harvester).schedule(
        config.harvest.interval,
        config.harvest.full_refresh_hour,
        shutdown.clone(),
    ));
    let defs_watch = config.definitions.watch_interval.map(|interval| {
        let complete = definitions_files(&config);
        tokio::spawn(crate::harvest::watch::watch(
            Arc::clone(&harvester),
            config.defs_dir.clone(),
            complete,
            interval,
            shutdown.clone(),
        ))
    });

    let config = Arc::new(config);
    let tls = config.tls.clone();
    let service = Service { store, harvester, config, now: Utc::now, access, cluster: None };
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    api::serve(listener, service, tls.as_ref(), stop).await?;
    schedule.abort();
    if let Some(task) = defs_watch {
        task.abort();
    }
    if tokio::time::timeout(std::time::Duration::from_secs(60), snapshots).await.is_err() {
        warn!("the last snapshot was not written within 60 s");
    }
    info!("stopped");
    Ok(())
}

/// The rest of [`run`] for one of several replicas on PostgreSQL: the
/// cluster replaces the snapshot files, the schedule and the file watcher
/// (definitions change through the database).
async fn run_replica(
    db: cluster::Database,
    config: Config,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    store: Arc<Store>,
    harvester: Arc<Harvester>,
    access: Arc<Access>,
) -> anyhow::Result<()> {
    let cluster = cluster::start(db, &config, Arc::clone(&store), Arc::clone(&harvester)).await;
    let config = Arc::new(config);
    let tls = config.tls.clone();
    let service = Service { store, harvester, config, now: Utc::now, access, cluster: Some(Arc::clone(&cluster)) };
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    let served = api::serve(listener, service, tls.as_ref(), stop).await;
    cluster.stop().await;
    info!("stopped");
    served
}

/// The embedded demo site: a Jira look-alike on loopback serving the
/// generated site, reached through the real Jira client.
#[cfg(feature = "demo")]
pub mod demo {
    use anyhow::Context;
    use chrono::NaiveDate;
    use fake_jira::{FakeJira, SiteFlavor};

    use crate::definitions::{DefinitionFile, DefinitionSet};
    use crate::domain::facts::ProjectFacts;
    use crate::harvest;
    use crate::jira::{JiraClient, JiraConfig};

    /// Serves the demo site of `today`; the handle stops it when dropped.
    pub async fn start(today: NaiveDate) -> anyhow::Result<(FakeJira, JiraConfig)> {
        let fake = FakeJira::try_start(fake_jira::demo::demo_site(today), SiteFlavor::Cloud)
            .await
            .context("starting the demo Jira")?;
        let config = JiraConfig {
            extra_fields: super::DEMO_EXTRA_FIELDS.iter().map(|&name| name.to_owned()).collect(),
            ..JiraConfig::new(fake.base_url())
        };
        Ok((fake, config))
    }

    /// The shipped definitions with the demo's teams (one per component)
    /// added; any other files as they are.
    pub fn with_teams(mut files: Vec<DefinitionFile>) -> Vec<DefinitionFile> {
        if DefinitionSet::content_hash_of(&files) == DefinitionSet::content_hash_of(&DefinitionSet::shipped_files()) {
            let (name, source) = fake_jira::demo::DEMO_TEAMS_DEFINITION;
            files.push(DefinitionFile { name: name.to_owned(), source: source.to_owned() });
        }
        files
    }

    /// The day the demo teams "adopted AI tooling".
    pub fn ai_rollout(today: NaiveDate) -> NaiveDate {
        fake_jira::demo::demo_ai_rollout(today)
    }

    /// The facts of every project of the demo site of `today`, harvested
    /// through the real Jira client (for previews without a Jira).
    pub async fn facts(today: NaiveDate) -> anyhow::Result<Vec<ProjectFacts>> {
        let (fake, config) = start(today).await?;
        let client = JiraClient::new(config).context("building the Jira client")?;
        let mut all = Vec::new();
        for key in client.projects().await.context("listing the demo projects")? {
            all.push(harvest::fetch_project(&client, &key).await.context("harvesting the demo site")?);
        }
        fake.shutdown().await;
        Ok(all)
    }
}

/// Without the `demo` feature there is no demo site.
#[cfg(not(feature = "demo"))]
pub mod demo {
    use chrono::NaiveDate;

    use crate::definitions::DefinitionFile;
    use crate::domain::facts::ProjectFacts;

    /// No demo: no demo teams.
    pub fn with_teams(files: Vec<DefinitionFile>) -> Vec<DefinitionFile> {
        files
    }

    pub async fn facts(_today: NaiveDate) -> anyhow::Result<Vec<ProjectFacts>> {
        anyhow::bail!("this build has no demo site to preview on (built without the `demo` feature)")
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
