//! The real server on a port-0 listener, shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use jira_dora::config::{self, Config};
use jira_dora::proto::dora_metrics_client::DoraMetricsClient;
use jira_dora::proto::*;
use tokio::sync::watch;
use tonic::transport::Channel;

pub struct Server {
    pub addr: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts the service with its own temporary data directory.
    pub async fn start(mut config: Config) -> Server {
        let data = tempfile::tempdir().unwrap();
        config.data_dir = data.path().to_owned();
        Server { _data: Some(data), ..Server::start_in(config).await }
    }

    /// Starts the service on the data directory its configuration names.
    pub async fn start_in(config: Config) -> Server {
        // The tests' own reqwest clients need rustls' provider too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(jira_dora::app::run(config, listener, rx));
        Server { addr, stop, task, _data: None }
    }

    /// Starts the service on the embedded demo and waits for its first
    /// harvest.
    pub async fn demo() -> Server {
        let server = Server::start(demo_config()).await;
        harvested(&mut server.client().await).await;
        server
    }

    /// Starts the service on the demo without harvesting it: it holds no
    /// data.
    pub async fn demo_empty() -> Server {
        let config = config::load(
            Some("[harvest]\non_start = false\ninterval_minutes = 0\n"),
            &std::collections::HashMap::new(),
        )
        .unwrap();
        Server::start(config).await
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A native gRPC client.
    pub async fn client(&self) -> DoraMetricsClient<Channel> {
        for _ in 0..100 {
            if let Ok(c) = DoraMetricsClient::connect(format!("http://{}", self.addr)).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not come up");
    }

    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("clean shutdown").unwrap().unwrap();
    }
}

pub fn demo_config() -> Config {
    config::load(None, &std::collections::HashMap::new()).unwrap()
}

/// The demo without the definitions folder watcher, for the browser tests,
/// which never edit definitions and keep their screenshots stable.
pub fn demo_config_unwatched() -> Config {
    config::load(Some("[definitions]\nwatch_interval_ms = 0\n"), &std::collections::HashMap::new()).unwrap()
}

/// Waits until the demo's first harvest has filled the store.
pub async fn harvested(client: &mut DoraMetricsClient<Channel>) -> Vec<String> {
    for _ in 0..600 {
        let projects = client.list_projects(ListProjectsRequest {}).await.unwrap().into_inner().projects;
        if projects.len() >= 3 {
            return projects.into_iter().map(|p| p.project_key).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("demo harvest did not finish");
}
