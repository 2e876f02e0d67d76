//! Bounded fuzzing with proptest: decoded `GetMetricsRequest`s through the
//! real handler, and arbitrary or mutated Jira JSON through the wire types
//! and the conversion to facts. Nothing may panic; every bad request is an
//! `INVALID_ARGUMENT` or `NOT_FOUND` with a short message. Case counts are
//! fixed so the run takes seconds (set `PROPTEST_CASES` for a longer one).

use std::sync::Arc;

use jira_dora::api::Service;
use jira_dora::api::auth::Access;
use jira_dora::config;
use jira_dora::definitions::DefinitionSet;
use jira_dora::harvest::Harvester;
use jira_dora::jira::convert::{self, AppRule};
use jira_dora::jira::wire::{BulkChangelogPage, PagedValues, SearchPage, WireHistory, WireStatusEntry, WireVersion};
use jira_dora::jira::{ExtraField, FieldKind, JiraClient, JiraConfig};
use jira_dora::proto::GetMetricsRequest;
use jira_dora::proto::dora_metrics_server::DoraMetrics;
use jira_dora::store::{ProjectData, Store};
use proptest::prelude::*;
use prost::Message;
use tonic::Code;

fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(n);
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// One runtime and one service for every case.
fn shared() -> &'static (tokio::runtime::Runtime, Service) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, Service)> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let svc = rt.block_on(async { service() });
        (rt, svc)
    })
}

/// A service over a store with one project; Jira is never called.
fn service() -> Service {
    let store = Arc::new(Store::new());
    store.put("OPS", ProjectData::default());
    // An address nothing listens on: a call would fail, not hang.
    let client = JiraClient::new(JiraConfig::new("http://127.0.0.1:9")).unwrap();
    let harvester = Arc::new(Harvester::new(
        client,
        Arc::clone(&store),
        Arc::new(DefinitionSet::shipped()),
        chrono_tz::UTC,
        Vec::new(),
    ));
    let config = Arc::new(config::load(None, &std::collections::HashMap::new()).unwrap());
    Service { store, harvester, config, now: chrono::Utc::now, access: Arc::new(Access::open()), cluster: None }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Z][A-Z0-9_]{0,8}",
        "[0-9]{4}-W[0-9]{2}",
        "[0-9]{4}-[0-9]{2}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        " ?[a-zA-Z0-9_\\-\\.]{0,70} ?",
    ]
}

fn request() -> impl Strategy<Value = GetMetricsRequest> {
    (
        prop::collection::vec(text(), 0..110),
        prop::option::of(text()),
        prop::option::of(text()),
        prop_oneof![0..600u32, any::<u32>()],
        any::<bool>(),
        prop::option::of(text()),
        (prop::option::of(text()), prop::option::of(text()), prop_oneof![0..150u32, any::<u32>()], any::<i32>()),
        prop::option::of(text()),
    )
        .prop_map(
            |(
                project_keys,
                from_week,
                to_week,
                weeks,
                include_series,
                ai_rollout_date,
                (from_month, to_month, months, granularity),
                team,
            )| {
                GetMetricsRequest {
                    project_keys,
                    from_week,
                    to_week,
                    weeks,
                    include_series,
                    ai_rollout_date,
                    from_month,
                    to_month,
                    months,
                    granularity,
                    team,
                }
            },
        )
}

fn check_answer(r: Result<tonic::Response<jira_dora::proto::GetMetricsResponse>, tonic::Status>) {
    if let Err(s) = r {
        assert!(matches!(s.code(), Code::InvalidArgument | Code::NotFound), "{s:?}");
        assert!(s.message().len() < 400, "message too long: {}", s.message().len());
    }
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn get_metrics_requests_never_panic_and_fail_as_invalid_argument(req in request()) {
        let (rt, svc) = shared();
        check_answer(rt.block_on(svc.get_metrics(tonic::Request::new(req))));
    }

    #[test]
    fn arbitrary_bytes_decoded_as_a_request_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(req) = GetMetricsRequest::decode(bytes.as_slice()) {
            let (rt, svc) = shared();
            check_answer(rt.block_on(svc.get_metrics(tonic::Request::new(req))));
        }
    }
}

/// Decodes `bytes` as every Jira response the client reads, and converts
/// what decodes. Errors are fine; panics are not.
fn decode_all(bytes: &[u8]) {
    let rule = AppRule::default();
    let names = jira_dora::domain::facts::Interner::default();
    let extra: Vec<ExtraField> = [FieldKind::Option, FieldKind::Options, FieldKind::Number, FieldKind::Date]
        .into_iter()
        .enumerate()
        .map(|(i, kind)| ExtraField { id: format!("customfield_{i}"), name: Arc::from(format!("F{i}")), kind })
        .collect();
    if let Ok(page) = serde_json::from_slice::<SearchPage>(bytes) {
        for mut issue in page.issues {
            let histories = issue.changelog.take().map(|c| c.histories).unwrap_or_default();
            let changes = convert::status_changes(histories, &rule, &names).unwrap_or_default();
            let _ = convert::issue_facts(issue, "OPS", changes, &extra, &names);
        }
    }
    if let Ok(page) = serde_json::from_slice::<PagedValues<WireHistory>>(bytes) {
        let _ = convert::status_changes(page.values, &rule, &names);
    }
    if let Ok(page) = serde_json::from_slice::<BulkChangelogPage>(bytes) {
        for log in page.issue_change_logs {
            let _ = convert::status_changes(log.change_histories, &rule, &names);
        }
    }
    if let Ok(list) = serde_json::from_slice::<Vec<WireStatusEntry>>(bytes) {
        list.into_iter().for_each(|s| drop(convert::status_facts(s)));
    }
    if let Ok(page) = serde_json::from_slice::<PagedValues<WireVersion>>(bytes) {
        page.values.into_iter().for_each(|v| drop(convert::version_facts(v)));
    }
    if let Ok(list) = serde_json::from_slice::<Vec<WireVersion>>(bytes) {
        list.into_iter().for_each(|v| drop(convert::version_facts(v)));
    }
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jira");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    out.sort();
    out
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let token = prop_oneof![
        Just(b"null".to_vec()),
        Just(b"\"\"".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"1e999".to_vec()),
        Just(b"[]".to_vec()),
        Just(b"{}".to_vec()),
        Just(b"\"2025-13-45T99:99:99.000+9999\"".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        prop::collection::vec(any::<u8>(), 1..8),
    ];
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
            (any::<usize>(), token).prop_map(|(i, t)| Edit::Insert(i, t)),
            (any::<usize>(), 1..64usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        ],
        1..6,
    )
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            Edit::Flip(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % len] = *b;
                }
            }
            Edit::Insert(i, t) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, t.iter().copied());
            }
            Edit::Delete(i, n) => {
                let at = i % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(cases(500))]

    #[test]
    fn mutated_jira_fixtures_decode_or_fail_without_panicking(which in 0..4usize, edits in edits()) {
        let all = fixtures();
        let base = all[which % all.len()].clone();
        decode_all(&apply(base, &edits));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_jira_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_all(&bytes);
    }
}

#[test]
fn the_unmutated_fixtures_decode() {
    for f in fixtures() {
        decode_all(&f);
    }
}
