//! One `jira-dora` process of a cluster: started with a clean environment,
//! its address read from standard output, its JSON log lines kept, killed
//! on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jira_dora::proto::dora_metrics_client::DoraMetricsClient;
use serde_json::Value;
use tonic::transport::Channel;

pub struct Replica {
    child: Child,
    pub addr: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    pub fn spawn(name: &str, dir: &Path, env: &[(&str, String)]) -> Replica {
        std::fs::create_dir_all(dir).unwrap();
        let mut vars = vec![
            ("DORA_DATA_DIR", dir.join("data").display().to_string()),
            ("DORA_LOG", "info".to_owned()),
            ("DORA_METRICS", "true".to_owned()),
        ];
        vars.extend(env.iter().cloned());
        let p = super::process::start(name, dir, &vars, Duration::from_secs(60));
        Replica { child: p.child, addr: p.addr, stderr: p.stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn client(&self) -> DoraMetricsClient<Channel> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        DoraMetricsClient::new(channel)
    }

    /// Sends a signal by name (`KILL`, `STOP`, `CONT`, `TERM`).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().unwrap().success();
        assert!(ok, "kill -{name} {}", self.pid());
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit after SIGKILL.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The log events so far, as their `fields`.
    pub fn events(&self, message: &str) -> Vec<Value> {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["fields"]["message"] == message)
            .map(|e| e["fields"].clone())
            .collect()
    }

    /// How many log lines so far.
    pub fn log_len(&self) -> usize {
        self.stderr.lock().unwrap().len()
    }

    /// Log events from line `from` on, with `message`.
    pub fn events_since(&self, from: usize, message: &str) -> Vec<Value> {
        self.stderr.lock().unwrap()[from..]
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["fields"]["message"] == message)
            .map(|e| e["fields"].clone())
            .collect()
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> Option<String> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
        client.get(format!("http://{}/metrics", self.addr)).send().await.ok()?.text().await.ok()
    }

    /// A gauge's value from `/metrics` (the first line starting with
    /// `series`).
    pub async fn gauge(&self, series: &str) -> Option<f64> {
        let text = self.metrics().await?;
        text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
    }

    /// `Some(epoch)` when this replica says it leads.
    pub async fn leading(&self) -> Option<u64> {
        let leader = self.gauge("dora_cluster_role{role=\"leader\"}").await?;
        (leader == 1.0).then_some(())?;
        self.gauge("dora_cluster_epoch").await.map(|e| e as u64)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-CONT").arg(self.pid().to_string()).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
