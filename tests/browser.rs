//! The dashboard page in a real browser: headless Chromium, driven through chromedriver's
//! W3C WebDriver HTTP API, reads a real worker fed through the real RabbitMQ and
//! PostgreSQL, and follows the live stream without reloading.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian: `apt-get install -y
//! chromium chromium-driver`; `TEST_CHROMIUM` and `TEST_CHROMEDRIVER` override the paths).
//! When they are missing the test fails, it never skips.

mod common;

use std::panic::AssertUnwindSafe;

use common::browser::{Browser, Chromedriver, WAIT, finish};
use common::{TestEnv, event};
use futures::FutureExt;
use serde_json::{Value, json};

const PUBLICATION: &str = "org.ecpat.research.publication.recorded";

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
