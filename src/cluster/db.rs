//! The only module that speaks SQL: the connection pool and dedicated
//! connections (TLS with rustls when the URL asks for `sslmode=require`),
//! the versioned schema and every statement the replicas run.
//!
//! Must not depend on `api`, `jira` or `harvest`: it moves bytes, numbers
//! and JSON records. Errors never show the database URL; the password is
//! only handed to `tokio-postgres`.
//!
//! Tables (all prefixed `dora_`): `schema` (applied migrations), `lease`
//! (one row: the leader's epoch, identity and expiry), `snapshots` (the
//! last two encoded snapshots with the epoch that wrote them),
//! `definitions` (every version ever put in force: the audit),
//! `refresh_requests` (queued `Refresh` calls for the leader) and `jobs`
//! (each job's redacted progress record). Notification channels:
//! `dora_snapshot`, `dora_definitions`, `dora_jobs`, `dora_refresh`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, NoTls, Socket};

use crate::config::Secret;

/// Advisory lock held by the transaction that migrates the schema.
const MIGRATION_LOCK: i64 = 0x646f_7261_0000_0001;
/// Advisory lock held by the leader's session for as long as it leads.
const LEADER_LOCK: i64 = 0x646f_7261_0000_0002;
/// How long one database operation may take before it counts as failed.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Jobs whose records are kept.
const JOBS_KEPT: i64 = 100;

/// The notification channels.
pub const CHANNELS: [&str; 4] = ["dora_snapshot", "dora_definitions", "dora_jobs", "dora_refresh"];

/// The schema, one step per version. Never edit a step once released:
/// add one.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE dora_lease (
         id integer PRIMARY KEY CHECK (id = 1),
         epoch bigint NOT NULL,
         holder text NOT NULL,
         renewed_at timestamptz NOT NULL,
         expires_at timestamptz NOT NULL
     );
     INSERT INTO dora_lease VALUES (1, 0, '', now(), now());
     CREATE TABLE dora_snapshots (
         seq bigint PRIMARY KEY,
         epoch bigint NOT NULL,
         taken_at timestamptz NOT NULL,
         written_at timestamptz NOT NULL DEFAULT now(),
         bytes bytea NOT NULL
     );
     CREATE TABLE dora_definitions (
         number bigint PRIMARY KEY,
         hash text NOT NULL,
         files jsonb NOT NULL,
         origin text NOT NULL,
         activated_at timestamptz NOT NULL DEFAULT now()
     );
     CREATE TABLE dora_refresh_requests (
         id bigserial PRIMARY KEY,
         job_id text NOT NULL UNIQUE,
         projects text[] NOT NULL,
         full_refresh boolean NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now()
     );
     CREATE TABLE dora_jobs (
         job_id text PRIMARY KEY,
         record jsonb NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now()
     );",
)];

/// Why a database operation failed.
#[derive(Debug, Error)]
pub enum DbError {
    #[error("DORA_DATABASE_URL is not a valid PostgreSQL URL (the value is not shown)")]
    Url,
    #[error("setting up TLS for the database: {0}")]
    Tls(String),
    #[error("database: {0}")]
    Postgres(String),
    #[error("database: no connection within {0:?}")]
    Timeout(Duration),
    #[error("the database schema is at version {found}, newer than this build knows ({known}): run a newer build")]
    SchemaTooNew { found: i32, known: i32 },
    #[error("fenced: epoch {0} is no longer the leader's")]
    Fenced(u64),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        // tokio-postgres never puts the password in its messages; the URL
        // is not part of them either.
        let mut text = e.to_string();
        if let Some(db) = e.as_db_error() {
            text = format!("{}: {}", db.code().code(), db.message());
        }
        DbError::Postgres(text)
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            deadpool_postgres::PoolError::Timeout(_) => DbError::Timeout(OPERATION_TIMEOUT),
            other => DbError::Postgres(other.to_string()),
        }
    }
}

/// Runs a database operation with [`OPERATION_TIMEOUT`].
async fn timed<T>(op: impl std::future::Future<Output = Result<T, DbError>>) -> Result<T, DbError> {
    tokio::time::timeout(OPERATION_TIMEOUT, op).await.unwrap_or(Err(DbError::Timeout(OPERATION_TIMEOUT)))
}

#[derive(Clone)]
enum Tls {
    None,
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// A connection of its own (not from the pool): for the leader's session
/// lock and for `LISTEN`. `notifications` ends when the connection is lost.
pub struct Dedicated {
    pub client: Client,
    pub notifications: mpsc::UnboundedReceiver<Notification>,
}

/// One `NOTIFY` received.
#[derive(Debug, Clone)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
}

/// The lease row as a standby sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub epoch: u64,
    pub holder: String,
    /// Milliseconds until it expires (database clock); 0 when expired.
    pub remaining_ms: u64,
}

/// A stored snapshot.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub seq: u64,
    pub epoch: u64,
    pub bytes: Vec<u8>,
}

/// A stored definitions version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDefinitions {
    pub number: u64,
    pub hash: String,
    /// `(file name, source)`, in name order.
    pub files: Vec<(String, String)>,
    pub origin: String,
    pub activated_at: DateTime<Utc>,
}

/// The shared database.
#[derive(Clone)]
pub struct Database {
    /// This instance's name: the lease row's holder, and the
    /// `application_name` of all its sessions.
    holder: String,
    config: tokio_postgres::Config,
    tls: Tls,
    pool: Pool,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

fn rustls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, DbError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| DbError::Tls(e.to_string()))?
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Database {
    /// Parses the URL and builds the pool for the instance named `holder`
    /// (at most 63 bytes); connects lazily.
    pub fn new(url: &Secret, holder: &str) -> Result<Self, DbError> {
        let mut config = tokio_postgres::Config::from_str(url.expose()).map_err(|_| DbError::Url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // Every session names the instance, so a standby can end all of a
        // stale leader's sessions (a frozen one may hold row locks).
        config.application_name(holder);
        let tls = match config.get_ssl_mode() {
            SslMode::Require => Tls::Rustls(rustls_connector()?),
            _ => Tls::None,
        };
        let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match &tls {
            Tls::None => Manager::from_config(config.clone(), NoTls, manager_config),
            Tls::Rustls(c) => Manager::from_config(config.clone(), c.clone(), manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(4)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(OPERATION_TIMEOUT))
            .create_timeout(Some(OPERATION_TIMEOUT))
            .recycle_timeout(Some(OPERATION_TIMEOUT))
            .build()
            .map_err(|e| DbError::Postgres(e.to_string()))?;
        Ok(Self { holder: holder.to_owned(), config, tls, pool })
    }

    /// This instance's name.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Opens a connection of its own.
    pub async fn dedicated(&self) -> Result<Dedicated, DbError> {
        timed(async {
            match &self.tls {
                Tls::None => dedicated(&self.config, NoTls).await,
                Tls::Rustls(c) => dedicated(&self.config, c.clone()).await,
            }
        })
        .await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        Ok(self.pool.get().await?)
    }

    /// Creates or upgrades the schema; safe with several instances starting
    /// at once (they take turns on an advisory lock). Returns the version.
    pub async fn migrate(&self) -> Result<i32, DbError> {
        timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS dora_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await?;
            let applied: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM dora_schema", &[]).await?.get(0);
            let known = MIGRATIONS.last().map_or(0, |m| m.0);
            if applied > known {
                return Err(DbError::SchemaTooNew { found: applied, known });
            }
            for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
                tx.batch_execute(sql).await?;
                tx.execute("INSERT INTO dora_schema (version) VALUES ($1)", &[version]).await?;
            }
            tx.commit().await?;
            Ok(known)
        })
        .await
    }

    // ------------------------------------------------------------- lease

    /// Tries the leader's session lock on `session` (a dedicated
    /// connection).
    pub async fn try_leader_lock(session: &Client) -> Result<bool, DbError> {
        timed(async { Ok(session.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK]).await?.get(0)) }).await
    }

    /// The lease row.
    pub async fn lease(session: &Client) -> Result<Lease, DbError> {
        timed(async {
            let row = session
                .query_one(
                    "SELECT epoch, holder, greatest(0, (extract(epoch FROM expires_at - now()) * 1000))::bigint FROM dora_lease WHERE id = 1",
                    &[],
                )
                .await?;
            Ok(Lease { epoch: row.get::<_, i64>(0) as u64, holder: row.get(1), remaining_ms: row.get::<_, i64>(2) as u64 })
        })
        .await
    }

    /// Ends every session of `holder`, a leader whose lease expired (frozen
    /// or cut off): the one holding the leader lock, so the lock is free,
    /// and the others, whose open transactions could hold the lease row.
    /// Sessions are found by their `application_name`, which is the
    /// holder's name. Returns how many were ended.
    pub async fn end_stale_leader_sessions(session: &Client, holder: &str) -> Result<u64, DbError> {
        if holder.is_empty() {
            return Ok(0);
        }
        timed(async {
            let row = session
                .query_one(
                    // With a timeout, pg_terminate_backend waits until the
                    // backend has exited (and so released its locks).
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 3000)) FROM pg_stat_activity
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    &[&holder],
                )
                .await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
        .await
    }

    /// Takes the lease when it expired (the caller holds the leader lock):
    /// a new epoch, one more than any before. `None` while another holder's
    /// lease runs.
    pub async fn claim_lease(session: &mut Client, holder: &str, lease: Duration) -> Result<Option<u64>, DbError> {
        let lease_ms = lease.as_millis() as i64;
        timed(async {
            let tx = session.transaction().await?;
            // A stale leader's open transaction may hold the row: fail fast
            // and end its sessions rather than wait.
            tx.batch_execute("SET LOCAL lock_timeout = '1s'").await?;
            let row =
                tx.query_one("SELECT holder, expires_at > now() FROM dora_lease WHERE id = 1 FOR UPDATE", &[]).await?;
            let (current, running): (String, bool) = (row.get(0), row.get(1));
            if running && current != holder {
                return Ok(None);
            }
            let epoch: i64 = tx
                .query_one(
                    "UPDATE dora_lease SET epoch = epoch + 1, holder = $1, renewed_at = now(),
                         expires_at = now() + $2::bigint * interval '1 millisecond'
                     WHERE id = 1 RETURNING epoch",
                    &[&holder, &lease_ms],
                )
                .await?
                .get(0);
            tx.commit().await?;
            Ok(Some(epoch as u64))
        })
        .await
    }

    /// Extends the lease of `epoch`; false when it is no longer this
    /// holder's.
    pub async fn renew_lease(session: &Client, holder: &str, epoch: u64, lease: Duration) -> Result<bool, DbError> {
        let (epoch, lease_ms) = (epoch as i64, lease.as_millis() as i64);
        timed(async {
            let n = session
                .execute(
                    "UPDATE dora_lease SET renewed_at = now(), expires_at = now() + $3::bigint * interval '1 millisecond'
                     WHERE id = 1 AND epoch = $1 AND holder = $2",
                    &[&epoch, &holder, &lease_ms],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    /// Gives the lease up at once (a clean stop), so a standby need not wait
    /// for it to expire.
    pub async fn release_lease(session: &Client, holder: &str, epoch: u64) -> Result<(), DbError> {
        let epoch = epoch as i64;
        timed(async {
            session
                .execute(
                    "UPDATE dora_lease SET expires_at = now() WHERE id = 1 AND epoch = $1 AND holder = $2",
                    &[&epoch, &holder],
                )
                .await?;
            // The lock is taken again on every attempt while a lease runs
            // out, and counts each time: let go of all of it.
            session.execute("SELECT pg_advisory_unlock_all()", &[]).await?;
            Ok(())
        })
        .await
    }

    // --------------------------------------------------------- snapshots

    /// The sequence number of the newest snapshot.
    pub async fn newest_snapshot_seq(&self) -> Result<Option<u64>, DbError> {
        timed(async {
            let row = self.client().await?.query_one("SELECT max(seq) FROM dora_snapshots", &[]).await?;
            Ok(row.get::<_, Option<i64>>(0).map(|s| s as u64))
        })
        .await
    }

    /// The stored snapshots, newest first (at most two).
    pub async fn snapshots(&self) -> Result<Vec<StoredSnapshot>, DbError> {
        timed(async {
            let rows = self
                .client()
                .await?
                .query("SELECT seq, epoch, bytes FROM dora_snapshots ORDER BY seq DESC", &[])
                .await?;
            Ok(rows
                .iter()
                .map(|r| StoredSnapshot {
                    seq: r.get::<_, i64>(0) as u64,
                    epoch: r.get::<_, i64>(1) as u64,
                    bytes: r.get(2),
                })
                .collect())
        })
        .await
    }

    /// Writes a snapshot if `epoch` is still the leader's (the fencing
    /// token), keeps the last two, and announces it. The lease row is read
    /// with a share lock, so a takeover waits for this write or this write
    /// sees the new epoch.
    pub async fn write_snapshot(
        &self,
        epoch: u64,
        seq: u64,
        taken_at: DateTime<Utc>,
        bytes: &[u8],
    ) -> Result<(), DbError> {
        let (epoch_i, seq_i) = (epoch as i64, seq as i64);
        timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let current: i64 = tx.query_one("SELECT epoch FROM dora_lease WHERE id = 1 FOR SHARE", &[]).await?.get(0);
            if current != epoch_i {
                return Err(DbError::Fenced(epoch));
            }
            tx.execute(
                "INSERT INTO dora_snapshots (seq, epoch, taken_at, bytes) VALUES ($1, $2, $3, $4)",
                &[&seq_i, &epoch_i, &taken_at, &bytes],
            )
            .await?;
            tx.execute(
                "DELETE FROM dora_snapshots WHERE seq NOT IN (SELECT seq FROM dora_snapshots ORDER BY seq DESC LIMIT 2)",
                &[],
            )
            .await?;
            tx.execute("SELECT pg_notify('dora_snapshot', $1)", &[&seq.to_string()]).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    // ------------------------------------------------------- definitions

    /// Records `files` as version 1 unless some version exists (the folder
    /// seeds the first version).
    pub async fn seed_definitions(&self, hash: &str, files: &[(String, String)]) -> Result<(), DbError> {
        let files = serde_json::to_value(files).expect("strings serialise");
        timed(async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO dora_definitions (number, hash, files, origin) VALUES (1, $1, $2, 'startup') ON CONFLICT DO NOTHING",
                    &[&hash, &files],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// The newest definitions version (the one in force).
    pub async fn newest_definitions(&self) -> Result<Option<StoredDefinitions>, DbError> {
        timed(async {
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT number, hash, files, origin, activated_at FROM dora_definitions ORDER BY number DESC LIMIT 1",
                    &[],
                )
                .await?;
            Ok(row.map(|r| StoredDefinitions {
                number: r.get::<_, i64>(0) as u64,
                hash: r.get(1),
                files: serde_json::from_value(r.get(2)).unwrap_or_default(),
                origin: r.get(3),
                activated_at: r.get(4),
            }))
        })
        .await
    }

    /// Records a new definitions version after the newest and announces
    /// it; returns its number.
    pub async fn add_definitions(&self, hash: &str, files: &[(String, String)], origin: &str) -> Result<u64, DbError> {
        let files = serde_json::to_value(files).expect("strings serialise");
        timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.batch_execute("LOCK TABLE dora_definitions IN EXCLUSIVE MODE").await?;
            let number: i64 = tx
                .query_one(
                    "INSERT INTO dora_definitions (number, hash, files, origin)
                     SELECT coalesce(max(number), 0) + 1, $1, $2, $3 FROM dora_definitions RETURNING number",
                    &[&hash, &files, &origin],
                )
                .await?
                .get(0);
            tx.execute("SELECT pg_notify('dora_definitions', $1)", &[&number.to_string()]).await?;
            tx.commit().await?;
            Ok(number as u64)
        })
        .await
    }

    // -------------------------------------------------------------- jobs

    /// Queues a refresh for the leader, with the job's first record, and
    /// announces it.
    pub async fn queue_refresh(
        &self,
        job_id: &str,
        projects: &[String],
        full: bool,
        record: &serde_json::Value,
    ) -> Result<(), DbError> {
        timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO dora_refresh_requests (job_id, projects, full_refresh) VALUES ($1, $2, $3)",
                &[&job_id, &projects, &full],
            )
            .await?;
            tx.execute("INSERT INTO dora_jobs (job_id, record) VALUES ($1, $2)", &[&job_id, record]).await?;
            tx.execute("SELECT pg_notify('dora_refresh', $1)", &[&job_id]).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Takes the oldest queued refresh, if `epoch` still leads.
    pub async fn claim_refresh(&self, epoch: u64) -> Result<Option<(String, Vec<String>, bool)>, DbError> {
        let epoch = epoch as i64;
        timed(async {
            let row = self
                .client()
                .await?
                .query_opt(
                    "DELETE FROM dora_refresh_requests
                     WHERE id = (SELECT id FROM dora_refresh_requests ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)
                       AND EXISTS (SELECT 1 FROM dora_lease WHERE id = 1 AND epoch = $1)
                     RETURNING job_id, projects, full_refresh",
                    &[&epoch],
                )
                .await?;
            Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
        })
        .await
    }

    /// Stores a job's record if `epoch` still leads, and announces it.
    pub async fn put_job(&self, epoch: u64, job_id: &str, record: &serde_json::Value) -> Result<(), DbError> {
        let epoch_i = epoch as i64;
        timed(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let current: i64 = tx.query_one("SELECT epoch FROM dora_lease WHERE id = 1 FOR SHARE", &[]).await?.get(0);
            if current != epoch_i {
                return Err(DbError::Fenced(epoch));
            }
            tx.execute(
                "INSERT INTO dora_jobs (job_id, record) VALUES ($1, $2)
                 ON CONFLICT (job_id) DO UPDATE SET record = excluded.record, updated_at = now()",
                &[&job_id, record],
            )
            .await?;
            tx.execute(
                "DELETE FROM dora_jobs WHERE job_id NOT IN (SELECT job_id FROM dora_jobs ORDER BY updated_at DESC LIMIT $1)",
                &[&JOBS_KEPT],
            )
            .await?;
            tx.execute("SELECT pg_notify('dora_jobs', $1)", &[&job_id]).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The records of jobs that did not end and are not waiting in the
    /// queue: the runs of a previous leader.
    pub async fn unfinished_jobs(&self) -> Result<Vec<(String, serde_json::Value)>, DbError> {
        timed(async {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT job_id, record FROM dora_jobs
                     WHERE record -> 'finished' = 'null'::jsonb
                       AND job_id NOT IN (SELECT job_id FROM dora_refresh_requests)",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }

    /// A job's record.
    pub async fn job(&self, job_id: &str) -> Result<Option<serde_json::Value>, DbError> {
        timed(async {
            let row =
                self.client().await?.query_opt("SELECT record FROM dora_jobs WHERE job_id = $1", &[&job_id]).await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }
}

/// Connects and drives the connection on a task that forwards
/// notifications; the receiver ends when the connection does.
async fn dedicated<T>(config: &tokio_postgres::Config, tls: T) -> Result<Dedicated, DbError>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await?;
    let (tx, notifications) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let _ = tx.send(Notification { channel: n.channel().to_owned(), payload: n.payload().to_owned() });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %DbError::from(e), "database connection ended");
                    return;
                }
                None => return,
            }
        }
    });
    Ok(Dedicated { client, notifications })
}
