//! Just enough of the W3C WebDriver protocol, over reqwest, to drive
//! headless Chromium through `chromedriver`: sessions, navigation, elements,
//! scripts, window size, screenshots and the browser console log.
//!
//! (A full client such as fantoccini brings the `webdriver` crate with its
//! ICU data, `cookie`, `time` and a second `http`; this test needs a dozen
//! commands.)

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian's `chromium` and `chromium-driver` packages put the
/// programs; PATH is searched too.
fn find(program: &str, debian: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::iter::once(PathBuf::from(debian)))
        .find(|p| p.is_file())
}

/// `chromedriver` on a free loopback port, stopped on drop — after it has
/// closed the browsers of sessions still open (a failed test leaves them).
pub struct Driver {
    child: Child,
    port: u16,
    url: String,
    chromium: PathBuf,
    sessions: Arc<Mutex<Vec<String>>>,
}

impl Driver {
    /// Starts chromedriver; panics with what to install when Chromium or
    /// chromedriver is missing.
    pub async fn start() -> Driver {
        // reqwest is built without a default TLS crypto provider (plain HTTP
        // here, but the client wants one): pick ring, as the Jira client does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let missing = "the browser test needs headless Chromium and chromedriver: install Debian's packages with \
                       `apt-get install chromium chromium-driver` (.ci/run does)";
        let chromium = find("chromium", "/usr/bin/chromium").unwrap_or_else(|| panic!("chromium not found; {missing}"));
        let driver = find("chromedriver", "/usr/bin/chromedriver")
            .unwrap_or_else(|| panic!("chromedriver not found; {missing}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting chromedriver: {e}; {missing}"));
        let url = format!("http://127.0.0.1:{port}");
        let driver = Driver { child, port, url, chromium, sessions: Arc::default() };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await
                && r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true)
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    /// A headless Chromium session with a fresh profile in `profile`, that
    /// keeps every console message and saves downloads in
    /// `profile/downloads` without asking.
    pub async fn session(&self, profile: &Path, width: u32, height: u32) -> Session {
        let downloads = profile.join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": self.chromium, "args": args, "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            }},
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let http = reqwest::Client::new();
        let response: Value =
            http.post(format!("{}/session", self.url)).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let id = response["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {response}")).to_owned();
        self.sessions.lock().unwrap().push(id.clone());
        Session { http, base: format!("{}/session/{id}", self.url), id, open: Arc::clone(&self.sessions), downloads }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Blocking and by hand: no runtime may be left while a test unwinds.
        for id in self.sessions.lock().unwrap().drain(..) {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let request = format!("DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
                if stream.write_all(request.as_bytes()).is_ok() {
                    let _ = stream.read_to_end(&mut Vec::new());
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Session {
    http: reqwest::Client,
    base: String,
    id: String,
    open: Arc<Mutex<Vec<String>>>,
    downloads: PathBuf,
}

/// An element of the page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Session {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = response["value"].get("error") {
            panic!("WebDriver {method} {path}: {error}: {}", response["value"]["message"]);
        }
        response["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Element {
        let v = self.post("/element", json!({ "using": "css selector", "value": css })).await;
        Element(v[ELEMENT].as_str().unwrap_or_else(|| panic!("`{css}`: no element in {v}")).to_owned())
    }

    pub async fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({})).await;
    }

    /// Types keys into an element (WebDriver key codes, e.g. `\u{E012}` for
    /// the left arrow).
    pub async fn keys(&self, e: &Element, text: &str) {
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text })).await;
    }

    /// The rendered text of an element.
    pub async fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0)).await.as_str().unwrap_or_default().to_owned()
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", e.0)).await.as_str().map(str::to_owned)
    }

    /// Runs a script in the page and returns its result.
    pub async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// Runs an asynchronous script: it ends by calling `done(result)`
    /// (WebDriver's callback, the script's last argument).
    pub async fn script_async(&self, script: &str, args: Vec<Value>) -> Value {
        let body = format!("const done = arguments[arguments.length - 1];\n{script}");
        self.post("/execute/async", json!({ "script": body, "args": args })).await
    }

    /// Waits for a download named `name` to be complete and returns its
    /// bytes (the file is removed, so the same name can be awaited again).
    pub async fn download(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.join(name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let partial = std::fs::read_dir(&self.downloads)
                .unwrap()
                .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".crdownload"));
            if !partial && let Ok(bytes) = std::fs::read(&path) {
                std::fs::remove_file(&path).unwrap();
                return bytes;
            }
            let present: Vec<_> = std::fs::read_dir(&self.downloads).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert!(Instant::now() < deadline, "waited 30 s for the download `{name}`; the folder holds {present:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls a script until it returns `expected`.
    pub async fn wait_for(&self, script: &str, expected: Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.script(script).await;
            if got == expected {
                return;
            }
            assert!(Instant::now() < deadline, "waited 30 s for `{script}` to be {expected}, last {got}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `source` in every page loaded from now on, before the page's
    /// own scripts (a Chrome DevTools command through chromedriver).
    pub async fn before_every_page(&self, source: &str) {
        self.post(
            "/goog/cdp/execute",
            json!({ "cmd": "Page.addScriptToEvaluateOnNewDocument", "params": { "source": source } }),
        )
        .await;
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height })).await;
    }

    /// Makes the window as tall as the page at `width`, then saves a PNG.
    pub async fn full_page_screenshot(&self, width: u32, path: &Path) {
        self.resize(width, 800).await;
        // The window is taller than the page's viewport by the browser's frame.
        let sizes = self
            .script("return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
            .await;
        let height = sizes[0].as_u64().unwrap() + sizes[1].as_u64().unwrap_or(0);
        self.resize(width, height.max(600) as u32).await;
        let png = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// The console messages since the last call (chromedriver's log
    /// endpoint), as (level, message).
    pub async fn console(&self) -> Vec<(String, String)> {
        let entries = self.post("/se/log", json!({ "type": "browser" })).await;
        entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or_default().to_owned(),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
        self.open.lock().unwrap().retain(|id| *id != self.id);
    }
}
