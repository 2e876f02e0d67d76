//! The command-line client: `refresh`, `metrics` and `explain` talk to a
//! running service over gRPC, with the same credentials as any client.
//!
//! Only this module and `main` print to the terminal.
//!
//! Must not depend on the service's internals: it speaks only the `proto` API
//! over a connection, like any client.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::proto::dora_metrics_client::DoraMetricsClient;
use crate::proto::{
    AttributionKind, ExplainItem, ExplainMetricsRequest, ExplainMetricsResponse, Figure, GetMetricsRequest,
    GetMetricsResponse, JobState, Level, PeriodFigures, RefreshJob, RefreshRequest, WatchRefreshRequest,
};

/// Where and how to reach the service.
pub struct Target {
    /// `http://127.0.0.1:50051`.
    pub addr: String,
    /// API key sent as `authorization: Bearer <key>`.
    pub api_key: Option<String>,
}

impl Target {
    async fn client(&self) -> anyhow::Result<DoraMetricsClient<Channel>> {
        let channel = Channel::from_shared(self.addr.clone())
            .context("the service address is not a URL like http://127.0.0.1:50051")?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot reach the service at {}", self.addr))?;
        Ok(DoraMetricsClient::new(channel))
    }

    fn request<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        if let Some(key) = &self.api_key {
            let value: MetadataValue<_> =
                format!("Bearer {key}").parse().context("the API key has characters a header cannot carry")?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}

/// `refresh`: starts a job; with `watch`, follows it with a progress bar per
/// project. Fails when the job fails.
pub async fn refresh(target: &Target, projects: Vec<String>, full: bool, watch: bool) -> anyhow::Result<()> {
    let mut client = target.client().await?;
    let job_id = client
        .refresh(target.request(RefreshRequest { project_keys: projects, full })?)
        .await
        .map_err(status_error)?
        .into_inner()
        .job_id;
    if !watch {
        println!("{job_id}");
        return Ok(());
    }
    let mut stream = client
        .watch_refresh(target.request(WatchRefreshRequest { job_id: job_id.clone() })?)
        .await
        .map_err(status_error)?
        .into_inner();
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:<12} {wide_msg}").expect("valid template");
    let mut by_project: HashMap<String, ProgressBar> = HashMap::new();
    let mut last: Option<RefreshJob> = None;
    while let Some(update) = stream.message().await.map_err(status_error)? {
        let Some(job) = update.job else { continue };
        for p in &job.projects {
            let bar = by_project.entry(p.project_key.clone()).or_insert_with(|| {
                let b =
                    bars.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(p.project_key.clone()));
                b.enable_steady_tick(Duration::from_millis(120));
                b
            });
            let state = state_name(p.state);
            let requests = p.jira_requests.map_or_else(String::new, |n| format!(", {n} Jira requests"));
            bar.set_message(format!(
                "{state}: {} issues, {} pages{requests}, {} retries {}",
                p.issues_fetched, p.pages, p.retries, p.error
            ));
            if matches!(JobState::try_from(p.state), Ok(JobState::Succeeded | JobState::Failed)) {
                bar.finish();
            }
        }
        last = Some(job);
    }
    let Some(job) = last else { bail!("the service ended the stream without news of job {job_id}") };
    match JobState::try_from(job.state) {
        Ok(JobState::Succeeded) => {
            println!("job {job_id} succeeded");
            Ok(())
        }
        _ => {
            let failed: Vec<String> = job
                .projects
                .iter()
                .filter(|p| !p.error.is_empty())
                .map(|p| format!("{}: {}", p.project_key, p.error))
                .collect();
            bail!("job {job_id} {}: {}", state_name(job.state), failed.join("; "))
        }
    }
}

fn state_name(state: i32) -> &'static str {
    match JobState::try_from(state) {
        Ok(JobState::Queued) => "queued",
        Ok(JobState::Running) => "running",
        Ok(JobState::Succeeded) => "succeeded",
        Ok(JobState::Failed) => "failed",
        _ => "unknown",
    }
}

/// The period `metrics` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The last N complete weeks.
    Weeks(u32),
    /// The last N complete months.
    Months(u32),
}

/// `metrics`: the four keys with their levels, as a table or JSON; of one
/// team within the projects when `team` is given.
pub async fn metrics(
    target: &Target,
    projects: Vec<String>,
    team: Option<String>,
    period: Period,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = target.client().await?;
    let shown_team = team.as_deref().map(|t| t.trim().to_owned());
    let request = match period {
        Period::Weeks(weeks) => GetMetricsRequest { project_keys: projects, weeks, team, ..Default::default() },
        Period::Months(months) => GetMetricsRequest { project_keys: projects, months, team, ..Default::default() },
    };
    let response = client.get_metrics(target.request(request)?).await.map_err(status_error)?.into_inner();
    if json {
        let mut summary = summary_json(&response);
        if let Some(team) = shown_team {
            summary["team"] = team.into();
        }
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        if let Some(team) = shown_team {
            println!("team {team} (team figures need not add up to the projects')");
        }
        print!("{}", table(&response));
    }
    Ok(())
}

fn level_name(level: i32) -> &'static str {
    match Level::try_from(level) {
        Ok(Level::Elite) => "elite",
        Ok(Level::High) => "high",
        Ok(Level::Medium) => "medium",
        Ok(Level::Low) => "low",
        _ => "unknown",
    }
}

/// The four keys of a figure set: (name, value text, level).
fn keys(f: &PeriodFigures) -> [(&'static str, String, &'static str); 4] {
    let levels = f.levels.unwrap_or_default();
    let hours = |h: Option<f64>| h.map_or_else(|| "—".to_owned(), |h| format!("{h:.1} h"));
    let lead = f.lead_time.as_ref().and_then(|d| d.median_hours);
    let restore = f.time_to_restore.as_ref().and_then(|d| d.median_hours);
    let cfr = f.change_failure.as_ref().and_then(|c| c.rate);
    [
        (
            "deployment frequency",
            format!("{:.2}/week ({} days)", f.deployments_per_week, f.deployment_days),
            level_name(levels.deployment_frequency),
        ),
        ("lead time (median)", hours(lead), level_name(levels.lead_time)),
        (
            "change failure rate",
            cfr.map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0)),
            level_name(levels.change_failure_rate),
        ),
        ("time to restore (median)", hours(restore), level_name(levels.time_to_restore)),
    ]
}

/// The table printed by `metrics`.
pub fn table(r: &GetMetricsResponse) -> String {
    let mut out = String::new();
    if let Some(p) = &r.period {
        match (&p.from_month, &p.to_month) {
            (Some(from), Some(to)) => out.push_str(&format!(
                "{from} to {to} ({} to {}, {} weeks, {})\n",
                p.from_week, p.to_week, p.weeks, p.report_tz
            )),
            _ => out.push_str(&format!("{} to {} ({} weeks, {})\n", p.from_week, p.to_week, p.weeks, p.report_tz)),
        }
    }
    let mut rows: Vec<(String, &PeriodFigures)> =
        r.projects.iter().filter_map(|p| Some((p.project_key.clone(), p.figures.as_ref()?))).collect();
    if let Some(c) = r.combined.as_ref().filter(|_| r.projects.len() > 1) {
        rows.push(("combined".into(), c));
    }
    for (name, f) in rows {
        out.push_str(&format!("\n{name}\n"));
        for (key, value, level) in keys(f) {
            out.push_str(&format!("  {key:<26} {value:<22} {level}\n"));
        }
    }
    out
}

fn summary_json(r: &GetMetricsResponse) -> serde_json::Value {
    let figures = |f: &PeriodFigures| {
        let levels = f.levels.unwrap_or_default();
        serde_json::json!({
            "deployments_per_week": f.deployments_per_week,
            "deployment_days": f.deployment_days,
            "lead_time_median_hours": f.lead_time.as_ref().and_then(|d| d.median_hours),
            "change_failure_rate": f.change_failure.as_ref().and_then(|c| c.rate),
            "time_to_restore_median_hours": f.time_to_restore.as_ref().and_then(|d| d.median_hours),
            "levels": {
                "deployment_frequency": level_name(levels.deployment_frequency),
                "lead_time": level_name(levels.lead_time),
                "change_failure_rate": level_name(levels.change_failure_rate),
                "time_to_restore": level_name(levels.time_to_restore),
            },
        })
    };
    serde_json::json!({
        "period": r.period.as_ref().map(|p| serde_json::json!({
            "from_week": p.from_week, "to_week": p.to_week, "weeks": p.weeks,
            "from_month": p.from_month, "to_month": p.to_month,
        })),
        "projects": r
            .projects
            .iter()
            .map(|p| (p.project_key.clone(), p.figures.as_ref().map_or(serde_json::Value::Null, figures)))
            .collect::<serde_json::Map<_, _>>(),
        "combined": r.combined.as_ref().map(figures),
    })
}

/// The figures `explain` lists, by their command-line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FigureName {
    Deployments,
    LeadTime,
    TimeToRestore,
    Incidents,
    OpenIncidents,
    Completed,
    Excluded,
    Reopened,
    AiInvolved,
}

impl FigureName {
    fn figure(self) -> Figure {
        match self {
            Self::Deployments => Figure::Deployments,
            Self::LeadTime => Figure::LeadTime,
            Self::TimeToRestore => Figure::TimeToRestore,
            Self::Incidents => Figure::Incidents,
            Self::OpenIncidents => Figure::OpenIncidents,
            Self::Completed => Figure::Completed,
            Self::Excluded => Figure::Excluded,
            Self::Reopened => Figure::Reopened,
            Self::AiInvolved => Figure::AiInvolved,
        }
    }
}

/// `explain`: the items behind one figure (of one team, when given), every
/// page, as a table with the data-quality line, or as the JSON of one
/// response holding them all.
pub async fn explain(
    target: &Target,
    projects: Vec<String>,
    figure: FigureName,
    team: Option<String>,
    period: Period,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = target.client().await?;
    let mut request = match period {
        Period::Weeks(weeks) => ExplainMetricsRequest { project_keys: projects, weeks, team, ..Default::default() },
        Period::Months(months) => ExplainMetricsRequest { project_keys: projects, months, team, ..Default::default() },
    };
    request.figure = figure.figure() as i32;
    request.page_size = 1000;
    let mut all = ExplainMetricsResponse::default();
    loop {
        let page = client.explain_metrics(target.request(request.clone())?).await.map_err(status_error)?.into_inner();
        all.items.extend(page.items);
        (all.total, all.data_quality) = (page.total, page.data_quality);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print!("{}", explain_table(&all, figure));
    }
    Ok(())
}

fn attribution_name(kind: i32) -> &'static str {
    match AttributionKind::try_from(kind) {
        Ok(AttributionKind::ByVersion) => "by version",
        Ok(AttributionKind::ByTime) => "by time",
        Ok(AttributionKind::ByTransition) => "by transition",
        Ok(AttributionKind::ReworkFix) => "fix: rework",
        _ => "unknown",
    }
}

/// The table printed by `explain`: one row per item, then the data quality.
pub fn explain_table(r: &ExplainMetricsResponse, figure: FigureName) -> String {
    let stamp = |t: &Option<pbjson_types::Timestamp>, format: &str| {
        t.as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
            .map_or_else(|| "—".to_owned(), |t| t.format(format).to_string())
    };
    let instant = |t: &Option<pbjson_types::Timestamp>| stamp(t, "%Y-%m-%d %H:%M");
    let name = |i: &ExplainItem| if i.issue_key.is_empty() { i.version_name.clone() } else { i.issue_key.clone() };
    let mut out = format!("{} item(s)\n", r.total);
    if figure == FigureName::Deployments {
        out.push_str(&format!(
            "{:<9} {:<24} {:<16} {:<7} {:<7} {}\n",
            "week", "deployment", "at", "failed", "rework", "because of"
        ));
        for i in &r.items {
            let causes: Vec<String> =
                i.attributions.iter().map(|a| format!("{} ({})", a.issue_key, attribution_name(a.kind))).collect();
            let yes = |b: bool| if b { "yes" } else { "" };
            out.push_str(&format!(
                "{:<9} {:<24} {:<16} {:<7} {:<7} {}\n",
                i.week,
                name(i),
                // A release date has no time.
                if i.issue_key.is_empty() { stamp(&i.end, "%Y-%m-%d") } else { instant(&i.end) },
                yes(i.failed),
                yes(i.rework),
                causes.join(", ")
            ));
        }
    } else {
        out.push_str(&format!(
            "{:<9} {:<14} {:<16} {:<16} {:>9}  {}\n",
            "week", "issue", "start", "end", "hours", "link"
        ));
        for i in &r.items {
            let hours = i.hours.map_or_else(String::new, |h| format!("{h:.1}"));
            out.push_str(&format!(
                "{:<9} {:<14} {:<16} {:<16} {:>9}  {}\n",
                i.week,
                name(i),
                instant(&i.start),
                instant(&i.end),
                hours,
                i.url
            ));
        }
    }
    if let Some(q) = &r.data_quality {
        out.push_str(&format!(
            "\ndata quality: failures created in the period attributed by version {}, by time {}, not at all {}; \
             {} excluded; {} version(s) without a release date\n",
            q.failures_by_version, q.failures_by_time, q.failures_unattributed, q.excluded, q.undated_versions
        ));
    }
    out
}
