//! A real browser for the dashboard's tests: headless Chromium, driven through
//! chromedriver's W3C WebDriver HTTP API.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian: `apt-get install -y
//! chromium chromium-driver`; `TEST_CHROMIUM` and `TEST_CHROMEDRIVER` override the paths).
//! When they are missing the test fails, it never skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::TestEnv;

pub const WAIT: Duration = Duration::from_secs(30);
/// How often a condition in the page is checked while waiting for it.
pub const POLL: Duration = Duration::from_millis(100);

/// The W3C name of an element reference in WebDriver answers.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn binary(variable: &str, default: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(variable).unwrap_or_else(|_| default.into()));
    assert!(
        path.is_file(),
        "the browser test needs {} (set {variable} to use another path); on Debian or Ubuntu install it with \
         `apt-get update && apt-get install -y chromium chromium-driver`",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A chromedriver process, killed when dropped (also when the test panics).
pub struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    pub async fn start() -> Chromedriver {
        let path = binary("TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let mut driver = Chromedriver { child, url: format!("http://127.0.0.1:{port}") };
        let start = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(format!("{}/status", driver.url)).await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return driver;
            }
            if let Some(exit) = driver.child.try_wait().unwrap() {
                panic!("chromedriver exited at start with {exit}");
            }
            assert!(start.elapsed() < WAIT, "chromedriver not ready after {WAIT:?}");
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session: a headless Chromium with a fresh profile of its own.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    profile: PathBuf,
}

impl Browser {
    pub async fn open(driver: &Chromedriver) -> Browser {
        let chromium = binary("TEST_CHROMIUM", "/usr/bin/chromium");
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let profile = std::env::temp_dir().join(format!("ecpat-browser-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&profile).unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--window-size=1280,1024", format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let http = reqwest::Client::new();
        let answer = command(http.post(format!("{}/session", driver.url)).json(&capabilities), "new session").await;
        let session = answer["sessionId"].as_str().expect("a session id").to_owned();
        Browser { http, session: format!("{}/session/{session}", driver.url), profile }
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        command(self.http.post(format!("{}{path}", self.session)).json(&body), path).await
    }

    pub async fn navigate(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn refresh(&self) {
        self.post("/refresh", json!({})).await;
    }

    /// Runs a script (a function body) in the page and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Polls a script until it returns `expected`; panics with its last answer after `WAIT`.
    pub async fn wait_for(&self, what: &str, script: &str, args: Value, expected: Value) {
        let start = Instant::now();
        loop {
            let value = self.execute(script, args.clone()).await;
            if value == expected {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "timed out after {WAIT:?} waiting for {what}: expected {expected}, got {value}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the element a CSS selector finds, as a user would.
    pub async fn click(&self, selector: &str) {
        let found = self.post("/element", json!({"using": "css selector", "value": selector})).await;
        let element = found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {selector}"));
        self.post(&format!("/element/{element}/click"), json!({})).await;
    }

    /// Types `text` into the element a CSS selector finds, after emptying it, as a user would.
    pub async fn type_text(&self, selector: &str, text: &str) {
        let found = self.post("/element", json!({"using": "css selector", "value": selector})).await;
        let element = found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {selector}"));
        self.post(&format!("/element/{element}/clear"), json!({})).await;
        self.post(&format!("/element/{element}/value"), json!({ "text": text })).await;
    }

    /// Saves a screenshot of the page for the user guides, as `target/screenshots/NAME.png`
    /// (`scripts/screenshots` copies them into docs/images/).
    pub async fn screenshot_for_guide(&self, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        self.screenshot(&dir.join(format!("{name}.png"))).await;
        assert!(dir.join(format!("{name}.png")).is_file(), "a screenshot of {name}");
    }

    /// Saves a screenshot of the page, to look at after a failed run.
    pub async fn screenshot(&self, path: &Path) {
        let answer = command(self.http.get(format!("{}/screenshot", self.session)), "screenshot").await;
        if let Some(png) = answer.as_str().and_then(decode_base64) {
            let _ = std::fs::write(path, png);
        }
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Sends a WebDriver command and returns its `value`; a WebDriver error fails the test.
async fn command(request: reqwest::RequestBuilder, what: &str) -> Value {
    let response = request.send().await.unwrap_or_else(|e| panic!("chromedriver unreachable ({what}): {e}"));
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_else(|e| panic!("chromedriver answered no JSON ({what}): {e}"));
    assert!(status.is_success(), "WebDriver {what} failed with {status}: {}", body["value"]);
    body["value"].clone()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Option<Vec<u8>> = text.bytes().filter(|&c| c != b'=').map(digit).collect();
    let digits = digits?;
    let mut bytes = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let word = chunk.iter().enumerate().fold(0u32, |word, (i, &d)| word | (u32::from(d) << (18 - 6 * i)));
        bytes.extend_from_slice(&word.to_be_bytes()[1..chunk.len()]);
    }
    Some(bytes)
}

/// After a scenario: a screenshot of the page if it failed, then the browser, chromedriver,
/// the worker, the broker objects and the database are gone, and a failure is passed on.
pub async fn finish(
    outcome: std::thread::Result<()>,
    label: &str,
    browser: Browser,
    driver: Chromedriver,
    env: TestEnv,
) {
    if outcome.is_err() {
        let path = std::env::temp_dir().join(format!("ecpat-browser-failure-{label}-{}.png", std::process::id()));
        browser.screenshot(&path).await;
        eprintln!("screenshot of the failed page: {}", path.display());
    }
    browser.close().await;
    drop(driver);
    env.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
