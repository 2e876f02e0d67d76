//! The refresh schedule: an incremental refresh every interval, a full one
//! each night at a set hour of the reporting time zone.
//!
//! Must not depend on anything but starting jobs (`refresh`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;
use tracing::warn;

use super::refresh::Harvester;

impl Harvester {
    /// Runs the schedule until `shutdown` fires: an incremental refresh every
    /// `interval`, a full one each night at `full_hour` (reporting zone).
    pub async fn schedule(
        self: Arc<Self>,
        interval: Option<Duration>,
        full_hour: Option<u32>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut next_full = full_hour.map(|h| next_hour(Utc::now(), h, self.tz()));
        loop {
            let wait_incremental = interval.unwrap_or(Duration::from_secs(3600 * 24 * 365));
            let wait_full =
                next_full.map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO)).unwrap_or(Duration::MAX);
            let (wait, full) =
                if wait_full <= wait_incremental { (wait_full, true) } else { (wait_incremental, false) };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            if full {
                next_full = full_hour.map(|h| next_hour(Utc::now() + chrono::Duration::minutes(1), h, self.tz()));
            } else if interval.is_none() {
                continue;
            }
            if let Err(e) = self.start(Vec::new(), full).await {
                warn!(error = %e, full, "scheduled refresh not started");
            }
        }
    }
}

/// The next time after `now` when the clock in `tz` shows `hour`:00.
fn next_hour(now: DateTime<Utc>, hour: u32, tz: Tz) -> DateTime<Utc> {
    let local = now.with_timezone(&tz);
    let mut day = local.date_naive();
    if local.hour() >= hour {
        day = day.succ_opt().unwrap_or(day);
    }
    for d in 0..3 {
        let date = day + chrono::Duration::days(d);
        if let Some(t) = date.and_hms_opt(hour, 0, 0).and_then(|n| n.and_local_timezone(tz).earliest()) {
            return t.with_timezone(&Utc);
        }
    }
    now + chrono::Duration::days(1)
}
