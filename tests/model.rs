//! Property: any set of events (with corrections, withdrawals, revivals and duplicates),
//! in any arrival order and split into batches in any way, gives exactly the tallies of a
//! brute-force model of the counting rules, and `recompute` gives them too.

mod common;

use common::generate::{Rng, events};
use common::{TestEnv, as_model, message, model};
use ecpat_indicators::apply::{Message, apply};
use ecpat_indicators::store::recompute::recompute;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use std::collections::HashSet;

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

                for batch in batches(&arrivals, &mut rng, max_batch) {
                    apply(&env.pool, &batch).await.unwrap();
                }
                let incremental = as_model(&env.values().await);
                prop_assert_eq!(&incremental, &expected, "incremental tallies differ from the model");

                // Everything again, in another order and split: all duplicates, no change.
                let again = shuffled(&arrivals, &mut rng);
                for batch in batches(&again, &mut rng, max_batch) {
                    let outcome = apply(&env.pool, &batch).await.unwrap();
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

/// Two workers applying batches at the same time, touching the same keys: any
/// interleaving gives the model's tallies.
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
                let worker = || {
                    let pool = env.pool.clone();
                    let take = &take;
                    async move {
                        while let Some(batch) = take() {
                            apply(&pool, &batch).await.unwrap();
                        }
                    }
                };
                tokio::join!(worker(), worker());
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

/// Two workers apply, at the same moment, batches that hold the same events: each event is
/// stored and counted once, whichever commits first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_events_applied_at_once_by_two_workers_are_stored_and_counted_once() {
    let env = TestEnv::new("model_copies").await;
    for round in 0..4 {
        reset(&env).await;
        let all = events(11 + round, 120);
        let (shared, own) = all.split_at(80);
        let first = messages(shared);
        let mut second_events = own.to_vec();
        second_events.extend(shared.iter().rev().cloned());
        let second = messages(&second_events);
        let (one, two) = tokio::join!(apply(&env.pool, &first), apply(&env.pool, &second));
        let (one, two) = (one.unwrap(), two.unwrap());
        let counted = |outcome: &ecpat_indicators::apply::Outcome| (outcome.applied + outcome.stale) as i64;
        assert_eq!(one.applied + one.stale + one.duplicates, shared.len(), "round {round}");
        assert_eq!(two.applied + two.stale + two.duplicates, second_events.len(), "round {round}");
        assert_eq!(counted(&one) + counted(&two), distinct(&all), "every event counted once (round {round})");
        assert_eq!(stored_events(&env).await, distinct(&all), "each event is stored once (round {round})");
        assert_eq!(as_model(&env.values().await), model::values(&all), "round {round}");
    }
    env.cleanup().await;
}
