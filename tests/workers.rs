//! Several worker processes, and stopping them: the tallies always come out exactly as
//! the brute-force model of the counting rules says, nothing lost, nothing counted twice.

mod common;

use std::time::Duration;

use common::generate::events;
use common::{TestEnv, as_model, model, unique};
use ecpat_indicators::store::recompute::recompute;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn two_worker_processes_on_one_queue_give_the_same_tallies_as_one() {
    let stream = events(20261128, 3000);
    let expected = model::values(&stream);

    let mut two = TestEnv::new("two_workers").await;
    for _ in 0..2 {
        let w = two.spawn_worker();
        two.worker(w).wait_ready(WAIT).await;
    }
    assert_eq!(two.queue_depth().await.1, 2, "both workers consume the queue");
    two.publish(&stream).await;
    two.wait_for_counts(unique(&stream), 0, WAIT).await;

    let mut one = TestEnv::new("one_worker").await;
    let w = one.spawn_worker();
    one.worker(w).wait_ready(WAIT).await;
    one.publish(&stream).await;
    one.wait_for_counts(unique(&stream), 0, WAIT).await;

    let with_two = two.values().await;
    assert_eq!(with_two, one.values().await, "two workers and one give different tallies");
    assert_eq!(as_model(&with_two), expected, "the tallies differ from the model");
    recompute(&two.pool).await.unwrap();
    assert_eq!(two.values().await, with_two, "recompute differs from the incremental tallies");
    two.cleanup().await;
    one.cleanup().await;
}

#[tokio::test]
async fn sigterm_stops_the_worker_cleanly_and_loses_nothing() {
    let stream = events(7, 10000);
    let mut env = TestEnv::new("sigterm").await;
    env.declare().await;
    env.publish(&stream).await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    // Stop it while it is working through the backlog.
    let start = std::time::Instant::now();
    while env.counts().await.0 == 0 {
        assert!(start.elapsed() < WAIT, "the worker never started applying");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let status = env.worker(w).terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    let (stored, _) = env.counts().await;
    assert!(stored < unique(&stream), "the test must stop the worker mid-backlog ({stored} stored)");

    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    env.wait_for_counts(unique(&stream), 0, WAIT).await;
    assert_eq!(as_model(&env.values().await), model::values(&stream));
    env.cleanup().await;
}
