//! The real server on 127.0.0.1:0 with the embedded demo (its fake Jira
//! harvested over real HTTP), called by tonic clients over a real socket.

use std::time::Duration;

mod common;

use common::{Server, demo_config, harvested};
use jira_dora::proto::*;
use tonic::Code;
use tonic::transport::Channel;

fn request(keys: &[&str]) -> GetMetricsRequest {
    GetMetricsRequest { project_keys: keys.iter().map(|k| k.to_string()).collect(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_answers_with_real_figures() {
    let server = Server::start(demo_config()).await;
    let mut client = server.client().await;
    let keys = harvested(&mut client).await;
    let key = keys[0].clone();

    let mut req = request(&[&key]);
    req.include_series = true;
    let r = client.get_metrics(req).await.unwrap().into_inner();
    let period = r.period.unwrap();
    assert_eq!((period.weeks, period.partial), (13, false));
    let combined = r.combined.unwrap();
    assert!(combined.deployments > 0, "demo has deployments");
    assert!(combined.completed > 0, "demo has completed work");
    assert!(combined.lead_time.unwrap().median_hours.is_some());
    let levels = combined.levels.unwrap();
    assert_ne!(levels.deployment_frequency, Level::Unspecified as i32);
    assert_eq!(r.projects.len(), 1);
    assert_eq!(r.series.len(), 13);
    assert!(r.previous.is_some());
    assert_eq!(r.levels_source, "DORA 2023/2024 clusters, monotonic cut-offs");
    let fresh = r.freshness.unwrap();
    assert!(!fresh.definitions_version.is_empty());
    assert!(fresh.projects[0].last_harvest.is_some());
    assert!(!fresh.projects[0].definitions_stale);

    // The demo ships an AI rollout date: the comparison is filled in.
    let ai = r.ai_impact.unwrap();
    assert!(ai.available, "{}", ai.note);
    assert_eq!(ai.comparisons.len(), 6);
    assert_eq!(ai.ai_vs_other.len(), 2);
    assert!(ai.comparisons.iter().all(|c| !c.sentence.is_empty()));
    assert!(!ai.overall.unwrap().sentence.is_empty());

    // Several projects combine: counts sum.
    let all =
        client.get_metrics(request(&keys.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap().into_inner();
    let sum: u64 = all.projects.iter().map(|p| p.figures.as_ref().unwrap().completed).sum();
    assert_eq!(all.combined.unwrap().completed, sum);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_specific_errors() {
    let server = Server::start(demo_config()).await;
    let mut client = server.client().await;
    let keys = harvested(&mut client).await;
    let key = keys[0].as_str();
    let check = |code: Code, needle: &'static str| {
        move |r: Result<tonic::Response<GetMetricsResponse>, tonic::Status>| {
            let s = r.expect_err("should fail");
            assert_eq!(s.code(), code, "{s:?}");
            assert!(s.message().contains(needle), "{} does not say {needle}", s.message());
        }
    };
    check(Code::InvalidArgument, "project_keys")(client.get_metrics(request(&[])).await);
    check(Code::InvalidArgument, "not a Jira project key")(client.get_metrics(request(&["no such"])).await);
    let mut r = request(&[key]);
    r.from_week = Some("2026-W5x".into());
    r.to_week = Some("2026-W06".into());
    check(Code::InvalidArgument, "not an ISO week")(client.get_metrics(r).await);
    let mut r = request(&[key]);
    r.from_week = Some("2026-W10".into());
    r.to_week = Some("2026-W06".into());
    check(Code::InvalidArgument, "reversed")(client.get_metrics(r).await);
    let mut r = request(&[key]);
    r.weeks = 521;
    check(Code::InvalidArgument, "at most 520")(client.get_metrics(r).await);
    let mut r = request(&[key]);
    r.ai_rollout_date = Some("soon".into());
    check(Code::InvalidArgument, "ai_rollout_date")(client.get_metrics(r).await);
    check(Code::NotFound, "NOPE")(client.get_metrics(request(&["NOPE"])).await);
    check(Code::NotFound, "NOPE")(client.get_metrics(request(&[key, "NOPE"])).await);
    // Periods in months.
    let months = |from: Option<&str>, to: Option<&str>, n: u32| GetMetricsRequest {
        from_month: from.map(Into::into),
        to_month: to.map(Into::into),
        months: n,
        ..request(&[key])
    };
    check(Code::InvalidArgument, "2026-13")(client.get_metrics(months(Some("2026-13"), Some("2026-12"), 0)).await);
    check(Code::InvalidArgument, "reversed")(client.get_metrics(months(Some("2026-03"), Some("2026-01"), 0)).await);
    check(Code::InvalidArgument, "together")(client.get_metrics(months(Some("2026-03"), None, 0)).await);
    check(Code::InvalidArgument, "at most 120")(client.get_metrics(months(None, None, 121)).await);
    check(Code::InvalidArgument, "at most 120")(client.get_metrics(months(Some("2010-01"), Some("2026-01"), 0)).await);
    let both = GetMetricsRequest { weeks: 4, ..months(None, None, 3) };
    let s = client.get_metrics(both).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("weeks") && s.message().contains("months"), "{}", s.message());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_has_teams_by_component_with_their_own_figures() {
    let server = Server::start(demo_config()).await;
    let mut client = server.client().await;
    let keys = harvested(&mut client).await;
    // Past several polls of the definitions watcher: the folder holds the
    // shipped files, which the demo completes the same way.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let teams = client.list_teams(ListTeamsRequest::default()).await.unwrap().into_inner().teams;
    let names: Vec<&str> = teams.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Accounts", "Billing", "Platform", "Search", "Storefront"]);
    assert!(teams.iter().all(|t| t.project_keys == keys && t.weeks_with_data > 40), "{teams:?}");

    let all: Vec<&str> = keys.iter().map(String::as_str).collect();
    let whole = client
        .get_metrics(GetMetricsRequest { weeks: 26, include_series: true, ..request(&all) })
        .await
        .unwrap()
        .into_inner();
    let mut completed = 0;
    let mut deployments = 0;
    for team in &names {
        let req =
            GetMetricsRequest { weeks: 26, include_series: true, team: Some((*team).to_owned()), ..request(&all) };
        let r = client.get_metrics(req).await.unwrap().into_inner();
        let figures = r.combined.unwrap();
        assert!(figures.completed > 0 && figures.deployments > 0, "{team}: {figures:?}");
        assert_eq!(r.series.len(), 26);
        assert!(r.ai_impact.is_some() && r.previous.is_some());
        completed += figures.completed;
        deployments += figures.deployments;
    }
    let figures = whole.combined.unwrap();
    // Every issue has one component: the teams' work adds up to the
    // projects'; releases ship several teams' work, so deployments do not.
    assert_eq!(completed, figures.completed);
    assert!(deployments > figures.deployments, "{deployments} vs {}", figures.deployments);
    for (team, code) in [("Nobody", Code::NotFound), (" ", Code::InvalidArgument)] {
        let s = client.get_metrics(GetMetricsRequest { team: Some(team.into()), ..request(&all) }).await.unwrap_err();
        assert_eq!(s.code(), code, "{s:?}");
        assert!(s.message().starts_with("team"), "{s:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn months_are_their_weeks_and_a_monthly_series_adds_up() {
    let server = Server::start(demo_config()).await;
    let mut client = server.client().await;
    let keys = harvested(&mut client).await;
    let key = keys[0].as_str();
    let req = GetMetricsRequest {
        months: 3,
        include_series: true,
        granularity: Granularity::Month as i32,
        ..request(&[key])
    };
    let r = client.get_metrics(req).await.unwrap().into_inner();
    let period = r.period.unwrap();
    let (from, to) = (period.from_month.clone().unwrap(), period.to_month.clone().unwrap());
    assert!((12..=15).contains(&period.weeks), "{period:?}");
    assert!(r.series.is_empty());
    assert_eq!(r.monthly_series.len(), 3);
    assert_eq!(r.projects[0].monthly_series.len(), 3);
    assert_eq!((r.monthly_series[0].month.as_str(), r.monthly_series[2].month.as_str()), (from.as_str(), to.as_str()));
    assert_eq!(r.monthly_series.iter().map(|m| m.weeks).sum::<u32>(), period.weeks);
    // The period is exactly the same weeks asked for by name.
    let by_weeks = GetMetricsRequest {
        from_week: Some(period.from_week.clone()),
        to_week: Some(period.to_week.clone()),
        ..request(&[key])
    };
    let same = client.get_metrics(by_weeks).await.unwrap().into_inner();
    assert_eq!(same.combined, r.combined);
    // Each monthly point is that month asked for alone.
    let mut deployments = 0;
    for point in &r.monthly_series {
        assert!((4..=5).contains(&point.weeks), "{point:?}");
        let one = GetMetricsRequest {
            from_month: Some(point.month.clone()),
            to_month: Some(point.month.clone()),
            ..request(&[key])
        };
        let one = client.get_metrics(one).await.unwrap().into_inner();
        assert_eq!(one.period.unwrap().weeks, point.weeks);
        assert_eq!(one.combined, point.figures);
        deployments += point.figures.as_ref().unwrap().deployments;
    }
    let combined = r.combined.unwrap();
    assert_eq!(combined.deployments, deployments);
    // The previous period is the three months before.
    let previous = r.previous_period.unwrap();
    assert_eq!(previous.to_week, {
        let first = client
            .get_metrics(GetMetricsRequest { from_month: Some(from.clone()), to_month: Some(from), ..request(&[key]) })
            .await
            .unwrap()
            .into_inner();
        first.previous_period.unwrap().to_week
    });
    assert!(previous.from_month.is_some());
    // How the change failure rate was reached.
    let cf = combined.change_failure.unwrap();
    assert!(cf.failed <= cf.failed_by_version + cf.failed_by_time + cf.failed_by_transition, "{cf:?}");
    assert!(cf.failed_by_version.max(cf.failed_by_time).max(cf.failed_by_transition) <= cf.failed, "{cf:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_rolling_medians_merge_the_weeks_of_four_months() {
    use jira_dora::domain::time::{IsoWeek, Month};
    let server = Server::start(demo_config()).await;
    let mut client = server.client().await;
    harvested(&mut client).await;
    let both = ["PAY", "SHOP"];
    let grpc = client.clone();
    let combined = move |req: GetMetricsRequest| {
        let mut grpc = grpc.clone();
        async move { grpc.get_metrics(req).await.unwrap().into_inner().combined.unwrap() }
    };

    // A period of months: each point's rolling figures are exactly the
    // figures of its month and the 3 before it as one period, also where
    // those lie before the period's start.
    let req =
        GetMetricsRequest { months: 6, include_series: true, granularity: Granularity::Month as i32, ..request(&both) };
    let r = client.get_metrics(req).await.unwrap().into_inner();
    assert_eq!(r.monthly_series.len(), 6);
    for point in [&r.monthly_series[0], &r.monthly_series[5]] {
        let month = Month::parse(&point.month).unwrap();
        let window = GetMetricsRequest {
            from_month: Some(month.plus(-3).to_string()),
            to_month: Some(point.month.clone()),
            ..request(&both)
        };
        let w = combined(window).await;
        assert_eq!(point.rolling_lead_time, w.lead_time, "{}", point.month);
        assert_eq!(point.rolling_time_to_restore, w.time_to_restore, "{}", point.month);
        let own = point.figures.as_ref().unwrap().lead_time.unwrap().count;
        assert!(w.lead_time.unwrap().count > own, "{}: the window holds more than the month", point.month);
    }
    // The projects' own series carry their own rolling figures.
    let pay = &r.projects[0].monthly_series[5];
    let window = GetMetricsRequest {
        from_month: Some(Month::parse(&pay.month).unwrap().plus(-3).to_string()),
        to_month: Some(pay.month.clone()),
        ..request(&["PAY"])
    };
    assert_eq!(pay.rolling_lead_time, combined(window).await.lead_time);

    // A period of weeks cut inside a month: the last point's window ends
    // with the period's last week, not with its month's.
    let last_week = IsoWeek::of_date(chrono::Utc::now().date_naive()).plus(-1);
    let last = Month::of_week(last_week);
    let cut = if last.last_week() == last_week { last_week.plus(-1) } else { last_week };
    let req = GetMetricsRequest {
        from_week: Some(cut.plus(-9).to_string()),
        to_week: Some(cut.to_string()),
        include_series: true,
        granularity: Granularity::Month as i32,
        ..request(&both)
    };
    let r = client.get_metrics(req).await.unwrap().into_inner();
    let point = r.monthly_series.last().unwrap();
    assert_eq!(point.month, Month::of_week(cut).to_string());
    let window = GetMetricsRequest {
        from_week: Some(Month::of_week(cut).plus(-3).first_week().to_string()),
        to_week: Some(cut.to_string()),
        ..request(&both)
    };
    let w = combined(window).await;
    assert_eq!(point.rolling_lead_time, w.lead_time);
    assert_eq!(point.rolling_time_to_restore, w.time_to_restore);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_share_the_port() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = Server::start(demo_config()).await;
    let _ = server.client().await;
    let channel = Channel::from_shared(format!("http://{}", server.addr)).unwrap().connect().await.unwrap();
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest { service: "dora.v1.DoraMetrics".into() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("no service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"dora.v1.DoraMetrics".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_jobs_report_and_stream_their_progress() {
    let server = Server::start(demo_config()).await;
    let mut client = server.client().await;
    let keys = harvested(&mut client).await;
    let job_id = client
        .refresh(RefreshRequest { project_keys: vec![keys[0].clone()], full: false })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let mut stream = client.watch_refresh(WatchRefreshRequest { job_id: job_id.clone() }).await.unwrap().into_inner();
    let mut last = None;
    while let Some(update) = tokio::time::timeout(Duration::from_secs(60), stream.message()).await.unwrap().unwrap() {
        last = update.job;
    }
    let last = last.expect("at least one update");
    assert_eq!(last.state, JobState::Succeeded as i32, "{last:?}");
    assert!(last.finished.is_some());
    assert!(last.projects[0].pages > 0);
    let status = client.get_refresh_status(GetRefreshStatusRequest { job_id }).await.unwrap().into_inner().job.unwrap();
    assert_eq!(status.state, JobState::Succeeded as i32);
    let missing = client.get_refresh_status(GetRefreshStatusRequest { job_id: "nope".into() }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let defs = client.get_definitions(GetDefinitionsRequest {}).await.unwrap().into_inner();
    assert!(defs.files.iter().any(|f| f.source.contains("fn is_deployment")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_project_without_figures_yet_is_unavailable_not_missing() {
    let env = std::collections::HashMap::from([("DORA_PROJECTS", "SHOP")]);
    let config = jira_dora::config::load(Some("[harvest]\non_start = false\ninterval_minutes = 0\n"), &env).unwrap();
    let server = Server::start(config).await;
    let mut client = server.client().await;
    let s = client.get_metrics(request(&["SHOP"])).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    assert!(s.message().contains("first harvest"), "{}", s.message());
    let s = client.get_metrics(request(&["NOPE"])).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_inside_the_period_and_rolling_medians_of_merged_weeks_come_with_the_series() {
    let today = chrono::Utc::now().date_naive();
    let day = |weeks_back: i64| (today - chrono::Duration::weeks(weeks_back)).to_string();
    let toml = format!(
        "[harvest]\ninterval_minutes = 0\n\
         [[markers]]\ndate = \"{}\"\nlabel = \"New on-call rota\"\n\
         [[markers]]\ndate = \"{}\"\nlabel = \"Platform move\"\nprojects = [\"OPS\"]\n\
         [[markers]]\ndate = \"{}\"\nlabel = \"Long ago\"\n",
        day(5),
        day(6),
        day(80),
    );
    let config = jira_dora::config::load(Some(&toml), &std::collections::HashMap::new()).unwrap();
    let server = Server::start(config).await;
    let mut client = server.client().await;
    harvested(&mut client).await;
    let rollout = fake_jira::demo::demo_ai_rollout(today).to_string();

    let mut req = request(&["PAY", "SHOP"]);
    req.weeks = 26;
    req.include_series = true;
    let r = client.get_metrics(req.clone()).await.unwrap().into_inner();
    let shown: Vec<(&str, &str)> = r.markers.iter().map(|m| (m.date.as_str(), m.label.as_str())).collect();
    assert_eq!(shown, [(rollout.as_str(), "AI rollout"), (day(5).as_str(), "New on-call rota")]);
    // OPS's own marker shows with OPS; the 13 weeks leave the rollout out.
    req.project_keys = vec!["OPS".into()];
    req.weeks = 13;
    let ops = client.get_metrics(req.clone()).await.unwrap().into_inner();
    let labels: Vec<&str> = ops.markers.iter().map(|m| m.label.as_str()).collect();
    assert_eq!(labels, ["Platform move", "New on-call rota"]);

    // Each point's rolling figures are exactly the figures of its 4 weeks
    // as one period (durations merged), also where they reach back before
    // the period.
    req.project_keys = vec!["PAY".into(), "SHOP".into()];
    let r = client.get_metrics(req.clone()).await.unwrap().into_inner();
    for point in [&r.series[0], &r.series[7]] {
        let last = point.week.clone();
        let mut window = request(&["PAY", "SHOP"]);
        let first = jira_dora::domain::time::IsoWeek::parse(&last).unwrap().plus(-3).to_string();
        (window.from_week, window.to_week) = (Some(first), Some(last.clone()));
        let w = client.get_metrics(window).await.unwrap().into_inner().combined.unwrap();
        assert_eq!(point.rolling_lead_time, w.lead_time, "{last}");
        assert_eq!(point.rolling_time_to_restore, w.time_to_restore, "{last}");
        assert!(w.lead_time.unwrap().count > point.figures.as_ref().unwrap().lead_time.unwrap().count, "{last}");
    }
    server.stop().await;
}
