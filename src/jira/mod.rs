//! The only module that speaks HTTP to Jira.
//!
//! [`JiraClient`] reads statuses, versions, projects and issues with their
//! complete status changelogs, through Jira Cloud (`/rest/api/3`) or Data
//! Center (`/rest/api/2`), and turns the wire JSON into minimised
//! [`crate::domain::facts`] at the door: it asks Jira only for the fields the
//! metrics need, keeps only status items of changelogs, and reduces a
//! change's author to one bool. Nothing here persists anything.
//!
//! On Cloud, searches carry no changelog: status histories come from
//! `changelog/bulkfetch` filtered to the status field, so no other field's
//! changes (and their text) cross the network. Data Center has no such
//! endpoint; there searches expand whole changelogs and `wire` drops every
//! non-status item while parsing.
//!
//! Every request goes to the configured site only (no redirects), under one
//! concurrency cap per client, with a per-request timeout and retries that
//! honour `Retry-After`. Errors name the request (method and path) and the
//! problem, never a response body or a credential.
//!
//! Must not depend on `harvest`, `store`, `api`, `definitions` or `config`
//! (which depends on it); only on `domain::facts` and `telemetry`. The fake
//! Jira of the tests is another crate and must never be shared with it.

mod client;
pub mod convert;
mod permissions;
mod report;
mod settings;
pub mod wire;

pub use client::{JiraClient, base_url};
pub use convert::{ConvertError, ExtraField, FieldKind};
pub use permissions::BROWSE_PROJECTS;
pub use report::{Attempts, FetchCounters, JiraError, RequestName};
pub use settings::{CloudChangelogs, Flavor, JiraAuth, JiraConfig, SecretString};
