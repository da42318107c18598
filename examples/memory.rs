//! Bounded memory (not a test): queues a large backlog of single-event messages, starts
//! one release worker with default settings, and samples its resident set while it drains
//! (docs/reliability.md).
//!
//! ```text
//! cargo build --release --bin ecpat-indicators --example memory
//! target/release/examples/memory                                      # 1,000,000 mixed events
//! target/release/examples/memory --distinct                           # 1,000,000 distinct records
//! target/release/examples/memory --distinct --messages 3000 --event-kib 900   # large events
//! ```
//!
//! The worker holds at most `prefetch` unacknowledged deliveries and one batch in hand, so
//! its memory should not grow with the backlog: the figures printed are the resident set
//! (VmRSS, sampled every 0.5 s from /proc) over the drain, by period, and its peak (VmHWM).

#[path = "support/distinct.rs"]
mod distinct;
#[path = "support/isolated.rs"]
mod isolated;
#[path = "support/machine.rs"]
#[allow(dead_code)]
mod machine;

use isolated::crate_dir;

#[path = "../tests/common/generate.rs"]
#[allow(dead_code)]
mod generate;

use std::collections::HashSet;
use std::process::Child;
use std::time::{Duration, Instant};

use ecpat_indicators::broker::{self, Publisher, routing_key_for};
use ecpat_indicators::config::Settings;
use serde_json::Value;

const USAGE: &str = "\
usage: target/release/examples/memory [options]

  --messages N       single-event messages queued, then drained by one worker (1000000)
  --distinct         every event a record of its own (no corrections, no duplicates),
                     instead of the mixed stream (5% exact duplicates, 5,000 keys per type)
  --event-kib K      pad each event to about K KiB with an unknown `data` field of filler
                     text, which the service keeps (at most 1023: bodies are limited to 1 MiB)
  --max-seconds S    stop sampling after S seconds of drain (1800)
  --interval-ms M    resident set sampled every M ms (500)";

struct Args {
    messages: usize,
    /// All-distinct records instead of the mixed stream.
    distinct: bool,
    /// Each event padded to about this many KiB (0: as generated, about 0.3 KiB).
    event_kib: usize,
    max_seconds: u64,
    interval_ms: u64,
}

fn args() -> Args {
    let mut args = Args { messages: 1_000_000, distinct: false, event_kib: 0, max_seconds: 1800, interval_ms: 500 };
    let mut raw = std::env::args().skip(1);
    while let Some(option) = raw.next() {
        let mut number = || {
            raw.next()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or_else(|| fail(&format!("{option} needs a number")))
        };
        match option.as_str() {
            "--messages" => args.messages = number(),
            "--distinct" => args.distinct = true,
            "--event-kib" => args.event_kib = number(),
            "--max-seconds" => args.max_seconds = number() as u64,
            "--interval-ms" => args.interval_ms = number() as u64,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => fail(&format!("unknown option {other}")),
        }
    }
    args
}

fn fail(message: &str) -> ! {
    eprintln!("{message}\n\n{USAGE}");
    std::process::exit(2);
}

/// The `n`th slice of `len` events, the first of them the `first`th of the backlog, as
/// messages, and how many distinct events they hold: realistic mixed events with ids
/// unique across slices, or all-distinct records; padded as `args` says.
fn slice(args: &Args, n: usize, first: usize, len: usize) -> (Vec<(String, Vec<u8>)>, usize) {
    let events = if args.distinct {
        distinct::events(7000 + n as u64, first, len)
    } else {
        let mut events = generate::events_with_pool(7000 + n as u64, len, 5_000);
        for event in &mut events {
            event["id"] = Value::from(format!("m{n}-{}", event["id"].as_str().unwrap_or_default()));
        }
        events
    };
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap_or_default()).collect();
    let unique = ids.len();
    let messages = events
        .into_iter()
        .map(|mut event: Value| {
            if args.event_kib > 0 {
                pad(&mut event, args.event_kib * 1024);
            }
            let body = event.to_string();
            (routing_key_for(&body), body.into_bytes())
        })
        .collect();
    (messages, unique)
}

/// Pads `event` with an unknown `data` field, `notes`, of filler text (which the service
/// keeps with the stored event), so that its JSON is `bytes` long (or as it is, if longer).
fn pad(event: &mut Value, bytes: usize) {
    const FILLER: &str = "Notes from the field visit, kept with the record as they were typed. ";
    event["data"]["notes"] = Value::from("");
    let missing = bytes.saturating_sub(event.to_string().len());
    event["data"]["notes"] = Value::from(FILLER.repeat(missing / FILLER.len() + 1)[..missing].to_owned());
}

fn spawn_worker(settings: &Settings) -> Child {
    isolated::worker_command(settings).spawn().expect("build the worker first: cargo build --release")
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
    let records = if args.distinct { "all distinct records" } else { "mixed events, 5% exact duplicates" };
    let size =
        if args.event_kib > 0 { format!(", each padded to about {} KiB", args.event_kib) } else { String::new() };
    println!("backlog: {} single-event messages, {records}{size}", args.messages);

    // 1. Queue the backlog, 10,000 events at a time (fewer when they are padded: about
    //    64 MiB), in confirm windows of 2,000.
    let per_slice = 65_536usize.checked_div(args.event_kib).map_or(10_000, |n| n.clamp(1, 10_000));
    let connection = broker::connect(&settings.amqp, "memory publisher").await.expect("RabbitMQ is reachable");
    broker::declare_topology(&connection, &settings.amqp).await.unwrap();
    let publisher = Publisher::new(&connection, &settings.amqp).await.unwrap();
    let start = Instant::now();
    let (mut queued, mut expected, mut bytes, mut n) = (0usize, 0usize, 0usize, 0usize);
    while queued < args.messages {
        let (messages, unique) = slice(&args, n, queued, per_slice.min(args.messages - queued));
        expected += unique;
        bytes += messages.iter().map(|(_, b)| b.len()).sum::<usize>();
        for window in messages.chunks(2000) {
            publisher.publish_all(window).await.expect("the broker confirms");
        }
        queued += messages.len();
        n += 1;
        if n % (100_000 / per_slice).max(1) == 0 {
            eprintln!("  queued {queued} messages in {:.0} s", start.elapsed().as_secs_f64());
        }
    }
    connection.close(200, "ok".into()).await.unwrap();
    let depth = isolated::ready_messages(&settings).await;
    println!(
        "queued: {queued} single-event messages, {expected} distinct events ({:.0} MiB of bodies) in {:.1} s, {depth} ready in the queue",
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
            last_depth = isolated::ready_messages(&settings).await;
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
    // The queue is empty once the last deliveries are prefetched: wait until every event
    // is stored or rejected (a batch of large events can take long to commit), the worker
    // exits, or --max-seconds have passed.
    let settled = || async {
        let query = "select (select count(*) from events), (select count(*) from rejections)";
        sqlx::query_as::<_, (i64, i64)>(query).fetch_one(&pool).await.unwrap()
    };
    let (mut stored_at_end, mut rejected) = settled().await;
    let deadline = drain_start + Duration::from_secs(args.max_seconds);
    while last_depth == 0
        && stored_at_end + rejected < expected as i64
        && Instant::now() < deadline
        && matches!(worker.try_wait(), Ok(None))
    {
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        samples.push((drain_start.elapsed().as_secs_f64(), machine::status_kib(pid, "VmRSS:"), None));
        (stored_at_end, rejected) = settled().await;
    }
    let drain_seconds = drain_start.elapsed().as_secs_f64();
    let hwm = machine::status_kib(pid, "VmHWM:");
    unsafe { kill(pid as i32, 15) };
    let _ = worker.wait();

    // 3. Figures.
    println!(
        "drain: {:.0} s, {stored_at_end} of {expected} distinct events stored (exact duplicates are counted once), {rejected} rejections, {last_depth} messages still ready",
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
