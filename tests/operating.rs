//! The binary as an operator runs it: `jira-dora purge` deletes every file
//! the service stored and nothing else, so the next start finds no
//! snapshot; the start banner names the scheme the port really speaks.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary with a clean environment: the demo on a free loopback port,
/// no harvest, JSON logs.
fn command(data_dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jira-dora"));
    cmd.env_clear()
        .current_dir(data_dir.parent().expect("the data dir has a parent"))
        .env("DORA_LISTEN", "127.0.0.1:0")
        .env("DORA_DATA_DIR", data_dir)
        .env("DORA_LOG_FORMAT", "json")
        .envs(env.iter().copied());
    cmd
}

/// A running service: its stdout and stderr lines as they come.
struct Service {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Service {
    fn start(data_dir: &Path, env: &[(&str, &str)]) -> Service {
        let mut child = command(data_dir, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for pipe in [Box::new(out) as Box<dyn std::io::Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Service { child, lines, seen: Vec::new() }
    }

    /// The first line (stdout or stderr) containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with `{needle}`; so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// SIGTERM once the service is running (it has looked for a snapshot:
    /// its signal handler is in place), and wait for a clean exit.
    fn stop(mut self) -> Vec<String> {
        self.wait_for("snapshot");
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill -TERM");
        let status = self.child.wait().expect("wait");
        self.seen.extend(self.lines.iter());
        assert!(status.success(), "exit {status}:\n{}", self.seen.join("\n"));
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("run the binary");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

const QUIET: &[(&str, &str)] = &[("DORA_CONFIG", "quiet.toml")];

#[test]
fn purge_deletes_every_snapshot_the_service_wrote_and_the_next_start_finds_none() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("quiet.toml"), "[harvest]\non_start = false\ninterval_minutes = 0\n").unwrap();
    let data = root.path().join("data");

    // Two runs write the current and the previous snapshot.
    for _ in 0..2 {
        let mut service = Service::start(&data, QUIET);
        service.wait_for("jira-dora listening on");
        service.stop();
    }
    // A snapshot that fails to load is set aside as `*.rejected`.
    std::fs::write(data.join("state.snapshot"), b"torn").unwrap();
    let mut service = Service::start(&data, QUIET);
    service.wait_for("snapshot rejected");
    service.stop();
    // A crash in the middle of a write leaves a temporary file; an
    // operator's own file stays.
    std::fs::write(data.join(".state.snapshot.Ab12Cd.tmp"), b"half").unwrap();
    std::fs::write(data.join("operator-notes.txt"), b"mine").unwrap();
    let before = names(&data);
    for name in ["state.snapshot", "state.snapshot.prev", "state.snapshot.rejected", ".state.snapshot.Ab12Cd.tmp"] {
        assert!(before.contains(&name.to_owned()), "{name} missing from {before:?}");
    }

    let output = run(command(&data, QUIET).arg("purge"));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(names(&data), ["operator-notes.txt"], "purge printed:\n{printed}");
    assert!(printed.contains("purged 4 file(s)"), "{printed}");
    assert!(printed.contains("kept") && printed.contains("operator-notes.txt"), "{printed}");

    let mut service = Service::start(&data, QUIET);
    service.wait_for("no snapshot yet: starting empty");
    let log = service.stop().join("\n");
    assert!(!log.contains("snapshot loaded"), "{log}");
}

#[test]
fn the_start_banner_says_https_when_the_port_speaks_tls() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (root.path().join("server.pem"), root.path().join("server.key"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let (cert_file, key_file) = (cert_file.to_str().unwrap().to_owned(), key_file.to_str().unwrap().to_owned());
    let env = [QUIET[0], ("DORA_TLS_CERT_FILE", cert_file.as_str()), ("DORA_TLS_KEY_FILE", key_file.as_str())];
    std::fs::write(root.path().join("quiet.toml"), "[harvest]\non_start = false\ninterval_minutes = 0\n").unwrap();

    let mut service = Service::start(&data, &env);
    let dashboard = service.wait_for("dashboard:");
    assert!(dashboard.contains("dashboard: https://127.0.0.1:") && !dashboard.contains("http://"), "{dashboard}");
    let try_line = service.wait_for("try:");
    assert!(try_line.contains(" https://127.0.0.1:") && !try_line.contains("--http2-prior-knowledge"), "{try_line}");
    service.stop();

    // And plain HTTP without TLS.
    let mut service = Service::start(&data, QUIET);
    let dashboard = service.wait_for("dashboard:");
    assert!(dashboard.contains("dashboard: http://127.0.0.1:"), "{dashboard}");
    service.stop();
}
