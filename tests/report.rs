//! The report for donors against a real worker, RabbitMQ and PostgreSQL: the page's values,
//! breakdowns and evidence equal the API's, in French and English; the CLI writes the same
//! report as HTML and XLSX, and as a PDF (printed by Chromium) whose pages never split an
//! indicator.

mod common;

use std::time::Duration;

use calamine::{Data, Reader, Xlsx};
use common::generate::events;
use common::{TestEnv, unique};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// As the page escapes text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The part of `page` from `start` to the next `end`.
fn section<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let from = page.find(start).unwrap_or_else(|| panic!("the page has {start}"));
    let rest = &page[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// Checks the page against the API for one period: every indicator's value, baseline,
/// target and every breakdown; the annex's count of records behind each value.
async fn assert_page_equals_api(env: &TestEnv, http: &str, page: &str, period: &str) {
    let list: Value =
        reqwest::get(format!("http://{http}/api/v1/indicators?period={period}")).await.unwrap().json().await.unwrap();
    assert!(page.contains("id=\"as-of\""), "a data-as-of line");
    let mut nonzero = 0;
    for indicator in list["indicators"].as_array().unwrap() {
        let code = indicator["code"].as_str().unwrap();
        let card = section(page, &format!("id=\"indicator-{code}\""), "</article>");
        let value = indicator["value"].as_i64().unwrap();
        nonzero += usize::from(value != 0);
        assert!(card.contains(&format!("class=\"value\" data-value=\"{value}\"")), "{code} {period}: {card}");
        for (dimension, keys) in indicator["breakdowns"].as_object().unwrap() {
            let table = section(card, &format!("data-dimension=\"{}\"", escape(dimension)), "</table>");
            let rows = table.matches("<tr>").count();
            assert_eq!(rows, keys.as_object().unwrap().len(), "{code} {dimension}: every key, not only the largest");
            for (key, n) in keys.as_object().unwrap() {
                let row = format!("<tr><th>{}</th><td class=\"n\" data-value=\"{n}\">", escape(key));
                assert!(table.contains(&row), "{code} {dimension} {key} = {n}: {table}");
            }
        }
        let evidence: Value = reqwest::get(format!("http://{http}/api/v1/indicators/{code}/records?period={period}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let records = evidence["records"].as_array().unwrap();
        let annex = section(page, &format!("id=\"evidence-{code}\""), "</div>");
        assert_eq!(annex.matches("<tr class=\"evidence\">").count(), records.len(), "{code} {period}: the annex");
        for record in records {
            for event in record["events"].as_array().unwrap() {
                let id = escape(event["id"].as_str().unwrap());
                assert!(annex.contains(&id), "{code}: the annex names event {id}");
            }
        }
    }
    assert!(nonzero >= 8, "the data makes most indicators non-zero ({nonzero})");
    let _ = env;
}

#[tokio::test]
async fn the_report_shows_every_value_breakdown_and_piece_of_evidence_of_the_api() {
    let mut env = TestEnv::new("report").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let http = env.worker(w).http.clone();
    let stream = events(20261130, 400);
    env.publish(&stream).await;
    env.wait_for_counts(unique(&stream), 0, WAIT).await;

    for (period, lang) in [("all", "en"), ("2019", "fr"), ("2018-2021", "en")] {
        let response = reqwest::get(format!("http://{http}/report?period={period}&lang={lang}")).await.unwrap();
        assert_eq!(response.status(), 200);
        let page = response.text().await.unwrap();
        assert!(page.contains(&format!("<html lang=\"{lang}\">")));
        assert!(page.contains(if lang == "en" { "Data as of" } else { "Données au" }));
        assert!(page.contains("@page { size: A4;"), "a print stylesheet");
        assert_page_equals_api(&env, &http, &page, period).await;
    }
    let bad = reqwest::get(format!("http://{http}/report?lang=de")).await.unwrap();
    assert_eq!(bad.status(), 400);
    let unknown = reqwest::get(format!("http://{http}/report?framework=nope")).await.unwrap();
    assert_eq!(unknown.status(), 404);

    // The CLI writes the same report to a file.
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let written = env
        .cli(&["report", "--period", "2019", "--lang", "fr", "--format", "html", "--out", html.to_str().unwrap()])
        .await;
    assert!(written.status.success(), "{written:?}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_page_equals_api(&env, &http, &page, "2019").await;

    // XLSX: the Indicators sheet holds the API's values.
    let xlsx = dir.path().join("report.xlsx");
    let written = env.cli(&["report", "--lang", "en", "--format", "xlsx", "--out", xlsx.to_str().unwrap()]).await;
    assert!(written.status.success(), "{written:?}");
    let mut workbook: Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let sheet = workbook.worksheet_range("Indicators").unwrap();
    let list: Value =
        reqwest::get(format!("http://{http}/api/v1/indicators?period=all")).await.unwrap().json().await.unwrap();
    for indicator in list["indicators"].as_array().unwrap() {
        let code = indicator["code"].as_str().unwrap();
        let row = sheet
            .rows()
            .find(|row| row.get(1) == Some(&Data::String(code.to_owned())))
            .unwrap_or_else(|| panic!("{code} in the workbook"));
        assert_eq!(row[4], Data::Float(indicator["value"].as_i64().unwrap() as f64), "{code}");
    }
    let breakdowns = workbook.worksheet_range("Breakdowns").unwrap();
    let expected: usize = list["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["breakdowns"].as_object().unwrap().values())
        .map(|keys| keys.as_object().unwrap().len())
        .sum();
    assert_eq!(breakdowns.rows().count() - 1, expected, "every breakdown value");

    // The same workbook over HTTP, in French.
    let response = reqwest::get(format!("http://{http}/api/v1/export.xlsx?period=2019&lang=fr")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("ecpat-indicators-2019.xlsx"));
    let bytes = response.bytes().await.unwrap();
    let mut workbook = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = workbook.worksheet_range("Indicateurs").unwrap();
    let list: Value =
        reqwest::get(format!("http://{http}/api/v1/indicators?period=2019")).await.unwrap().json().await.unwrap();
    for indicator in list["indicators"].as_array().unwrap() {
        let code = indicator["code"].as_str().unwrap();
        let row = sheet.rows().find(|row| row.get(1) == Some(&Data::String(code.to_owned()))).unwrap();
        assert_eq!(row[4], Data::Float(indicator["value"].as_i64().unwrap() as f64), "{code} in 2019");
    }

    // Bad arguments: one line, non-zero.
    let refused = env.cli(&["report", "--period", "1800", "--format", "html", "--out", html.to_str().unwrap()]).await;
    assert!(!refused.status.success());
    assert_eq!(String::from_utf8_lossy(&refused.stderr).trim().lines().count(), 1, "{refused:?}");
    env.cleanup().await;
}

/// The text of each page of a PDF (pdftotext separates pages with form feeds).
fn pages(pdf: &std::path::Path) -> Vec<String> {
    let output = std::process::Command::new("pdftotext")
        .args(["-layout", pdf.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed: apt-get install -y poppler-utils");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).split('\u{c}').map(str::to_owned).collect()
}

#[tokio::test]
async fn the_pdf_report_never_splits_an_indicator_across_pages() {
    let mut env = TestEnv::new("report_pdf").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let http = env.worker(w).http.clone();
    let stream = events(20261129, 400);
    env.publish(&stream).await;
    env.wait_for_counts(unique(&stream), 0, WAIT).await;

    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("report.pdf");
    let chromium = std::env::var("TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).is_file(),
        "Chromium is needed at {chromium} (apt-get install -y chromium)"
    );
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ecpat-indicators"));
    let written = command
        .args(["report", "--lang", "en", "--format", "pdf", "--out", pdf.to_str().unwrap()])
        .envs(common::binary_env(&env.settings))
        .env("ECPAT_CHROMIUM", &chromium)
        .output()
        .await
        .unwrap();
    assert!(written.status.success(), "{written:?}");
    let pages = pages(&pdf);
    assert!(pages.len() >= 3, "13 indicators and the annex take several pages ({})", pages.len());

    // Each indicator's card on one page: the page where its heading starts also holds its
    // value and every key of its breakdowns (a split card would carry them to the next).
    let list: Value =
        reqwest::get(format!("http://{http}/api/v1/indicators?period=all")).await.unwrap().json().await.unwrap();
    let annex = pages.iter().position(|p| p.contains("Annex: the evidence")).expect("the annex is printed");
    for indicator in list["indicators"].as_array().unwrap() {
        let code = indicator["code"].as_str().unwrap();
        let heading = |page: &String| page.lines().any(|line| line.trim_start().starts_with(&format!("{code} ")));
        let at =
            pages[..annex].iter().position(heading).unwrap_or_else(|| panic!("{code} is printed before the annex"));
        let page = &pages[at];
        let value = format_en(indicator["value"].as_i64().unwrap());
        assert!(page.contains(&value), "{code}: its value {value} is on the page of its heading:\n{page}");
        for keys in indicator["breakdowns"].as_object().unwrap().values() {
            for (key, n) in keys.as_object().unwrap() {
                // The breakdowns' tables stand side by side: the key and its value are two
                // neighbouring words of a line.
                let n = format_en(n.as_i64().unwrap());
                let beside = page.lines().any(|line| {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    words.windows(2).any(|pair| pair[0] == key.as_str() && pair[1] == n)
                });
                assert!(beside, "{code}: its breakdown {key} = {n} is on the page of its heading:\n{page}");
            }
        }
    }
    env.cleanup().await;
}

fn format_en(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
