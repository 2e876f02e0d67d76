//! Domain values to protobuf messages. Undefined figures stay absent.
//!
//! Pure conversions: must not depend on the store, the harvester's state or
//! any I/O.

use chrono::{DateTime, Utc};
use pbjson_types::Timestamp;

use crate::domain::period::{DurationSummary, FailedBy, Level, Period, PeriodFigures, Ratio};
use crate::harvest::{JobState, JobView};
use crate::proto;

pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

pub fn period(p: &Period, tz: chrono_tz::Tz) -> proto::Period {
    proto::Period {
        from_week: p.first.to_string(),
        to_week: p.last().to_string(),
        weeks: p.weeks,
        start: Some(timestamp(p.first.start(tz))),
        end: Some(timestamp(p.last().plus(1).start(tz))),
        partial: p.partial,
        report_tz: tz.name().to_owned(),
        from_month: p.months.map(|m| m.first.to_string()),
        to_month: p.months.map(|m| m.first.plus(m.count as i32 - 1).to_string()),
    }
}

fn level(l: Level) -> i32 {
    (match l {
        Level::Unknown => proto::Level::Unknown,
        Level::Low => proto::Level::Low,
        Level::Medium => proto::Level::Medium,
        Level::High => proto::Level::High,
        Level::Elite => proto::Level::Elite,
    }) as i32
}

pub fn durations(d: &DurationSummary) -> proto::DurationSummary {
    proto::DurationSummary {
        count: d.count,
        median_hours: d.median_hours,
        p75_hours: d.p75_hours,
        p90_hours: d.p90_hours,
    }
}

fn change_failure(r: &Ratio, by: &FailedBy) -> proto::ChangeFailure {
    proto::ChangeFailure {
        failed: r.part,
        deployments: r.whole,
        rate: r.rate(),
        failed_by_version: by.version,
        failed_by_time: by.time,
        failed_by_transition: by.transition,
    }
}

fn rework(r: &Ratio) -> proto::Rework {
    proto::Rework { rework: r.part, deployments: r.whole, rate: r.rate() }
}

pub fn figures(f: &PeriodFigures) -> proto::PeriodFigures {
    proto::PeriodFigures {
        deployments: f.deployments,
        deployments_per_week: f.deployments_per_week,
        deployment_days: f.deployment_days,
        lead_time: Some(durations(&f.lead_time)),
        change_failure: Some(change_failure(&f.change_failure, &f.failed_by)),
        rework: Some(rework(&f.rework)),
        time_to_restore: Some(durations(&f.time_to_restore)),
        incidents: f.incidents,
        open_incidents: f.open_incidents,
        completed: f.completed,
        excluded: f.excluded,
        reopened: f.reopened,
        reopen_rate: f.reopen_rate,
        ai_involved: f.ai_involved,
        ai_share: f.ai_share,
        levels: Some(proto::Levels {
            deployment_frequency: level(f.levels.deployment_frequency),
            lead_time: level(f.levels.lead_time),
            change_failure_rate: level(f.levels.change_failure_rate),
            time_to_restore: level(f.levels.time_to_restore),
        }),
    }
}

fn job_state(s: JobState) -> i32 {
    (match s {
        JobState::Queued => proto::JobState::Queued,
        JobState::Running => proto::JobState::Running,
        JobState::Succeeded => proto::JobState::Succeeded,
        JobState::Failed => proto::JobState::Failed,
    }) as i32
}

pub fn job(j: &JobView) -> proto::RefreshJob {
    proto::RefreshJob {
        job_id: j.id.clone(),
        state: job_state(j.state),
        full: j.full,
        projects: j
            .projects
            .iter()
            .map(|p| proto::ProjectProgress {
                project_key: p.key.clone(),
                state: job_state(p.state),
                issues_fetched: p.issues_fetched,
                pages: p.pages,
                retries: p.retries,
                error: p.error.clone().unwrap_or_default(),
                jira_requests: p.jira_requests,
                reconciled: p.reconciled,
            })
            .collect(),
        created: Some(timestamp(j.created)),
        started: j.started.map(timestamp),
        finished: j.finished.map(timestamp),
    }
}
