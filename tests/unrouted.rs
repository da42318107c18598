//! Messages whose routing key matches no binding: RabbitMQ hands them to the events
//! exchange's alternate exchange, bound to the work queue, and the worker counts them like
//! any other (the event's `type` decides), whether the alternate exchange was declared by the
//! worker or, on an exchange declared before it existed, given by the documented policy.

mod common;

use std::time::Duration;

use common::{TestEnv, plain_publication};
use ecpat_indicators::broker;
use lapin::ExchangeKind;
use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;

const WAIT: Duration = Duration::from_secs(30);

/// Valid publications published with routing keys that no binding matches: a key outside
/// `org.ecpat.`, a typo, the empty key, and the right words in the wrong case.
fn unroutable(prefix: &str) -> Vec<(String, Vec<u8>)> {
    ["ecpat.social.metrics", "org.ecapt.research.publication.recorded", "", "ORG.ECPAT.RESEARCH.PUBLICATION.RECORDED"]
        .iter()
        .enumerate()
        .map(|(i, key)| (key.to_string(), plain_publication(&format!("{prefix}{i}")).to_string().into_bytes()))
        .collect()
}

#[tokio::test]
async fn events_whose_routing_key_matches_no_binding_are_counted() {
    let mut env = TestEnv::new("unrouted").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;

    env.publish_raw(&unroutable("u")).await;
    env.wait_for_counts(4, 0, WAIT).await;

    assert_eq!(env.value("KE1", "all", "", "").await, 4);
    env.cleanup().await;
}

#[tokio::test]
async fn a_worker_starts_on_an_exchange_declared_without_the_alternate_exchange_and_the_policy_gives_it_one() {
    let mut env = TestEnv::new("policy").await;
    let amqp = env.settings.amqp.clone();
    // An older deployment's exchange, declared before it had an alternate exchange.
    let connection = broker::connect(&amqp, "test older exchange").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(amqp.exchange.as_str().into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await
        .unwrap();
    connection.close(200, "ok".into()).await.unwrap();

    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    // The command the worker's warning and docs/operations.md give the operator.
    let policy = broker::unrouted_policy(&amqp);
    let output = tokio::process::Command::new("sh").args(["-c", &policy]).output().await.expect("sh runs");
    assert!(output.status.success(), "{policy}: {}", String::from_utf8_lossy(&output.stderr));
    env.publish_raw(&unroutable("p")).await;
    env.wait_for_counts(4, 0, WAIT).await;

    assert_eq!(env.value("KE1", "all", "", "").await, 4);
    let cleared = tokio::process::Command::new("rabbitmqctl")
        .args(["clear_policy", &amqp.unrouted_exchange])
        .output()
        .await
        .expect("rabbitmqctl runs");
    assert!(cleared.status.success(), "{}", String::from_utf8_lossy(&cleared.stderr));
    env.cleanup().await;
}
