//! The HTTP API of docs/api.md against a real worker process, RabbitMQ and PostgreSQL: every
//! endpoint's answers and status codes, the evidence behind a total, the CSV export, the
//! live stream, the metrics, and the OpenAPI document, which every JSON answer must match
//! exactly (no unknown field, no missing one).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{TestEnv, Worker, event, publication, snapshot};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const CODES: [&str; 13] = ["KE1", "KE2", "KE3", "AP1", "AP2", "AP3", "AP4", "CV1", "CV2", "CV3", "ND1", "ND2", "ND3"];
const PUBLICATION: &str = "org.ecpat.research.publication.recorded";
const TRAINING: &str = "org.ecpat.capacity.training.recorded";
const RESEARCH_TEAM: &str = "urn:ecpat:fr:research-team";

fn training(id: &str, training_id: &str, held_on: &str, beneficiaries: &[&str]) -> Value {
    event(
        "urn:ecpat:fr:programme",
        id,
        "2019-12-01T09:00:00Z",
        TRAINING,
        json!({"training_id": training_id, "title": "Online safety", "held_on": held_on, "beneficiaries": beneficiaries}),
    )
}

/// One worker with the write token set, ready; see [`common::with_worker`].
async fn with_worker(label: &str, test: impl AsyncFnOnce(&mut TestEnv, String)) {
    common::with_worker(label, &[("ECPAT_WRITE_TOKEN", "write-token-for-api-tests")], test).await;
}

/// A worker that can never reach RabbitMQ; killed when dropped.
struct UnreadyWorker(Worker);

impl UnreadyWorker {
    /// Starts it and waits until it has migrated and serves HTTP.
    async fn start(env: &TestEnv) -> UnreadyWorker {
        let unready = UnreadyWorker(Worker::spawn(
            &env.settings,
            &[("AMQP_URL", "amqp://127.0.0.1:1/%2f"), ("RUST_LOG", "error")],
        ));
        let url = format!("http://{}/readyz", unready.0.http);
        eventually("the unready worker has migrated and serves HTTP", async || {
            let Ok(response) = reqwest::get(&url).await else { return false };
            response.json::<Value>().await.is_ok_and(|body| body["error"] != "migrations not applied yet")
        })
        .await;
        unready
    }
}

impl Drop for UnreadyWorker {
    fn drop(&mut self) {
        self.0.kill();
    }
}

async fn fetch(http: &str, path: &str) -> reqwest::Response {
    reqwest::get(format!("http://{http}{path}")).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// GETs a JSON answer: its status and body; asserts that it is JSON.
async fn get(http: &str, path: &str) -> (u16, Value) {
    let response = fetch(http, path).await;
    let status = response.status().as_u16();
    assert_eq!(content_type(&response), "application/json", "GET {path}");
    (status, response.json().await.unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}")))
}

/// GETs a JSON answer that must be `{"error": "..."}` with `status`.
async fn assert_error(http: &str, path: &str, status: u16) {
    let (got, body) = get(http, path).await;
    assert_eq!(got, status, "GET {path}: {body}");
    let fields: Vec<&String> = body.as_object().unwrap_or_else(|| panic!("GET {path}: {body}")).keys().collect();
    assert_eq!(fields, ["error"], "GET {path}");
    assert!(!body["error"].as_str().unwrap().is_empty(), "GET {path}: the error says what was wrong");
}

/// Waits until `check` holds; panics with `what` after `WAIT`.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type ViewRow = (String, String, String, String, i64, DateTime<Utc>);

/// The rows of the public `indicator_values` view for one period.
async fn view_rows(env: &TestEnv, period: &str) -> Vec<ViewRow> {
    sqlx::query_as(
        "select indicator, period, dimension, key, value, updated_at from indicator_values where period = $1",
    )
    .bind(period)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

/// What the API must say of each indicator for `period`, from the `indicator_values` view:
/// (code, total, breakdowns); a missing row is 0.
async fn expected_indicators(env: &TestEnv, period: &str) -> Vec<(String, i64, Value)> {
    let rows = view_rows(env, period).await;
    CODES
        .iter()
        .map(|&code| {
            let mut total = 0;
            let mut breakdowns: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
            for (_, _, dimension, key, value, _) in rows.iter().filter(|r| r.0 == code) {
                if dimension.is_empty() {
                    total = *value;
                } else {
                    breakdowns.entry(dimension.clone()).or_default().insert(key.clone(), *value);
                }
            }
            (code.to_owned(), total, json!(breakdowns))
        })
        .collect()
}

#[tokio::test]
async fn health_and_readiness_report_the_state_of_the_worker() {
    with_worker("api_health", async |env, http| {
        assert_eq!(get(&http, "/healthz").await, (200, json!({"status": "ok"})));
        assert_eq!(get(&http, "/readyz").await, (200, json!({"status": "ready"})));

        let unready = UnreadyWorker::start(env).await;
        assert_eq!(
            get(&unready.0.http, "/readyz").await,
            (503, json!({"status": "not ready", "error": "not consuming from RabbitMQ"}))
        );
        assert_eq!(get(&unready.0.http, "/healthz").await, (200, json!({"status": "ok"})), "up, though not ready");
    })
    .await;
}

#[tokio::test]
async fn the_indicators_are_all_thirteen_in_order_with_their_values_and_breakdowns() {
    with_worker("api_indicators", async |env, http| {
        env.publish(&[
            publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30"),
            publication("e2", "2019-05-01T10:00:00Z", "pub-2", "thematic", "2020-01-15"),
            publication("e3", "2019-05-01T10:00:00Z", "pub-3", "national", "2020-02-01"),
            snapshot("s1", "2019-03-02T10:00:00Z", 10, 3),
        ])
        .await;
        env.wait_for_counts(4, 0, WAIT).await;

        let (status, all) = get(&http, "/api/v1/indicators").await;
        assert_eq!(status, 200);
        assert_eq!(all["period"], "all", "period defaults to all");
        let ke1 = &all["indicators"][0];
        assert_eq!(ke1["value"], 2);
        assert_eq!(ke1["breakdowns"], json!({"scope": {"global": 1, "thematic": 1}}));
        assert_eq!(ke1["target"], Value::Null);
        assert_eq!(
            ke1["title"],
            "Nombre de recherches globales et thématiques du réseau auxquelles l'association a contribué"
        );
        assert_eq!(
            all["indicators"][2]["breakdowns"],
            json!({"metric": {"likes": 10, "shares": 3}, "platform": {"facebook": 13}})
        );

        for period in ["all", "2019", "2020"] {
            let (status, body) = get(&http, &format!("/api/v1/indicators?period={period}")).await;
            assert_eq!((status, &body["period"]), (200, &json!(period)));
            let indicators = body["indicators"].as_array().unwrap();
            let got: Vec<(String, i64, Value)> = indicators
                .iter()
                .map(|i| {
                    (i["code"].as_str().unwrap().to_owned(), i["value"].as_i64().unwrap(), i["breakdowns"].clone())
                })
                .collect();
            assert_eq!(got, expected_indicators(env, period).await, "period {period} equals indicator_values");
            for (indicator, code) in indicators.iter().zip(CODES) {
                let objective = match &code[..2] {
                    "KE" => "knowledge_evidence",
                    "AP" => "advocacy_partnerships",
                    "CV" => "children_voices",
                    _ => "network_development",
                };
                assert_eq!(indicator["objective"], objective, "{code}");
                assert!(!indicator["title_en"].as_str().unwrap().is_empty(), "{code}");

                let (status, one) = get(&http, &format!("/api/v1/indicators/{code}?period={period}")).await;
                let mut expected = indicator.clone();
                expected["period"] = json!(period);
                assert_eq!((status, one), (200, expected), "one indicator: the list's object plus its period");
            }
        }
        assert_eq!(get(&http, "/api/v1/indicators/KE3").await.1["period"], "all");
    })
    .await;
}

#[tokio::test]
async fn a_year_with_no_data_gives_thirteen_zeros() {
    with_worker("api_zeros", async |env, http| {
        env.publish(&[publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30")]).await;
        env.wait_for_counts(1, 0, WAIT).await;

        for period in ["2005", "1990", "2100"] {
            let (status, body) = get(&http, &format!("/api/v1/indicators?period={period}")).await;
            assert_eq!((status, &body["period"]), (200, &json!(period)));
            let indicators = body["indicators"].as_array().unwrap();
            let codes: Vec<&str> = indicators.iter().map(|i| i["code"].as_str().unwrap()).collect();
            assert_eq!(codes, CODES);
            for indicator in indicators {
                assert_eq!(
                    (&indicator["value"], &indicator["breakdowns"]),
                    (&json!(0), &json!({})),
                    "{period}: {indicator}"
                );
            }
            let (status, one) = get(&http, &format!("/api/v1/indicators/KE1?period={period}")).await;
            assert_eq!((status, &one["value"], &one["period"]), (200, &json!(0), &json!(period)));
        }
    })
    .await;
}

#[tokio::test]
async fn bad_parameters_are_400_and_unknown_codes_and_paths_404() {
    with_worker("api_errors", async |_env, http| {
        for path in
            ["/api/v1/indicators", "/api/v1/indicators/KE1", "/api/v1/indicators/KE1/records", "/api/v1/export.csv"]
        {
            for period in ["19", "2101", "1989", "abc", "", "ALL", "2019.0", "02019", "%202019"] {
                assert_error(&http, &format!("{path}?period={period}"), 400).await;
            }
        }
        for limit in ["0", "1001", "abc", "-1", "1.5", ""] {
            assert_error(&http, &format!("/api/v1/rejections?limit={limit}"), 400).await;
        }
        for code in ["XX9", "ke1", "KE4", "all"] {
            for suffix in ["", "/series", "/records"] {
                assert_error(&http, &format!("/api/v1/indicators/{code}{suffix}"), 404).await;
            }
        }
        assert_error(&http, "/api/v1/indicators/XX9?period=abc", 404).await;
        for path in ["/api/v1/nope", "/api/v2/indicators", "/api/v1/indicators/KE1/nope"] {
            assert_error(&http, path, 404).await;
        }
        for path in ["/api/v1/rejections?limit=1", "/api/v1/rejections?limit=1000", "/api/v1/indicators?period=all"] {
            assert_eq!(get(&http, path).await.0, 200, "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn the_series_has_every_year_with_data_in_order() {
    with_worker("api_series", async |env, http| {
        env.publish(&[
            publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2021-03-01"),
            publication("e2", "2019-05-01T10:00:00Z", "pub-2", "global", "2018-06-30"),
            publication("e3", "2019-05-01T10:00:00Z", "pub-3", "thematic", "2020-01-15"),
            publication("e4", "2019-05-01T10:00:00Z", "pub-4", "global", "2020-12-31"),
        ])
        .await;
        env.wait_for_counts(4, 0, WAIT).await;

        let (status, body) = get(&http, "/api/v1/indicators/KE1/series").await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"code": "KE1", "points": [
                {"period": "2018", "value": 1}, {"period": "2020", "value": 2}, {"period": "2021", "value": 1},
            ]}),
            "2019 has no data, so no point"
        );
        assert_eq!(get(&http, "/api/v1/indicators/AP1/series").await, (200, json!({"code": "AP1", "points": []})));
    })
    .await;
}

/// Checks what any evidence must satisfy: one current event per record, the newest one,
/// and contributions that make up `total`.
fn assert_evidence_adds_up(evidence: &Value, total: i64) {
    let records = evidence["records"].as_array().unwrap();
    let mut amount = 0;
    let mut items = BTreeSet::new();
    for record in records {
        let events = record["events"].as_array().unwrap();
        let current: Vec<bool> = events.iter().map(|e| e["current"].as_bool().unwrap()).collect();
        assert_eq!(current.iter().filter(|&&c| c).count(), 1, "exactly one current version: {record}");
        assert_eq!(current.last(), Some(&true), "the current version is the newest: {record}");
        match (&record["counted"]["amount"], &record["counted"]["items"]) {
            (Value::Number(n), Value::Null) => amount += n.as_i64().unwrap(),
            (Value::Null, Value::Array(names)) => {
                items.extend(names.iter().map(|i| i.as_str().unwrap().to_owned()));
            }
            _ => panic!("counted is an amount or items: {record}"),
        }
    }
    if items.is_empty() {
        assert_eq!(amount, total, "the amounts add up to the total: {evidence}");
    } else {
        assert_eq!(amount, 0, "{evidence}");
        assert_eq!(items.len() as i64, total, "the distinct items are the total: {items:?}");
    }
}

#[tokio::test]
async fn the_records_are_the_evidence_behind_a_total() {
    with_worker("api_records", async |env, http| {
        let mut corrected = publication("e2", "2019-06-01T10:00:00Z", "pub-1", "thematic", "2019-04-30");
        corrected["data"]["title"] = json!("Sexual exploitation of children online (corrected)");
        env.publish(&[
            publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30"),
            publication("e3", "2019-05-01T10:00:00Z", "pub-2", "thematic", "2019-03-01"),
            publication("e4", "2019-05-01T10:00:00Z", "pub-3", "global", "2020-03-01"),
            snapshot("s1", "2019-03-02T10:00:00Z", 10, 3),
            snapshot("s2", "2019-03-09T10:00:00Z", 7, 4),
        ])
        .await;
        env.wait_for_counts(5, 0, WAIT).await;
        env.publish(&[corrected]).await;
        env.wait_for_counts(6, 0, WAIT).await;

        let (status, body) = get(&http, "/api/v1/indicators/KE1/records?period=2019").await;
        assert_eq!(status, 200);
        assert_eq!((&body["code"], &body["period"]), (&json!("KE1"), &json!("2019")));
        let records = body["records"].as_array().unwrap();
        let keys: BTreeSet<String> = records.iter().map(|r| r["key"].to_string()).collect();
        assert_eq!(
            keys,
            BTreeSet::from([r#"["pub-1"]"#.to_owned(), r#"["pub-2"]"#.to_owned()]),
            "pub-3 counts in 2020"
        );
        let pub1 = records.iter().find(|r| r["key"] == json!(["pub-1"])).unwrap();
        assert_eq!(pub1["record_type"], "publication");
        assert_eq!(pub1["counted"], json!({"amount": 1}));
        assert_eq!(pub1["record"]["title"], "Sexual exploitation of children online (corrected)");
        assert_eq!(pub1["record"]["scope"], "thematic");
        let versions: Vec<(&str, &str, &str, bool)> = pub1["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["source"].as_str().unwrap(),
                    e["id"].as_str().unwrap(),
                    e["type"].as_str().unwrap(),
                    e["current"] == true,
                )
            })
            .collect();
        assert_eq!(
            versions,
            [(RESEARCH_TEAM, "e1", PUBLICATION, false), (RESEARCH_TEAM, "e2", PUBLICATION, true)],
            "both versions are evidence; only the correction is current"
        );
        assert_eq!(pub1["events"][1]["time"], "2019-06-01T10:00:00Z");

        let (_, ke3) = get(&http, "/api/v1/indicators/KE3/records?period=2019").await;
        let likes =
            ke3["records"].as_array().unwrap().iter().find(|r| r["key"] == json!(["facebook", "p1", "likes"])).unwrap();
        assert_eq!(likes["counted"], json!({"amount": 7}), "a lower newer total replaces the older one");
        let ids: Vec<&str> = likes["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["s1", "s2"]);
        let (_, ap3) = get(&http, "/api/v1/indicators/AP3/records?period=2019").await;
        assert!(ap3["records"].as_array().unwrap().iter().all(|r| r["counted"] == json!({"items": ["ecpat-france"]})));

        for code in CODES {
            for period in ["all", "2019", "2020", "2018"] {
                let (status, evidence) =
                    get(&http, &format!("/api/v1/indicators/{code}/records?period={period}")).await;
                assert_eq!(status, 200);
                let total = get(&http, &format!("/api/v1/indicators/{code}?period={period}")).await.1["value"]
                    .as_i64()
                    .unwrap();
                assert_evidence_adds_up(&evidence, total);
            }
        }
        assert_eq!(get(&http, "/api/v1/indicators/KE1/records?period=2018").await.1["records"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn the_evidence_of_a_distinct_count_names_every_item_a_record_counts() {
    with_worker("api_records_items", async |env, http| {
        env.publish(&[
            training("t1", "tr-1", "2019-11-20", &["ecpat-france", "ecpat-uk"]),
            training("t2", "tr-2", "2019-11-21", &["ecpat-belgique"]),
        ])
        .await;
        env.wait_for_counts(2, 0, WAIT).await;

        let (_, nd2) = get(&http, "/api/v1/indicators/ND2?period=2019").await;
        assert_eq!(nd2["value"], 3);
        let (status, evidence) = get(&http, "/api/v1/indicators/ND2/records?period=2019").await;
        assert_eq!(status, 200);
        assert_evidence_adds_up(&evidence, 3);
    })
    .await;
}

#[tokio::test]
async fn rejections_are_listed_newest_first_with_their_total() {
    with_worker("api_rejections", async |env, http| {
        let mut unknown = publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30");
        unknown["type"] = json!("org.ecpat.unheard.of");
        let invalid = publication("e2", "2019-05-01T10:00:00Z", "pub-1", "galactic", "2019-04-30");
        let bodies: [(&str, Vec<u8>); 3] = [
            ("org.ecpat.first", b"{not json".to_vec()),
            ("org.ecpat.unheard.of", unknown.to_string().into_bytes()),
            ("org.ecpat.third", invalid.to_string().into_bytes()),
        ];
        // One at a time, so that each is received after the one before.
        for (n, (key, body)) in bodies.iter().enumerate() {
            env.publish_raw(&[(key.to_string(), body.clone())]).await;
            env.wait_for_counts(0, n as i64 + 1, WAIT).await;
        }

        let (status, body) = get(&http, "/api/v1/rejections").await;
        assert_eq!((status, &body["total"]), (200, &json!(3)));
        let items = body["items"].as_array().unwrap();
        let listed: Vec<(&str, &str, i64)> = items
            .iter()
            .map(|i| (i["reason"].as_str().unwrap(), i["routing_key"].as_str().unwrap(), i["size"].as_i64().unwrap()))
            .collect();
        let size = |n: usize| bodies[n].1.len() as i64;
        assert_eq!(
            listed,
            [
                ("invalid_data", "org.ecpat.third", size(2)),
                ("unknown_type", "org.ecpat.unheard.of", size(1)),
                ("not_json", "org.ecpat.first", size(0)),
            ],
            "newest first"
        );
        let ids: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
        let times: Vec<DateTime<Utc>> =
            items.iter().map(|i| i["received_at"].as_str().unwrap().parse().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
        assert!(items[0]["detail"].as_str().unwrap().contains("data.scope"), "the detail names the field");
        assert_eq!((&items[0]["batch_index"], &items[0]["replayed_at"]), (&Value::Null, &Value::Null));

        let (status, newest) = get(&http, "/api/v1/rejections?limit=2").await;
        assert_eq!((status, &newest["total"]), (200, &json!(3)), "the total counts them all, whatever the limit");
        assert_eq!(newest["items"].as_array().unwrap()[..], items[..2]);
    })
    .await;
}

/// Splits RFC 4180 text into records of fields; panics on what RFC 4180 does not allow.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => {
                quoted = false;
                assert!(matches!(chars.peek(), Some(',' | '\r')), "a closing quote ends the field");
            }
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '"' | '\r' | '\n') => panic!("unquoted {c:?} in a CSV field: {text}"),
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted && field.is_empty() && record.is_empty(), "the CSV ends with CRLF");
    records
}

#[tokio::test]
async fn the_csv_export_equals_the_indicator_values_view() {
    with_worker("api_export", async |env, http| {
        env.publish(&[
            publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30"),
            publication("e2", "2019-05-01T10:00:00Z", "pub-2", "national", "2019-01-15"),
            snapshot("s1", "2019-03-02T10:00:00Z", 10, 3),
            training("t1", "tr-1", "2019-11-20", &["ecpat-france", "ecpat-uk"]),
        ])
        .await;
        env.wait_for_counts(4, 0, WAIT).await;
        // No record yields a breakdown key that needs quoting (keys are codes and enumerated
        // values), so one is written straight into the tallies to check the quoting.
        let awkward = "a \"quoted\", key\r\nover two lines";
        sqlx::query(
            "insert into tallies (framework, indicator, period, dimension, key, value)
            values ('ecpat-2018-2021', 'KE1', '2019', 'scope', $1, 5)",
        )
        .bind(awkward)
        .execute(&env.pool)
        .await
        .unwrap();

        let response = fetch(&http, "/api/v1/export.csv?period=2019").await;
        assert_eq!(response.status(), 200);
        assert!(content_type(&response).starts_with("text/csv"), "{}", content_type(&response));
        let disposition = response.headers()[reqwest::header::CONTENT_DISPOSITION].to_str().unwrap().to_owned();
        assert_eq!(disposition, "attachment; filename=\"ecpat-indicators-2019.csv\"");
        let text = response.text().await.unwrap();
        assert!(text.starts_with("indicator,period,dimension,key,value,updated_at\r\nKE1,2019,,,"), "{text}");
        assert!(text.contains(",scope,\"a \"\"quoted\"\", key\r\nover two lines\",5,"), "RFC 4180 quoting: {text}");

        let mut records = parse_csv(&text);
        assert_eq!(records.remove(0), ["indicator", "period", "dimension", "key", "value", "updated_at"]);
        let mut exported: Vec<ViewRow> = records
            .into_iter()
            .map(|r| {
                let [indicator, period, dimension, key, value, updated_at]: [String; 6] =
                    r.try_into().unwrap_or_else(|r| panic!("six fields: {r:?}"));
                let updated_at = DateTime::parse_from_rfc3339(&updated_at).unwrap().with_timezone(&Utc);
                (indicator, period, dimension, key, value.parse().unwrap(), updated_at)
            })
            .collect();
        let order: Vec<usize> = exported.iter().map(|r| CODES.iter().position(|c| *c == r.0).unwrap()).collect();
        assert!(order.is_sorted(), "rows in the documented indicator order: {order:?}");
        let mut view = view_rows(env, "2019").await;
        exported.sort();
        view.sort();
        assert_eq!(exported, view, "the export is the view's rows for 2019");
        assert!(view.iter().any(|r| r.3 == awkward));

        let empty = fetch(&http, "/api/v1/export.csv?period=1995").await.text().await.unwrap();
        assert_eq!(empty, "indicator,period,dimension,key,value,updated_at\r\n");
        let all = fetch(&http, "/api/v1/export.csv").await.text().await.unwrap();
        assert_eq!(parse_csv(&all).len() - 1, view_rows(env, "all").await.len(), "period defaults to all");
    })
    .await;
}

/// The value of an unlabelled sample in Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn the_metrics_count_the_applied_events() {
    with_worker("api_metrics", async |env, http| {
        let first = publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30");
        env.publish(&[
            first.clone(),
            publication("e2", "2019-05-01T10:00:00Z", "pub-2", "global", "2019-04-30"),
            publication("e3", "2019-06-01T10:00:00Z", "pub-3", "global", "2019-04-30"),
            snapshot("s1", "2019-03-02T10:00:00Z", 10, 3),
        ])
        .await;
        env.wait_for_counts(4, 0, WAIT).await;
        // A duplicate, and an older version of pub-3 arriving late (stored, not applied).
        env.publish(&[first, publication("e0", "2019-05-01T10:00:00Z", "pub-3", "global", "2019-04-30")]).await;
        env.wait_for_counts(5, 0, WAIT).await;

        let url = format!("http://{http}/metrics");
        eventually("the metrics show 4 applied, 1 duplicate, 1 stale", async || {
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            sample(&text, "ecpat_events_applied_total") == Some(4.0)
                && sample(&text, "ecpat_events_duplicate_total") == Some(1.0)
                && sample(&text, "ecpat_events_stale_total") == Some(1.0)
        })
        .await;
        let response = fetch(&http, "/metrics").await;
        assert_eq!(response.status(), 200);
        assert!(content_type(&response).starts_with("text/plain"), "{}", content_type(&response));
        let text = response.text().await.unwrap();
        assert_eq!(sample(&text, "ecpat_database_up"), Some(1.0));
        assert_eq!(sample(&text, "ecpat_broker_up"), Some(1.0));
    })
    .await;
}

/// One Server-Sent Event.
#[derive(Debug)]
struct SseEvent {
    name: String,
    id: String,
    data: Value,
}

/// A client of `/api/v1/stream`.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(http: &str, last_event_id: Option<&str>) -> EventStream {
        let mut request = reqwest::Client::new().get(format!("http://{http}/api/v1/stream"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(content_type(&response), "text/event-stream");
        EventStream { response, buffer: String::new() }
    }

    /// The next event, skipping comments (keep-alives).
    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
                for line in block.lines().filter(|l| !l.is_empty() && !l.starts_with(':')) {
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    fields.insert(name, value.strip_prefix(' ').unwrap_or(value));
                }
                if let Some(data) = fields.get("data") {
                    return SseEvent {
                        name: fields.get("event").unwrap_or(&"message").to_string(),
                        id: fields.get("id").unwrap_or(&"").to_string(),
                        data: serde_json::from_str(data).unwrap_or_else(|e| panic!("data is JSON: {e}: {data}")),
                    };
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event within the time-out")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8(chunk.to_vec()).unwrap().replace("\r\n", "\n"));
        }
    }

    /// The first `n` events: the current totals, as (code, period) -> value; checks their
    /// names, their ids (1, 2, ...) and the shape of their data.
    async fn current_totals(&mut self, n: usize, openapi: &OpenApi) -> BTreeMap<(String, String), i64> {
        let tally = openapi.schema("/api/v1/stream", 200, "text/event-stream", "/x-sse-events/tally");
        let mut totals = BTreeMap::new();
        for expected_id in 1..=n {
            let event = self.next().await;
            assert_eq!((event.name.as_str(), event.id.as_str()), ("tally", expected_id.to_string().as_str()));
            openapi.assert_matches(&tally, &event.data, "a tally event's data");
            let key =
                (event.data["code"].as_str().unwrap().to_owned(), event.data["period"].as_str().unwrap().to_owned());
            totals.insert(key, event.data["value"].as_i64().unwrap());
        }
        totals
    }
}

/// The totals of the `indicator_values` view, as (code, period) -> value.
async fn view_totals(env: &TestEnv) -> BTreeMap<(String, String), i64> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("select indicator, period, value from indicator_values where dimension = ''")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    rows.into_iter().map(|(code, period, value)| ((code, period), value)).collect()
}

#[tokio::test]
async fn the_stream_starts_with_the_current_totals_then_sends_each_change() {
    with_worker("api_stream", async |env, http| {
        let openapi = OpenApi::fetch(&http).await;
        env.publish(&[publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30")]).await;
        env.wait_for_counts(1, 0, WAIT).await;
        let before = view_totals(env).await;
        assert_eq!(before[&("KE1".to_owned(), "all".to_owned())], 1);

        let mut stream = EventStream::open(&http, None).await;
        assert_eq!(stream.current_totals(before.len(), &openapi).await, before, "first the current totals");

        env.publish(&[publication("e2", "2019-05-01T10:00:00Z", "pub-2", "thematic", "2019-05-30")]).await;
        loop {
            let event = stream.next().await;
            assert_eq!(event.name, "tally");
            if event.data == json!({"framework": "ecpat-2018-2021", "code": "KE1", "period": "all", "value": 2}) {
                break;
            }
        }

        // A browser reconnects with the last id it saw: the stream starts again with the
        // current totals.
        let after = view_totals(env).await;
        let mut again = EventStream::open(&http, Some("7")).await;
        let totals = again.current_totals(after.len(), &openapi).await;
        assert_eq!(totals, after);
        assert_eq!(totals[&("KE1".to_owned(), "2019".to_owned())], 2);
    })
    .await;
}

/// The OpenAPI document served by the worker, to check answers against.
struct OpenApi(Value);

impl OpenApi {
    async fn fetch(http: &str) -> OpenApi {
        let (status, document) = get(http, "/api/v1/openapi.json").await;
        assert_eq!(status, 200);
        assert_eq!(document["openapi"], "3.1.0");
        OpenApi(document)
    }

    /// Follows a `$ref` into this document.
    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("not a local $ref: {reference}"));
                self.0.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}"))
            }
            None => node,
        }
    }

    /// The schema at `pointer` in the `media_type` content of the answer to `GET template`
    /// with `status`.
    fn schema(&self, template: &str, status: u16, media_type: &str, pointer: &str) -> Value {
        let operation = self.0["paths"].get(template).and_then(|p| p.get("get"));
        let operation = operation.unwrap_or_else(|| panic!("the document has no GET {template}"));
        let response = operation["responses"].get(status.to_string());
        let response = self.resolve(response.unwrap_or_else(|| panic!("GET {template} documents no status {status}")));
        let content = response["content"].get(media_type);
        let content = content.unwrap_or_else(|| panic!("GET {template} {status} documents no {media_type} content"));
        content
            .pointer(pointer)
            .unwrap_or_else(|| panic!("GET {template} {status} {media_type} has no {pointer}"))
            .clone()
    }

    /// Why `body` does not match `schema` (nothing when it does). The schema is compiled in a
    /// document that embeds this one's components, so `#/components/schemas/...` resolves.
    fn violations(&self, schema: &Value, body: &Value) -> Vec<String> {
        let mut root = schema.clone();
        root["components"] = self.0["components"].clone();
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the schema compiles: {e}: {schema}"));
        validator.iter_errors(body).map(|e| format!("{}: {e}", e.instance_path())).collect()
    }

    fn assert_matches(&self, schema: &Value, body: &Value, what: &str) {
        let violations = self.violations(schema, body);
        assert!(violations.is_empty(), "{what} does not match its schema:\n{}\n{body}", violations.join("\n"));
    }

    /// GETs `path` and checks the JSON answer against the document's schema for `template`
    /// and its status; returns the answer.
    async fn check(&self, http: &str, template: &str, path: &str, status: u16) -> Value {
        let (got, body) = get(http, path).await;
        assert_eq!(got, status, "GET {path}: {body}");
        let schema = self.schema(template, status, "application/json", "/schema");
        self.assert_matches(&schema, &body, &format!("GET {path} ({status})"));
        body
    }
}

/// The paths routed in `src/api/`, read from the `.route("...")` calls: a router cannot list
/// its own routes.
fn routed_paths() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).unwrap();
            for call in source.split(".route(\"").skip(1) {
                paths.insert(call[..call.find('"').unwrap()].to_owned());
            }
        }
    }
    paths
}

#[tokio::test]
async fn every_route_and_every_json_answer_match_the_openapi_document() {
    with_worker("api_openapi", async |env, http| {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-events.jsonl");
        let published = ecpat_indicators::cli::publish(&env.settings, &file, 1).await.unwrap();
        env.publish_raw(&[("org.ecpat.bad".into(), b"not json".to_vec())]).await;
        env.wait_for_counts(published as i64, 1, WAIT).await;
        let openapi = OpenApi::fetch(&http).await;

        let documented: BTreeSet<String> = openapi.0["paths"].as_object().unwrap().keys().cloned().collect();
        let api_routes: BTreeSet<String> = routed_paths().into_iter().filter(|p| p.starts_with("/api/v1/")).collect();
        assert!(api_routes.len() >= 8, "the routes were found: {api_routes:?}");
        let undocumented: Vec<&String> = api_routes.difference(&documented).collect();
        assert!(undocumented.is_empty(), "routes missing from the OpenAPI document: {undocumented:?}");
        for template in &documented {
            let response = fetch(&http, &template.replace("{code}", "KE1")).await;
            assert_ne!(response.status(), 404, "the documented path {template} is served");
        }

        let mut checks: Vec<(&str, String, u16)> = vec![
            ("/healthz", "/healthz".into(), 200),
            ("/readyz", "/readyz".into(), 200),
            ("/api/v1/openapi.json", "/api/v1/openapi.json".into(), 200),
            ("/api/v1/indicators", "/api/v1/indicators".into(), 200),
            ("/api/v1/indicators", "/api/v1/indicators?period=1995".into(), 200),
            ("/api/v1/indicators", "/api/v1/indicators?period=abc".into(), 400),
            ("/api/v1/indicators/{code}", "/api/v1/indicators/XX9".into(), 404),
            ("/api/v1/indicators/{code}", "/api/v1/indicators/KE1?period=2101".into(), 400),
            ("/api/v1/indicators/{code}/series", "/api/v1/indicators/XX9/series".into(), 404),
            ("/api/v1/indicators/{code}/records", "/api/v1/indicators/XX9/records".into(), 404),
            ("/api/v1/indicators/{code}/records", "/api/v1/indicators/KE1/records?period=19".into(), 400),
            ("/api/v1/export.csv", "/api/v1/export.csv?period=abc".into(), 400),
            ("/api/v1/rejections", "/api/v1/rejections".into(), 200),
            ("/api/v1/rejections", "/api/v1/rejections?limit=1".into(), 200),
            ("/api/v1/rejections", "/api/v1/rejections?limit=0".into(), 400),
        ];
        for code in CODES {
            checks.push(("/api/v1/indicators/{code}/series", format!("/api/v1/indicators/{code}/series"), 200));
            for period in ["all", "2018", "2019", "2020", "2021"] {
                checks.push(("/api/v1/indicators/{code}", format!("/api/v1/indicators/{code}?period={period}"), 200));
                checks.push((
                    "/api/v1/indicators/{code}/records",
                    format!("/api/v1/indicators/{code}/records?period={period}"),
                    200,
                ));
            }
        }
        let mut answers = BTreeMap::new();
        for (template, path, status) in &checks {
            answers.insert(path.clone(), openapi.check(&http, template, path, *status).await);
        }
        let rejections = &answers["/api/v1/rejections"];
        assert_eq!(rejections["items"].as_array().unwrap().len(), 1, "an item was checked: {rejections}");

        let error = openapi.resolve(&json!({"$ref": "#/components/schemas/Error"})).clone();
        let (status, body) = get(&http, "/api/v1/nope").await;
        assert_eq!(status, 404);
        openapi.assert_matches(&error, &body, "an unknown path's answer");
        let unready = UnreadyWorker::start(env).await;
        openapi.check(&unready.0.http, "/readyz", "/readyz", 503).await;

        // The check is strict: an unknown field or a missing one, at any depth, fails it.
        let one = openapi.schema("/api/v1/indicators/{code}", 200, "application/json", "/schema");
        let mut extra = answers["/api/v1/indicators/KE1?period=all"].clone();
        extra["unit"] = json!("publications");
        assert!(!openapi.violations(&one, &extra).is_empty(), "an unknown field fails");
        let mut missing = answers["/api/v1/indicators/KE1?period=all"].clone();
        missing.as_object_mut().unwrap().remove("title_en");
        assert!(!openapi.violations(&one, &missing).is_empty(), "a missing field fails");
        let records = openapi.schema("/api/v1/indicators/{code}/records", 200, "application/json", "/schema");
        let evidence = &answers["/api/v1/indicators/ND2/records?period=all"];
        assert!(openapi.violations(&records, evidence).is_empty());
        let mut nested_extra = evidence.clone();
        nested_extra["records"][0]["events"][0]["routing_key"] = json!("org.ecpat.x");
        assert!(!openapi.violations(&records, &nested_extra).is_empty(), "an unknown nested field fails");
        let mut nested_missing = evidence.clone();
        nested_missing["records"][0]["record"].as_object_mut().unwrap().remove("held_on");
        assert!(!openapi.violations(&records, &nested_missing).is_empty(), "a missing nested field fails");
        assert!(!openapi.violations(&error, &json!({"error": "x", "code": 404})).is_empty());
        let listing = openapi.schema("/api/v1/rejections", 200, "application/json", "/schema");
        let mut respelled = rejections.clone();
        respelled["items"][0]["reason"] = json!("NotJson");
        assert!(!openapi.violations(&listing, &respelled).is_empty(), "a value outside its set fails");
        let tally = openapi.schema("/api/v1/stream", 200, "text/event-stream", "/x-sse-events/tally");
        let without_value = json!({"code": "KE1", "period": "all"});
        assert!(!openapi.violations(&tally, &without_value).is_empty(), "a tally without its value fails");
    })
    .await;
}

#[tokio::test]
async fn frameworks_are_listed_and_every_indicator_endpoint_reads_the_one_asked_for() {
    with_worker("api_frameworks", async |env, http| {
        env.publish(&[
            publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-03-01"),
            publication("e2", "2019-05-01T10:00:00Z", "pub-2", "thematic", "2017-06-30"),
        ])
        .await;
        env.wait_for_counts(2, 0, WAIT).await;

        let (status, listed) = get(&http, "/api/v1/frameworks").await;
        assert_eq!(status, 200);
        let frameworks = listed["frameworks"].as_array().unwrap();
        assert_eq!(frameworks.len(), 1, "{listed}");
        assert_eq!((&frameworks[0]["id"], &frameworks[0]["default"]), (&json!("ecpat-2018-2021"), &json!(true)));
        assert_eq!(frameworks[0]["years"], json!([2018, 2021]));

        // The span counts the 2019 publication, not the 2017 one; `all` counts both.
        let (status, span) = get(&http, "/api/v1/indicators/KE1?period=2018-2021").await;
        assert_eq!((status, &span["value"], &span["period"]), (200, &json!(1), &json!("2018-2021")));
        let named = get(&http, "/api/v1/indicators/KE1?period=all&framework=ecpat-2018-2021").await;
        assert_eq!((named.0, &named.1["value"], &named.1["baseline"]), (200, &json!(2), &Value::Null));

        for path in [
            "/api/v1/indicators?framework=nope",
            "/api/v1/indicators/KE1?framework=nope",
            "/api/v1/indicators/KE1/series?framework=nope",
            "/api/v1/indicators/KE1/records?framework=nope",
            "/api/v1/export.csv?framework=nope",
        ] {
            let (status, body) = get(&http, path).await;
            assert_eq!((status, &body["error"]), (404, &json!("no framework \"nope\"")), "{path}");
        }
        let (status, body) = get(&http, "/api/v1/indicators?period=2018-2022").await;
        assert_eq!(status, 400, "another span than the framework's: {body}");
    })
    .await;
}
