//! Harvesting: Jira → definitions → domain → store, and everything that
//! keeps the figures current without a restart.
//!
//! ```text
//! schedule ─► refresh ◄─ recompute ◄─ watch      persistence
//!               │  │         │          │             │
//!               │  └─► jobs  └─► in_force ◄┘          └─► refresh (records)
//!               └────► memory ◄──┘    └─► folder ◄── watch
//! ```
//!
//! - [`refresh`]: the [`Harvester`]: starts jobs, harvests projects,
//!   classifies and aggregates them, swaps their figures in the store.
//! - [`jobs`]: the job registry, the progress clients see, and its mapping
//!   to snapshot records.
//! - [`memory`]: the facts of each harvested project (shared, never
//!   copied per issue), watermarks, and one lock per project.
//! - [`in_force`]: the one owner of the definitions in force: the set, its
//!   numbering, the audit and the activation lock.
//! - [`recompute`]: validation with a preview, activation, and the
//!   recompute of every project from memory. Never calls Jira.
//! - [`watch`] and [`folder`]: the definitions folder on disk, its atomic
//!   writes and the watcher that activates edits.
//! - [`schedule`]: periodic and nightly refreshes.
//! - [`persistence`]: snapshots of the store and of the harvest's records,
//!   restored before serving and written after changes.
//!
//! *Invariant:* no submodule imports this one or one that imports it back;
//! the arrows above are the only imports between them. Nothing here knows
//! tonic or HTTP serving (`api`).

pub mod folder;
pub mod in_force;
pub mod jobs;
pub mod memory;
pub mod persistence;
pub mod recompute;
pub mod refresh;
pub mod schedule;
pub mod watch;

pub use in_force::{ActivateError, DefinitionAudit, DefinitionsInForce, Origin};
pub use jobs::{JobState, JobView, ProjectProgress};
pub use persistence::Persistence;
pub use recompute::{ProjectPreview, Validation};
pub use refresh::{HarvestError, HarvestPermit, Harvester, StartError, fetch_project};
