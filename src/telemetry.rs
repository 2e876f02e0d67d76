//! Prometheus metrics: the names and labels the service records, and the
//! exporter handle that renders them for `/metrics`.
//!
//! Labels carry only bounded, non-secret values: RPC method and status
//! code, configured project keys, Jira endpoint *templates* (ids and keys
//! replaced by placeholders), HTTP status codes, hook names. Never a
//! credential, an issue key or id, or any text from Jira.
//!
//! Must not depend on any module of the service: the edges (`jira`,
//! `harvest`, `api`, `app`) call it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, seconds.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Harvest duration buckets, seconds.
const HARVEST_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];
/// Jira requests per project refresh.
const REQUEST_BUCKETS: &[f64] = &[5.0, 10.0, 30.0, 100.0, 150.0, 300.0, 1000.0, 3000.0, 10000.0];

/// How often recorded histogram samples are folded into their buckets.
/// The exporter keeps every sample until then (or until `/metrics` is
/// scraped): without it, memory grows with every RPC.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The RPCs timed by [`rpc`], as their `method` label spells them.
pub const RPC_METHODS: [&str; 10] = [
    "GetMetrics",
    "ExplainMetrics",
    "ListProjects",
    "ListTeams",
    "Refresh",
    "GetRefreshStatus",
    "WatchRefresh",
    "GetDefinitions",
    "ValidateDefinitions",
    "UpdateDefinitions",
];

/// The process-wide exporter, installed on first use, with a thread that
/// runs its upkeep every [`UPKEEP_INTERVAL`].
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("dora_rpc_duration_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("dora_harvest_duration_seconds".into()), HARVEST_BUCKETS)
            })
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full("dora_harvest_jira_requests".into()), REQUEST_BUCKETS))
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding
        // program); then this handle renders nothing, which is harmless.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for the metrics' upkeep");
        handle
    })
}

fn describe() {
    metrics::describe_counter!("dora_rpc_requests_total", "RPCs answered, by method and gRPC status code");
    metrics::describe_histogram!(
        "dora_rpc_duration_seconds",
        metrics::Unit::Seconds,
        "RPC latency, by method and code"
    );
    metrics::describe_histogram!(
        "dora_harvest_duration_seconds",
        metrics::Unit::Seconds,
        "Duration of a project's harvest"
    );
    metrics::describe_counter!("dora_harvests_total", "Project harvests, by project and outcome");
    metrics::describe_gauge!("dora_harvest_issues", "Issues held for a project after its last harvest");
    metrics::describe_counter!("dora_jira_requests_total", "Requests to Jira, by endpoint template and HTTP status");
    metrics::describe_histogram!(
        "dora_harvest_jira_requests",
        "Requests a project's refresh sent to Jira (retries included), by project and kind (full, incremental, reconciling: incremental with the check for deleted and moved issues)"
    );
    metrics::describe_gauge!(
        "dora_harvest_last_jira_requests",
        "Requests the last refresh of a project sent to Jira, by project and kind"
    );
    metrics::describe_counter!(
        "dora_jira_retries_total",
        "Jira requests retried, by reason (429, 5xx, timeout, connection)"
    );
    metrics::describe_gauge!(
        "dora_snapshot_timestamp_seconds",
        metrics::Unit::Seconds,
        "Unix time of the snapshot last written or loaded (its age is time() minus this)"
    );
    metrics::describe_gauge!(
        "dora_snapshot_bytes",
        metrics::Unit::Bytes,
        "Size of the snapshot last written or loaded"
    );
    metrics::describe_gauge!("dora_definitions_info", "Always 1; the label names the definitions version in force");
    metrics::describe_counter!("dora_classification_errors_total", "Definition hooks that failed, by hook");
    metrics::describe_gauge!("dora_teams", "Teams held for a project after its last build (names are never labels)");
    metrics::describe_gauge!(
        "dora_teams_dropped",
        "Distinct team names a project's last build dropped beyond the limit of teams per project"
    );
    metrics::describe_counter!(
        "dora_answer_cache_lookups_total",
        "Lookups in the answer caches (`answers`: whole GetMetrics answers; `ai_impact`: AI impact sections), by result"
    );
    metrics::describe_gauge!("dora_answer_cache_hit_ratio", "Hits per lookup of an answer cache since the start");
    metrics::describe_gauge!("dora_answer_cache_bytes", metrics::Unit::Bytes, "Bytes an answer cache holds now");
    metrics::describe_gauge!(
        "dora_cluster_role",
        "With PostgreSQL: 1 for this instance's role (leader or follower), 0 for the other"
    );
    metrics::describe_gauge!(
        "dora_cluster_epoch",
        "With PostgreSQL: the leader epoch this instance holds (0 when following)"
    );
    metrics::describe_gauge!("dora_snapshot_seq", "Sequence number of the snapshot last written or loaded");
    metrics::describe_gauge!(
        "dora_snapshot_age_seconds",
        metrics::Unit::Seconds,
        "With PostgreSQL: age of the snapshot last written or loaded, updated every poll"
    );
}

/// A gRPC code's name as the label spells it (`Ok`, `InvalidArgument`…),
/// without formatting it on every RPC.
fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "Ok",
        Cancelled => "Cancelled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// One RPC answered; `method` is one of [`RPC_METHODS`]. The series of
/// each method and code are registered once, at their first RPC, not looked
/// up by their labels on every one.
pub fn rpc(method: &'static str, code: tonic::Code, elapsed: Duration) {
    const CODES: usize = tonic::Code::Unauthenticated as usize + 1;
    static SERIES: [[OnceLock<(Counter, Histogram)>; CODES]; RPC_METHODS.len()] =
        [const { [const { OnceLock::new() }; CODES] }; RPC_METHODS.len()];
    let register = || {
        handle();
        let label = code_label(code);
        (
            counter!("dora_rpc_requests_total", "method" => method, "code" => label),
            histogram!("dora_rpc_duration_seconds", "method" => method, "code" => label),
        )
    };
    let (requests, duration) = match RPC_METHODS.iter().position(|m| *m == method) {
        Some(m) => SERIES[m][code as usize].get_or_init(register),
        None => &register(),
    };
    requests.increment(1);
    duration.record(elapsed.as_secs_f64());
}

/// One project harvested (or failed to).
pub fn harvest(project: &str, elapsed: Duration, issues_held: usize, ok: bool) {
    let outcome = if ok { "succeeded" } else { "failed" };
    counter!("dora_harvests_total", "project" => project.to_owned(), "outcome" => outcome).increment(1);
    histogram!("dora_harvest_duration_seconds", "project" => project.to_owned()).record(elapsed.as_secs_f64());
    if ok {
        gauge!("dora_harvest_issues", "project" => project.to_owned()).set(issues_held as f64);
    }
}

/// The Jira requests one project's refresh sent (failed refreshes too).
/// `kind`: `full`, `reconciling` or `incremental`.
pub fn harvest_requests(project: &str, kind: &'static str, requests: u64) {
    histogram!("dora_harvest_jira_requests", "project" => project.to_owned(), "kind" => kind).record(requests as f64);
    gauge!("dora_harvest_last_jira_requests", "project" => project.to_owned(), "kind" => kind).set(requests as f64);
}

/// One request answered by Jira (`status` 0: no answer).
pub fn jira_request(path: &str, status: u16) {
    counter!("dora_jira_requests_total", "endpoint" => endpoint_template(path), "status" => status.to_string())
        .increment(1);
}

/// One Jira request retried.
pub fn jira_retry(reason: &'static str) {
    counter!("dora_jira_retries_total", "reason" => reason).increment(1);
}

/// A snapshot written or loaded: when it was taken (Unix ms) and its size.
pub fn snapshot(taken_at_ms: i64, bytes: usize) {
    gauge!("dora_snapshot_timestamp_seconds").set(taken_at_ms as f64 / 1000.0);
    gauge!("dora_snapshot_bytes").set(bytes as f64);
}

/// This instance's role in a cluster: `Some(epoch)` when leading.
pub fn cluster_role(epoch: Option<u64>) {
    gauge!("dora_cluster_role", "role" => "leader").set(if epoch.is_some() { 1.0 } else { 0.0 });
    gauge!("dora_cluster_role", "role" => "follower").set(if epoch.is_some() { 0.0 } else { 1.0 });
    gauge!("dora_cluster_epoch").set(epoch.unwrap_or(0) as f64);
}

/// The sequence number of the snapshot written or loaded.
pub fn snapshot_seq(seq: u64) {
    gauge!("dora_snapshot_seq").set(seq as f64);
}

/// The age of the snapshot written or loaded.
pub fn snapshot_age(age: Duration) {
    gauge!("dora_snapshot_age_seconds").set(age.as_secs_f64());
}

/// The definitions version now in force.
pub fn definitions_version(previous: Option<&str>, version: &str) {
    if let Some(p) = previous {
        gauge!("dora_definitions_info", "version" => p.to_owned()).set(0.0);
    }
    gauge!("dora_definitions_info", "version" => version.to_owned()).set(1.0);
}

/// An answer cache's lookups since the start and the bytes it holds now
/// (read when `/metrics` is scraped).
pub fn answer_cache(cache: &'static str, stats: crate::store::answers::AnswerStats) {
    counter!("dora_answer_cache_lookups_total", "cache" => cache, "result" => "hit").absolute(stats.hits);
    counter!("dora_answer_cache_lookups_total", "cache" => cache, "result" => "miss").absolute(stats.misses);
    gauge!("dora_answer_cache_hit_ratio", "cache" => cache).set(stats.hit_ratio());
    gauge!("dora_answer_cache_bytes", "cache" => cache).set(stats.bytes as f64);
}

/// A project's figures built: how many teams it holds and how many team
/// names were dropped beyond the limit. The names themselves are never
/// labels.
pub fn teams(project: &str, held: usize, dropped: usize) {
    gauge!("dora_teams", "project" => project.to_owned()).set(held as f64);
    gauge!("dora_teams_dropped", "project" => project.to_owned()).set(dropped as f64);
}

/// A definition hook failed.
pub fn classification_error(hook: &'static str) {
    counter!("dora_classification_errors_total", "hook" => hook).increment(1);
}

/// A Jira path with issue ids/keys and project keys replaced, so labels stay
/// bounded and carry no issue data: `/rest/api/3/issue/10042/changelog` →
/// `/rest/api/3/issue/{issue}/changelog`.
pub fn endpoint_template(path: &str) -> String {
    let mut out = Vec::new();
    let mut previous = "";
    for segment in path.split('/') {
        let replaced = match previous {
            "issue" => "{issue}",
            "project" if segment != "search" => "{project}",
            _ => segment,
        };
        out.push(replaced);
        previous = segment;
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::{code_label, endpoint_template};

    /// Without its upkeep the exporter keeps every histogram sample until a
    /// scrape, which never comes with metrics off.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_exporter_runs_its_upkeep_on_its_own_thread() {
        super::handle();
        let threads = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .expect("the process's threads")
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect()
        };
        // A new thread names itself once it runs.
        for _ in 0..100 {
            if threads().iter().any(|name| name == "metrics-upkeep") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no upkeep thread among {:?}", threads());
    }

    #[test]
    fn code_labels_are_the_codes_names() {
        for code in (0..=16).map(tonic::Code::from_i32) {
            assert_eq!(code_label(code), format!("{code:?}"));
        }
    }

    #[test]
    fn endpoint_templates_hide_ids_and_keys() {
        let check = |path: &str, want: &str| assert_eq!(endpoint_template(path), want);
        check("/rest/api/3/issue/10042/changelog", "/rest/api/3/issue/{issue}/changelog");
        check("/rest/api/3/project/OPS/version", "/rest/api/3/project/{project}/version");
        check("/rest/api/3/project/search", "/rest/api/3/project/search");
        check("/rest/api/3/search/jql", "/rest/api/3/search/jql");
        check("/jira/rest/api/2/issue/OPS-12", "/jira/rest/api/2/issue/{issue}");
    }
}
