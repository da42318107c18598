//! A social post's attributes (`member`, `published_at`, `publication_id`, `url`) are those
//! of its latest snapshot, whatever metrics it carries (docs/events.md): through real
//! workers, and on upgrade from data stored when each series kept its own.

mod common;

use std::time::Duration;

use common::generate::events;
use common::{TestEnv, as_model, model, snapshot};
use ecpat_indicators::apply::{Message, apply};
use ecpat_indicators::envelope::decode;
use ecpat_indicators::records::Change;
use ecpat_indicators::store::recompute::recompute;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A snapshot of post `post_id` at `time` (published 2019-03-01, likes and shares), by id.
fn post_snapshot(post_id: &str, id: &str, time: &str) -> Value {
    let mut event = snapshot(id, time, 10, 3);
    event["data"]["post_id"] = json!(post_id);
    event
}

/// A later snapshot of the post carrying only `likes`, whose `published_at` is corrected
/// to 2020.
fn corrected_likes(post_id: &str, id: &str, time: &str) -> Value {
    let mut event = post_snapshot(post_id, id, time);
    event["data"]["published_at"] = json!("2020-03-01T10:00:00+01:00");
    event["data"]["metrics"] = json!({"likes": 12});
    event
}

#[tokio::test]
async fn a_snapshot_with_only_likes_and_a_corrected_published_at_moves_shares_to_the_new_year_in_either_order() {
    let mut env = TestEnv::new("post_year").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    // p1: the first snapshot, then the correction; p2: the correction arrives first; p3:
    // both in one batch.
    let first = [
        post_snapshot("p1", "a1", "2019-03-02T10:00:00Z"),
        corrected_likes("p2", "b2", "2019-03-09T10:00:00Z"),
        post_snapshot("p3", "c1", "2019-03-02T10:00:00Z"),
        corrected_likes("p3", "c2", "2019-03-09T10:00:00Z"),
    ];
    let then = [corrected_likes("p1", "a2", "2019-03-09T10:00:00Z"), post_snapshot("p2", "b1", "2019-03-02T10:00:00Z")];

    env.publish(&first).await;
    env.wait_for_counts(4, 0, WAIT).await;
    env.publish(&then).await;
    env.wait_for_counts(6, 0, WAIT).await;

    assert_eq!(env.value("KE3", "2020", "metric", "shares").await, 9, "every post's shares in its new year");
    assert_eq!(env.value("KE3", "2020", "metric", "likes").await, 36);
    assert_eq!(env.value("KE3", "2020", "", "").await, 45);
    assert_eq!(env.value("KE3", "2019", "", "").await, 0, "nothing left in the old year");
    assert_eq!(env.value("AP3", "2020", "", "").await, 1);
    assert_eq!(env.value("AP3", "2019", "", "").await, 0);
    let all: Vec<Value> = first.iter().chain(&then).cloned().collect();
    assert_eq!(as_model(&env.values().await), model::values(&all), "the model agrees");
    let incremental = env.values().await;
    recompute(&env.pool).await.unwrap();
    assert_eq!(env.values().await, incremental, "recompute gives the incremental tallies");
    env.cleanup().await;
}

/// A message holding one event, as taken from the broker.
fn message(event: &Value) -> Message {
    common::message(event.to_string())
}

/// Rewrites every live social series as the previous version stored it: with the
/// attributes of its own current snapshot (the event it names), then rebuilds the tallies
/// from them.
async fn store_as_each_series_kept_its_own(env: &TestEnv) {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select r.record_key, e.body::text from records r join events e on e.seq = r.event_seq
        where r.record_type = 'social_post' and r.record is not null",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(!rows.is_empty());
    for (key, body) in rows {
        let decoded = decode(body.as_bytes());
        let own = decoded.events[0]
            .changes
            .iter()
            .find_map(|change| match change {
                Change::Upsert(record) if record.key().key == key => Some(record),
                _ => None,
            })
            .expect("a live series' event carries its metric");
        sqlx::query("update records set record = $1::json where record_type = 'social_post' and record_key = $2")
            .bind(serde_json::to_string(own).unwrap())
            .bind(&key)
            .execute(&env.pool)
            .await
            .unwrap();
    }
    recompute(&env.pool).await.unwrap();
}

/// Takes a database back to before migration 0014 (the tables and index it replaced), as
/// a database that has not had the later migrations has them.
const BEFORE_LOCK_FIRST: &str = "
    create table apply_generation (single boolean primary key default true check (single), n bigint not null);
    insert into apply_generation (n) values (0);
    create table apply_log (generation bigint primary key, records bigint[] not null, posts bigint[] not null,
        events bigint[] not null default '{}');
    create index events_event_key on events (event_key);
    drop index events_event_key_unique;
    delete from _sqlx_migrations where version = 20261201000014;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_gives_every_series_its_post_latest_attributes_and_rebuilds_the_tallies() {
    let env = TestEnv::new("post_upgrade").await;
    // One post named apart from the generated ones, whose shares the old rule left in 2019.
    let mut all = vec![
        post_snapshot("post-a", "a1", "2019-03-02T10:00:00Z"),
        corrected_likes("post-a", "a2", "2019-03-09T10:00:00Z"),
    ];
    all.extend(events(13, 400));
    for chunk in all.chunks(40) {
        let batch: Vec<Message> = chunk.iter().map(message).collect();
        apply(&env.pool, &batch).await.unwrap();
    }
    let expected = model::values(&all);
    assert_eq!(as_model(&env.values().await), expected);

    store_as_each_series_kept_its_own(&env).await;
    let old = as_model(&env.values().await);
    assert_ne!(old, expected, "the data tells the two rules apart");
    let shares_2019 = env.value("KE3", "2019", "metric", "shares").await;
    assert!(shares_2019 >= 3, "post-a's shares in the old year");

    // The upgrade, as on a database that never had the migration: every command starts
    // with `migrate`.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "{BEFORE_LOCK_FIRST} drop table pending_recompute; delete from _sqlx_migrations where version = 20261130000012"
    )))
    .execute(&env.pool)
    .await
    .unwrap();
    ecpat_indicators::app::migrate(&env.settings).await.unwrap();

    assert_eq!(as_model(&env.values().await), expected, "the stored tallies follow the latest snapshots");
    assert!(env.value("KE3", "2019", "metric", "shares").await <= shares_2019 - 3);
    let pending: i64 = sqlx::query_scalar("select count(*) from pending_recompute").fetch_one(&env.pool).await.unwrap();
    assert_eq!(pending, 0, "the rebuild is done once");
    // New batches go on from the migrated records.
    let later = corrected_likes("post-a", "a3", "2019-03-10T10:00:00Z");
    apply(&env.pool, &[message(&later)]).await.unwrap();
    all.push(later);
    assert_eq!(as_model(&env.values().await), model::values(&all));
    env.cleanup().await;
}

#[tokio::test]
async fn upgrading_a_database_that_holds_escaped_nuls_still_migrates() {
    let env = TestEnv::new("post_upgrade_nul").await;
    // PostgreSQL's json operators fail on a document holding `\u0000` anywhere: a title and
    // a post's url may hold one. Another publication's time has digits past the ninth.
    let mut titled = common::publication("n1", "2019-05-01T00:00:00Z", "pub-nul", "global", "2019-05-01");
    titled["data"]["title"] = json!("a\u{0}b");
    let precise = common::publication("n2", "2019-05-01T00:00:00.000000000100Z", "pub-fine", "global", "2019-05-01");
    let mut with_url = post_snapshot("post-nul", "s1", "2019-03-02T10:00:00Z");
    with_url["data"]["url"] = json!("https://example.org/\u{0}");
    let mut corrected = corrected_likes("post-nul", "s2", "2019-03-09T10:00:00Z");
    corrected["data"]["url"] = json!("https://example.org/\u{0}");
    let all = vec![titled, precise, with_url, corrected];
    let batch: Vec<Message> = all.iter().map(message).collect();
    apply(&env.pool, &batch).await.unwrap();

    // The upgrade, as on a database that had none of the migrations since versions compare
    // past the nanosecond.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "{BEFORE_LOCK_FIRST} alter table records drop column version_subnanos;
        alter table post_withdrawals drop column version_subnanos; drop table pending_recompute;
        delete from _sqlx_migrations where version in (20261130000011, 20261130000012)"
    )))
    .execute(&env.pool)
    .await
    .unwrap();
    ecpat_indicators::app::migrate(&env.settings).await.expect("the migrations pass over escaped NULs");

    let subnanos: String =
        sqlx::query_scalar("select version_subnanos from records where record_key = '[\"pub-fine\"]'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(subnanos, "1", "the digits past the ninth of the other events are filled in");
    assert_eq!(as_model(&env.values().await), model::values(&all));
    env.cleanup().await;
}
