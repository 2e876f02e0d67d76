//! What is behind a number (`docs/metrics.md`, "What is behind a number"):
//! the items a period's figure counts, one by one, from the facts.
//!
//! The items come from the same pass that builds the weekly aggregates
//! ([`aggregate::project_items`]), listed instead of added up, so a list
//! and its figure cannot disagree: as many deployment items as
//! `deployments`, as many lead-time items as `lead_time.count`, and so on.
//! Items name issues by key and versions by name; they live only as long
//! as the answer being built (nothing here is stored).
//!
//! Pure: must not depend on anything but the other domain modules.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::aggregate::{Attribution, ClassifyError, CompletedWork, Deployment, ItemSink, Source, project_items};
use super::classify::{Hooks, IssueClass};
use super::facts::{IssueFacts, Millis, ProjectFacts, VersionFacts};
use super::period::Period;
use super::time::IsoWeek;

/// A figure whose items can be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Figure {
    /// Each deployment, with its failed and rework flags and their causes.
    Deployments,
    /// Each completed work item with its lead time.
    LeadTime,
    /// Each restored incident with its time to restore.
    TimeToRestore,
    /// Each incident, in its creation week.
    Incidents,
    /// Each incident open now, in its creation week.
    OpenIncidents,
    /// Each completed work item, in its completion week.
    Completed,
    /// Each excluded issue completed, in its completion week.
    Excluded,
    /// Each re-opened completed work item.
    Reopened,
    /// Each AI-involved completed work item.
    AiInvolved,
}

/// One item behind a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub project: String,
    /// The issue's key; empty for a version deployment.
    pub issue_key: String,
    /// The version's name; empty unless a version deployment.
    pub version_name: String,
    /// The week the item counts in.
    pub week: IsoWeek,
    /// Work start (lead time), creation (incidents); absent for deployments.
    pub start: Option<Millis>,
    /// Completion, restore, the deployment transition's instant, or the
    /// start (midnight UTC) of a version's release date.
    pub end: Option<Millis>,
    /// The duration a summary counts (lead time, time to restore), in ms.
    pub duration: Option<Millis>,
    /// Deployments only: at least one failure was attributed to it.
    pub failed: bool,
    /// Version deployments only: it shipped a fix.
    pub rework: bool,
    /// Deployments only: the issues that made it failed or rework, and how,
    /// ordered by key then way.
    pub attributions: Vec<(String, Attribution)>,
}

impl Item {
    /// The duration in hours.
    pub fn hours(&self) -> Option<f64> {
        self.duration.map(|ms| ms as f64 / 3_600_000.0)
    }

    /// The name items are ordered by within a week: the key or the
    /// version's name.
    pub fn name(&self) -> &str {
        if self.issue_key.is_empty() { &self.version_name } else { &self.issue_key }
    }

    /// The order of a list: week, then key or version name (keys by project
    /// then number), then instant.
    pub fn order(a: &Item, b: &Item) -> Ordering {
        a.week
            .cmp(&b.week)
            .then_with(|| natural(a.name(), b.name()))
            .then_with(|| a.end.cmp(&b.end))
            .then_with(|| a.project.cmp(&b.project))
    }
}

/// Compares issue keys as project then number (`PAY-9` before `PAY-10`),
/// anything else as text.
fn natural(a: &str, b: &str) -> Ordering {
    fn split(s: &str) -> Option<(&str, u64)> {
        let (project, number) = s.rsplit_once('-')?;
        Some((project, number.parse().ok()?))
    }
    match (split(a), split(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// How much to trust a period's figures: how its failures were attributed,
/// how many items the definitions excluded, and how many versions could not
/// be placed on a day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataQuality {
    /// Failures created in the period attributed by affected version …
    pub failures_by_version: u64,
    /// … by time …
    pub failures_by_time: u64,
    /// … or to no deployment at all.
    pub failures_unattributed: u64,
    /// Excluded issues completed in the period (the `excluded` figure).
    pub excluded: u64,
    /// Versions released (or deployments by the definitions) without a
    /// release date, whatever the period: they count nowhere.
    pub undated_versions: u64,
}

impl DataQuality {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &DataQuality) {
        self.failures_by_version += other.failures_by_version;
        self.failures_by_time += other.failures_by_time;
        self.failures_unattributed += other.failures_unattributed;
        self.excluded += other.excluded;
        self.undated_versions += other.undated_versions;
    }
}

/// The items of one figure over a period, with the period's data quality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Explained {
    /// In list order ([`Item::order`]).
    pub items: Vec<Item>,
    pub quality: DataQuality,
}

impl Explained {
    /// Adds another project's items and quality, keeping list order.
    pub fn merge(&mut self, other: Explained) {
        self.items.extend(other.items);
        self.items.sort_by(Item::order);
        self.quality.merge(&other.quality);
    }
}

/// Lists the items of `figure` of one project over `period`, under the
/// given hooks, from the same pass that builds its aggregates, with the
/// period's data quality; with a `team`, only the items that belong to it
/// (`docs/metrics.md`, "Teams"; versions without a release date are
/// counted for the whole project still).
pub fn explain_project<H: Hooks>(
    facts: &ProjectFacts,
    hooks: &H,
    tz: Tz,
    period: &Period,
    figure: Figure,
    team: Option<&str>,
) -> Result<Explained, ClassifyError> {
    let mut lister = Lister {
        project: &facts.key,
        tz,
        first: period.first,
        last: period.last(),
        figure,
        team,
        team_failures: HashSet::new(),
        out: Explained::default(),
    };
    project_items(facts, hooks, tz, &mut lister)?;
    lister.out.items.sort_by(Item::order);
    Ok(lister.out)
}

/// Collects the items of one figure inside a period.
struct Lister<'p> {
    project: &'p str,
    tz: Tz,
    first: IsoWeek,
    last: IsoWeek,
    figure: Figure,
    team: Option<&'p str>,
    /// With a team: the failures that belong to it (by address).
    team_failures: HashSet<*const IssueFacts>,
    out: Explained,
}

impl Lister<'_> {
    /// Whether an item of these teams is listed.
    fn keeps(&self, teams: &[Arc<str>]) -> bool {
        self.team.is_none_or(|team| teams.iter().any(|t| &**t == team))
    }

    fn inside(&self, week: IsoWeek) -> bool {
        (self.first..=self.last).contains(&week)
    }

    fn week_of(&self, at: Millis) -> IsoWeek {
        IsoWeek::of_instant(at, self.tz)
    }

    fn issue_item(&self, issue: &IssueFacts, week: IsoWeek) -> Item {
        Item {
            project: self.project.to_owned(),
            issue_key: issue.key().to_owned(),
            version_name: String::new(),
            week,
            start: None,
            end: None,
            duration: None,
            failed: false,
            rework: false,
            attributions: Vec::new(),
        }
    }

    fn push(&mut self, figure: Figure, item: impl FnOnce(&Self) -> Item) {
        if self.figure == figure {
            let item = item(self);
            self.out.items.push(item);
        }
    }
}

impl<'f> ItemSink<'f> for Lister<'_> {
    fn classified(&mut self, issue: &'f IssueFacts, class: &IssueClass) {
        if self.team.is_some() && class.failure && self.keeps(&class.teams) {
            self.team_failures.insert(issue);
        }
    }

    fn excluded(&mut self, issue: &'f IssueFacts, class: &IssueClass, completed_at: Option<Millis>) {
        let Some(at) = completed_at.filter(|_| self.keeps(&class.teams)) else { return };
        let week = self.week_of(at);
        if !self.inside(week) {
            return;
        }
        self.out.quality.excluded += 1;
        self.push(Figure::Excluded, |l| Item { end: Some(at), ..l.issue_item(issue, week) });
    }

    fn incident(&mut self, issue: &'f IssueFacts, class: &IssueClass, restored_at: Option<Millis>) {
        if !self.keeps(&class.teams) {
            return;
        }
        let created_week = self.week_of(issue.created);
        if self.inside(created_week) {
            let item =
                |l: &Self| Item { start: Some(issue.created), end: restored_at, ..l.issue_item(issue, created_week) };
            self.push(Figure::Incidents, item);
            if restored_at.is_none() {
                self.push(Figure::OpenIncidents, item);
            }
        }
        if let Some(at) = restored_at {
            let week = self.week_of(at);
            if self.inside(week) {
                self.push(Figure::TimeToRestore, |l| Item {
                    start: Some(issue.created),
                    end: Some(at),
                    duration: Some(at - issue.created),
                    ..l.issue_item(issue, week)
                });
            }
        }
    }

    fn completed(&mut self, issue: &'f IssueFacts, class: &IssueClass, work: &CompletedWork) {
        let week = self.week_of(work.done);
        if !self.inside(week) || !self.keeps(&class.teams) {
            return;
        }
        let item = |l: &Self| Item {
            start: Some(work.start),
            end: Some(work.done),
            duration: Some(work.lead),
            ..l.issue_item(issue, week)
        };
        self.push(Figure::Completed, item);
        self.push(Figure::LeadTime, item);
        if work.reopened {
            self.push(Figure::Reopened, item);
        }
        if class.ai_involved {
            self.push(Figure::AiInvolved, item);
        }
    }

    fn failure(&mut self, issue: &'f IssueFacts, attributed: Option<Attribution>) {
        let of_team = self.team.is_none() || self.team_failures.contains(&(issue as *const IssueFacts));
        if !self.inside(self.week_of(issue.created)) || !of_team {
            return;
        }
        let q = &mut self.out.quality;
        match attributed {
            Some(Attribution::ByVersion) => q.failures_by_version += 1,
            Some(Attribution::ByTime) => q.failures_by_time += 1,
            Some(_) | None => q.failures_unattributed += 1,
        }
    }

    fn undated_version(&mut self, _: &'f VersionFacts) {
        self.out.quality.undated_versions += 1;
    }

    fn deployment(&mut self, d: &Deployment<'f>) {
        let week = d.week();
        if !self.inside(week) || !self.keeps(&d.teams) {
            return;
        }
        self.push(Figure::Deployments, |l| {
            let (issue_key, version_name, end) = match d.source {
                Source::Version(v) => {
                    let midnight = Utc.from_utc_datetime(&d.day.and_time(NaiveTime::MIN)).timestamp_millis();
                    (String::new(), v.name.clone(), midnight)
                }
                Source::Transition(issue, at) => (issue.key().to_owned(), String::new(), at),
            };
            let mut attributions: Vec<(String, Attribution)> =
                d.causes.iter().map(|&(issue, how)| (issue.key().to_owned(), how)).collect();
            attributions.sort_by(|a, b| natural(&a.0, &b.0).then(a.1.cmp(&b.1)));
            Item {
                project: l.project.to_owned(),
                issue_key,
                version_name,
                week,
                start: None,
                end: Some(end),
                duration: None,
                failed: d.failed(),
                rework: d.rework,
                attributions,
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_project_then_number() {
        let mut keys = vec!["PAY-10", "OPS-2", "PAY-9", "1.10", "1.9"];
        keys.sort_by(|a, b| natural(a, b));
        assert_eq!(keys, ["1.10", "1.9", "OPS-2", "PAY-9", "PAY-10"]);
    }
}
