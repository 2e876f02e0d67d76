//! The facts memory: per project, the minimised facts of its last harvest,
//! the watermark they reach and when they were last reconciled with the
//! project's current issues, and one lock per project so that a harvest
//! and a recompute of the same project never interleave.
//!
//! A project's facts are shared as an `Arc`, so a recompute or a preview
//! never copies them; an incremental refresh builds the project's few
//! arrays anew from them and the changed issues
//! (`ProjectFacts::merged`). They never leave memory: a snapshot keeps the watermarks as records
//! only, and a restored watermark without its facts does not make the next
//! refresh incremental.
//!
//! After a refresh, [`release_free_pages`] hands back to the system the
//! pages its transient buffers (wire pages, changelog chunks, replaced
//! facts) left free among the facts kept.
//!
//! Must not depend on Jira, the store or the jobs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::domain::facts::{Millis, ProjectFacts};

/// What is remembered of one project.
struct Remembered {
    facts: Arc<ProjectFacts>,
    /// The latest `updated` of the harvested issues.
    watermark: Option<Millis>,
    /// When the refresh began that last made the facts hold exactly the
    /// project's issues (a full harvest, or a reconciliation of deletions
    /// and moves).
    reconciled: DateTime<Utc>,
}

/// The facts of every harvested project, in memory only.
#[derive(Default)]
pub struct FactsMemory {
    projects: Mutex<HashMap<String, Remembered>>,
    /// Watermarks restored from a snapshot (records only).
    restored_watermarks: Mutex<BTreeMap<String, Millis>>,
    /// One harvest or recompute per project at a time.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl FactsMemory {
    /// The projects whose facts are in memory, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.projects.lock().expect("memory lock").keys().cloned().collect();
        keys.sort();
        keys
    }

    /// A project's facts.
    pub fn facts(&self, key: &str) -> Option<Arc<ProjectFacts>> {
        self.projects.lock().expect("memory lock").get(key).map(|m| Arc::clone(&m.facts))
    }

    /// A project's facts with their watermark.
    pub fn get(&self, key: &str) -> Option<(Arc<ProjectFacts>, Option<Millis>)> {
        self.projects.lock().expect("memory lock").get(key).map(|m| (Arc::clone(&m.facts), m.watermark))
    }

    /// When a project's facts were last reconciled with its issues.
    pub fn reconciled(&self, key: &str) -> Option<DateTime<Utc>> {
        self.projects.lock().expect("memory lock").get(key).map(|m| m.reconciled)
    }

    /// Remembers a project's facts, replacing what was there.
    pub fn put(&self, key: &str, facts: Arc<ProjectFacts>, watermark: Option<Millis>, reconciled: DateTime<Utc>) {
        self.projects.lock().expect("memory lock").insert(key.to_owned(), Remembered { facts, watermark, reconciled });
    }

    /// Forgets every project for which `keep` is false.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.projects.lock().expect("memory lock").retain(|k, _| keep(k));
    }

    /// The watermarks for a snapshot: the restored ones, overridden by those
    /// of the facts in memory.
    pub fn watermarks(&self) -> BTreeMap<String, Millis> {
        let mut watermarks = self.restored_watermarks.lock().expect("watermarks lock").clone();
        for (key, m) in self.projects.lock().expect("memory lock").iter() {
            if let Some(w) = m.watermark {
                watermarks.insert(key.clone(), w);
            }
        }
        watermarks
    }

    /// Takes back the watermarks of a snapshot.
    pub fn restore_watermarks(&self, watermarks: BTreeMap<String, Millis>) {
        *self.restored_watermarks.lock().expect("watermarks lock") = watermarks;
    }

    /// The lock a harvest or a recompute of `key` holds.
    pub fn lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(self.locks.lock().expect("locks").entry(key.to_owned()).or_default())
    }
}

/// Returns the allocator's free pages to the system. glibc keeps freed
/// memory inside its heaps (between the facts a refresh keeps and the
/// buffers it let go of), where the process's RSS still counts it;
/// `malloc_trim` releases every whole free page. Elsewhere a no-op.
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's own function, with no pointer argument; it takes
        // the allocator's locks itself and only touches free chunks.
        unsafe {
            malloc_trim(0);
        }
    }
}
