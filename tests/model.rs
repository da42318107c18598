//! Property: any set of events (with corrections, withdrawals, revivals and duplicates),
//! in any arrival order and split into batches in any way, gives exactly the tallies of a
//! brute-force model of the counting rules, and `recompute` gives them too.

mod common;

use common::generate::{Rng, events};
use common::{TestEnv, as_model, message, model};
use ecpat_indicators::store::batch::{Message, apply, finish, store};
use ecpat_indicators::store::known::Known;
use ecpat_indicators::store::recompute::recompute;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// Splits `events` into batches of messages; some messages are CloudEvents batches.
fn batches(events: &[Value], rng: &mut Rng, max_batch: u64) -> Vec<Vec<Message>> {
    let mut out = Vec::new();
    let mut rest = events;
    while !rest.is_empty() {
        let take = (1 + rng.below(max_batch) as usize).min(rest.len());
        let (batch, tail) = rest.split_at(take);
        rest = tail;
        let mut messages = Vec::new();
        let mut inner = batch;
        while !inner.is_empty() {
            let group = if rng.chance(30) { (1 + rng.below(5) as usize).min(inner.len()) } else { 1 };
            let (chunk, tail) = inner.split_at(group);
            inner = tail;
            let body = if group == 1 && rng.chance(80) {
                chunk[0].to_string()
            } else {
                Value::from(chunk.to_vec()).to_string()
            };
            messages.push(message(body));
        }
        out.push(messages);
    }
    out
}

fn shuffled(events: &[Value], rng: &mut Rng) -> Vec<Value> {
    let mut out = events.to_vec();
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i as u64 + 1) as usize);
    }
    out
}

/// Events that share `source` and `id` are one event.
fn distinct(events: &[Value]) -> i64 {
    events.iter().map(|e| (e["source"].to_string(), e["id"].to_string())).collect::<HashSet<_>>().len() as i64
}

async fn stored_events(env: &TestEnv) -> i64 {
    sqlx::query_scalar("select count(*) from events").fetch_one(&env.pool).await.unwrap()
}

/// One message per event.
fn messages(events: &[Value]) -> Vec<Message> {
    events.iter().map(|event| message(event.to_string())).collect()
}

async fn reset(env: &TestEnv) {
    sqlx::query(
        "truncate events, records, post_withdrawals, tallies, tally_items, rejections restart identity cascade",
    )
    .execute(&env.pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_arrival_order_and_batch_split_gives_the_model_tallies() {
    let env = TestEnv::new("model").await;
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config { cases: 40, ..Config::default() });
    let strategy = (any::<u64>(), 1usize..300, any::<u64>(), 1u64..80);
    let result = runner.run(&strategy, |(seed, n, order_seed, max_batch)| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                reset(&env).await;
                let mut rng = Rng::new(order_seed);
                let arrivals = shuffled(&events(seed, n), &mut rng);
                let expected = model::values(&arrivals);

                // Two workers, each with what it knows (sometimes little: a small capacity),
                // taking the batches in turn at random: each forgets what the other changed.
                let capacity = |rng: &mut Rng| if rng.chance(50) { 100_000 } else { rng.below(40) as usize };
                let mut workers = [Known::new(capacity(&mut rng)), Known::new(capacity(&mut rng))];
                for batch in batches(&arrivals, &mut rng, max_batch) {
                    let known = &mut workers[rng.below(4).min(1) as usize];
                    apply(&env.pool, &batch, known).await.unwrap();
                }
                let incremental = as_model(&env.values().await);
                prop_assert_eq!(&incremental, &expected, "incremental tallies differ from the model");

                // Everything again, in another order and split: all duplicates, no change.
                let again = shuffled(&arrivals, &mut rng);
                for batch in batches(&again, &mut rng, max_batch) {
                    let known = &mut workers[rng.below(4).min(1) as usize];
                    let outcome = apply(&env.pool, &batch, known).await.unwrap();
                    prop_assert_eq!(outcome.applied + outcome.stale, 0);
                }
                prop_assert_eq!(&as_model(&env.values().await), &expected, "duplicates changed a tally");

                recompute(&env.pool).await.unwrap();
                prop_assert_eq!(&as_model(&env.values().await), &expected, "recompute differs from the model");
                Ok(())
            })
        })
    });
    env.cleanup().await;
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Two workers applying batches at the same time: each reads what it does not know before
/// taking the apply lock, while the other applies, and must read again under the lock
/// whatever the other changed meanwhile. Any interleaving gives the model's tallies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_applying_at_once_give_the_model_tallies() {
    let env = TestEnv::new("model_concurrent").await;
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config { cases: 32, ..Config::default() });
    // Few posts and records, corrected again and again: batches often touch the same keys.
    let strategy = (any::<u64>(), 50usize..400, any::<u64>(), 1u64..40);
    let result = runner.run(&strategy, |(seed, n, order_seed, max_batch)| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                reset(&env).await;
                let mut rng = Rng::new(order_seed);
                let arrivals = shuffled(&events(seed, n), &mut rng);
                let expected = model::values(&arrivals);
                let queue = std::sync::Mutex::new(batches(&arrivals, &mut rng, max_batch));
                let take = || queue.lock().unwrap().pop();
                let worker = |capacity: usize| {
                    let pool = env.pool.clone();
                    let take = &take;
                    async move {
                        let mut known = Known::new(capacity);
                        while let Some(batch) = take() {
                            apply(&pool, &batch, &mut known).await.unwrap();
                        }
                    }
                };
                tokio::join!(worker(100_000), worker(rng.below(40) as usize));
                prop_assert_eq!(&as_model(&env.values().await), &expected, "tallies differ from the model");
                prop_assert_eq!(stored_events(&env).await, distinct(&arrivals), "each event is stored once");
                Ok(())
            })
        })
    });
    env.cleanup().await;
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Two workers store batches that hold the same events, both before either is applied:
/// the second does not wait for the first (with a unique key on events it would, until the
/// first commits, and this test would time out), and under the apply lock it deletes its
/// copies of what the first committed, found in `apply_log` or, when the log rows are
/// gone, by looking every event up. Each event is stored and counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_stored_at_once_by_two_workers_are_kept_and_counted_once() {
    let env = TestEnv::new("model_copies").await;
    for log_lost in [false, true] {
        reset(&env).await;
        let all = events(11, 120);
        let (shared, own) = all.split_at(80);
        let first = messages(shared);
        let mut second_events = own.to_vec();
        second_events.extend(shared.iter().rev().cloned());
        let second = messages(&second_events);
        let a = store(&env.pool, &first, None).await.unwrap();
        let b = tokio::time::timeout(Duration::from_secs(10), store(&env.pool, &second, None))
            .await
            .expect("storing the second batch waited for the first")
            .unwrap();
        let one = finish(a, &first, &mut Known::new(1000)).await.unwrap();
        if log_lost {
            sqlx::query("delete from apply_log").execute(&env.pool).await.unwrap();
        }
        let two = finish(b, &second, &mut Known::new(1000)).await.unwrap();
        let from_first = distinct(shared);
        assert_eq!((one.applied + one.stale) as i64, from_first, "log lost: {log_lost}");
        assert_eq!(
            two.applied + two.stale + two.duplicates,
            second_events.len(),
            "every event of the second batch is counted once (log lost: {log_lost})"
        );
        assert_eq!(
            (two.applied + two.stale) as i64,
            distinct(&all) - from_first,
            "the second batch applies only what the first did not hold (log lost: {log_lost})"
        );
        assert_eq!(stored_events(&env).await, distinct(&all), "each event is stored once (log lost: {log_lost})");
        assert_eq!(as_model(&env.values().await), model::values(&all), "log lost: {log_lost}");
    }
    env.cleanup().await;
}
