//! `ExplainMetrics`' parts: the items behind one figure of a period
//! (`docs/metrics.md`, "What is behind a number"), listed by
//! `domain::explain` from the facts in memory and served a page at a time.
//! The handler (`service`) checks the request as `GetMetrics` does and
//! calls these.
//!
//! Nothing is stored or logged: issue keys and version names exist only in
//! the answer being built. A page token is bound to the request and to the
//! version of the data it was read from, so a list never mixes two
//! refreshes.
//!
//! Must not call Jira, must not depend on the handlers (`service`), and
//! must not build a `Status` itself (`status`).

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use chrono_tz::Tz;

use super::convert;
use super::status::{ExplainError, InvalidField};
use crate::definitions::DefinitionSet;
use crate::domain::aggregate::Attribution;
use crate::domain::explain::{DataQuality, Explained, Figure, Item, explain_project};
use crate::domain::facts::ProjectFacts;
use crate::domain::period::Period;
use crate::domain::time::utc;
use crate::proto;

/// Items per page when the request does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The most items per page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The page size a request asks for: 0 is the default.
pub fn page_size(asked: u32) -> Result<usize, InvalidField> {
    match asked {
        0 => Ok(DEFAULT_PAGE_SIZE as usize),
        n if n > MAX_PAGE_SIZE => Err(InvalidField::new("page_size", format!("at most {MAX_PAGE_SIZE}"))),
        n => Ok(n as usize),
    }
}

/// Where a page starts in the list of this request: the token's offset,
/// checked against the request now and, by [`PageStart::check_data`],
/// against the data once it is read.
#[derive(Debug, Clone, Copy)]
pub struct PageStart {
    request: u64,
    token: Option<PageToken>,
}

impl PageStart {
    pub fn new(
        keys: &[String],
        period: &Period,
        figure: Figure,
        team: Option<&str>,
        page_token: &str,
    ) -> Result<Self, InvalidField> {
        let request = request_fingerprint(keys, period, figure, team);
        let token = match page_token {
            "" => None,
            text => Some(PageToken::decode(text).filter(|t| t.request == request).ok_or_else(|| {
                InvalidField::new(
                    "page_token",
                    "not a page token of this request; leave it out to start at the first page",
                )
            })?),
        };
        Ok(Self { request, token })
    }

    /// A token read from another version of the data is refused.
    pub fn check_data(&self, version: u64) -> Result<(), ExplainError> {
        match self.token {
            Some(t) if t.version != version => Err(ExplainError::ListChanged),
            _ => Ok(()),
        }
    }
}

/// Lists the items of `figure` over `period` (of `team`, when given) from
/// each project's facts, merged in list order, off the async runtime
/// (classifying is CPU work).
pub async fn list(
    facts: Vec<Arc<ProjectFacts>>,
    definitions: Arc<DefinitionSet>,
    tz: Tz,
    period: Period,
    figure: Figure,
    team: Option<String>,
) -> Result<Explained, ExplainError> {
    tokio::task::spawn_blocking(move || {
        let mut all = Explained::default();
        for f in &facts {
            let one = explain_project(f, &*definitions, tz, &period, figure, team.as_deref()).map_err(|e| {
                tracing::warn!(hook = e.source.hook, "the definitions in force failed while listing a figure's items");
                ExplainError::Classify(e.project)
            })?;
            all.merge(one);
        }
        Ok(all)
    })
    .await
    .map_err(|_| ExplainError::Classify(String::from("(listing stopped)")))?
}

/// One page of a list as the response, with the token of the next page
/// (read from data `version`).
pub fn page(
    explained: &Explained,
    start: PageStart,
    page_size: usize,
    version: u64,
    base_url: &str,
) -> Result<proto::ExplainMetricsResponse, ExplainError> {
    let total = explained.items.len();
    let offset = start.token.map_or(0, |t| t.offset as usize);
    if offset > total {
        return Err(ExplainError::ListChanged);
    }
    let end = (offset + page_size).min(total);
    let items = explained.items[offset..end].iter().map(|item| explain_item(item, base_url)).collect();
    let next_page_token = if end < total {
        PageToken { offset: end as u64, version, request: start.request }.encode()
    } else {
        String::new()
    };
    Ok(proto::ExplainMetricsResponse {
        items,
        next_page_token,
        total: total as u64,
        data_quality: Some(data_quality(&explained.quality)),
    })
}

/// The figure a request names: `INVALID_ARGUMENT` for none.
pub fn figure(value: i32) -> Result<Figure, InvalidField> {
    Ok(match proto::Figure::try_from(value) {
        Ok(proto::Figure::Deployments) => Figure::Deployments,
        Ok(proto::Figure::LeadTime) => Figure::LeadTime,
        Ok(proto::Figure::TimeToRestore) => Figure::TimeToRestore,
        Ok(proto::Figure::Incidents) => Figure::Incidents,
        Ok(proto::Figure::OpenIncidents) => Figure::OpenIncidents,
        Ok(proto::Figure::Completed) => Figure::Completed,
        Ok(proto::Figure::Excluded) => Figure::Excluded,
        Ok(proto::Figure::Reopened) => Figure::Reopened,
        Ok(proto::Figure::AiInvolved) => Figure::AiInvolved,
        Ok(proto::Figure::Unspecified) | Err(_) => {
            return Err(InvalidField::new(
                "figure",
                "name the figure to list, e.g. FIGURE_DEPLOYMENTS or FIGURE_LEAD_TIME",
            ));
        }
    })
}

/// `{base_url}/browse/{key}`: the reader's browser opens it with the
/// reader's own Jira session.
fn browse_url(base_url: &str, key: &str) -> String {
    if key.is_empty() || base_url.is_empty() { String::new() } else { format!("{base_url}/browse/{key}") }
}

fn explain_item(item: &Item, base_url: &str) -> proto::ExplainItem {
    proto::ExplainItem {
        project_key: item.project.clone(),
        issue_key: item.issue_key.clone(),
        version_name: item.version_name.clone(),
        week: item.week.to_string(),
        start: item.start.map(|at| convert::timestamp(utc(at))),
        end: item.end.map(|at| convert::timestamp(utc(at))),
        hours: item.hours(),
        failed: item.failed,
        rework: item.rework,
        attributions: item
            .attributions
            .iter()
            .map(|(key, how)| proto::Attribution {
                issue_key: key.clone(),
                kind: attribution_kind(*how) as i32,
                url: browse_url(base_url, key),
            })
            .collect(),
        url: browse_url(base_url, &item.issue_key),
    }
}

fn attribution_kind(how: Attribution) -> proto::AttributionKind {
    match how {
        Attribution::ByVersion => proto::AttributionKind::ByVersion,
        Attribution::ByTime => proto::AttributionKind::ByTime,
        Attribution::ByTransition => proto::AttributionKind::ByTransition,
        Attribution::ReworkFix => proto::AttributionKind::ReworkFix,
    }
}

fn data_quality(q: &DataQuality) -> proto::DataQuality {
    proto::DataQuality {
        failures_by_version: q.failures_by_version,
        failures_by_time: q.failures_by_time,
        failures_unattributed: q.failures_unattributed,
        excluded: q.excluded,
        undated_versions: q.undated_versions,
    }
}

/// A fingerprint of what a list depends on besides the data: the projects,
/// the resolved period, the figure and the team, with a secret of this
/// process (so a token from before a restart, or made up, does not fit).
fn request_fingerprint(keys: &[String], period: &Period, figure: Figure, team: Option<&str>) -> u64 {
    static SECRET: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut h = SECRET.get_or_init(Default::default).build_hasher();
    keys.hash(&mut h);
    period.first.to_string().hash(&mut h);
    period.weeks.hash(&mut h);
    figure.hash(&mut h);
    team.hash(&mut h);
    h.finish()
}

/// Where the next page starts, in which list, read from which data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageToken {
    offset: u64,
    version: u64,
    request: u64,
}

impl PageToken {
    fn encode(&self) -> String {
        format!("{:x}.{:x}.{:016x}", self.offset, self.version, self.request)
    }

    fn decode(token: &str) -> Option<Self> {
        if token.len() > 64 {
            return None;
        }
        let mut parts = token.split('.');
        let mut next = || u64::from_str_radix(parts.next()?, 16).ok();
        let t = PageToken { offset: next()?, version: next()?, request: next()? };
        parts.next().is_none().then_some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_reads_back_and_anything_else_is_refused() {
        let t = PageToken { offset: 200, version: 7, request: u64::MAX - 3 };
        assert_eq!(PageToken::decode(&t.encode()), Some(t));
        for bad in ["", "zz", "1.2", "1.2.3.4", "1.2.x", &"f".repeat(65)] {
            assert_eq!(PageToken::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_figure_but_none_can_be_listed() {
        assert!(figure(proto::Figure::Unspecified as i32).is_err());
        assert!(figure(99).is_err());
        assert_eq!(figure(proto::Figure::LeadTime as i32).unwrap(), Figure::LeadTime);
    }
}
