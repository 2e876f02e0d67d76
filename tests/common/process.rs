//! The `jira-dora` binary as a child process: started with a clean
//! environment and JSON logs, its output kept line by line, its address
//! read from the start banner. Shared by the tests that restart, kill or
//! freeze the real binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Process {
    pub child: Child,
    /// `host:port` from the start banner.
    pub addr: String,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// The threads copying stdout and stderr; they end when the process does.
    pub readers: Vec<JoinHandle<()>>,
}

/// Starts the binary in `cwd` with only `DORA_LISTEN=127.0.0.1:0`,
/// `DORA_LOG_FORMAT=json` and `env` set, and waits up to `wait` for its
/// address. Panics with its stderr when it exits or prints no address.
pub fn start(name: &str, cwd: &Path, env: &[(&str, String)], wait: Duration) -> Process {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jira-dora"));
    cmd.env_clear()
        .current_dir(cwd)
        .env("DORA_LISTEN", "127.0.0.1:0")
        .env("DORA_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the binary");
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    for (pipe, sink) in [
        (Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>, Arc::clone(&stderr)),
        (Box::new(child.stdout.take().unwrap()), Arc::clone(&stdout)),
    ] {
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        }));
    }
    let deadline = Instant::now() + wait;
    let addr = loop {
        if let Some(addr) = stdout.lock().unwrap().iter().find_map(|l| {
            l.strip_prefix("jira-dora listening on ").and_then(|r| r.split_whitespace().next()).map(str::to_owned)
        }) {
            break addr;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited early ({status}); stderr:\n{}", stderr.lock().unwrap().join("\n"));
        }
        assert!(
            Instant::now() < deadline,
            "{name}: no address printed; stderr:\n{}",
            stderr.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    Process { child, addr, stdout, stderr, readers }
}
