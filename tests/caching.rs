//! Reading the values from memory, against real worker processes, RabbitMQ and
//! PostgreSQL: the `ETag` and `304 Not Modified` of the values, a new event moving both the
//! `ETag` and the value, heavy answers served until their maximum age, the bound on heavy
//! requests (`503` with `Retry-After`) and the readers' statement timeout, and the values
//! in memory equal to the database and to `recompute` after a flow of events from two
//! workers, with a framework loaded meanwhile.

mod common;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use common::generate::events;
use common::{TestEnv, plain_publication, unique};
use futures::FutureExt;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const DEFAULT: &str = "ecpat-2018-2021";
const COPY: &str = "copy-2018-2021";

/// Runs `test` in a fresh environment and cleans up whether it passes or fails.
async fn with_env(label: &str, test: impl AsyncFnOnce(&mut TestEnv)) {
    let mut env = TestEnv::new(label).await;
    let outcome = AssertUnwindSafe(test(&mut env)).catch_unwind().await;
    env.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn get(http: &str, path: &str, if_none_match: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("http://{http}{path}"));
    if let Some(tag) = if_none_match {
        request = request.header(IF_NONE_MATCH, tag);
    }
    request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    let value = response.headers().get(&name).unwrap_or_else(|| panic!("{} has a {name} header", response.url()));
    value.to_str().unwrap().to_owned()
}

/// Waits until `check` holds; panics with `what` after `WAIT`.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A worker with `vars` set, ready, once it has stored one publication (`p1`); its HTTP
/// address.
async fn worker_with_one_publication(env: &mut TestEnv, vars: &[(&str, &str)]) -> (usize, String) {
    let w = env.spawn_worker_with(vars);
    env.worker(w).wait_ready(WAIT).await;
    env.publish(&[plain_publication("p1")]).await;
    env.wait_for_counts(1, 0, WAIT).await;
    (w, env.worker(w).http.clone())
}

/// Queries of the test's database waiting on a lock whose text is like `like`.
async fn waiting_on_a_lock(env: &TestEnv, like: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = current_database() \
         and wait_event_type = 'Lock' and query like $1",
    )
    .bind(like)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn values_carry_an_etag_a_client_revalidates_with_and_a_new_event_changes_both() {
    with_env("caching_etag", async |env| {
        // Heavy answers made at the current version each time (see the next test).
        let (w, http) = worker_with_one_publication(env, &[("ECPAT_HTTP__HEAVY_MAX_AGE_MS", "0")]).await;
        eventually("KE1 is 1", async || env.worker(w).get("/api/v1/indicators/KE1").await.1["value"] == 1).await;

        let paths = [
            "/api/v1/frameworks",
            "/api/v1/indicators",
            "/api/v1/indicators?period=2019",
            "/api/v1/indicators/KE1?period=all",
            "/api/v1/indicators/KE1/series",
            "/api/v1/indicators/KE1/records?period=2019",
            "/api/v1/export.csv",
        ];
        let mut tags = BTreeMap::new();
        for path in paths {
            let first = get(&http, path, None).await;
            assert_eq!(first.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&first, CACHE_CONTROL), "no-cache", "{path}: clients revalidate");
            let tag = header(&first, ETAG);
            assert!(tag.starts_with('"') && tag.ends_with('"'), "{path}: a strong entity tag: {tag}");
            let body = first.bytes().await.unwrap();

            // Revalidated: 304, no body, the same tag; any of a list, weak or `*` match too.
            for sent in [tag.clone(), format!("\"other\", {tag}"), format!("W/{tag}"), "*".to_owned()] {
                let again = get(&http, path, Some(&sent)).await;
                assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path} with If-None-Match: {sent}");
                assert_eq!(header(&again, ETAG), tag, "{path}");
                assert_eq!(header(&again, CACHE_CONTROL), "no-cache", "{path}");
                assert!(again.bytes().await.unwrap().is_empty(), "{path}: a 304 has no body");
            }
            // Another tag: the whole answer, the same bytes.
            let other = get(&http, path, Some("\"not-this-one\"")).await;
            assert_eq!(other.status(), StatusCode::OK, "{path}");
            assert_eq!(other.bytes().await.unwrap(), body, "{path}: the same answer");
            tags.insert(path, tag);
        }
        let tag = tags["/api/v1/indicators"].clone();
        assert!(tags.values().all(|t| *t == tag), "one version for every answer: {tags:?}");

        // Errors carry no tag.
        let missing = get(&http, "/api/v1/indicators/NOPE", Some(&tag)).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(missing.headers().get(ETAG).is_none());

        // A new event: the same If-None-Match now gets the new value and a new tag.
        env.publish(&[plain_publication("p2")]).await;
        eventually("the tag changes with the new event", async || {
            get(&http, "/api/v1/indicators/KE1", Some(&tag)).await.status() == StatusCode::OK
        })
        .await;
        let changed = get(&http, "/api/v1/indicators/KE1", Some(&tag)).await;
        let new_tag = header(&changed, ETAG);
        assert_ne!(new_tag, tag);
        let body: Value = changed.json().await.unwrap();
        assert_eq!(body["value"], 2, "the new tag comes with the new value: {body}");
        let series: Value = get(&http, "/api/v1/indicators/KE1/series", Some(&tag)).await.json().await.unwrap();
        assert_eq!(series["points"], json!([{"period": "2019", "value": 2}]));
        assert_eq!(get(&http, "/api/v1/indicators/KE1", Some(&new_tag)).await.status(), StatusCode::NOT_MODIFIED);
        let csv = get(&http, "/api/v1/export.csv", Some(&tag)).await;
        assert_eq!(csv.status(), StatusCode::OK, "the export too");
        assert!(csv.text().await.unwrap().contains("\r\nKE1,all,,,2,"));
        let evidence: Value =
            get(&http, "/api/v1/indicators/KE1/records?period=2019", Some(&tag)).await.json().await.unwrap();
        assert_eq!(evidence["records"].as_array().unwrap().len(), 2, "and the evidence: {evidence}");

        // A batch that changes no value still moves the version: the evidence shows a late,
        // older version of p2 that is not current.
        let tag = header(&get(&http, "/api/v1/indicators/KE1/records?period=2019", None).await, ETAG);
        let mut late = plain_publication("p2-older");
        late["data"]["publication_id"] = json!("p2");
        late["time"] = json!("2019-01-01T00:00:00Z");
        env.publish(&[late]).await;
        env.wait_for_counts(3, 0, WAIT).await;
        eventually("the evidence shows the late version", async || {
            let response = get(&http, "/api/v1/indicators/KE1/records?period=2019", Some(&tag)).await;
            response.status() == StatusCode::OK && {
                let body: Value = response.json().await.unwrap();
                body["records"].as_array().unwrap().iter().any(|r| r["events"].as_array().unwrap().len() == 2)
            }
        })
        .await;
        let new_tag = header(&get(&http, "/api/v1/indicators/KE1", None).await, ETAG);
        let body: Value = get(&http, "/api/v1/indicators/KE1", None).await.json().await.unwrap();
        assert_eq!(body["value"], 2, "the late version changes no value");

        // Another process (a restart) never takes this one's tags for its own.
        let second = env.spawn_worker();
        env.worker(second).wait_ready(WAIT).await;
        let other_http = env.worker(second).http.clone();
        let fresh = get(&other_http, "/api/v1/indicators/KE1", Some(&new_tag)).await;
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_ne!(header(&fresh, ETAG), new_tag);
    })
    .await;
}

#[tokio::test]
async fn the_evidence_and_the_export_are_served_while_young_with_the_version_they_were_made_at() {
    with_env("caching_reuse", async |env| {
        let (w, http) = worker_with_one_publication(env, &[("ECPAT_HTTP__HEAVY_MAX_AGE_MS", "4000")]).await;
        eventually("KE1 is 1", async || env.worker(w).get("/api/v1/indicators/KE1").await.1["value"] == 1).await;

        // Made slowly (a lock holds their queries for over 400 ms): each is then served for up
        // to 20 times that, at most the maximum age of 4 s.
        let (evidence, export) = ("/api/v1/indicators/KE1/records?period=2019", "/api/v1/export.csv");
        let mut blocker = env.pool.begin().await.unwrap();
        sqlx::query("lock table records, tallies in access exclusive mode").execute(&mut *blocker).await.unwrap();
        let before = Instant::now();
        let first = tokio::spawn({
            let http = http.clone();
            async move { get(&http, evidence, None).await }
        });
        let first_export = tokio::spawn({
            let http = http.clone();
            async move { get(&http, export, None).await }
        });
        eventually("both queries wait on the lock", async || waiting_on_a_lock(env, "%").await >= 2).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        blocker.rollback().await.unwrap();
        let (first, first_export) = (first.await.unwrap(), first_export.await.unwrap());
        let first_tag = header(&first, ETAG);
        let body: Value = first.json().await.unwrap();
        assert_eq!(body["records"].as_array().unwrap().len(), 1);
        assert_eq!(header(&first_export, ETAG), first_tag);
        assert!(first_export.text().await.unwrap().contains("\r\nKE1,all,,,1,"));

        // The values move at once; the evidence and the export, young, are served as they
        // were, with the version they were made at.
        env.publish(&[plain_publication("p2")]).await;
        eventually("KE1 is 2", async || env.worker(w).get("/api/v1/indicators/KE1").await.1["value"] == 2).await;
        let values_tag = header(&get(&http, "/api/v1/indicators/KE1", None).await, ETAG);
        assert_ne!(values_tag, first_tag);
        let kept = get(&http, evidence, None).await;
        assert_eq!(header(&kept, ETAG), first_tag, "the evidence as it was made");
        let body: Value = kept.json().await.unwrap();
        assert_eq!(body["records"].as_array().unwrap().len(), 1);
        let revalidated = get(&http, export, Some(&first_tag)).await;
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED, "the export kept is the one the client has");
        assert_eq!(header(&revalidated, ETAG), first_tag);
        let young = Duration::from_secs(4);
        assert!(before.elapsed() < young, "the checks above ran within the maximum age: {:?}", before.elapsed());

        // Older, they are made anew at the current version.
        eventually("the evidence is made anew", async || {
            let response = get(&http, evidence, Some(&first_tag)).await;
            response.status() == StatusCode::OK && {
                assert_eq!(header(&response, ETAG), values_tag);
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["records"].as_array().unwrap().len(), 2, "{body}");
                true
            }
        })
        .await;
        assert!(before.elapsed() >= young, "not before the maximum age: {:?}", before.elapsed());
        let export = get(&http, export, Some(&first_tag)).await;
        assert_eq!(export.status(), StatusCode::OK);
        assert_eq!(header(&export, ETAG), values_tag);
        assert!(export.text().await.unwrap().contains("\r\nKE1,all,,,2,"));
    })
    .await;
}

#[tokio::test]
async fn heavy_requests_beyond_the_bound_are_answered_503_with_retry_after() {
    with_env("caching_heavy", async |env| {
        let (_, http) = worker_with_one_publication(
            env,
            &[
                ("ECPAT_HTTP__HEAVY_REQUESTS", "1"),
                ("ECPAT_DATABASE__READER_CONNECTIONS", "1"),
                ("ECPAT_DATABASE__READER_STATEMENT_TIMEOUT_MS", "3000"),
            ],
        )
        .await;
        assert_eq!(get(&http, "/api/v1/indicators/KE1/records", None).await.status(), StatusCode::OK);

        // A lock makes the evidence query wait: the one heavy request allowed holds its place.
        // (Another period: the answer above is kept for this version and needs no query.)
        let evidence = "/api/v1/indicators/KE1/records?period=2019";
        let mut blocker = env.pool.begin().await.unwrap();
        sqlx::query("lock table records in access exclusive mode").execute(&mut *blocker).await.unwrap();
        let slow = tokio::spawn({
            let http = http.clone();
            async move {
                let started = Instant::now();
                let response = get(&http, evidence, None).await;
                (response.status(), started.elapsed())
            }
        });
        // Once it is waiting on the lock, every other heavy request is turned away at once.
        eventually("the evidence query waits on the lock", async || waiting_on_a_lock(env, "%from records%").await > 0)
            .await;
        for path in
            ["/api/v1/indicators/KE2/records", "/api/v1/export.csv?period=2019", "/api/v1/export.xlsx", "/report"]
        {
            let busy = get(&http, path, None).await;
            assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(header(&busy, RETRY_AFTER), "1", "{path}");
            let body: Value = busy.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("too many"), "{path}: {body}");
        }
        // The values are read from memory meanwhile.
        let values = get(&http, "/api/v1/indicators/KE1", None).await;
        assert_eq!(values.status(), StatusCode::OK);

        // The readers' statement timeout ends the waiting query: 503, and the place is free.
        let (status, took) = slow.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "cancelled by statement_timeout");
        assert!(took >= Duration::from_millis(2500) && took < Duration::from_secs(20), "{took:?}");
        blocker.rollback().await.unwrap();
        assert_eq!(get(&http, evidence, None).await.status(), StatusCode::OK, "the place is free again");
    })
    .await;
}

/// Every period a framework's values may be asked for.
fn periods() -> Vec<String> {
    let mut periods: Vec<String> = (2015..=2024).map(|y| y.to_string()).collect();
    periods.extend(["all".to_owned(), "2018-2021".to_owned()]);
    periods
}

/// The API's indicators of `framework` for `period`: code → (value, breakdowns).
async fn api_values(http: &str, framework: &str, period: &str) -> BTreeMap<String, (i64, Value)> {
    let response = get(http, &format!("/api/v1/indicators?framework={framework}&period={period}"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["code"].as_str().unwrap().to_owned(), (i["value"].as_i64().unwrap(), i["breakdowns"].clone())))
        .collect()
}

/// dimension → key → value.
type Breakdowns = BTreeMap<String, BTreeMap<String, i64>>;

/// The same from `framework_values`.
async fn database_values(env: &TestEnv, framework: &str, period: &str) -> BTreeMap<String, (i64, Value)> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "select indicator, dimension, key, value from framework_values where framework = $1 and period = $2",
    )
    .bind(framework)
    .bind(period)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let codes: Vec<String> = sqlx::query_scalar("select distinct indicator from tallies where framework = $1")
        .bind(framework)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    let mut values: BTreeMap<String, (i64, Breakdowns)> =
        codes.into_iter().map(|c| (c, (0, BTreeMap::new()))).collect();
    for (indicator, dimension, key, value) in rows {
        let entry = values.entry(indicator).or_default();
        if dimension.is_empty() {
            entry.0 = value;
        } else {
            entry.1.entry(dimension).or_default().insert(key, value);
        }
    }
    values.into_iter().map(|(code, (total, breakdowns))| (code, (total, json!(breakdowns)))).collect()
}

/// The API's values restricted to the indicators the database has rows for (others are 0
/// in both).
async fn compare(env: &TestEnv, http: &str, framework: &str, period: &str) -> bool {
    let expected = database_values(env, framework, period).await;
    let got = api_values(http, framework, period).await;
    let zero = (0, json!({}));
    got.iter().all(|(code, value)| expected.get(code).unwrap_or(&zero) == value)
        && expected.keys().all(|code| got.contains_key(code))
}

/// Waits until every period of `framework` reads from `http` as from the database.
async fn assert_equal(env: &TestEnv, http: &str, framework: &str, what: &str) {
    for period in periods() {
        // The notification of the last commit may still be on its way: a bounded wait.
        let start = Instant::now();
        while !compare(env, http, framework, &period).await {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{what}: {framework} {period}: the API says {:?}, the database {:?}",
                api_values(http, framework, &period).await,
                database_values(env, framework, &period).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for code in ["KE1", "KE3", "AP1", "CV1", "ND1", "ND2"] {
        let series: Value = get(http, &format!("/api/v1/indicators/{code}/series?framework={framework}"), None)
            .await
            .json()
            .await
            .unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "select period, value from framework_values where framework = $1 and indicator = $2 \
             and dimension = '' and length(period) = 4 order by period",
        )
        .bind(framework)
        .bind(code)
        .fetch_all(&env.pool)
        .await
        .unwrap();
        let expected: Vec<Value> =
            rows.into_iter().map(|(period, value)| json!({"period": period, "value": value})).collect();
        assert_eq!(series["points"], json!(expected), "{what}: the series of {code} in {framework}");
    }
}

#[tokio::test]
async fn the_values_in_memory_equal_the_database_and_recompute_after_a_flow_of_events() {
    with_env("caching_flow", async |env| {
        // Two workers commit in turn; each serves what both committed.
        let first = env.spawn_worker();
        let second = env.spawn_worker();
        env.worker(first).wait_ready(WAIT).await;
        env.worker(second).wait_ready(WAIT).await;
        let https = [env.worker(first).http.clone(), env.worker(second).http.clone()];

        let stream = events(2027, 3000);
        let (head, tail) = stream.split_at(1500);
        env.publish(head).await;
        // A second framework loaded while events flow: both processes read everything again.
        let text = ecpat_indicators::framework::DEFAULT_TEXT
            .replace(&format!("id = \"{DEFAULT}\""), &format!("id = \"{COPY}\""));
        let framework = ecpat_indicators::framework::document::parse(&text).expect("the copy reads");
        ecpat_indicators::store::recompute::load(&env.pool, framework, &text).await.expect("the copy loads");
        env.publish(tail).await;
        env.wait_for_counts(unique(&stream), 0, WAIT).await;

        for http in &https {
            let listed: Value = get(http, "/api/v1/frameworks", None).await.json().await.unwrap();
            let ids: Vec<&str> =
                listed["frameworks"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
            assert_eq!(ids, [COPY, DEFAULT], "{http}");
            assert_equal(env, http, DEFAULT, "after the flow").await;
            assert_equal(env, http, COPY, "after the flow").await;
        }
        let before = env.values().await;

        // recompute rebuilds the same values, and every process reads them again.
        let counted = ecpat_indicators::store::recompute::recompute(&env.pool).await.unwrap();
        assert!(counted > 100, "{counted} records");
        assert_eq!(env.values().await, before, "recompute equals the incremental tallies");
        for http in &https {
            assert_equal(env, http, DEFAULT, "after recompute").await;
            assert_equal(env, http, COPY, "after recompute").await;
        }

        // A framework removed is gone from memory too.
        let removed = env.cli(&["frameworks", "remove", COPY]).await;
        assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
        for http in &https {
            eventually("the copy is no longer listed", async || {
                let (status, _) = common_get(http, &format!("/api/v1/indicators?framework={COPY}")).await;
                status == StatusCode::NOT_FOUND
            })
            .await;
        }
    })
    .await;
}

async fn common_get(http: &str, path: &str) -> (StatusCode, Value) {
    let response = get(http, path, None).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}
