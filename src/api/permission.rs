//! May this viewer browse that project? The question to Jira behind a small
//! trait, and a short-lived in-memory cache of the answers.
//!
//! The cache is keyed by a SHA-256 of the viewer's credential (or account
//! id) and the project key, so it never holds a credential. Errors are not
//! cached, and an error is never a yes: the caller fails closed.
//!
//! Depends on `jira` only through [`PermissionChecker`] (implemented here
//! for `JiraClient`): a request with a viewer asks Jira this one question
//! (answers cached); its figures always come from the store, never from
//! Jira.
//!
//! Must not depend on the handlers, the store or the harvester.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::Secret;
use crate::jira::{JiraClient, JiraError};

/// Why a permission question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    /// Jira does not accept the viewer's credential.
    #[error("Jira does not accept the viewer's credential")]
    ViewerRejected,
    /// Jira could not answer (down, throttled, refused the service).
    #[error("Jira could not answer the permission check: {0}")]
    Unavailable(String),
}

/// Asks Jira whether viewers may browse projects.
#[tonic::async_trait]
pub trait PermissionChecker: Send + Sync {
    /// May the holder of `viewer_authorization` browse `project`? Asked with
    /// that credential.
    async fn viewer_can_browse(&self, viewer_authorization: &Secret, project: &str) -> Result<bool, PermissionError>;

    /// Which of `projects` may `account_id` browse (in order)? Asked with
    /// the service's own credential.
    async fn account_can_browse(&self, account_id: &str, projects: &[String]) -> Result<Vec<bool>, PermissionError>;
}

fn unavailable(e: JiraError) -> PermissionError {
    // The error names the request and the status, never a body or a
    // credential; it goes to the log, not to the client.
    PermissionError::Unavailable(e.to_string())
}

#[tonic::async_trait]
impl PermissionChecker for JiraClient {
    async fn viewer_can_browse(&self, viewer_authorization: &Secret, project: &str) -> Result<bool, PermissionError> {
        match self.my_permission(viewer_authorization, project).await {
            Ok(yes) => Ok(yes),
            Err(e) if e.http_status() == Some(401) => Err(PermissionError::ViewerRejected),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn account_can_browse(&self, account_id: &str, projects: &[String]) -> Result<Vec<bool>, PermissionError> {
        self.check_account(account_id, projects).await.map_err(unavailable)
    }
}

/// Most answers kept at once; past it, expired ones go, then all.
const MAX_ENTRIES: usize = 100_000;

/// Recent permission answers, by a hash of who asked and the project.
#[derive(Debug)]
pub struct PermissionCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (bool, Instant)>>,
}

impl PermissionCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::default() }
    }

    /// The cache key: SHA-256 over the kind of identity, the identity and
    /// the project, each length-prefixed.
    pub fn key(kind: &str, identity: &str, project: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [kind, identity, project] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    /// A fresh answer, if there is one at `now`.
    pub fn get(&self, key: &[u8; 32], now: Instant) -> Option<bool> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(_, expires)| now < *expires).map(|(yes, _)| *yes)
    }

    /// Keeps an answer until `now + ttl`.
    pub fn put(&self, key: [u8; 32], yes: bool, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, expires)| now < *expires);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (yes, now + self.ttl));
    }

    /// Number of answers held (expired ones included).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_expires_after_its_time_to_live() {
        let cache = PermissionCache::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let k = PermissionCache::key("viewer", "Bearer abc", "OPS");
        cache.put(k, true, t0);
        assert_eq!(cache.get(&k, t0 + Duration::from_secs(29)), Some(true));
        assert_eq!(cache.get(&k, t0 + Duration::from_secs(30)), None);
        assert_eq!(cache.get(&PermissionCache::key("viewer", "Bearer abc", "PAY"), t0), None);
    }

    #[test]
    fn keys_differ_by_identity_kind_and_project_and_hold_no_credential() {
        let a = PermissionCache::key("viewer", "Bearer abc", "OPS");
        assert_ne!(a, PermissionCache::key("account", "Bearer abc", "OPS"));
        assert_ne!(a, PermissionCache::key("viewer", "Bearer abcO", "PS"));
        assert!(!format!("{:?}", PermissionCache::new(Duration::from_secs(1))).contains("abc"));
    }

    #[test]
    fn a_zero_time_to_live_caches_nothing() {
        let cache = PermissionCache::new(Duration::ZERO);
        let k = PermissionCache::key("viewer", "x", "OPS");
        cache.put(k, true, Instant::now());
        assert!(cache.is_empty());
    }
}
