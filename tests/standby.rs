//! A replicated PostgreSQL: a primary and a synchronous streaming standby, both named in
//! the worker's `database.url`. Under a steady flow of events the standby is cut off (it
//! stops receiving), the primary is stopped hard a moment later and the standby promoted:
//! the primary must have committed nothing meanwhile, and the worker goes on by itself on
//! the new primary:
//! every tally is then the brute-force model's and `recompute`'s, exactly as many events
//! and rejections are stored as were published, and the queue is empty. It also measures
//! the drain rate with the standby synchronous and asynchronous.
//!
//! It needs the two clusters that `scripts/standby-test` starts (and tears down), which
//! runs it: `cargo test` alone does not (`test = false` in Cargo.toml), and run without
//! them it fails.

mod common;
// Shared with tests/faults.rs, which uses the rest of them.
#[allow(dead_code)]
#[path = "faults/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "faults/rabbit.rs"]
mod rabbit;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::generate::{events, events_with_pool};
use common::{TestEnv, as_model, model};
use ecpat_indicators::broker::{self, Publisher};
use ecpat_indicators::config::Amqp;
use ecpat_indicators::store::recompute::recompute;
use load::Load;
use sqlx::{Connection, PgConnection};

/// The longest any step may take.
const WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(20);
/// The synchronous standby's `application_name`, as `scripts/standby-test` configures it.
const STANDBY_NAME: &str = "ecpat_standby";

/// The clusters `scripts/standby-test` started.
struct Clusters {
    /// `host:port` of the primary and of the standby.
    primary: String,
    standby: String,
    /// The primary's data folder, for `pg_ctl stop`.
    primary_data: String,
    pg_bin: String,
    /// The OS user the servers run as, when it is not this process's user.
    run_as: Option<String>,
}

fn required(name: &str) -> String {
    std::env::var(name).ok().filter(|value| !value.is_empty()).unwrap_or_else(|| {
        panic!(
            "{name} is not set. This test needs a primary and a synchronous standby: run scripts/standby-test, \
            which starts both, sets {name} and runs it"
        )
    })
}

impl Clusters {
    fn from_env() -> Clusters {
        let hosts = required("STANDBY_TEST_HOSTS");
        let (primary, standby) = hosts
            .split_once(',')
            .unwrap_or_else(|| panic!("STANDBY_TEST_HOSTS must be primary,standby (host:port each), not {hosts}"));
        Clusters {
            primary: primary.to_owned(),
            standby: standby.to_owned(),
            primary_data: required("STANDBY_TEST_PRIMARY_DATA"),
            pg_bin: required("STANDBY_TEST_PG_BIN"),
            run_as: std::env::var("STANDBY_TEST_AS").ok().filter(|user| !user.is_empty()),
        }
    }

    /// The server URL (no database) naming `hosts` in this order.
    fn base(hosts: &[&str]) -> String {
        format!("postgres://postgres@{}", hosts.join(","))
    }

    async fn connect(host: &str, database: &str) -> PgConnection {
        let url = format!("postgres://postgres@{host}/{database}?sslmode=disable");
        tokio::time::timeout(WAIT, PgConnection::connect(&url))
            .await
            .unwrap_or_else(|_| panic!("{host} did not answer within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("cannot connect to {host}: {e}"))
    }

    /// The standby's replication state as the primary sees it (`sync`, `async`, or none).
    async fn sync_state(&self) -> Option<String> {
        let mut primary = Clusters::connect(&self.primary, "postgres").await;
        sqlx::query_scalar("select sync_state from pg_stat_replication where application_name = $1")
            .bind(STANDBY_NAME)
            .fetch_optional(&mut primary)
            .await
            .unwrap()
    }

    /// Makes the standby synchronous or not, and waits until the primary says so.
    async fn set_synchronous(&self, on: bool) {
        let mut primary = Clusters::connect(&self.primary, "postgres").await;
        let names = if on { STANDBY_NAME } else { "" };
        let set = format!("alter system set synchronous_standby_names = '{names}'");
        sqlx::raw_sql(sqlx::AssertSqlSafe(set)).execute(&mut primary).await.unwrap();
        sqlx::query("select pg_reload_conf()").execute(&mut primary).await.unwrap();
        let wanted = if on { "sync" } else { "async" };
        let start = Instant::now();
        while self.sync_state().await.as_deref() != Some(wanted) {
            assert!(start.elapsed() < WAIT, "the standby is not {wanted} after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Cuts the standby off the primary (it stops receiving WAL), as a lagging or
    /// partitioned standby would be, and waits until the primary sees it gone.
    async fn detach_standby(&self) {
        let mut standby = Clusters::connect(&self.standby, "postgres").await;
        sqlx::query("alter system set primary_conninfo = ''").execute(&mut standby).await.unwrap();
        sqlx::query("select pg_reload_conf()").execute(&mut standby).await.unwrap();
        let start = Instant::now();
        while self.sync_state().await.is_some() {
            assert!(start.elapsed() < WAIT, "the standby still streams {WAIT:?} after being cut off");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops the primary at once, as a crash would (`pg_ctl stop -m immediate`).
    async fn stop_primary(&self) {
        let pg_ctl = format!("{}/pg_ctl", self.pg_bin);
        let args = ["stop", "-D", self.primary_data.as_str(), "-m", "immediate", "-w", "-t", "60"];
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = tokio::process::Command::new("runuser");
                command.args(["-u", user, "--", &pg_ctl]).args(args);
                command
            }
            None => {
                let mut command = tokio::process::Command::new(&pg_ctl);
                command.args(args);
                command
            }
        };
        let output = tokio::time::timeout(WAIT, command.output())
            .await
            .expect("pg_ctl stop did not finish")
            .expect("pg_ctl runs");
        assert!(output.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Promotes the standby and waits until it accepts writes.
    async fn promote_standby(&self) {
        let mut standby = Clusters::connect(&self.standby, "postgres").await;
        let promoted: bool = sqlx::query_scalar("select pg_promote(true, 60)").fetch_one(&mut standby).await.unwrap();
        assert!(promoted, "the standby was not promoted within 60 s");
    }
}

/// Events stored in `database` on `host`.
async fn stored_on(host: &str, database: &str) -> i64 {
    let mut connection = Clusters::connect(host, database).await;
    sqlx::query_scalar("select count(*) from events").fetch_one(&mut connection).await.unwrap()
}

/// Publishes `messages` (with confirms) at about `per_second`, counting them in `sent`.
async fn publish_steadily(amqp: Amqp, messages: Vec<(String, Vec<u8>)>, per_second: usize, sent: Arc<AtomicUsize>) {
    const CHUNK: usize = 50;
    let connection = broker::connect(&amqp, "test steady publisher").await.expect("RabbitMQ runs");
    broker::declare_topology(&connection, &amqp).await.unwrap();
    let publisher = Publisher::new(&connection, &amqp).await.unwrap();
    let every = Duration::from_secs_f64(CHUNK as f64 / per_second as f64);
    let start = Instant::now();
    for (i, chunk) in messages.chunks(CHUNK).enumerate() {
        publisher.publish_all(chunk).await.expect("the broker confirms every message");
        sent.fetch_add(chunk.len(), Ordering::Relaxed);
        tokio::time::sleep_until((start + every * (i as u32 + 1)).into()).await;
    }
    connection.close(200, "ok".into()).await.unwrap();
}

/// Waits until everything published is applied and acknowledged: the expected events and
/// rejections stored, nothing ready in the queue, nothing held by the worker `pid`.
async fn drain(env: &TestEnv, load: &Load, pid: u32) {
    let expected = load.expected();
    let start = Instant::now();
    loop {
        let counts = env.counts().await;
        assert!(
            counts.0 <= expected.0 && counts.1 <= expected.1,
            "more stored than published: {counts:?}, expected {expected:?}"
        );
        if counts == expected && env.queue_depth().await.0 == 0 && rabbit::unacknowledged(&[pid]).await == 0 {
            return;
        }
        assert!(start.elapsed() < WAIT, "not drained after {WAIT:?}: stored {counts:?}, expected {expected:?}");
        tokio::time::sleep(POLL).await;
    }
}

async fn rejections_by_reason(env: &TestEnv) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select reason, count(*) from rejections group by reason").fetch_all(&env.pool).await.unwrap();
    rows.into_iter().collect()
}

/// Drains a backlog of `n` events of distinct records, sent one per message, with one
/// worker whose URL names the standby first; returns events per second, from the worker
/// ready to the last one stored.
async fn drain_rate(clusters: &Clusters, n: usize, seed: u64) -> f64 {
    let mut env = TestEnv::on(&Clusters::base(&[&clusters.standby, &clusters.primary]), "standby_rate").await;
    let batch = events_with_pool(seed, n, 1_000_000);
    let expected = common::unique(&batch);
    env.publish(&batch).await;
    // The pool's refusals of the standby (listed first) are expected: not shown.
    let worker = env.spawn_worker_with(&[("RUST_LOG", "warn,sqlx_core::pool::inner=off")]);
    env.worker(worker).wait_ready(WAIT).await;
    let start = Instant::now();
    while env.counts().await.0 < expected {
        assert!(start.elapsed() < WAIT, "{n} events not drained within {WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
    let rate = expected as f64 / start.elapsed().as_secs_f64();
    env.wait_for_counts(expected, 0, WAIT).await;
    let values = env.values().await;
    assert_eq!(as_model(&values), model::values(&batch), "the tallies differ from the model");
    env.cleanup().await;
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_promoted_standby_takes_over_under_a_flow_and_nothing_is_lost() {
    let clusters = Clusters::from_env();
    assert_eq!(clusters.sync_state().await.as_deref(), Some("sync"), "the standby must start synchronous");

    // The drain rate with the standby synchronous, then asynchronous, twice each, on
    // STANDBY_TEST_RATE_EVENTS events (20,000 unless set).
    let rate_events: usize =
        std::env::var("STANDBY_TEST_RATE_EVENTS").ok().map_or(20_000, |n| n.parse().expect("a number of events"));
    let mut rates: Vec<(bool, f64)> = vec![];
    for (round, synchronous) in [true, false, true, false].into_iter().enumerate() {
        clusters.set_synchronous(synchronous).await;
        let rate = drain_rate(&clusters, rate_events, 7100 + round as u64).await;
        eprintln!(
            "drain rate, standby {}: {rate:.0} events/s",
            if synchronous { "synchronous" } else { "asynchronous" }
        );
        rates.push((synchronous, rate));
    }
    clusters.set_synchronous(true).await;
    let mean = |synchronous: bool| {
        let of: Vec<f64> = rates.iter().filter(|(s, _)| *s == synchronous).map(|(_, rate)| *rate).collect();
        of.iter().sum::<f64>() / of.len() as f64
    };
    let (with, without) = (mean(true), mean(false));

    // The failover, under a steady flow.
    let load = Load::new(events(7201, 12_000));
    let mut env = TestEnv::on(&Clusters::base(&[&clusters.primary, &clusters.standby]), "standby_failover").await;
    env.declare().await;
    let worker = env.spawn_worker_with(&[("RUST_LOG", "info,sqlx=off,lapin=off")]);
    env.worker(worker).wait_ready(WAIT).await;
    let pid = env.worker(worker).child.id();
    let sent = Arc::new(AtomicUsize::new(0));
    let flow = tokio::spawn(publish_steadily(env.settings.amqp.clone(), load.messages.clone(), 1500, sent.clone()));
    let start = Instant::now();
    while sent.load(Ordering::Relaxed) < load.messages.len() / 3 || env.counts().await.0 == 0 {
        assert!(start.elapsed() < WAIT, "the flow did not start within {WAIT:?}");
        tokio::time::sleep(POLL).await;
    }

    // The standby stops receiving while the flow goes on: the primary must commit nothing
    // it alone would hold (with asynchronous replication it would, and those batches,
    // acknowledged, would be lost with it).
    clusters.detach_standby().await;
    let before = stored_on(&clusters.primary, &env.name).await;
    let detached_at = sent.load(Ordering::Relaxed);
    while sent.load(Ordering::Relaxed) < detached_at + 1500 {
        assert!(start.elapsed() < WAIT, "the flow stopped");
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(
        stored_on(&clusters.primary, &env.name).await,
        before,
        "events committed on the primary while its synchronous standby was cut off"
    );

    let stopped_at = Instant::now();
    let published_then = sent.load(Ordering::Relaxed);
    clusters.stop_primary().await;
    let stopped = stopped_at.elapsed();
    let on_standby = stored_on(&clusters.standby, &env.name).await;
    clusters.promote_standby().await;
    let promoted = stopped_at.elapsed();
    while stored_on(&clusters.standby, &env.name).await <= on_standby {
        assert!(stopped_at.elapsed() < WAIT, "the worker did not commit on the new primary within {WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
    let counting = stopped_at.elapsed();

    tokio::time::timeout(WAIT, flow).await.expect("the flow ends").expect("the flow publishes everything");
    drain(&env, &load, pid).await;
    let (status, _) = env.worker(worker).get("/api/v1/indicators?period=all").await;
    assert_eq!(status, 200, "the API reads on the new primary");
    let exit = env.worker(worker).terminate(Duration::from_secs(10));
    assert!(exit.success(), "the worker exited with {exit:?} after SIGTERM");

    assert_eq!(env.queue_depth().await, (0, 0), "(messages, consumers) left in the queue");
    assert_eq!(env.counts().await, load.expected(), "(events, rejections) stored");
    assert_eq!(rejections_by_reason(&env).await, load.rejections(), "rejections by reason");
    let values = env.values().await;
    assert_eq!(as_model(&values), model::values(&load.events), "the tallies differ from the model");
    recompute(&env.pool).await.unwrap();
    assert_eq!(env.values().await, values, "recompute differs from the incremental tallies");

    eprintln!(
        "failover: primary stopped in {:.2} s; standby promoted {:.2} s after the stop; \
        the worker committed on it {:.2} s after the stop ({} of {} messages published then)",
        stopped.as_secs_f64(),
        promoted.as_secs_f64(),
        counting.as_secs_f64(),
        published_then,
        load.messages.len(),
    );
    eprintln!(
        "drain rate, {rate_events} events one per message, mean of two runs each: \
        {with:.0} events/s with the standby synchronous, {without:.0} asynchronous ({:.2}×)",
        with / without
    );
    env.cleanup().await;
}
