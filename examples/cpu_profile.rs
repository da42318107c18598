//! The worker's pure-CPU path, without RabbitMQ or PostgreSQL (not a test): decoding
//! message bodies, and planning batches of new events as `apply` does.
//!
//! Realistic events (the benchmark's generator, seed 2026, 5,000 keys per record type) are
//! serialised as CloudEvents batch bodies of 100 and decoded; the distinct events are then
//! planned 1,000 at a time, each batch against what the batches before it made current
//! (kept in memory, and read back through JSON as the store does), and timed per event.
//!
//! ```text
//! CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --example cpu_profile
//! valgrind --tool=callgrind --callgrind-out-file=cpu.out target/release/examples/cpu_profile --events 20000
//! callgrind_annotate --inclusive=yes cpu.out | grep -E 'cpu_profile::(decode_all|plan_all|reload)'
//! ```
//!
//! Instruction counts are deterministic: compare those, not times, on a busy machine.
//! `decode_all`, `plan_all` and `reload` (the store's JSON round trip of the records it
//! loads and writes) are the three phases.

#[path = "../tests/common/generate.rs"]
#[allow(dead_code)]
mod generate;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ecpat_indicators::envelope::{Decoded, Event, decode};
use ecpat_indicators::ledger::{Before, Current, Plan, PostWithdrawal, plan};
use ecpat_indicators::records::{Change, Record, RecordKey};

/// Events per message body.
const PER_BODY: usize = 100;
/// New events per planned batch.
const PER_BATCH: usize = 1000;

fn main() {
    let mut events = 20_000;
    let mut reps = 1;
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        let value = || pair.get(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{} needs a number", pair[0]));
        match pair[0].as_str() {
            "--events" => events = value(),
            "--reps" => reps = value(),
            other => panic!("unknown option {other} (expected --events N, --reps N)"),
        }
    }
    let generated = generate::events_with_pool(2026, events, 5_000);
    let bodies: Vec<Vec<u8>> =
        generated.chunks(PER_BODY).map(|chunk| serde_json::to_vec(chunk).expect("events serialize")).collect();

    let mut decode_time = Duration::ZERO;
    let mut plan_time = Duration::ZERO;
    let mut reload_time = Duration::ZERO;
    let mut planned = 0;
    for _ in 0..reps {
        let started = Instant::now();
        let decoded = decode_all(&bodies);
        decode_time += started.elapsed();
        assert!(decoded.iter().all(|d| d.rejections.is_empty()), "the generator's events are valid");

        let mut seen = HashSet::new();
        let fresh: Vec<&Event> =
            decoded.iter().flat_map(|d| &d.events).filter(|e| seen.insert((&e.source, &e.id))).collect();
        let mut state = State::default();
        for (b, batch) in fresh.chunks(PER_BATCH).enumerate() {
            let numbered: Vec<(i64, &Event)> =
                batch.iter().enumerate().map(|(i, &e)| ((b * PER_BATCH + i + 1) as i64, e)).collect();
            let before = state.before(&numbered);
            let started = Instant::now();
            let before = reload(before);
            reload_time += started.elapsed();
            let started = Instant::now();
            let plan = plan_all(&before, &numbered);
            plan_time += started.elapsed();
            planned += numbered.len();
            state.commit(plan);
        }
    }
    let decoded = events * reps;
    let per = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
    println!("decode: {:.2} µs per event ({decoded} events in bodies of {PER_BODY})", per(decode_time, decoded));
    println!("plan: {:.2} µs per event ({planned} new events in batches of {PER_BATCH})", per(plan_time, planned));
    println!("reload: {:.2} µs per planned event (records through JSON, as stored)", per(reload_time, planned));
}

#[inline(never)]
fn decode_all(bodies: &[Vec<u8>]) -> Vec<Decoded> {
    bodies.iter().map(|body| decode(body)).collect()
}

#[inline(never)]
fn plan_all(before: &Before, events: &[(i64, &Event)]) -> Plan {
    let plan = plan(before, events);
    std::hint::black_box(plan.delta(before, ecpat_indicators::framework::built_in()));
    plan
}

/// What the store does with the records it loads and writes: JSON out and back in.
#[inline(never)]
fn reload(mut before: Before) -> Before {
    for current in before.records.values_mut() {
        if let Some(record) = &current.record {
            let text = serde_json::to_string(record).expect("records serialize");
            current.record = Some(serde_json::from_str::<Record>(&text).expect("records deserialize"));
        }
    }
    before
}

/// The store's tables, in memory.
#[derive(Default)]
struct State {
    records: HashMap<RecordKey, Current>,
    post_withdrawals: HashMap<String, PostWithdrawal>,
}

impl State {
    /// What `store::records::load` would load for `events`.
    fn before(&self, events: &[(i64, &Event)]) -> Before {
        let mut before = Before::default();
        let mut keep = |key: RecordKey, current: &Current| {
            before.records.insert(key, current.clone());
        };
        let mut posts = HashSet::new();
        for (_, event) in events {
            for change in &event.changes {
                match change {
                    Change::Upsert(record) => {
                        let key = record.key();
                        if let Some(current) = self.records.get(&key) {
                            keep(key, current);
                        }
                        posts.extend(record.group());
                    }
                    Change::Withdraw(key) => {
                        if let Some(current) = self.records.get(key) {
                            keep(key.clone(), current);
                        }
                    }
                    Change::WithdrawPost(post) => {
                        for (key, current) in &self.records {
                            if current.post_key.as_ref() == Some(post) {
                                keep(key.clone(), current);
                            }
                        }
                        posts.insert(post.clone());
                    }
                }
            }
        }
        for post in posts {
            if let Some(withdrawal) = self.post_withdrawals.get(&post) {
                before.post_withdrawals.insert(post, withdrawal.clone());
            }
        }
        before
    }

    fn commit(&mut self, plan: Plan) {
        self.records.extend(plan.records);
        self.post_withdrawals.extend(plan.post_withdrawals);
    }
}
