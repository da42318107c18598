//! The one-shot commands through the real binary, against the real RabbitMQ and
//! PostgreSQL: `publish` past bad lines, `rejections list|replay`, and arguments that are
//! errors rather than nothing to do.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{TestEnv, plain_publication, publication};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON Lines a command printed.
fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[tokio::test]
async fn publish_skips_and_reports_lines_that_are_not_utf8_or_not_json_and_publishes_every_other_line() {
    let mut env = TestEnv::new("publish_bad_lines").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let mut lines: Vec<Vec<u8>> =
        (0..1500).map(|i| plain_publication(&format!("p{i}")).to_string().into_bytes()).collect();
    // Excel and Notepad start a UTF-8 file with a byte order mark; files put together carry
    // it further down too.
    lines[0].splice(0..0, *b"\xEF\xBB\xBF");
    lines[700].splice(0..0, *b"\xEF\xBB\xBF");
    lines[900] = b"\r".to_vec();
    let latin1 = plain_publication("latin-1").to_string().replace("Study", "Caf\u{e9}");
    lines.insert(1200, latin1.chars().map(|c| c as u8).collect());
    lines.insert(1299, b"{\"specversion\": \"1.0\", oops".to_vec());
    let file = std::env::temp_dir().join(format!("{}.jsonl", env.name));
    std::fs::write(&file, lines.join(&b"\r\n"[..])).unwrap();

    let output = env.cli(&["publish", file.to_str().unwrap()]).await;

    let report = stderr(&output);
    assert!(!output.status.success(), "skipped lines make the exit code non-zero: {report}");
    assert!(report.contains("line 1201: not UTF-8 (invalid byte at column "), "{report}");
    assert!(report.contains("line 1300: not JSON (key must be a string at column 24)"), "{report}");
    assert!(report.contains("published 1499, skipped 2"), "{report}");
    env.wait_for_counts(1499, 0, WAIT).await;
    assert_eq!(env.value("KE1", "all", "", "").await, 1499);
    std::fs::remove_file(file).unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_rejection_is_replayed_once_and_a_replay_rejected_again_points_to_it() {
    let mut env = TestEnv::new("replay_once").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let mut unknown = publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30");
    unknown["type"] = json!("org.ecpat.research.publication.recorded.v2");
    env.publish(&[unknown]).await;
    env.wait_for_counts(0, 1, WAIT).await;
    let first = json_lines(&env.cli(&["rejections", "list"]).await)[0]["id"].as_i64().unwrap();

    let dry = env.cli(&["rejections", "replay", "--dry-run"]).await;
    assert!(dry.status.success(), "{}", stderr(&dry));
    let listed = json_lines(&dry);
    assert_eq!(listed.len(), 1);
    assert_eq!((&listed[0]["id"], &listed[0]["replayed_at"]), (&json!(first), &Value::Null), "a dry run marks nothing");

    let replay = env.cli(&["rejections", "replay"]).await;
    assert!(replay.status.success(), "{}", stderr(&replay));
    assert!(stderr(&replay).contains("Replayed 1 rejection(s)."), "{}", stderr(&replay));
    env.wait_for_counts(0, 2, WAIT).await;
    let listed = json_lines(&env.cli(&["rejections", "list"]).await);
    assert_eq!(listed[0]["replay_of"], json!(first), "the new rejection points to the one it replays");
    assert!(listed[1]["replayed_at"].is_string() && listed[1]["replay_of"].is_null(), "{listed:?}");
    let (status, body) = env.worker(w).get("/api/v1/rejections").await;
    assert_eq!((status, &body["items"][0]["replay_of"]), (200, &json!(first)));

    let again = env.cli(&["rejections", "replay", "--id", &first.to_string()]).await;
    assert!(!again.status.success());
    assert!(stderr(&again).contains(&format!("rejection {first} was replayed already")), "{}", stderr(&again));
    let dry = env.cli(&["rejections", "replay", "--dry-run"]).await;
    assert_eq!(json_lines(&dry).iter().map(|r| &r["replay_of"]).collect::<Vec<_>>(), [&json!(first)]);
    env.cleanup().await;
}

#[tokio::test]
async fn two_replays_at_once_publish_each_rejection_once() {
    let mut env = TestEnv::new("replay_race").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let bodies: Vec<(String, Vec<u8>)> =
        (0..200).map(|i| ("org.ecpat.x".to_owned(), format!("{{\"not json\": {i}").into_bytes())).collect();
    env.publish_raw(&bodies).await;
    env.wait_for_counts(0, 200, WAIT).await;

    let (one, two) = tokio::join!(env.cli(&["rejections", "replay"]), env.cli(&["rejections", "replay"]));

    let replayed = |output: &Output| -> usize {
        let report = stderr(output);
        assert!(output.status.success(), "{report}");
        let count = report.lines().find_map(|l| l.strip_prefix("Replayed ")?.split(' ').next()?.parse().ok());
        count.unwrap_or(0)
    };
    assert_eq!(replayed(&one) + replayed(&two), 200);
    env.wait_for_counts(0, 400, WAIT).await;
    env.cleanup().await;
}

#[tokio::test]
async fn unknown_filters_missing_ids_and_limits_beyond_the_apis_are_errors() {
    let env = TestEnv::new("cli_errors").await;

    for (args, error) in [
        (&["rejections", "replay", "--reason", "bogus"][..], "not a rejection reason"),
        (&["rejections", "replay", "--id", "987654321"], "there is no rejection 987654321"),
        (&["rejections", "replay", "--dry-run", "--id", "987654321"], "there is no rejection 987654321"),
        (&["track", "list", "--status", "bogus"], "not a status"),
        (&["rejections", "list", "--limit", "0"], "0 is not in 1..=1000"),
        (&["rejections", "list", "--limit", "5000"], "5000 is not in 1..=1000"),
    ] {
        let output = env.cli(args).await;
        let report = stderr(&output);
        assert!(!output.status.success(), "{args:?} must fail: {report}");
        let first = report.lines().next().unwrap_or_default();
        assert!(first.contains(error), "{args:?}: the first line says what is wrong: {report}");
    }
    for args in [&["rejections", "list", "--limit", "1000"][..], &["rejections", "replay", "--reason", "not_json"]] {
        let output = env.cli(args).await;
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    env.cleanup().await;
}

#[tokio::test]
async fn a_redelivered_replay_naming_a_rejection_that_does_not_exist_is_kept_once() {
    use ecpat_indicators::apply::{Message, apply};

    let env = TestEnv::new("replay_unknown").await;
    let message = || Message {
        headers: json!({"x-ecpat-replay-of": 987654321}),
        maybe_applied: true,
        ..common::message("{not json".into())
    };

    // The same message twice, as a broker redelivers one whose batch may have committed.
    apply(&env.pool, &[message()]).await.unwrap();
    apply(&env.pool, &[message()]).await.unwrap();

    let stored: Vec<Option<i64>> =
        sqlx::query_scalar("select replay_of from rejections").fetch_all(&env.pool).await.unwrap();
    assert_eq!(stored, vec![None], "kept once, pointing to no rejection that does not exist");
    env.cleanup().await;
}
