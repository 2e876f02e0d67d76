//! The shared state: each project's weekly aggregates (and those of the
//! teams within it) and freshness, in a `dashmap`. The harvester replaces
//! a project's entry whole (one `Arc` swap), so a reader sees either the
//! old or the new figures, never a mix, and readers never wait for a
//! refresh.
//!
//! Holds counts and sketches only, keyed by project key, week and team
//! name; the facts they came from live in the harvester's memory and are
//! never stored here.
//!
//! Every change moves the store's [`Store::version`]; [`answers`] remembers
//! answers (and parts of answers) computed at one version until the next
//! change.
//!
//! [`snapshot`] is the on-disk format of this state (pure encode/decode);
//! [`snapshot_dir`] writes and loads it crash-safely in the data directory.
//!
//! Must not depend on anything of the service but `domain`.

pub mod answers;
pub mod retention;
pub mod snapshot;
pub mod snapshot_dir;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use crate::domain::aggregate::{ProjectAggregates, TeamAggregates};

/// One project's figures and where they come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectData {
    pub aggregates: ProjectAggregates,
    /// The weekly aggregates of each team within the project, by name.
    pub teams: TeamAggregates,
    /// End of the last successful harvest.
    pub last_harvest: Option<DateTime<Utc>>,
    /// Version of the definitions the aggregates were computed with.
    pub definitions_version: String,
}

/// Default budget of the answer caches, both together.
pub const DEFAULT_ANSWER_BYTES: usize = 16 << 20;

/// Every project's data.
#[derive(Debug)]
pub struct Store {
    projects: DashMap<String, Arc<ProjectData>>,
    /// Moves after every change of `projects`.
    version: AtomicU64,
    answers: answers::Answers,
    parts: answers::Answers,
}

impl Default for Store {
    fn default() -> Self {
        Self::with_answer_budget(DEFAULT_ANSWER_BYTES)
    }
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose answer caches hold at most `bytes` together (0 turns
    /// them off): three quarters for whole answers, a quarter for parts.
    pub fn with_answer_budget(bytes: usize) -> Self {
        Self {
            projects: DashMap::new(),
            version: AtomicU64::new(0),
            answers: answers::Answers::new(bytes / 4 * 3),
            parts: answers::Answers::new(bytes / 4),
        }
    }

    /// The version of the data: read it *before* the projects an answer is
    /// computed from, so that an answer is never remembered under a
    /// version newer than its data.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Whole answers remembered for the current version.
    pub fn answers(&self) -> &answers::Answers {
        &self.answers
    }

    /// Parts of answers that several questions share (the AI impact of a
    /// period, say), remembered for the current version.
    pub fn parts(&self) -> &answers::Answers {
        &self.parts
    }

    /// After a change: a new version, and no answer of an older one.
    fn changed(&self) {
        let version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        self.answers.invalidate(version);
        self.parts.invalidate(version);
    }

    /// A project's data, if the service holds any.
    pub fn get(&self, key: &str) -> Option<Arc<ProjectData>> {
        self.projects.get(key).map(|e| Arc::clone(e.value()))
    }

    /// Replaces a project's data whole.
    pub fn put(&self, key: &str, data: ProjectData) {
        self.projects.insert(key.to_owned(), Arc::new(data));
        self.changed();
    }

    /// Drops a project.
    pub fn remove(&self, key: &str) {
        if self.projects.remove(key).is_some() {
            self.changed();
        }
    }

    /// Drops every project not in `configured`, and says which; keeps all
    /// when `configured` is empty (every project the account sees).
    pub fn retain_projects(&self, configured: &[String]) -> Vec<String> {
        if configured.is_empty() {
            return Vec::new();
        }
        let mut dropped = Vec::new();
        self.projects.retain(|k, _| {
            let keep = configured.iter().any(|c| c == k);
            if !keep {
                dropped.push(k.clone());
            }
            keep
        });
        if !dropped.is_empty() {
            self.changed();
        }
        dropped.sort();
        dropped
    }

    /// Every project with its data, sorted by key.
    pub fn entries(&self) -> Vec<(String, Arc<ProjectData>)> {
        let mut entries: Vec<_> = self.projects.iter().map(|e| (e.key().clone(), Arc::clone(e.value()))).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// The project keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.projects.iter().map(|e| e.key().clone()).collect();
        keys.sort();
        keys
    }
}
