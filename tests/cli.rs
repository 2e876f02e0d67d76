//! The command-line client against the real server over a real socket.

mod common;

use std::process::Command;

use common::{Server, demo_config, demo_config_unwatched, harvested};

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jira-dora")).args(args).env_remove("DORA_API_KEY").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_prints_the_four_keys_as_a_table_or_json() {
    let server = Server::start(demo_config()).await;
    let mut client = server.client().await;
    let keys = harvested(&mut client).await;
    let addr = format!("http://{}", server.addr);
    let key = keys[0].clone();
    let (ok, table, err) = tokio::task::spawn_blocking({
        let (addr, key) = (addr.clone(), key.clone());
        move || run(&["metrics", &key, "--weeks", "13", "--addr", &addr])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    for row in ["deployment frequency", "lead time (median)", "change failure rate", "time to restore (median)", &key] {
        assert!(table.contains(row), "{row} missing from\n{table}");
    }
    let (ok, json, err) = tokio::task::spawn_blocking({
        let (addr, key) = (addr.clone(), key.clone());
        move || run(&["metrics", &key, "--json", "--addr", &addr])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["projects"][&key]["levels"]["lead_time"].is_string(), "{json}");
    // The last three complete months.
    let (ok, json, err) = tokio::task::spawn_blocking({
        let (addr, key) = (addr.clone(), key.clone());
        move || run(&["metrics", &key, "--months", "3", "--json", "--addr", &addr])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["period"]["from_month"].is_string() && (12..=15).contains(&v["period"]["weeks"].as_u64().unwrap()),
        "{json}"
    );
    let (ok, _, err) = tokio::task::spawn_blocking({
        let (addr, key) = (addr.clone(), key.clone());
        move || run(&["metrics", &key, "--months", "3", "--weeks", "4", "--addr", &addr])
    })
    .await
    .unwrap();
    assert!(!ok && err.contains("--months") && err.contains("--weeks"), "{err}");

    // An unknown project: non-zero exit with the service's reason.
    let (ok, _, err) = tokio::task::spawn_blocking(move || run(&["metrics", "NOPE", "--addr", &addr])).await.unwrap();
    assert!(!ok);
    assert!(err.contains("NOPE"), "{err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_watch_follows_the_job_to_its_end() {
    let server = Server::start(demo_config()).await;
    let mut client = server.client().await;
    let keys = harvested(&mut client).await;
    let addr = format!("http://{}", server.addr);
    let key = keys[0].clone();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || run(&["refresh", &key, "--watch", "--addr", &addr])).await.unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("succeeded"), "{out}");
    // No service there: a clear error and a non-zero exit.
    let (ok, _, err) = tokio::task::spawn_blocking(|| run(&["refresh", "--addr", "http://127.0.0.1:9"])).await.unwrap();
    assert!(!ok);
    assert!(err.contains("cannot reach the service"), "{err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_lists_a_figures_items_as_a_table_or_json() {
    let server = Server::start(demo_config_unwatched()).await;
    let mut client = server.client().await;
    harvested(&mut client).await;
    let addr = format!("http://{}", server.addr);
    let (ok, table, err) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || run(&["explain", "PAY", "--figure", "deployments", "--weeks", "13", "--addr", &addr])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    for needle in ["item(s)", "deployment", "failed", "because of", "data quality: failures created in the period"] {
        assert!(table.contains(needle), "{needle} missing from\n{table}");
    }
    let (ok, json, err) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || run(&["explain", "PAY", "--figure", "lead-time", "--json", "--addr", &addr])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let whole = v["items"].as_array().unwrap().len();
    // One team of the demo (its teams are its components): a part.
    let (ok, team_json, err) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || run(&["explain", "PAY", "--figure", "lead-time", "--team", "Billing", "--json", "--addr", &addr])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let team: serde_json::Value = serde_json::from_str(&team_json).unwrap();
    let part = team["items"].as_array().map_or(0, Vec::len);
    assert!(part > 0 && part < whole, "{part} of {whole}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(v["total"].as_str().unwrap().parse::<usize>().unwrap(), items.len());
    assert!(
        !items.is_empty()
            && items.iter().all(|i| i["issueKey"].as_str().unwrap().starts_with("PAY-") && i["hours"].is_number()),
        "{json}"
    );
    let (ok, _, err) =
        tokio::task::spawn_blocking(move || run(&["explain", "PAY", "--figure", "speed", "--addr", &addr]))
            .await
            .unwrap();
    assert!(!ok && err.contains("lead-time"), "{err}");
    server.stop().await;
}
