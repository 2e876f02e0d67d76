//! The shared state: each project's weekly aggregates and freshness, in a
//! `dashmap`. The harvester replaces a project's entry whole (one `Arc`
//! swap), so a reader sees either the old or the new figures, never a mix,
//! and readers never wait for a refresh.
//!
//! Holds counts and sketches only; the facts they came from live in the
//! harvester's memory and are never stored here.
//!
//! [`snapshot`] is the on-disk format of this state (pure encode/decode);
//! [`snapshot_dir`] writes and loads it crash-safely in the data directory.
//!
//! Must not depend on anything of the service but `domain`.

pub mod retention;
pub mod snapshot;
pub mod snapshot_dir;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use crate::domain::aggregate::ProjectAggregates;

/// One project's figures and where they come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectData {
    pub aggregates: ProjectAggregates,
    /// End of the last successful harvest.
    pub last_harvest: Option<DateTime<Utc>>,
    /// Version of the definitions the aggregates were computed with.
    pub definitions_version: String,
}

/// Every project's data.
#[derive(Debug, Default)]
pub struct Store {
    projects: DashMap<String, Arc<ProjectData>>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// A project's data, if the service holds any.
    pub fn get(&self, key: &str) -> Option<Arc<ProjectData>> {
        self.projects.get(key).map(|e| Arc::clone(e.value()))
    }

    /// Replaces a project's data whole.
    pub fn put(&self, key: &str, data: ProjectData) {
        self.projects.insert(key.to_owned(), Arc::new(data));
    }

    /// Drops a project.
    pub fn remove(&self, key: &str) {
        self.projects.remove(key);
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
