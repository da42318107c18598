//! Producer rules with a real worker, RabbitMQ and PostgreSQL: each message's `user_id`
//! (checked by RabbitMQ against the connection's user, here `guest`) is judged against the
//! rules of the worker's configuration folder.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{TestEnv, event, plain_publication};
use ecpat_indicators::broker;
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// A configuration folder holding `rules` as its `default.toml`.
fn config_dir(env: &TestEnv, rules: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{}-config", env.name));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("default.toml"), rules).unwrap();
    dir
}

async fn start(env: &mut TestEnv, rules: Option<&str>) -> usize {
    env.declare().await;
    let w = match rules {
        Some(rules) => {
            let dir = config_dir(env, rules);
            env.spawn_worker_with(&[("ECPAT_CONFIG_DIR", dir.to_str().unwrap())])
        }
        None => env.spawn_worker(),
    };
    env.worker(w).wait_ready(WAIT).await;
    w
}

/// Publishes a body without the `user_id` property.
async fn publish_without_user(env: &TestEnv, body: &Value) {
    let connection = broker::connect(&env.settings.amqp, "test anonymous publisher").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let text = body.to_string();
    let confirm = channel
        .basic_publish(
            env.settings.amqp.exchange.as_str().into(),
            broker::routing_key_for(&text).as_str().into(),
            BasicPublishOptions::default(),
            text.as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    connection.close(200, "ok".into()).await.unwrap();
}

/// The stored rejections: reason, detail.
async fn rejections(env: &TestEnv) -> Vec<(String, String)> {
    sqlx::query_as("select reason, detail from rejections order by id").fetch_all(&env.pool).await.unwrap()
}

async fn stored_ids(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar("select id from events order by id").fetch_all(&env.pool).await.unwrap()
}

fn story(id: &str, member: &str) -> Value {
    event(
        "urn:ecpat:research:team",
        id,
        "2019-05-01T10:00:00Z",
        "org.ecpat.media.story.recorded",
        json!({"story_id": id, "member": member, "outlet": "Le Monde", "global_advocacy": true, "published_on": "2019-04-30"}),
    )
}

const RULES: &str = r#"
[producers.guest]
sources = ["urn:ecpat:research"]
types = ["org.ecpat.research.publication.recorded", "org.ecpat.media.story.recorded"]
members = ["ecpat-belgique"]

[producers.research]
types = ["org.ecpat.un.submission.recorded"]
"#;

#[tokio::test]
async fn events_outside_their_users_rules_are_rejected_unauthorized() {
    let mut env = TestEnv::new("producers").await;
    start(&mut env, Some(RULES)).await;
    let mut allowed = plain_publication("allowed");
    allowed["source"] = json!("urn:ecpat:research:team");
    let mut foreign_source = plain_publication("foreign-source");
    foreign_source["source"] = json!("urn:ecpat:fr:research-team");
    let submission = event(
        "urn:ecpat:research:team",
        "submission",
        "2019-05-01T10:00:00Z",
        "org.ecpat.un.submission.recorded",
        json!({"submission_id": "s1", "mechanism": "upr", "country": "SN", "submitted_on": "2019-03-29",
               "in_alliance": false, "members": ["ecpat-belgique"]}),
    );
    env.publish(&[allowed, foreign_source, submission]).await;
    env.wait_for_counts(1, 2, WAIT).await;
    // A batch: each event judged on its own.
    let batch = json!([story("own-member", "ecpat-belgique"), story("other-member", "ecpat-france")]).to_string();
    env.publish_raw(&[("org.ecpat.batch".into(), batch.into_bytes())]).await;
    env.wait_for_counts(2, 3, WAIT).await;
    let mut anonymous = plain_publication("anonymous");
    anonymous["source"] = json!("urn:ecpat:research:team");
    publish_without_user(&env, &anonymous).await;
    env.wait_for_counts(2, 4, WAIT).await;

    assert_eq!(stored_ids(&env).await, ["allowed", "own-member"]);
    assert_eq!(env.value("KE1", "all", "", "").await, 1, "only the allowed publication counts");
    let rejections = rejections(&env).await;
    assert!(rejections.iter().all(|(reason, _)| reason == "unauthorized"), "{rejections:?}");
    let details: Vec<&str> = rejections.iter().map(|(_, detail)| detail.as_str()).collect();
    assert_eq!(
        details,
        [
            "user \"guest\" may not publish source urn:ecpat:fr:research-team (its sources: urn:ecpat:research)",
            "user \"guest\" may not publish type org.ecpat.un.submission.recorded (its types: \
             org.ecpat.research.publication.recorded, org.ecpat.media.story.recorded)",
            "batch event 1: user \"guest\" may not speak for member ecpat-france (its members: ecpat-belgique)",
            "the message has no user_id, which producer rules require",
        ]
    );
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{}-config", env.name)));
    env.cleanup().await;
}

#[tokio::test]
async fn a_user_without_rules_is_unauthorized_when_others_have_some() {
    let mut env = TestEnv::new("producers_unknown").await;
    start(&mut env, Some("[producers.research]\nsources = [\"urn:ecpat:research\"]\n")).await;
    env.publish(&[plain_publication("p1")]).await;
    env.wait_for_counts(0, 1, WAIT).await;
    assert_eq!(
        rejections(&env).await,
        [("unauthorized".to_owned(), "user \"guest\" has no producer rules".to_owned())]
    );
    assert_eq!(env.value("KE1", "all", "", "").await, 0);
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{}-config", env.name)));
    env.cleanup().await;
}

#[tokio::test]
async fn without_rules_a_message_without_user_id_still_counts() {
    let mut env = TestEnv::new("producers_none").await;
    start(&mut env, None).await;
    publish_without_user(&env, &plain_publication("p1")).await;
    env.publish(&[plain_publication("p2")]).await;
    env.wait_for_counts(2, 0, WAIT).await;
    assert_eq!(env.value("KE1", "all", "", "").await, 2);
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{}-config", env.name)));
    env.cleanup().await;
}
