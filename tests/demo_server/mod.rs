//! The real service with the embedded demo on 127.0.0.1:0, for the tests
//! that talk to it over HTTP (JSON, gRPC-Web, the dashboard) as well as
//! gRPC.

#![allow(dead_code)]

use std::time::Duration;

use jira_dora::config;
use jira_dora::proto::dora_metrics_client::DoraMetricsClient;
use jira_dora::proto::ListProjectsRequest;
use tokio::sync::watch;
use tonic::transport::Channel;

pub struct DemoServer {
    pub addr: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl DemoServer {
    /// Starts the service on the demo site and waits for its first harvest.
    pub async fn start() -> DemoServer {
        let server = Self::with_config(None).await;
        let mut client = server.grpc().await;
        for _ in 0..600 {
            let projects = client.list_projects(ListProjectsRequest {}).await.unwrap().into_inner().projects;
            if projects.len() >= 3 {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("demo harvest did not finish");
    }

    /// Starts the service on the demo site without harvesting it: it holds
    /// no data.
    pub async fn start_empty() -> DemoServer {
        Self::with_config(Some("[harvest]\non_start = false\ninterval_minutes = 0\n")).await
    }

    async fn with_config(toml: Option<&str>) -> DemoServer {
        let config = config::load(toml, &std::collections::HashMap::new()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(jira_dora::app::run(config, listener, rx));
        DemoServer { addr, stop, task }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A native gRPC client.
    pub async fn grpc(&self) -> DoraMetricsClient<Channel> {
        for _ in 0..100 {
            if let Ok(c) = DoraMetricsClient::connect(self.url("")).await {
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
