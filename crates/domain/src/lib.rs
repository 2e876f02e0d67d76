//! Pure logic: facts in, figures out. Nothing here does I/O, reads a clock,
//! or knows tokio, reqwest, tonic, rhai or dashmap; time is a parameter.

pub mod aggregate;
pub mod classify;
pub mod explain;
pub mod facts;
pub mod impact;
pub mod period;
pub mod sketch;
pub mod stats;
pub mod time;
pub mod verdict;
