//! Recording by hand in the dashboard, in a real browser (headless Chromium): a person
//! enters the write token, fills in the form of a UN submission with a mistake, sees the
//! worker's error next to the field, corrects it and sees ND1 change live; then corrects the
//! record from its evidence and withdraws it. Real worker, RabbitMQ and PostgreSQL.
//! Screenshots of the form go to `target/screenshots/`, for the user guides.

mod common;

use std::panic::AssertUnwindSafe;

use common::TestEnv;
use common::browser::{Browser, Chromedriver, WAIT, finish};
use futures::FutureExt;
use serde_json::{Value, json};

const TOKEN: &str = "a-write-token-for-the-forms-test";

const VALUE: &str = "const node = document.querySelector(`[data-code=\"${arguments[0]}\"] .value`); \
                     return node ? node.textContent : null;";

/// ND1's breakdown as the page shows it: [level, value] rows.
const ND1_LEVELS: &str = "return [...document.querySelectorAll('[data-code=\"ND1\"] .breakdowns tbody tr')]\
                          .map(r => [r.querySelector('th').textContent, r.querySelector('td').textContent])";

/// Sets an input's value as the browser's own date picker would, and says it changed.
const FILL: &str = "const input = document.querySelector(arguments[0]); input.value = arguments[1]; \
                    input.dispatchEvent(new Event('input', {bubbles: true})); \
                    input.dispatchEvent(new Event('change', {bubbles: true}));";

/// The error shown next to a field, whether its input is marked invalid and described by
/// it, and whether it has the focus.
const FIELD_ERROR: &str = "const error = document.getElementById(`error-${arguments[0]}`); \
    const input = document.getElementById(`field-${arguments[0]}`); \
    return {shown: !error.hidden && error.textContent.includes(arguments[1]), \
            invalid: input.getAttribute('aria-invalid'), \
            described: input.getAttribute('aria-describedby').split(' ').includes(error.id), \
            focused: document.activeElement === input};";

#[tokio::test]
async fn a_person_records_corrects_and_withdraws_a_un_submission_from_the_dashboard() {
    let driver = Chromedriver::start().await;
    let mut env = TestEnv::new("forms").await;
    let w = env.spawn_worker_with(&[("ECPAT_WRITE_TOKEN", TOKEN)]);
    env.worker(w).wait_ready(WAIT).await;
    let browser = Browser::open(&driver).await;

    let outcome = AssertUnwindSafe(forms_scenario(&mut env, w, &browser)).catch_unwind().await;
    finish(outcome, "forms", browser, driver, env).await;
}

async fn forms_scenario(env: &mut TestEnv, w: usize, browser: &Browser) {
    let http = env.worker(w).http.clone();
    browser.navigate(&format!("http://{http}/")).await;
    browser.wait_for("ND1 before anything is recorded", VALUE, json!(["ND1"]), json!("0")).await;
    browser.execute("window.__marker = 'before-recording'", json!([])).await;

    // The record panel asks for the token; a wrong one shows the 401 message.
    browser.click("#record-toggle").await;
    browser
        .wait_for("the token field", "return !!document.getElementById('write-token')", json!([]), json!(true))
        .await;
    browser.type_text("#write-token", "not-the-token").await;
    browser.click("#token-form button").await;
    browser
        .wait_for(
            "the wrong token's message",
            "return document.getElementById('record-status').textContent",
            json!([]),
            json!("Jeton refusé (401) : the write token is wrong"),
        )
        .await;
    browser.type_text("#write-token", TOKEN).await;
    browser.click("#token-form button").await;
    browser
        .wait_for("the record type chooser", "return !!document.getElementById('record-type')", json!([]), json!(true))
        .await;
    let kept = browser
        .execute("return [sessionStorage.getItem('ecpat-indicators.write-token'), location.href]", json!([]))
        .await;
    assert_eq!(kept[0], json!(TOKEN), "the token is kept for the tab");
    assert!(!kept[1].as_str().unwrap().contains(TOKEN), "the token is never in the address");

    // A form for every record type entered by hand, each input with its label.
    let forms = browser
        .execute(
            "const select = document.getElementById('record-type');              return [...select.options].map(o => { select.value = o.value; select.dispatchEvent(new Event('change'));                const inputs = [...document.querySelectorAll('#record-form input, #record-form select')];                return [o.value, inputs.length > 0, inputs.filter(i => !i.labels || i.labels.length === 0).map(i => i.name)]; })",
            json!([]),
        )
        .await;
    // Every record type the generator makes but social posts (which the collector
    // records), then facts.
    let types = common::generate::RECORD_TYPES.iter().filter(|t| **t != "social_post").chain(&["fact"]);
    let expected: Vec<Value> = types.map(|t| json!([t, true, []])).collect();
    assert_eq!(forms, json!(expected));

    // The UN submission form, generated from the record's schema, with French labels.
    browser.click("#record-type option[value=\"un_submission\"]").await;
    browser
        .wait_for(
            "the UN submission form",
            "const f = document.getElementById('record-form'); return f ? f.dataset.recordType : null",
            json!([]),
            json!("un_submission"),
        )
        .await;
    let fields = browser
        .execute(
            "return [...document.querySelectorAll('#record-form [data-field]')].map(f => { \
               const input = f.querySelector('input, select'); \
               const label = f.querySelector('label, legend'); \
               return [f.dataset.field, input.tagName.toLowerCase() + ':' + (input.type || ''), \
                       !!(input.labels && input.labels.length), label.textContent.trim()]; })",
            json!([]),
        )
        .await;
    assert_eq!(
        fields,
        json!([
            ["submission_id", "input:text", true, "Identifiant de la soumission *"],
            ["country", "input:text", true, "Pays *"],
            ["cycle", "input:text", true, "Cycle"],
            ["document", "input:text", true, "Document"],
            ["in_alliance", "input:checkbox", true, "En alliance"],
            ["mechanism", "select:select-one", true, "Mécanisme *"],
            ["members", "input:text", true, "Membres *"],
            ["submitted_on", "input:date", true, "Date de soumission *"],
        ])
    );
    let completion =
        browser.execute("return [document.getElementById('field-country').list.options.length]", json!([])).await;
    assert_eq!(completion, json!([250]), "countries are completed from the ISO list");

    // Act: a form with a country that is not ISO.
    browser.type_text("#field-submission_id", "upr-fr-2019").await;
    browser.type_text("#field-country", "ZZ").await;
    browser.click("#field-mechanism option[value=\"upr\"]").await;
    browser.type_text("#field-members", "ecpat-france; ecpat-belgium").await;
    browser.execute(FILL, json!(["#field-submitted_on", "2019-05-06"])).await;

    // In English and back, what was typed stays.
    let form_state = "const v = (n) => document.getElementById(`field-${n}`); \
        const label = document.querySelector('label[for=\"field-country\"]'); if (!label || !v('members')) return null; \
        return [label.textContent, v('submission_id').value, v('country').value, v('members').value, \
                v('submitted_on').value]";
    browser.click("#lang-toggle").await;
    let typed = ["upr-fr-2019", "ZZ", "ecpat-france; ecpat-belgium", "2019-05-06"];
    browser
        .wait_for(
            "the form in English",
            form_state,
            json!([]),
            json!(["Country *", typed[0], typed[1], typed[2], typed[3]]),
        )
        .await;
    browser.click("#lang-toggle").await;
    browser
        .wait_for(
            "the form in French",
            form_state,
            json!([]),
            json!(["Pays *", typed[0], typed[1], typed[2], typed[3]]),
        )
        .await;
    browser.click("#record-form button[type=\"submit\"]").await;

    // The worker's error is next to the country, which has the focus; the values stay.
    let expected = json!({"shown": true, "invalid": "true", "described": true, "focused": true});
    browser.wait_for("the country's error", FIELD_ERROR, json!(["country", "ZZ"]), expected).await;
    browser.screenshot_for_guide("record-form-error").await;
    let typed = browser
        .execute(
            "return ['submission_id', 'members', 'submitted_on'].map(n => document.getElementById(`field-${n}`).value)",
            json!([]),
        )
        .await;
    assert_eq!(typed, json!(["upr-fr-2019", "ecpat-france; ecpat-belgium", "2019-05-06"]));
    assert_eq!(nd1_shown(browser).await, json!("0"), "nothing was recorded");

    // Corrected (the error goes) and sent: ND1 changes on the page, without a reload.
    browser.type_text("#field-country", "fr").await;
    let cleared = json!({"shown": false, "invalid": null, "described": true, "focused": true});
    browser.wait_for("the country's error gone", FIELD_ERROR, json!(["country", "ZZ"]), cleared).await;
    browser.screenshot_for_guide("record-form-filled").await;
    browser.click("#record-form button[type=\"submit\"]").await;
    browser.wait_for("ND1 after recording", VALUE, json!(["ND1"]), json!("1")).await;
    browser.wait_for("ND1's level", ND1_LEVELS, json!([]), json!([["Mondial", "1"]])).await;
    browser
        .wait_for(
            "the confirmation",
            "return document.getElementById('record-status').textContent",
            json!([]),
            json!("Enregistré. Compté."),
        )
        .await;
    let (_, evidence) = env.worker(w).get("/api/v1/indicators/ND1/records").await;
    assert_eq!(evidence["records"][0]["record"]["country"], json!("FR"));
    assert_eq!(evidence["records"][0]["events"][0]["source"], json!("urn:ecpat:dashboard"));

    // A correction from the evidence of ND1's value: the form opens with the record's values.
    browser.click("article[data-code=\"ND1\"] button.evidence-correct").await;
    browser
        .wait_for("ND1's records", "return document.querySelectorAll('#evidence-list li').length", json!([]), json!(1))
        .await;
    browser.click("#evidence-list li button.correct").await;
    let prefilled = "const v = (n) => document.getElementById(`field-${n}`); \
        return [v('submission_id').value, v('submission_id').readOnly, v('country').value, v('mechanism').value, \
                v('members').value, v('submitted_on').value]";
    browser
        .wait_for(
            "the prefilled form",
            prefilled,
            json!([]),
            json!(["upr-fr-2019", true, "FR", "upr", "ecpat-france; ecpat-belgium", "2019-05-06"]),
        )
        .await;
    // Another state and a regional mechanism: no total changes, the breakdown does.
    browser.type_text("#field-country", "BE").await;
    browser.click("#field-mechanism option[value=\"council_of_europe\"]").await;
    browser.click("#record-form button[type=\"submit\"]").await;
    browser.wait_for("ND1's level after the correction", ND1_LEVELS, json!([]), json!([["Régional", "1"]])).await;
    browser.wait_for("ND1 after the correction", VALUE, json!(["ND1"]), json!("1")).await;
    browser
        .wait_for(
            "the correction's confirmation",
            "return document.getElementById('record-status').textContent",
            json!([]),
            json!("Enregistré. Compté."),
        )
        .await;
    let (_, evidence) = env.worker(w).get("/api/v1/indicators/ND1/records").await;
    let record = &evidence["records"][0];
    assert_eq!((&record["record"]["country"], record["events"].as_array().unwrap().len()), (&json!("BE"), 2));

    // A withdrawal, once confirmed: cancelling changes nothing, confirming takes ND1 back.
    browser.click("#evidence-list li button.withdraw").await;
    browser
        .wait_for(
            "the confirmation dialog",
            "return !!document.querySelector('#withdraw-dialog[open]')",
            json!([]),
            json!(true),
        )
        .await;
    browser.click("#withdraw-cancel").await;
    browser
        .wait_for("the dialog closed", "return !!document.getElementById('withdraw-dialog')", json!([]), json!(false))
        .await;
    assert_eq!(nd1_shown(browser).await, json!("1"));
    browser.click("#evidence-list li button.withdraw").await;
    browser
        .wait_for(
            "the confirmation dialog",
            "return !!document.querySelector('#withdraw-dialog[open]')",
            json!([]),
            json!(true),
        )
        .await;
    browser.click("#withdraw-confirm").await;
    browser.wait_for("ND1 after the withdrawal", VALUE, json!(["ND1"]), json!("0")).await;
    browser
        .wait_for("no record left", "return document.querySelectorAll('#evidence-list li').length", json!([]), json!(0))
        .await;

    let same_page =
        browser.execute("return [performance.getEntriesByType('navigation').length, window.__marker]", json!([])).await;
    assert_eq!(same_page, json!([1, "before-recording"]), "the page must update without reloading");
}

/// ND1's value on the page now.
async fn nd1_shown(browser: &Browser) -> Value {
    browser.execute(VALUE, json!(["ND1"])).await
}

#[tokio::test]
async fn without_a_write_token_the_record_panel_says_recording_is_not_enabled() {
    let driver = Chromedriver::start().await;
    let mut env = TestEnv::new("forms_off").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let browser = Browser::open(&driver).await;

    let outcome = AssertUnwindSafe(async {
        browser.navigate(&format!("http://{}/?lang=en#record", env.worker(w).http)).await;
        browser
            .wait_for(
                "the panel's message",
                "const s = document.getElementById('record-status'); return s ? s.textContent : null",
                json!([]),
                json!("Recording by hand is not enabled on this server (ECPAT_WRITE_TOKEN is not set)."),
            )
            .await;
        let token = browser.execute("return !!document.getElementById('write-token')", json!([])).await;
        assert_eq!(token, json!(false), "no token is asked for");

        // Also behind the API token, which the page offers when it asks.
        let guarded = env.spawn_worker_with(&[("ECPAT_API_TOKEN", "an-api-token-for-the-forms-test")]);
        env.worker(guarded).wait_ready(WAIT).await;
        let http = env.worker(guarded).http.clone();
        browser.navigate(&format!("http://{http}/?lang=en&access_token=an-api-token-for-the-forms-test#record")).await;
        browser
            .wait_for(
                "the panel's message behind the API token",
                "const s = document.getElementById('record-status'); return s ? s.textContent : null",
                json!([]),
                json!("Recording by hand is not enabled on this server (ECPAT_WRITE_TOKEN is not set)."),
            )
            .await;
    })
    .catch_unwind()
    .await;
    finish(outcome, "forms_off", browser, driver, env).await;
}
