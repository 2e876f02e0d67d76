//! One query, three transports: native gRPC, gRPC-Web (framed by hand over
//! HTTP/1.1) and the HTTP/JSON mapping give the same answer from the real
//! server on the demo site; errors map the same way; the proto's HTTP rules,
//! the routes and the descriptor set agree.

mod common;

use common::Server as DemoServer;
use jira_dora::proto::*;
use prost::Message;
use serde_json::Value;
use tonic::codec::CompressionEncoding;

const SERVICE: &str = "/dora.v1.DoraMetrics";

fn metrics_request(key: &str) -> GetMetricsRequest {
    GetMetricsRequest { project_keys: vec![key.into()], weeks: 26, include_series: true, ..Default::default() }
}

/// The answer's canonical JSON, without what moves between calls (the age
/// of the data in seconds).
fn canonical(text: &str) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("ageSeconds");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(text).unwrap();
    strip(&mut v);
    v
}

fn without_age(mut r: GetMetricsResponse) -> GetMetricsResponse {
    for p in &mut r.freshness.as_mut().unwrap().projects {
        p.age_seconds = None;
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_accepts_gzip_gets_large_remembered_answers_compressed() {
    let server = DemoServer::demo().await;
    let large = GetMetricsRequest {
        project_keys: vec!["SHOP".into(), "PAY".into(), "OPS".into()],
        weeks: 52,
        include_series: true,
        ..Default::default()
    };
    let short = GetMetricsRequest { project_keys: vec!["SHOP".into()], weeks: 13, ..Default::default() };
    let plain = server.client().await;
    let gzip = server.client().await.accept_compressed(CompressionEncoding::Gzip);
    let encoding = |r: &tonic::Response<GetMetricsResponse>| {
        r.metadata().get("grpc-encoding").map(|v| v.to_str().unwrap().to_owned())
    };

    // Computed (and remembered) for a client without gzip, sent as it is.
    let identity = plain.clone().get_metrics(large.clone()).await.unwrap();
    assert_eq!(encoding(&identity), None);
    let expected = without_age(identity.into_inner());
    assert!(expected.encoded_len() > 16 * 1024, "{} bytes", expected.encoded_len());
    // Remembered: deflated once, then sent compressed with fresh ages.
    for _ in 0..3 {
        let answer = gzip.clone().get_metrics(large.clone()).await.unwrap();
        assert_eq!(encoding(&answer).as_deref(), Some("gzip"));
        assert_eq!(without_age(answer.into_inner()), expected);
    }
    // Still the same for a client without gzip.
    let again = plain.clone().get_metrics(large).await.unwrap();
    assert_eq!(encoding(&again), None);
    assert_eq!(without_age(again.into_inner()), expected);
    // A short answer is not worth compressing.
    for _ in 0..2 {
        let answer = gzip.clone().get_metrics(short.clone()).await.unwrap();
        assert_eq!(encoding(&answer), None);
        assert!(answer.into_inner().combined.is_some());
    }
}

/// A gRPC-Web unary call: one length-prefixed message out; data frames and a
/// trailer frame back. Returns the message (if any) and the trailers.
async fn grpc_web(
    http: &reqwest::Client,
    url: &str,
    request: &impl Message,
) -> (Option<Vec<u8>>, Vec<(String, String)>) {
    let message = request.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    let response = http
        .post(url)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/grpc-web+proto");
    // A call that fails at once answers with headers only.
    let mut trailers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("grpc-"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    let bytes = response.bytes().await.unwrap();
    let (mut rest, mut data) = (&bytes[..], None);
    while !rest.is_empty() {
        let flag = rest[0];
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let frame = &rest[5..5 + len];
        if flag & 0x80 == 0 {
            assert!(data.is_none(), "a unary call has one message");
            data = Some(frame.to_vec());
        } else {
            for line in std::str::from_utf8(frame).unwrap().split("\r\n").filter(|l| !l.is_empty()) {
                let (k, v) = line.split_once(':').unwrap();
                trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        rest = &rest[5 + len..];
    }
    (data, trailers)
}

fn trailer<'a>(trailers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    trailers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_grpc_web_and_json_give_the_same_answer() {
    let server = DemoServer::demo().await;
    let http = reqwest::Client::new();
    let request = metrics_request("SHOP");

    let native = server.client().await.get_metrics(request.clone()).await.unwrap().into_inner();

    let (data, trailers) = grpc_web(&http, &server.url(&format!("{SERVICE}/GetMetrics")), &request).await;
    assert_eq!(trailer(&trailers, "grpc-status"), Some("0"), "{trailers:?}");
    let web = GetMetricsResponse::decode(&data.expect("a message")[..]).unwrap();
    assert_eq!(without_age(web), without_age(native.clone()));

    // GET with query parameters, and POST with the request as the body.
    let get = http.get(server.url("/v1/metrics?project_keys=SHOP&weeks=26&includeSeries=true")).send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["content-type"], "application/json");
    let get = get.text().await.unwrap();
    let post = http
        .post(server.url("/v1/metrics:get"))
        .json(&serde_json::json!({ "projectKeys": ["SHOP"], "weeks": 26, "includeSeries": true }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected = canonical(&serde_json::to_string(&native).unwrap());
    assert_eq!(canonical(&get), expected);
    assert_eq!(canonical(&post), expected);

    // The canonical mapping: camelCase, 64-bit integers as strings, enums
    // by name, RFC 3339 times; and it decodes back into the message.
    let json: Value = serde_json::from_str(&get).unwrap();
    let combined = &json["combined"];
    assert!(combined["deployments"].is_string(), "{combined}");
    assert!(combined["levels"]["leadTime"].as_str().unwrap().starts_with("LEVEL_"));
    assert!(json["period"]["start"].as_str().unwrap().contains('T'));
    let decoded: GetMetricsResponse = serde_json::from_str(&get).unwrap();
    assert_eq!(decoded.period, native.period);
    assert_eq!(decoded.series.len(), 26);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_the_same_status_on_every_transport() {
    let server = DemoServer::demo().await;
    let http = reqwest::Client::new();
    let mut grpc = server.client().await;

    // (request, gRPC code, HTTP status, words of the message)
    let cases: [(GetMetricsRequest, tonic::Code, u16, &str); 3] = [
        (GetMetricsRequest::default(), tonic::Code::InvalidArgument, 400, "project_keys"),
        (metrics_request("NOPE"), tonic::Code::NotFound, 404, "NOPE"),
        (GetMetricsRequest { weeks: 521, ..metrics_request("SHOP") }, tonic::Code::InvalidArgument, 400, "at most 520"),
    ];
    for (request, code, http_status, words) in cases {
        let native = grpc.get_metrics(request.clone()).await.unwrap_err();
        assert_eq!(native.code(), code);
        assert!(native.message().contains(words), "{}", native.message());

        let (data, trailers) = grpc_web(&http, &server.url(&format!("{SERVICE}/GetMetrics")), &request).await;
        assert!(data.is_none());
        assert_eq!(trailer(&trailers, "grpc-status"), Some((code as i32).to_string().as_str()), "{trailers:?}");

        let response = http.post(server.url("/v1/metrics:get")).json(&request).send().await.unwrap();
        assert_eq!(response.status().as_u16(), http_status);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code as i32);
        assert_eq!(body["message"], native.message());
    }

    // Updates are switched off by default: FAILED_PRECONDITION is 400.
    let r = http.post(server.url("/v1/definitions:update")).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], tonic::Code::FailedPrecondition as i32);
    // A body that is not the message, a parameter the method does not have.
    let r = http
        .post(server.url("/v1/metrics:get"))
        .header("content-type", "application/json")
        .body("{\"projectKeys\": 7}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("request body"));
    let r = http.get(server.url("/v1/metrics?project_keys=SHOP&color=red")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("`color` is not a parameter"));
    // Unknown paths: HTTP 404 with a JSON body, and gRPC's UNIMPLEMENTED to a
    // gRPC-Web client.
    let r = http.get(server.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 5);
    let (_, trailers) = grpc_web(&http, &server.url("/dora.v1.Nope/Nothing"), &ListProjectsRequest {}).await;
    assert_eq!(trailer(&trailers, "grpc-status"), Some("12"), "{trailers:?}");
    server.stop().await;
}

/// Starts a refresh of `project` with `POST /v1/refresh`.
async fn refresh_over_json(http: &reqwest::Client, server: &DemoServer, project: &str) -> RefreshResponse {
    let request = serde_json::json!({ "projectKeys": [project] });
    http.post(server.url("/v1/refresh")).json(&request).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_the_dashboard_come_gzipped_to_a_client_that_accepts_it() {
    use std::io::Read;
    let server = DemoServer::demo().await;
    let http = reqwest::Client::new();
    let fetch = |path: &str, gzip: bool| {
        let request = http.get(server.url(path));
        if gzip { request.header("accept-encoding", "gzip").send() } else { request.send() }
    };
    for path in ["/v1/metrics?project_keys=SHOP&project_keys=PAY&weeks=52&includeSeries=true", "/app.js"] {
        let plain = fetch(path, false).await.unwrap();
        assert_eq!(plain.status(), 200);
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        let plain = plain.bytes().await.unwrap();

        let zipped = fetch(path, true).await.unwrap();
        assert_eq!(zipped.status(), 200);
        assert_eq!(zipped.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(zipped.headers()["vary"], "accept-encoding", "{path}");
        let zipped = zipped.bytes().await.unwrap();
        assert!(zipped.len() * 2 < plain.len(), "{path}: {} of {} bytes", zipped.len(), plain.len());
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped[..]).read_to_end(&mut unzipped).unwrap();
        if path.starts_with("/v1/") {
            // The figures are the same, bar the data's age.
            let answer = |b: &[u8]| without_age(serde_json::from_slice::<GetMetricsResponse>(b).unwrap());
            assert_eq!(answer(&unzipped), answer(&plain));
        } else {
            assert_eq!(unzipped, plain);
        }
    }

    // The refresh progress still streams line by line, uncompressed.
    let job = refresh_over_json(&http, &server, "PAY").await;
    let watch = fetch(&format!("/v1/refresh/{}:watch", job.job_id), true).await.unwrap();
    assert_eq!(watch.headers()["content-type"], "application/x-ndjson");
    assert!(watch.headers().get("content-encoding").is_none());
    let text = tokio::time::timeout(std::time::Duration::from_secs(60), watch.text()).await.unwrap().unwrap();
    assert!(text.lines().count() >= 1, "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_over_json() {
    let server = DemoServer::demo().await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(server.url(path)).send();

    let projects: ListProjectsResponse = get("/v1/projects").await.unwrap().json().await.unwrap();
    let keys: Vec<&str> = projects.projects.iter().map(|p| p.project_key.as_str()).collect();
    assert_eq!(keys, ["OPS", "PAY", "SHOP"]);
    assert!(projects.projects[0].freshness.as_ref().unwrap().last_harvest.is_some());

    let defs: GetDefinitionsResponse = get("/v1/definitions").await.unwrap().json().await.unwrap();
    assert!(!defs.version.is_empty());

    let job = refresh_over_json(&http, &server, "PAY").await;
    // The watch streams one JSON object per line until the job ends.
    let watch = get(&format!("/v1/refresh/{}:watch", job.job_id)).await.unwrap();
    assert_eq!(watch.headers()["content-type"], "application/x-ndjson");
    let text = tokio::time::timeout(std::time::Duration::from_secs(60), watch.text()).await.unwrap().unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["result"]["job"]["state"], "JOB_STATE_SUCCEEDED", "{text}");
    let status: GetRefreshStatusResponse =
        get(&format!("/v1/refresh/{}", job.job_id)).await.unwrap().json().await.unwrap();
    assert_eq!(status.job.unwrap().state, JobState::Succeeded as i32);
    assert_eq!(get("/v1/refresh/nope").await.unwrap().status(), 404);
    server.stop().await;
}

// ------------------------------------------------ the descriptor set's rules

/// Just enough of `descriptor.proto` to read the `google.api.http` option
/// that `prost_types` drops.
mod descriptor {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FileDescriptorSet {
        #[prost(message, repeated, tag = "1")]
        pub file: Vec<File>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct File {
        #[prost(string, tag = "2")]
        pub package: String,
        #[prost(message, repeated, tag = "6")]
        pub service: Vec<Service>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Service {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, repeated, tag = "2")]
        pub method: Vec<Method>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Method {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "4")]
        pub options: Option<MethodOptions>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MethodOptions {
        #[prost(message, optional, tag = "72295728")]
        pub http: Option<HttpRule>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HttpRule {
        #[prost(string, tag = "2")]
        pub get: String,
        #[prost(string, tag = "4")]
        pub post: String,
        #[prost(string, tag = "7")]
        pub body: String,
        #[prost(message, repeated, tag = "11")]
        pub additional_bindings: Vec<HttpRule>,
    }
}

#[test]
fn every_rpc_has_its_http_rule_in_the_descriptor_set() {
    let set = descriptor::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let service = set.file.iter().filter(|f| f.package == "dora.v1").flat_map(|f| &f.service).next().unwrap();
    let rule = |m: &descriptor::Method| {
        let r = m
            .options
            .as_ref()
            .and_then(|o| o.http.as_ref())
            .unwrap_or_else(|| panic!("{} has no google.api.http rule", m.name));
        let one = |r: &descriptor::HttpRule| {
            if r.get.is_empty() { format!("POST {} {}", r.post, r.body) } else { format!("GET {}", r.get) }
        };
        std::iter::once(r).chain(&r.additional_bindings).map(one).collect::<Vec<_>>().join(", ")
    };
    let rules: Vec<(String, String)> = service.method.iter().map(|m| (m.name.clone(), rule(m))).collect();
    let expected = [
        ("GetMetrics", "GET /v1/metrics, POST /v1/metrics:get *"),
        ("ListProjects", "GET /v1/projects"),
        ("ListTeams", "GET /v1/teams"),
        ("Refresh", "POST /v1/refresh *"),
        ("GetRefreshStatus", "GET /v1/refresh/{job_id}"),
        ("WatchRefresh", "GET /v1/refresh/{job_id}:watch"),
        ("GetDefinitions", "GET /v1/definitions"),
        ("ValidateDefinitions", "POST /v1/definitions:validate *"),
        ("UpdateDefinitions", "POST /v1/definitions:update *"),
        ("ExplainMetrics", "GET /v1/metrics:explain"),
    ];
    assert_eq!(rules, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_files_carry_a_strict_policy() {
    let server = DemoServer::demo_empty().await;
    let _ = server.client().await;
    let http = reqwest::Client::new();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
        ("/explain.js", "text/javascript; charset=utf-8"),
        ("/explain.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let r = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["content-type"], content_type, "{path}");
        assert_eq!(h["content-security-policy"], jira_dora::api::dashboard::CONTENT_SECURITY_POLICY, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
    let policy = jira_dora::api::dashboard::CONTENT_SECURITY_POLICY;
    for directive in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]
    {
        assert!(policy.contains(directive), "{directive}");
    }
    // No inline script or style to allow: the page only links its files.
    let page = http.get(server.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("<script>") && !page.contains("style="), "inline code in the page");
    server.stop().await;
}
