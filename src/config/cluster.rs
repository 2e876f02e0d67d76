//! The `[cluster]` settings: running several replicas on one PostgreSQL
//! database. Present only when `DORA_DATABASE_URL` (or
//! `DORA_DATABASE_URL_FILE`) is set; without it the service is a single
//! instance with snapshot files, as always.
//!
//! The database URL may hold a password: it is read only from the
//! environment or a secret file, never from the TOML file (a
//! `database_url` key there is refused without echoing it), and kept in a
//! [`Secret`].

use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::env::Env;
use crate::jira::SecretString as Secret;

/// Default lease of the harvesting leader.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// Default interval of the leader's heartbeat (and of a standby's attempt
/// to take over).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// Default interval of the check for new snapshots, definitions and jobs
/// when notifications are not arriving.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCluster {
    lease_ms: Option<u64>,
    heartbeat_ms: Option<u64>,
    poll_ms: Option<u64>,
    /// Accepted by the parser only to be refused with a clear message.
    database_url: Option<IgnoredAny>,
}

/// How this instance joins the others on PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `postgres://user:password@host:port/db?sslmode=require`, or the
    /// key=value form. Never logged.
    pub database_url: Secret,
    /// How long a leader's lease lasts without a heartbeat.
    pub lease: Duration,
    /// How often the leader renews its lease and a standby tries to take it.
    pub heartbeat: Duration,
    /// How often the database is checked when notifications are lost.
    pub poll: Duration,
    /// This instance's name in the lease row (with its process id and a
    /// random part): the host name (a pod's name) when known and short.
    pub instance: String,
}

/// The message for a `database_url` key in the file; the value is not shown.
const URL_IN_FILE: &str = "not accepted in the configuration file, since it holds the database password: \
     set DORA_DATABASE_URL or DORA_DATABASE_URL_FILE (a file with the URL) instead";

/// The cluster settings, or `None` without a database URL. `url_in_file`:
/// the file had a top-level `database_url` key.
pub(super) fn settings(
    file: FileCluster,
    url_in_file: bool,
    env: &dyn Env,
    problems: &mut Vec<String>,
) -> Option<ClusterSettings> {
    if url_in_file {
        problems.push(format!("database_url: {URL_IN_FILE}"));
    }
    if file.database_url.is_some() {
        problems.push(format!("cluster.database_url: {URL_IN_FILE}"));
    }
    let mut millis = |key: &str, var: &str, file: Option<u64>, default: Duration| -> Duration {
        let text = env.var(var);
        let ms = match &text {
            Some(t) => t.trim().parse::<u64>().ok(),
            None => file,
        };
        match (ms, text) {
            (Some(ms), _) if ms > 0 => Duration::from_millis(ms),
            (None, None) => default,
            (_, shown) => {
                let shown = shown.unwrap_or_else(|| "0".to_owned());
                problems.push(format!("cluster.{key} ({var}): `{shown}` is not a positive number of milliseconds"));
                default
            }
        }
    };
    let lease = millis("lease_ms", "DORA_CLUSTER_LEASE_MS", file.lease_ms, DEFAULT_LEASE);
    let heartbeat = millis("heartbeat_ms", "DORA_CLUSTER_HEARTBEAT_MS", file.heartbeat_ms, DEFAULT_HEARTBEAT);
    let poll = millis("poll_ms", "DORA_CLUSTER_POLL_MS", file.poll_ms, DEFAULT_POLL);
    if heartbeat * 2 > lease {
        problems.push(format!(
            "cluster.heartbeat_ms ({} ms) must be at most half of cluster.lease_ms ({} ms), so a leader renews in time",
            heartbeat.as_millis(),
            lease.as_millis()
        ));
    }
    let url = match (env.var("DORA_DATABASE_URL"), env.var("DORA_DATABASE_URL_FILE")) {
        (Some(_), Some(_)) => {
            problems.push("DORA_DATABASE_URL and DORA_DATABASE_URL_FILE: set one of them, not both".to_owned());
            return None;
        }
        (Some(url), None) => url,
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().to_owned(),
            Err(e) => {
                problems.push(format!("DORA_DATABASE_URL_FILE: cannot read the secret file: {}", e.kind()));
                return None;
            }
        },
        (None, None) => return None,
    };
    let looks_like_url = url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains('=');
    if !looks_like_url {
        problems.push(
            "DORA_DATABASE_URL: not a PostgreSQL URL like postgres://user:password@host:5432/dora (the value is not shown)"
                .to_owned(),
        );
    }
    let instance = env
        .var("HOSTNAME")
        .filter(|h| h.len() <= 40 && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        .unwrap_or_else(|| "instance".to_owned());
    Some(ClusterSettings { database_url: Secret::new(url), lease, heartbeat, poll, instance })
}
