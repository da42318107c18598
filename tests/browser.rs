//! The dashboard page in a real browser: headless Chromium, driven through chromedriver's
//! W3C WebDriver HTTP API, reads a real worker fed through the real RabbitMQ and
//! PostgreSQL, and follows the live stream without reloading.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian: `apt-get install -y
//! chromium chromium-driver`; `TEST_CHROMIUM` and `TEST_CHROMEDRIVER` override the paths).
//! When they are missing the test fails, it never skips.

mod common;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{TestEnv, event};
use futures::FutureExt;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
/// How often a condition in the page is checked while waiting for it.
const POLL: Duration = Duration::from_millis(100);
const PUBLICATION: &str = "org.ecpat.research.publication.recorded";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn publication(id: &str, publication_id: &str, scope: &str, published_on: &str) -> Value {
    event(
        "urn:ecpat:fr:research-team",
        id,
        "2021-06-01T10:00:00Z",
        PUBLICATION,
        json!({
            "publication_id": publication_id, "title": "Sexual exploitation of children online",
            "scope": scope, "themes": ["online"], "contributed": true, "published_on": published_on,
        }),
    )
}

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
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start() -> Chromedriver {
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
struct Browser {
    http: reqwest::Client,
    session: String,
    profile: PathBuf,
}

impl Browser {
    async fn open(driver: &Chromedriver) -> Browser {
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

    async fn post(&self, path: &str, body: Value) -> Value {
        command(self.http.post(format!("{}{path}", self.session)).json(&body), path).await
    }

    async fn navigate(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn refresh(&self) {
        self.post("/refresh", json!({})).await;
    }

    /// Runs a script (a function body) in the page and returns what it returns.
    async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Polls a script until it returns `expected`; panics with its last answer after `WAIT`.
    async fn wait_for(&self, what: &str, script: &str, args: Value, expected: Value) {
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
    async fn click(&self, selector: &str) {
        let found = self.post("/element", json!({"using": "css selector", "value": selector})).await;
        let element = found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {selector}"));
        self.post(&format!("/element/{element}/click"), json!({})).await;
    }

    /// Saves a screenshot of the page for the user guides, as `target/screenshots/NAME.png`
    /// (`scripts/screenshots` copies them into docs/images/).
    async fn screenshot_for_guide(&self, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        self.screenshot(&dir.join(format!("{name}.png"))).await;
        assert!(dir.join(format!("{name}.png")).is_file(), "a screenshot of {name}");
    }

    /// Saves a screenshot of the page, to look at after a failed run.
    async fn screenshot(&self, path: &Path) {
        let answer = command(self.http.get(format!("{}/screenshot", self.session)), "screenshot").await;
        if let Some(png) = answer.as_str().and_then(decode_base64) {
            let _ = std::fs::write(path, png);
        }
    }

    async fn close(self) {
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

/// The API's total of one indicator for one period.
async fn api_value(env: &mut TestEnv, worker: usize, code: &str, period: &str) -> Value {
    let (status, body) = env.worker(worker).get(&format!("/api/v1/indicators/{code}?period={period}")).await;
    assert_eq!(status, 200);
    body["value"].clone()
}

const VALUE: &str = "const node = document.querySelector(`[data-code=\"${arguments[0]}\"] .value`); \
                     return node ? node.textContent : null;";

#[tokio::test]
async fn the_dashboard_shows_the_api_values_and_follows_the_stream_without_reloading() {
    let driver = Chromedriver::start().await;
    let mut env = TestEnv::new("browser").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let browser = Browser::open(&driver).await;

    let outcome = AssertUnwindSafe(dashboard_scenario(&mut env, w, &browser)).catch_unwind().await;
    finish(outcome, "dashboard", browser, driver, env).await;
}

/// After a scenario: a screenshot of the page if it failed, then the browser, chromedriver,
/// the worker, the broker objects and the database are gone, and a failure is passed on.
async fn finish(outcome: std::thread::Result<()>, label: &str, browser: Browser, driver: Chromedriver, env: TestEnv) {
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

async fn dashboard_scenario(env: &mut TestEnv, w: usize, browser: &Browser) {
    // Arrange: two publications counted before the page opens.
    env.publish(&[
        publication("e1", "pub-1", "global", "2019-04-30"),
        publication("e2", "pub-2", "thematic", "2020-01-15"),
    ])
    .await;
    env.wait_for_counts(2, 0, WAIT).await;
    let (status, list) = env.worker(w).get("/api/v1/indicators").await;
    assert_eq!(status, 200);
    let ke1 = &list["indicators"][0];
    assert_eq!((&ke1["code"], &ke1["value"]), (&json!("KE1"), &json!(2)));

    // The page shows the API's value once loaded, and says it is live.
    browser.navigate(&format!("http://{}/", env.worker(w).http)).await;
    let shown = json!(ke1["value"].to_string());
    browser.wait_for("KE1's value from the API", VALUE, json!(["KE1"]), shown).await;
    browser
        .wait_for(
            "the live status",
            "return document.getElementById('status').className",
            json!([]),
            json!("status status-live"),
        )
        .await;

    // In French by default, the 13 indicators under the four objectives, in the API's order.
    let outline = browser
        .execute(
            "return {lang: document.documentElement.lang, sections: [...document.querySelectorAll('main section')].map(s => \
             [s.querySelector('h2').textContent, [...s.querySelectorAll('article[data-code] h3')].map(h => h.closest('article').dataset.code)])}",
            json!([]),
        )
        .await;
    assert_eq!(
        outline,
        json!({"lang": "fr", "sections": [
            ["Connaissances et données probantes", ["KE1", "KE2", "KE3"]],
            ["Plaidoyer et partenariats", ["AP1", "AP2", "AP3", "AP4"]],
            ["Voix des enfants et des survivants", ["CV1", "CV2", "CV3"]],
            ["Développement du réseau", ["ND1", "ND2", "ND3"]],
        ]})
    );

    // Act: one more KE1 publication while the page stays open.
    browser.execute("window.__marker = 'before-publish'", json!([])).await;
    env.publish(&[publication("e3", "pub-3", "global", "2021-03-01")]).await;
    env.wait_for_counts(3, 0, WAIT).await;
    let updated = api_value(env, w, "KE1", "all").await;
    assert_eq!(updated, json!(3));

    // The value and then its breakdown change in place, without a reload.
    browser.wait_for("KE1's new value from the stream", VALUE, json!(["KE1"]), json!(updated.to_string())).await;
    browser
        .wait_for(
            "KE1's re-fetched breakdown",
            "return [...document.querySelectorAll('[data-code=\"KE1\"] .breakdowns tbody tr')].map(r => r.textContent)",
            json!([]),
            json!(["Globale2", "Thématique1"]),
        )
        .await;
    let same_page =
        browser.execute("return [performance.getEntriesByType('navigation').length, window.__marker]", json!([])).await;
    assert_eq!(same_page, json!([1, "before-publish"]), "the page must update without reloading");

    // The period selector shows one year's values.
    browser.click("#period option[value=\"2019\"]").await;
    let in_2019 = api_value(env, w, "KE1", "2019").await;
    browser.wait_for("KE1's value for 2019", VALUE, json!(["KE1"]), json!(in_2019.to_string())).await;

    // The language toggle switches the page to English and is remembered.
    browser.click("#lang-toggle").await;
    let english = json!(["en", ke1["title_en"]]);
    let language = "const t = document.querySelector('[data-code=\"KE1\"] h3 .title'); \
         return [document.documentElement.lang, t ? t.textContent : null]";
    browser.wait_for("the page in English", language, json!([]), english.clone()).await;
    browser.refresh().await;
    browser.wait_for("English after a reload", language, json!([]), english).await;

    browser.screenshot_for_guide("dashboard-en").await;

    // The language is in the page's address; `?lang=` there wins over the last choice.
    let address = "return new URL(location.href).searchParams.get('lang')";
    assert_eq!(browser.execute(address, json!([])).await, json!("en"));
    browser.navigate(&format!("http://{}/?period=2019&lang=fr", env.worker(w).http)).await;
    browser.wait_for("French from the address", language, json!([]), json!(["fr", ke1["title"]])).await;

    // "Data as of", the exports, the report, and each value's evidence.
    browser
        .wait_for(
            "the data-as-of line",
            "return document.getElementById('as-of').textContent.startsWith('Données au ')",
            json!([]),
            json!(true),
        )
        .await;
    let links = browser
        .execute(
            "const href = (s) => { const u = new URL(document.querySelector(s).href); return [u.pathname, u.search, u.hash]; }; \
             return [href('#csv-link'), href('#xlsx-link'), href('#report-link'), href('[data-code=\"KE1\"] .value-link'), \
             href('[data-code=\"KE1\"] .evidence-json')]",
            json!([]),
        )
        .await;
    let framework = "framework=ecpat-2018-2021";
    assert_eq!(
        links,
        json!([
            ["/api/v1/export.csv", format!("?{framework}&period=2019"), ""],
            ["/api/v1/export.xlsx", format!("?{framework}&period=2019&lang=fr"), ""],
            ["/report", format!("?{framework}&period=2019&lang=fr"), ""],
            ["/report", format!("?{framework}&period=2019&lang=fr"), "#evidence-KE1"],
            ["/api/v1/indicators/KE1/records", format!("?{framework}&period=2019"), ""],
        ])
    );
    // Following KE1's value opens the report at its evidence: the records of the API.
    browser.click("[data-code=\"KE1\"] .value-link").await;
    let (_, evidence) = env.worker(w).get("/api/v1/indicators/KE1/records?period=2019").await;
    let records = evidence["records"].as_array().unwrap().len();
    assert!(records > 0);
    browser
        .wait_for(
            "KE1's evidence in the report",
            "const annex = document.getElementById('evidence-KE1');              return annex ? [location.pathname, annex.querySelectorAll('tr.evidence').length] : null",
            json!([]),
            json!(["/report", records]),
        )
        .await;
    browser.navigate(&format!("http://{}/report?period=2019&lang=fr", env.worker(w).http)).await;
    browser.wait_for("the report", "return !!document.getElementById('evidence-KE1')", json!([]), json!(true)).await;
    browser.screenshot_for_guide("report-fr").await;
}

/// A second framework, loaded beside the default one: five years, one objective, two
/// indicators over publications, one with a baseline and targets.
const SECOND_FRAMEWORK: &str = r#"
id = "test-2022-2026"
title = { fr = "Cadre de test 2022-2026", en = "Test framework 2022-2026" }
years = [2022, 2026]

[[objectives]]
code = "research"
title = { fr = "Recherche", en = "Research" }

[[indicators]]
code = "RS1"
objective = "research"
title = { fr = "Études nationales publiées", en = "National studies published" }
record = "publication"
when = 'scope == "national"'
value = "count"
date = "published_on"
breakdowns = [{ name = "country", field = "countries" }]
baseline = 1
targets = { 2023 = 4, "2022-2026" = 10 }

[[indicators]]
code = "RS2"
objective = "research"
title = { fr = "Publications", en = "Publications" }
record = "publication"
value = "count"
date = "published_on"
"#;

const SECOND: &str = "test-2022-2026";

/// A national publication about `countries` (counted in RS1 of the second framework).
fn national(id: &str, publication_id: &str, countries: &[&str], published_on: &str) -> Value {
    event(
        "urn:ecpat:fr:research-team",
        id,
        "2023-06-01T10:00:00Z",
        PUBLICATION,
        json!({
            "publication_id": publication_id, "title": "National study",
            "scope": "national", "countries": countries, "themes": ["online"], "contributed": true,
            "published_on": published_on,
        }),
    )
}

/// What a card of the page shows of its baseline, target and progress (null when absent).
const GOALS: &str = "const card = document.querySelector(`[data-code=\"${arguments[0]}\"]`); \
    const text = (selector) => { const node = card && card.querySelector(selector); return node ? node.textContent : null; }; \
    const bar = card && card.querySelector('.target progress'); \
    return {value: text('.value'), baseline: text('.baseline'), target: text('.target-value'), \
            progress: text('.progress-text'), bar: bar ? [bar.value, bar.max] : null, none: text('.no-target')};";

#[tokio::test]
async fn the_dashboard_shows_the_framework_picked_in_its_selector_and_follows_it_live() {
    let driver = Chromedriver::start().await;
    let mut env = TestEnv::new("browser_framework").await;
    let document = ecpat_indicators::framework::document::parse(SECOND_FRAMEWORK).expect("the test framework reads");
    ecpat_indicators::store::recompute::load(&env.pool, document, SECOND_FRAMEWORK)
        .await
        .expect("the test framework loads");
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let browser = Browser::open(&driver).await;

    let outcome = AssertUnwindSafe(framework_scenario(&mut env, w, &browser)).catch_unwind().await;
    finish(outcome, "framework", browser, driver, env).await;
}

async fn framework_scenario(env: &mut TestEnv, w: usize, browser: &Browser) {
    // Arrange: two national publications in 2023 and a global one in 2024, through the worker.
    env.publish(&[
        national("n1", "nat-1", &["fr"], "2023-03-01"),
        national("n2", "nat-2", &["be"], "2023-09-15"),
        publication("g1", "glob-1", "global", "2024-02-01"),
    ])
    .await;
    env.wait_for_counts(3, 0, WAIT).await;
    let (status, list) = env.worker(w).get(&format!("/api/v1/indicators?framework={SECOND}&period=2023")).await;
    assert_eq!(status, 200);
    let shown: Vec<Value> =
        list["indicators"].as_array().unwrap().iter().map(|i| json!([i["code"], i["value"], i["target"]])).collect();
    assert_eq!(shown, vec![json!(["RS1", 2, 4]), json!(["RS2", 2, null])]);

    // The page opens on the default framework; the selector lists both by their titles.
    browser.navigate(&format!("http://{}/", env.worker(w).http)).await;
    browser.wait_for("KE1 of the default framework", VALUE, json!(["KE1"]), json!("1")).await;
    let picker = "const s = document.getElementById('framework'); \
                  return [s.labels[0].textContent, s.value, [...s.options].map(o => [o.value, o.textContent])]";
    browser
        .wait_for(
            "the framework selector",
            picker,
            json!([]),
            json!([
                "Cadre stratégique",
                "ecpat-2018-2021",
                [
                    ["ecpat-2018-2021", "Cadre stratégique du réseau ECPAT 2018-2021"],
                    [SECOND, "Cadre de test 2022-2026"],
                ]
            ]),
        )
        .await;
    browser.execute("window.__marker = 'before-switch'", json!([])).await;

    // Act: pick the second framework.
    browser.click(&format!("#framework option[value=\"{SECOND}\"]")).await;

    // Its objective and its two indicators replace the default framework's, with its values.
    let outline = "return [...document.querySelectorAll('main section')].map(s => \
         [s.querySelector('h2').textContent, [...s.querySelectorAll('article[data-code]')].map(a => a.dataset.code)])";
    browser.wait_for("the second framework's cards", outline, json!([]), json!([["Recherche", ["RS1", "RS2"]]])).await;
    browser.wait_for("RS1 for all years", VALUE, json!(["RS1"]), json!("2")).await;
    browser.wait_for("RS2 for all years", VALUE, json!(["RS2"]), json!("3")).await;
    let title =
        browser.execute("return document.querySelector('[data-code=\"RS1\"] h3 .title').textContent", json!([])).await;
    assert_eq!(title, json!("Études nationales publiées"));
    let search = browser.execute("return location.search", json!([])).await;
    assert_eq!(search, json!(format!("?framework={SECOND}")), "the framework is kept in the page's address");

    // The period selector offers all years, the framework's span and its years.
    let periods = browser
        .execute(
            "return [...document.querySelectorAll('#period option')].map(o => [o.value, o.textContent])",
            json!([]),
        )
        .await;
    assert_eq!(
        periods,
        json!([
            ["all", "Toutes les années"],
            ["2022-2026", "2022-2026 (toute la stratégie)"],
            ["2022", "2022"],
            ["2023", "2023"],
            ["2024", "2024"],
            ["2025", "2025"],
            ["2026", "2026"],
        ])
    );

    // No target for all years, but the baseline.
    browser
        .wait_for(
            "RS1's baseline without a target",
            GOALS,
            json!(["RS1"]),
            json!({"value": "2", "baseline": "1", "target": null, "progress": null, "bar": null,
                   "none": "Pas d’objectif pour cette période"}),
        )
        .await;

    // 2023 has a target: the card shows it and the progress towards it.
    browser.click("#period option[value=\"2023\"]").await;
    browser
        .wait_for(
            "RS1's target and progress in 2023",
            GOALS,
            json!(["RS1"]),
            json!({"value": "2", "baseline": "1", "target": "4", "progress": "2 / 4 (50\u{a0}%)", "bar": [2, 4],
                   "none": null}),
        )
        .await;
    let links = browser
        .execute(
            "return [document.querySelector('[data-code=\"RS1\"] .evidence-json').getAttribute('href'), \
             document.getElementById('csv-link').getAttribute('href')]",
            json!([]),
        )
        .await;
    assert_eq!(
        links,
        json!([
            format!("/api/v1/indicators/RS1/records?framework={SECOND}&period=2023"),
            format!("/api/v1/export.csv?framework={SECOND}&period=2023"),
        ])
    );

    // A new national publication of 2023 updates the value and the progress live.
    env.publish(&[national("n3", "nat-3", &["de"], "2023-11-20")]).await;
    env.wait_for_counts(4, 0, WAIT).await;
    let (status, one) = env.worker(w).get(&format!("/api/v1/indicators/RS1?framework={SECOND}&period=2023")).await;
    assert_eq!((status, &one["value"]), (200, &json!(3)));
    browser
        .wait_for(
            "RS1's new value and progress from the stream",
            GOALS,
            json!(["RS1"]),
            json!({"value": "3", "baseline": "1", "target": "4", "progress": "3 / 4 (75\u{a0}%)", "bar": [3, 4],
                   "none": null}),
        )
        .await;
    // Its breakdown is fetched again (equal values are listed in the order of their codes).
    browser
        .wait_for(
            "RS1's re-fetched breakdown",
            "return [...document.querySelectorAll('[data-code=\"RS1\"] .breakdowns tbody th')].map(h => h.textContent)",
            json!([]),
            json!(["Belgique (BE)", "Allemagne (DE)", "France (FR)"]),
        )
        .await;
    let same_page =
        browser.execute("return [performance.getEntriesByType('navigation').length, window.__marker]", json!([])).await;
    assert_eq!(same_page, json!([1, "before-switch"]), "the page must update without reloading");

    // The span shows the whole strategy's target.
    browser.click("#period option[value=\"2022-2026\"]").await;
    browser
        .wait_for(
            "RS1's target over the span",
            GOALS,
            json!(["RS1"]),
            json!({"value": "3", "baseline": "1", "target": "10", "progress": "3 / 10 (30\u{a0}%)", "bar": [3, 10],
                   "none": null}),
        )
        .await;

    // A reload keeps the framework and the period.
    browser.refresh().await;
    // Four publications over 2022-2026, the fourth one live.
    browser.wait_for("RS2 after a reload", VALUE, json!(["RS2"]), json!("4")).await;
    let kept = browser
        .execute(
            "return [document.getElementById('framework').value, document.getElementById('period').value]",
            json!([]),
        )
        .await;
    assert_eq!(kept, json!([SECOND, "2022-2026"]));
}
