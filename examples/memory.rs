//! Bounded memory (not a test): queues a large backlog of single-event messages, starts
//! one release worker, and samples its resident set while it drains (docs/reliability.md).
//!
//! ```text
//! cargo build --release && cargo run --release --example memory -- --messages 1000000
//! ```
//!
//! The worker holds at most `prefetch` unacknowledged deliveries and one batch in hand, so
//! its memory should not grow with the backlog: the figures printed are the resident set
//! (VmRSS, sampled every 0.5 s from /proc) over the drain, by period, and its peak (VmHWM).

#[path = "support/isolated.rs"]
mod isolated;
#[path = "support/machine.rs"]
#[allow(dead_code)]
mod machine;

use isolated::crate_dir;

#[path = "../tests/common/generate.rs"]
#[allow(dead_code)]
mod generate;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecpat_indicators::broker::{self, Publisher, routing_key_for};
use ecpat_indicators::config::Settings;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::Value;

struct Args {
    messages: usize,
    max_seconds: u64,
    interval_ms: u64,
}

fn args() -> Args {
    let mut args = Args { messages: 1_000_000, max_seconds: 1800, interval_ms: 500 };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        let value = || pair.get(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{} needs a number", pair[0]));
        match pair[0].as_str() {
            "--messages" => args.messages = value() as usize,
            "--max-seconds" => args.max_seconds = value(),
            "--interval-ms" => args.interval_ms = value(),
            other => panic!("unknown option {other}"),
        }
    }
    args
}

/// The `n`th slice of 10,000 realistic events, with ids unique across slices.
fn slice(n: usize, len: usize) -> Vec<(String, Vec<u8>)> {
    generate::events_with_pool(7000 + n as u64, len, 5_000)
        .into_iter()
        .map(|mut event: Value| {
            event["id"] = Value::from(format!("m{n}-{}", event["id"].as_str().unwrap_or_default()));
            let body = event.to_string();
            (routing_key_for(&body), body.into_bytes())
        })
        .collect()
}

async fn ready_messages(settings: &Settings) -> u32 {
    let connection = broker::connect(&settings.amqp, "memory depth").await.expect("RabbitMQ is reachable");
    let channel = connection.create_channel().await.unwrap();
    let queue = channel
        .queue_declare(
            settings.amqp.queue.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = connection.close(200, "ok".into()).await;
    queue.message_count()
}

fn spawn_worker(settings: &Settings) -> Child {
    Command::new(crate_dir().join("target/release/ecpat-indicators"))
        .arg("run")
        .current_dir(crate_dir())
        .env("DATABASE_URL", &settings.database.url)
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("ECPAT_AMQP__EXCHANGE", &settings.amqp.exchange)
        .env("ECPAT_AMQP__QUEUE", &settings.amqp.queue)
        .env("ECPAT_AMQP__DEAD_LETTER_EXCHANGE", &settings.amqp.dead_letter_exchange)
        .env("ECPAT_AMQP__DEAD_LETTER_QUEUE", &settings.amqp.dead_letter_queue)
        .env("ECPAT_AMQP__UNROUTED_EXCHANGE", &settings.amqp.unrouted_exchange)
        .env("ECPAT_AMQP__UNROUTED_EXCHANGE", &settings.amqp.unrouted_exchange)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("build the worker first: cargo build --release")
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    let args = args();
    let name = format!("memory_{}", std::process::id());
    let settings = isolated::settings(&name);
    let pool = ecpat_indicators::app::migrate(&settings).await.expect("PostgreSQL is reachable");
    println!("machine: {}", machine::describe());
    println!(
        "worker settings: prefetch {}, batch size {}, batch timeout {} ms",
        settings.amqp.prefetch, settings.consumer.batch_size, settings.consumer.batch_timeout_ms
    );

    // 1. Queue the backlog, 10,000 events at a time, in confirm windows of 2,000.
    let connection = broker::connect(&settings.amqp, "memory publisher").await.expect("RabbitMQ is reachable");
    broker::declare_topology(&connection, &settings.amqp).await.unwrap();
    let publisher = Publisher::new(&connection, &settings.amqp.exchange).await.unwrap();
    let start = Instant::now();
    let (mut queued, mut bytes, mut n) = (0usize, 0usize, 0usize);
    while queued < args.messages {
        let messages = slice(n, 10_000.min(args.messages - queued));
        bytes += messages.iter().map(|(_, b)| b.len()).sum::<usize>();
        for window in messages.chunks(2000) {
            publisher.publish_all(window).await.expect("the broker confirms");
        }
        queued += messages.len();
        n += 1;
        if n % 10 == 0 {
            eprintln!("  queued {queued} messages in {:.0} s", start.elapsed().as_secs_f64());
        }
    }
    connection.close(200, "ok".into()).await.unwrap();
    let depth = ready_messages(&settings).await;
    println!(
        "queued: {queued} single-event messages ({:.0} MiB of bodies) in {:.1} s, {depth} ready in the queue",
        bytes as f64 / 1048576.0,
        start.elapsed().as_secs_f64()
    );

    // 2. One worker drains it; sample its resident set.
    let mut worker = spawn_worker(&settings);
    let pid = worker.id();
    let drain_start = Instant::now();
    let mut samples: Vec<(f64, u64, Option<u32>)> = vec![];
    let mut last_depth = depth;
    let mut next_depth = Instant::now();
    let mut next_report = Instant::now() + Duration::from_secs(30);
    loop {
        let rss = machine::status_kib(pid, "VmRSS:");
        let mut depth_now = None;
        if Instant::now() >= next_depth {
            last_depth = ready_messages(&settings).await;
            depth_now = Some(last_depth);
            next_depth += Duration::from_secs(5);
        }
        samples.push((drain_start.elapsed().as_secs_f64(), rss, depth_now));
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(30);
            eprintln!(
                "  {:>5.0} s: RSS {:.1} MiB, {last_depth} messages ready",
                drain_start.elapsed().as_secs_f64(),
                mib(rss)
            );
        }
        if last_depth == 0 || drain_start.elapsed() > Duration::from_secs(args.max_seconds) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    // The queue is empty once the last deliveries are prefetched: wait until the stored
    // count stops moving (the batches in hand are committed).
    let count =
        || async { sqlx::query_scalar::<_, i64>("select count(*) from events").fetch_one(&pool).await.unwrap() };
    let mut stored_at_end = count().await;
    if last_depth == 0 {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            samples.push((drain_start.elapsed().as_secs_f64(), machine::status_kib(pid, "VmRSS:"), None));
            let again = count().await;
            if again == stored_at_end {
                break;
            }
            stored_at_end = again;
        }
    }
    let drain_seconds = drain_start.elapsed().as_secs_f64();
    let hwm = machine::status_kib(pid, "VmHWM:");
    unsafe { kill(pid as i32, 15) };
    let _ = worker.wait();

    // 3. Figures.
    let rejected: i64 = sqlx::query_scalar("select count(*) from rejections").fetch_one(&pool).await.unwrap();
    println!(
        "drain: {:.0} s, {stored_at_end} events stored (exact duplicates are counted once), {rejected} rejections, {last_depth} messages still ready",
        drain_seconds
    );
    // From 2 s on: the first samples catch the process while it starts.
    let mut all: Vec<u64> = samples.iter().filter(|s| s.0 >= 2.0).map(|s| s.1).filter(|&r| r > 0).collect();
    let count = all.len();
    let (min, med, max) = (*all.iter().min().unwrap_or(&0), median(&mut all), *all.iter().max().unwrap_or(&0));
    println!(
        "RSS over the drain, from 2 s on ({count} samples every {} ms): min {:.1} MiB, median {:.1} MiB, max {:.1} MiB; peak (VmHWM) {:.1} MiB",
        args.interval_ms,
        mib(min),
        mib(med),
        mib(max),
        mib(hwm)
    );
    println!("| from (s) | to (s) | messages ready at the end | RSS min | RSS median | RSS max |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let periods = 10;
    let span = drain_seconds / periods as f64;
    for p in 0..periods {
        let (from, to) = (span * p as f64, span * (p + 1) as f64);
        let mut part: Vec<u64> = samples.iter().filter(|s| s.0 >= from && s.0 < to && s.1 > 0).map(|s| s.1).collect();
        let depth = samples.iter().rev().filter(|s| s.0 < to).find_map(|s| s.2).unwrap_or(depth);
        if part.is_empty() {
            continue;
        }
        let (lo, hi) = (*part.iter().min().unwrap(), *part.iter().max().unwrap());
        println!(
            "| {from:.0} | {to:.0} | {depth} | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
            mib(lo),
            mib(median(&mut part)),
            mib(hi)
        );
    }
    let csv: String = samples
        .iter()
        .map(|s| format!("{:.1},{},{}\n", s.0, s.1, s.2.map_or(String::new(), |d| d.to_string())))
        .collect();
    let path = crate_dir().join("target/memory-samples.csv");
    std::fs::write(&path, format!("seconds,rss_kib,ready\n{csv}")).unwrap();
    println!("samples: {}", path.display());

    // 4. Clean up.
    isolated::remove(&settings, &name, pool).await;
}
