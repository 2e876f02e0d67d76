//! Recent answers, remembered for the store version they were computed
//! from: the bytes of a question (an encoded request, say) to the bytes of
//! its answer. Dashboards poll the same questions; between two refreshes
//! the answer cannot change, so it is computed once.
//!
//! Bounded in memory: keys and values count against a byte budget and the
//! oldest entries go first. Every change of the store (a refresh, a
//! recompute under new definitions, a dropped project) moves its version
//! and empties the cache, so an answer is never served for data it was not
//! computed from. Knows nothing of what the bytes mean.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;

/// What one remembered answer costs beyond its bytes (map and queue slots).
const ENTRY_OVERHEAD: usize = 64;

/// Hits and misses since the start, and the bytes held now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnswerStats {
    pub hits: u64,
    pub misses: u64,
    pub bytes: usize,
}

impl AnswerStats {
    /// Hits per lookup; 0 before the first lookup.
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 { 0.0 } else { self.hits as f64 / lookups as f64 }
    }
}

#[derive(Debug, Default)]
struct Held {
    /// The store version the entries belong to.
    version: u64,
    map: HashMap<Bytes, Bytes>,
    /// Insertion order, oldest first, for eviction.
    order: VecDeque<Bytes>,
    bytes: usize,
}

impl Held {
    fn clear(&mut self, version: u64) {
        self.version = version;
        self.map.clear();
        self.order.clear();
        self.bytes = 0;
    }
}

/// A bounded map from question bytes to answer bytes for one store version.
#[derive(Debug)]
pub struct Answers {
    budget: usize,
    held: Mutex<Held>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// `Held::bytes`, readable without the lock.
    bytes: AtomicUsize,
}

impl Answers {
    /// A cache holding at most `budget` bytes; 0 turns it off.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            held: Mutex::new(Held::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bytes: AtomicUsize::new(0),
        }
    }

    /// Whether anything can be remembered at all.
    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // The map stays consistent even if a holder panicked.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer remembered for `question` at `version`.
    pub fn get(&self, version: u64, question: &[u8]) -> Option<Bytes> {
        let found = self.get_uncounted(version, question);
        if self.enabled() {
            let counter = if found.is_some() { &self.hits } else { &self.misses };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// As `get`, not counted among hits and misses: for another form of an
    /// answer just counted (its compressed bytes, say).
    pub fn get_uncounted(&self, version: u64, question: &[u8]) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        let held = self.held();
        if held.version == version { held.map.get(question).cloned() } else { None }
    }

    /// Remembers `answer` for `question` at `version`; dropped when the
    /// store has moved on since, or when the answer alone exceeds the
    /// budget. Evicts the oldest answers to make room.
    pub fn put(&self, version: u64, question: Bytes, answer: Bytes) {
        let cost = question.len() + answer.len() + ENTRY_OVERHEAD;
        if cost > self.budget {
            return;
        }
        let mut held = self.held();
        if version < held.version {
            return;
        }
        if version > held.version {
            held.clear(version);
        }
        if !held.map.contains_key(&question) {
            while held.bytes + cost > self.budget {
                let Some(oldest) = held.order.pop_front() else { break };
                if let Some(answer) = held.map.remove(&oldest) {
                    held.bytes -= oldest.len() + answer.len() + ENTRY_OVERHEAD;
                }
            }
            held.bytes += cost;
            held.order.push_back(question.clone());
            held.map.insert(question, answer);
        }
        self.bytes.store(held.bytes, Ordering::Relaxed);
    }

    /// Forgets everything: the store moved to `version`.
    pub fn invalidate(&self, version: u64) {
        let mut held = self.held();
        if version > held.version {
            held.clear(version);
            self.bytes.store(0, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> AnswerStats {
        AnswerStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn an_answer_is_served_only_for_its_version() {
        let cache = Answers::new(1 << 20);
        cache.put(1, b("q"), b("a1"));
        assert_eq!(cache.get(1, b"q"), Some(b("a1")));
        assert_eq!(cache.get(2, b"q"), None, "a newer store version never sees an older answer");
        cache.invalidate(2);
        assert_eq!(cache.get(1, b"q"), None, "invalidated");
        // An answer computed from an older version arriving late is dropped.
        cache.put(1, b("q"), b("stale"));
        assert_eq!(cache.get(2, b"q"), None);
        assert_eq!(cache.stats(), AnswerStats { hits: 1, misses: 3, bytes: 0 });
    }

    #[test]
    fn the_budget_bounds_memory_and_the_oldest_answers_go_first() {
        let per = 1 + 10 + ENTRY_OVERHEAD;
        let cache = Answers::new(3 * per);
        for q in ["a", "b", "c", "d"] {
            cache.put(7, b(q), Bytes::from(vec![0u8; 10]));
        }
        assert_eq!(cache.stats().bytes, 3 * per);
        assert_eq!(cache.get(7, b"a"), None, "the oldest was evicted");
        assert!(["b", "c", "d"].iter().all(|q| cache.get(7, q.as_bytes()).is_some()));
        cache.put(7, b("huge"), Bytes::from(vec![0u8; 4 * per]));
        assert_eq!(cache.get(7, b"huge"), None, "an answer larger than the budget is not kept");
        let off = Answers::new(0);
        off.put(1, b("q"), b("a"));
        assert_eq!((off.get(1, b"q"), off.stats().misses), (None, 0));
    }
}
