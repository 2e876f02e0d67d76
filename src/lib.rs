//! A read-only DORA metrics service for Jira.
//!
//! # Code map
//!
//! The modules follow the data, from Jira to the client:
//!
//! ```text
//! jira ──► harvest ──► definitions ──► domain ──► store ──► api
//! (HTTP)   (jobs)      (rhai hooks)    (pure)     (state)   (gRPC/HTTP)
//! ```
//!
//! - [`domain`]: pure logic. Facts, ISO weeks, weekly aggregates, period
//!   figures, DORA levels. No I/O, no tokio, no rhai, no tonic.
//!   *Invariant:* every number the API returns is computed here.
//! - [`definitions`]: the only module that builds a rhai `Engine`. Compiles
//!   the metric definitions once, runs them sandboxed as `domain::Hooks`.
//! - [`jira`]: the only module that speaks HTTP to Jira. Turns wire JSON into
//!   minimised `domain::facts`; drops everything else at the door.
//! - [`harvest`]: refresh jobs and their schedule: Jira → definitions →
//!   domain → store.
//! - [`recompute`]: new definitions without a restart: validation with a
//!   preview, activation (version, audit, swap) and the recompute of every
//!   project from the facts in memory. *Invariant:* never calls Jira.
//! - [`defs_watch`]: the definitions folder: atomic writes and the watcher
//!   that activates file edits. [`recompute`] and [`defs_watch`] sit beside
//!   `harvest`: they use the harvester's facts and definitions slot.
//! - [`store`]: the shared state (a `dashmap` of weekly aggregates per
//!   project) that the API reads and the harvester writes.
//! - [`api`]: the only module that knows tonic: handlers, conversions to
//!   protobuf, the mapping of errors to `tonic::Status`.
//! - [`config`]: typed configuration with complete validation.
//! - [`app`]: wiring, background tasks and shutdown order.
//! - [`fake_jira`] and [`demo`]: a Jira look-alike over real HTTP with a
//!   generated site; the demo default and the tests harvest it.

pub mod api;
pub mod app;
pub mod config;
pub mod definitions;
pub mod defs_watch;
pub mod demo;
pub mod domain;
pub mod fake_jira;
pub mod harvest;
pub mod jira;
pub mod recompute;
pub mod store;

/// Generated protobuf and gRPC code for `dora.v1`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("dora.v1");

    /// The encoded file descriptor set of `proto/` (for reflection and
    /// gateways).
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("dora_descriptor");
}
