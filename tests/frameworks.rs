//! Frameworks as data, end to end: a second framework loaded into a running system (two
//! workers, events flowing), every value of both frameworks against a brute-force model,
//! a changed definition recounted, and a definition refused with nothing changed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use common::generate::{Rng, events};
use common::{TestEnv, as_model, event, model, unique};
use ecpat_indicators::store::recompute::recompute;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const SECOND: &str = "second-2019-2020";
const SPAN: &str = "2019-2020";

/// The second framework: new indicators over existing record types and over facts, list
/// breakdowns, a sum, distinct counts, a baseline and targets (one for the span). `NAT_WHEN`
/// is replaced by the first indicator's `when`.
const SECOND_TEXT: &str = r#"
id = "second-2019-2020"
title = { fr = "Deuxième cadre", en = "Second framework" }
years = [2019, 2020]

[[objectives]]
code = "reach"
title = { en = "Reach" }

[[objectives]]
code = "network"
title = { en = "Network" }

[[indicators]]
code = "NAT"
objective = "reach"
title = { en = "National studies" }
record = "publication"
when = 'NAT_WHEN'
value = "count"
date = "published_on"
breakdowns = [{ name = "country", field = "countries" }, "scope"]
baseline = 1
targets = { 2019 = 3, "2019-2020" = 10 }

[[indicators]]
code = "THEMES"
objective = "reach"
title = { en = "Themes covered" }
record = "publication"
value = "distinct(themes)"
date = "published_on"
breakdowns = ["scope"]

[[indicators]]
code = "LIKES"
objective = "reach"
title = { en = "Likes" }
record = "social_post"
when = 'metric == "likes"'
value = "sum(value)"
date = "published_at"
breakdowns = ["platform"]

[[indicators]]
code = "POSTS"
objective = "reach"
title = { en = "Posts" }
record = "social_post"
value = "distinct(post)"
date = "published_at"

[[indicators]]
code = "TRAINED"
objective = "network"
title = { en = "Members trained in groups" }
record = "capacity_training"
when = 'size(beneficiaries) >= 2'
value = "distinct(beneficiaries)"
date = "held_on"

[[indicators]]
code = "HOTLINE"
objective = "network"
title = { en = "Hotlines supported" }
record = "fact"
when = 'kind == "hotline_supported"'
value = "sum(value)"
date = "date"
breakdowns = ["attributes.region", { name = "country", field = "countries" }]

[[indicators]]
code = "FACT_MEMBERS"
objective = "network"
title = { en = "Members with facts" }
record = "fact"
value = "distinct(member)"
date = "date"
breakdowns = ["tags"]
"#;

const FIRST_WHEN: &str = r#"scope == "national" && contributed"#;
const CHANGED_WHEN: &str = r#"scope == "national""#;

fn second_text(when: &str) -> String {
    SECOND_TEXT.replace("NAT_WHEN", when)
}

/// `n` fact events (with corrections and withdrawals), ids from `first`.
fn facts(seed: u64, first: usize, n: usize) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for i in first..first + n {
        let fact_id = format!("f{}", rng.below(n as u64 / 2 + 1) + first as u64);
        let time = format!("2022-03-{:02}T{:02}:{:02}:00Z", 1 + rng.below(28), rng.below(24), rng.below(60));
        if rng.chance(8) {
            let data = json!({"record_type": "fact", "key": {"fact_id": fact_id}});
            out.push(event("urn:test:facts", &format!("w{i}"), &time, "org.ecpat.record.withdrawn", data));
            continue;
        }
        let mut data = json!({
            "fact_id": fact_id,
            "kind": rng.pick(&["hotline_supported", "hotline_supported", "partner_trained"]),
            "date": format!("{}-{:02}-{:02}", 2018 + rng.below(4), 1 + rng.below(12), 1 + rng.below(28)),
        });
        if rng.chance(70) {
            data["member"] = json!(rng.pick(&["ecpat-france", "ecpat-belgique", "ecpat-togo"]));
        }
        if rng.chance(70) {
            let countries: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(&["fr", "TG", "be", "PH"])).collect();
            data["countries"] = json!(countries);
        }
        if rng.chance(60) {
            data["value"] = json!(rng.below(50));
        }
        if rng.chance(60) {
            let tags: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(&["urgent", "online", "school"])).collect();
            data["tags"] = json!(tags);
        }
        if rng.chance(60) {
            data["attributes"] = if rng.chance(80) {
                json!({"region": rng.pick(&["west_africa", "europe"]), "partner": "x"})
            } else {
                json!({"partner": "y"})
            };
        }
        out.push(event("urn:test:facts", &format!("e{i}"), &time, "org.ecpat.fact.recorded", data));
    }
    out
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A list field's items, upper-cased for countries, each once.
fn items(v: &Value, upper: bool) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| if upper { s.to_uppercase() } else { s.to_owned() })
        .collect()
}

fn date_year(v: &Value) -> i32 {
    NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d").unwrap().year()
}

/// The second framework's values, computed straight from the current records.
fn second_values(arrivals: &[Value], nat_needs_contributed: bool) -> model::Values {
    let mut sums: BTreeMap<(String, String, String, String), i64> = BTreeMap::new();
    let mut sets: BTreeMap<(String, String, String, String), BTreeSet<String>> = BTreeMap::new();
    let periods = |year: i32| {
        let mut p = vec![year.to_string(), "all".to_owned()];
        if (2019..=2020).contains(&year) {
            p.push(SPAN.to_owned());
        }
        p
    };
    let mut add = |code: &str, year: i32, keys: &[(&str, String)], amount: i64| {
        for period in periods(year) {
            *sums.entry((code.into(), period.clone(), String::new(), String::new())).or_default() += amount;
            for (dimension, key) in keys {
                *sums.entry((code.into(), period.clone(), (*dimension).into(), key.clone())).or_default() += amount;
            }
        }
    };
    let mut distinct = |code: &str, year: i32, keys: &[(&str, String)], item_list: &BTreeSet<String>| {
        for period in periods(year) {
            for item in item_list {
                sets.entry((code.into(), period.clone(), String::new(), String::new()))
                    .or_default()
                    .insert(item.clone());
                for (dimension, key) in keys {
                    let id = (code.into(), period.clone(), (*dimension).into(), key.clone());
                    sets.entry(id).or_default().insert(item.clone());
                }
            }
        }
    };
    for ((record_type, key), d) in model::current_records(arrivals) {
        match record_type.as_str() {
            "publication" => {
                let year = date_year(&d["published_on"]);
                let scope = text(&d["scope"]).unwrap();
                let countries = items(&d["countries"], true);
                let contributed = d["contributed"] == json!(true);
                if scope == "national" && (contributed || !nat_needs_contributed) {
                    let mut keys: Vec<(&str, String)> = countries.iter().map(|c| ("country", c.clone())).collect();
                    keys.push(("scope", scope.clone()));
                    add("NAT", year, &keys, 1);
                }
                distinct("THEMES", year, &[("scope", scope)], &items(&d["themes"], false));
            }
            "social_post" => {
                let year = DateTime::parse_from_rfc3339(d["published_at"].as_str().unwrap())
                    .unwrap()
                    .with_timezone(&Utc)
                    .year();
                let platform = text(&d["platform"]).unwrap();
                if d["metric"] == json!("likes") {
                    add("LIKES", year, &[("platform", platform.clone())], d["value"].as_i64().unwrap());
                }
                let post = format!("{}:{}", key[0], key[1]);
                distinct("POSTS", year, &[], &BTreeSet::from([post]));
            }
            "capacity_training" => {
                let beneficiaries = items(&d["beneficiaries"], false);
                if beneficiaries.len() >= 2 {
                    distinct("TRAINED", date_year(&d["held_on"]), &[], &beneficiaries);
                }
            }
            "fact" => {
                let year = date_year(&d["date"]);
                if d["kind"] == json!("hotline_supported") {
                    let mut keys: Vec<(&str, String)> =
                        items(&d["countries"], true).into_iter().map(|c| ("country", c)).collect();
                    if let Some(region) = d.get("attributes").and_then(|a| a.get("region")).and_then(Value::as_str) {
                        keys.push(("region", region.to_owned()));
                    }
                    add("HOTLINE", year, &keys, d.get("value").and_then(Value::as_i64).unwrap_or(1));
                }
                if let Some(member) = d.get("member").and_then(Value::as_str) {
                    let keys: Vec<(&str, String)> = items(&d["tags"], false).into_iter().map(|t| ("tags", t)).collect();
                    distinct("FACT_MEMBERS", year, &keys, &BTreeSet::from([member.to_owned()]));
                }
            }
            _ => {}
        }
    }
    let mut out: model::Values = sums;
    out.extend(sets.into_iter().map(|(k, set)| (k, set.len() as i64)));
    out.retain(|_, v| *v != 0);
    out
}

/// `framework_values` of one framework, as the model writes them.
async fn framework_values(env: &TestEnv, framework: &str) -> model::Values {
    let rows: Vec<(String, String, String, String, i64)> =
        sqlx::query_as("select indicator, period, dimension, key, value from framework_values where framework = $1")
            .bind(framework)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    rows.into_iter().map(|(i, p, d, k, v)| ((i, p, d, k), v)).collect()
}

/// Publishes `events` in slices, a little at a time: a steady flow for the workers.
async fn flow(env: &TestEnv, events: &[Value]) {
    for slice in events.chunks(50) {
        env.publish(slice).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes a framework document to a file of this test's and loads it with the CLI.
async fn load(env: &TestEnv, name: &str, text: &str, extra: &[&str]) -> std::process::Output {
    let path = std::env::temp_dir().join(format!("{}-{name}.toml", env.name));
    std::fs::write(&path, text).unwrap();
    let mut args = vec!["frameworks", "load"];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    let output = env.cli(&args).await;
    std::fs::remove_file(&path).unwrap();
    output
}

#[tokio::test]
async fn a_second_framework_loaded_under_a_flow_of_events_counts_exactly_and_is_recounted_when_changed() {
    let mut env = TestEnv::new("frameworks").await;
    for _ in 0..2 {
        let w = env.spawn_worker();
        env.worker(w).wait_ready(WAIT).await;
    }
    let mut stream = events(20261201, 1500);
    stream.extend(facts(7, 0, 300));
    let (first, rest) = stream.split_at(900);

    // Half the events, then the second framework while the rest flows in.
    flow(&env, first).await;
    let v1 = second_text(FIRST_WHEN);
    let ((), loaded) = tokio::join!(flow(&env, rest), load(&env, "v1", &v1, &[]));
    assert!(loaded.status.success(), "load: {}", String::from_utf8_lossy(&loaded.stderr));
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("Loaded framework second-2019-2020 version 1"));
    env.wait_for_counts(unique(&stream), 0, WAIT).await;

    assert_eq!(as_model(&env.values().await), model::values(&stream), "the default framework");
    let expected = second_values(&stream, true);
    assert!(expected.keys().any(|k| k.0 == "HOTLINE" && k.2 == "region"), "the model counts facts by region");
    assert!(expected.keys().any(|k| k.1 == SPAN), "the model has span values");
    assert_eq!(framework_values(&env, SECOND).await, expected, "the second framework");

    // One definition changes while events go on flowing: recounted from the records.
    let mut more = facts(8, 1000, 200);
    more.extend(events(20261202, 300).into_iter().map(|mut e| {
        e["id"] = json!(format!("more-{}", e["id"].as_str().unwrap()));
        e
    }));
    let v2 = second_text(CHANGED_WHEN);
    let ((), loaded) = tokio::join!(flow(&env, &more), load(&env, "v2", &v2, &[]));
    assert!(loaded.status.success(), "load v2: {}", String::from_utf8_lossy(&loaded.stderr));
    stream.extend(more);
    env.wait_for_counts(unique(&stream), 0, WAIT).await;
    let changed = second_values(&stream, false);
    assert_ne!(changed, expected, "the change must change the numbers");
    assert_eq!(framework_values(&env, SECOND).await, changed, "the second framework, changed");
    assert_eq!(as_model(&env.values().await), model::values(&stream), "the default framework, unchanged");

    // A definition that must be refused is refused, with nothing changed.
    let before = framework_values(&env, SECOND).await;
    let bad = second_text(CHANGED_WHEN).replace(r#"value = "sum(value)""#, r#"value = "sum(platform)""#);
    for extra in [&[][..], &["--check"][..]] {
        let refused = load(&env, "bad", &bad, extra).await;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "a sum over text must be refused");
        assert!(stderr.contains("indicator LIKES, key `value`"), "the error names the indicator and key: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    let checked = load(&env, "good", &second_text(FIRST_WHEN), &["--check"]).await;
    assert!(String::from_utf8_lossy(&checked.stdout).contains("valid"), "{checked:?}");
    assert_eq!(framework_values(&env, SECOND).await, before, "nothing changed");
    let listed = env.cli(&["frameworks", "list"]).await;
    let listed: Vec<Value> =
        String::from_utf8_lossy(&listed.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let second = listed.iter().find(|f| f["id"] == SECOND).expect("the second framework is listed");
    assert_eq!(second["version"], 2, "the refused and the checked documents stored no version");

    // Every version is kept, verbatim.
    let shown = env.cli(&["frameworks", "show", SECOND, "--version", "1"]).await;
    assert_eq!(String::from_utf8_lossy(&shown.stdout), second_text(FIRST_WHEN));

    // recompute rebuilds every framework and equals the incremental tallies.
    let (default_before, second_before) = (env.values().await, framework_values(&env, SECOND).await);
    recompute(&env.pool).await.unwrap();
    assert_eq!(env.values().await, default_before);
    assert_eq!(framework_values(&env, SECOND).await, second_before);

    // Removed: its values go, the default framework stays.
    let removed = env.cli(&["frameworks", "remove", SECOND]).await;
    assert!(removed.status.success(), "{removed:?}");
    assert!(framework_values(&env, SECOND).await.is_empty());
    assert_eq!(env.values().await, default_before);
    let refused = env.cli(&["frameworks", "remove", "ecpat-2018-2021"]).await;
    assert!(!refused.status.success(), "the default framework cannot be removed");
    env.cleanup().await;
}

/// A framework whose `when` fails on some current records: `frameworks show` names the
/// indicator, how many current records it fails on and the first one.
#[tokio::test]
async fn frameworks_show_names_the_conditions_that_fail_on_current_records() {
    let mut env = TestEnv::new("fw_when_fails").await;
    env.spawn_worker();
    let publication = |id: &str, time: &str, doi: Option<&str>| {
        let mut data = json!({
            "publication_id": id, "title": "Étude", "scope": "national", "countries": ["fr"],
            "themes": ["online"], "contributed": true, "published_on": "2020-03-15",
        });
        if let Some(doi) = doi {
            data["doi"] = json!(doi);
        }
        event("urn:ecpat:fr:research", &format!("{id}-{time}"), time, "org.ecpat.research.publication.recorded", data)
    };
    let withdrawn = event(
        "urn:ecpat:fr:research",
        "withdraw-pub-4",
        "2026-11-03T10:00:00Z",
        "org.ecpat.record.withdrawn",
        json!({"record_type": "publication", "key": {"publication_id": "pub-4"}}),
    );
    // Current without a DOI: pub-2 only (pub-3 was corrected to have one, pub-4 withdrawn).
    let events = [
        publication("pub-1", "2026-11-01T10:00:00Z", Some("10.1/a")),
        publication("pub-2", "2026-11-01T10:00:00Z", None),
        publication("pub-3", "2026-11-01T10:00:00Z", None),
        publication("pub-3", "2026-11-02T10:00:00Z", Some("10.1/c")),
        publication("pub-4", "2026-11-01T10:00:00Z", None),
        withdrawn,
    ];
    env.publish(&events).await;
    env.wait_for_counts(events.len() as i64, 0, WAIT).await;

    let text = r#"
id = "doi-2020"
title = { en = "DOIs" }
years = [2019, 2020]

[[objectives]]
code = "o"
title = { en = "O" }

[[indicators]]
code = "DOI"
objective = "o"
title = { en = "Publications with a DOI" }
record = "publication"
when = 'size(doi) > 0'
value = "count"
date = "published_on"

[[indicators]]
code = "ALL"
objective = "o"
title = { en = "Publications" }
record = "publication"
when = 'contributed'
value = "count"
date = "published_on"
"#;
    let loaded = load(&env, "doi", text, &[]).await;
    assert!(loaded.status.success(), "{loaded:?}");
    let shown = env.cli(&["frameworks", "show", "doi-2020"]).await;
    assert!(shown.status.success(), "{shown:?}");
    assert_eq!(String::from_utf8_lossy(&shown.stdout), text);
    let stderr = String::from_utf8_lossy(&shown.stderr);
    let failing: Vec<&str> = stderr.lines().filter(|l| l.starts_with("when:")).collect();
    assert_eq!(failing.len(), 1, "one indicator's condition fails: {stderr}");
    assert!(failing[0].starts_with("when: indicator DOI: the condition fails on 1 current record(s)"), "{stderr}");
    assert!(failing[0].contains(r#"first publication ["pub-2"]: "#), "{stderr}");
    // The record it fails on is not counted: pub-1 and pub-3 are.
    let values = framework_values(&env, "doi-2020").await;
    assert_eq!(values.get(&("DOI".to_owned(), "2020".to_owned(), String::new(), String::new())), Some(&2));
    assert_eq!(values.get(&("ALL".to_owned(), "2020".to_owned(), String::new(), String::new())), Some(&3));

    // The default framework's conditions fail on none.
    let shown = env.cli(&["frameworks", "show", "ecpat-2018-2021"]).await;
    assert!(
        String::from_utf8_lossy(&shown.stderr).contains("when: no condition fails on a current record"),
        "{shown:?}"
    );
    env.cleanup().await;
}
