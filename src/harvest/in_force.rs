//! The definitions in force: the one owner of the set every classification
//! uses, its activation number, the audit of activations and the lock that
//! lets one activation run at a time. The refresh, the recompute and the
//! folder watcher all read and change the definitions through it.
//!
//! The swap replaces an `Arc<DefinitionSet>`: a request or a harvest that
//! already holds the previous set finishes on it.
//!
//! Must not depend on the harvest's jobs, its facts memory, the store or
//! Jira: putting definitions in force recomputes nothing by itself.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use thiserror::Error;
use tracing::{info, warn};

use super::folder;
use crate::definitions::DefinitionSet;

/// How many activations the audit keeps.
pub const AUDIT_ENTRIES: usize = 100;

/// What put a definitions version in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded when the service started.
    Startup,
    /// An `UpdateDefinitions` call.
    Api,
    /// An edit of the files on disk.
    File,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Startup => "startup",
            Origin::Api => "api",
            Origin::File => "file",
        }
    }
}

/// One activation of definitions, who-less: which version, when, its
/// content hash and what caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionAudit {
    pub version: String,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub origin: Origin,
}

impl DefinitionAudit {
    fn of(set: &DefinitionSet, origin: Origin) -> Self {
        Self { version: set.version().to_owned(), hash: set.content_hash().to_owned(), at: Utc::now(), origin }
    }
}

/// Why definitions could not be put in force.
#[derive(Debug, Error)]
pub enum ActivateError {
    #[error("writing the definitions files failed: {0}")]
    Write(std::io::Error),
}

/// Proof that the caller holds the activation lock.
pub type ActivationGuard<'a> = tokio::sync::MutexGuard<'a, ()>;

/// The definitions in force, their numbering and their audit.
pub struct DefinitionsInForce {
    current: RwLock<Arc<DefinitionSet>>,
    /// Activations, oldest first (at most [`AUDIT_ENTRIES`]).
    audit: Mutex<VecDeque<DefinitionAudit>>,
    /// One activation at a time (updates and file edits).
    activation: tokio::sync::Mutex<()>,
}

impl DefinitionsInForce {
    /// `startup` in force, audited as loaded at start.
    pub fn new(startup: Arc<DefinitionSet>) -> Self {
        Self {
            audit: Mutex::new(std::iter::once(DefinitionAudit::of(&startup, Origin::Startup)).collect()),
            current: RwLock::new(startup),
            activation: tokio::sync::Mutex::new(()),
        }
    }

    /// The set in force.
    pub fn current(&self) -> Arc<DefinitionSet> {
        Arc::clone(&self.current.read().expect("definitions lock"))
    }

    /// The activations, oldest first.
    pub fn audit(&self) -> Vec<DefinitionAudit> {
        self.audit.lock().expect("audit lock").iter().cloned().collect()
    }

    /// Continues the numbering and the audit of an earlier run, restored
    /// from a snapshot: `last_version` was in force when it was taken and
    /// `audit` holds its activations. The set in force keeps the number of
    /// the last one if it has the same content, else it is numbered after
    /// it and audited as loaded at start. Call at start, before anything
    /// else holds the set; returns the version it had before, if it changed.
    pub fn continue_from(&self, last_version: &str, audit: Vec<DefinitionAudit>) -> Option<String> {
        let (last_number, last_hash) = last_version.split_once('-')?;
        let last_number: u64 = last_number.parse().ok()?;
        let mut current = self.current.write().expect("definitions lock");
        let same = current.content_hash() == last_hash;
        let number = if same { last_number } else { last_number + 1 };
        let before = current.version().to_owned();
        let Some(set) = Arc::get_mut(&mut *current) else {
            warn!("the definitions are in use already: their number does not continue from the snapshot");
            return None;
        };
        set.renumber(number);
        let mut entries: VecDeque<DefinitionAudit> = audit.into();
        if !same {
            entries.push_back(DefinitionAudit::of(set, Origin::Startup));
        }
        while entries.len() > AUDIT_ENTRIES {
            entries.pop_front();
        }
        if !entries.is_empty() {
            *self.audit.lock().expect("audit lock") = entries;
        }
        (before != set.version()).then_some(before)
    }

    /// Waits for the activation lock; hold it from deciding to activate
    /// until [`Self::activate`] returns.
    pub async fn lock(&self) -> ActivationGuard<'_> {
        self.activation.lock().await
    }

    /// Puts a compiled set in force: writes its files to `write_to` (when
    /// given) atomically, numbers it after the set in force, records an
    /// audit entry and swaps it in.
    pub async fn activate(
        &self,
        _lock: &ActivationGuard<'_>,
        set: DefinitionSet,
        origin: Origin,
        write_to: Option<&Path>,
    ) -> Result<Arc<DefinitionSet>, ActivateError> {
        if let Some(dir) = write_to {
            let (dir, files) = (dir.to_owned(), set.files().to_vec());
            tokio::task::spawn_blocking(move || folder::write_files(&dir, &files))
                .await
                .map_err(|_| ActivateError::Write(std::io::Error::other("writing stopped unexpectedly")))?
                .map_err(ActivateError::Write)?;
        }
        let number = self.current().number() + 1;
        Ok(self.put(set.numbered(number), origin))
    }

    /// Puts a set numbered elsewhere (by a database shared with other
    /// instances) in force, unless the set in force is as new; returns it
    /// when it was put in force.
    pub fn activate_numbered(
        &self,
        _lock: &ActivationGuard<'_>,
        set: DefinitionSet,
        number: u64,
        origin: Origin,
    ) -> Option<Arc<DefinitionSet>> {
        (self.current().number() < number).then(|| self.put(set.numbered(number), origin))
    }

    fn put(&self, set: DefinitionSet, origin: Origin) -> Arc<DefinitionSet> {
        let set = Arc::new(set);
        {
            let mut audit = self.audit.lock().expect("audit lock");
            audit.push_back(DefinitionAudit::of(&set, origin));
            while audit.len() > AUDIT_ENTRIES {
                audit.pop_front();
            }
        }
        let previous = std::mem::replace(&mut *self.current.write().expect("definitions lock"), Arc::clone(&set));
        crate::telemetry::definitions_version(Some(previous.version()), set.version());
        info!(version = set.version(), origin = origin.as_str(), "definitions activated");
        set
    }
}
