//! The throughput benchmark (not a test): `scripts/bench` builds and runs it.
//!
//! 1. Drain: queues N realistic mixed events with no worker running, starts worker
//!    processes, and times them until the last event is committed (one worker, two
//!    workers, and the baseline: one event per transaction, one ack per message).
//! 2. Latency: one idle worker; events are published at a fixed rate and a poller notes
//!    when each becomes visible in the database (committed): publish-to-committed p50/p99.
//! 3. Memory: each worker's peak resident set (VmHWM) is read from /proc before it stops.

#[path = "support/isolated.rs"]
mod isolated;
#[path = "support/machine.rs"]
mod machine;

use isolated::crate_dir;

#[path = "../tests/common/generate.rs"]
#[allow(dead_code)]
mod generate;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecpat_indicators::broker::{self, Publisher, routing_key_for};
use ecpat_indicators::config::Settings;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::Value;
use sqlx::PgPool;

struct Args {
    events: usize,
    baseline_events: usize,
    per_message: usize,
    rate: usize,
    latency_seconds: u64,
    /// Drains of 1 and of 2 workers, taken in turn; the median of each is reported.
    repeat: usize,
    /// Which scenarios to run: one, two, baseline, latency (all by default).
    only: Vec<String>,
}

impl Args {
    fn runs(&self, scenario: &str) -> bool {
        self.only.iter().any(|s| s == scenario)
    }
}

fn args() -> Args {
    let mut args = Args {
        events: 200_000,
        baseline_events: 20_000,
        per_message: 1,
        rate: 5_000,
        latency_seconds: 20,
        repeat: 3,
        only: ["one", "two", "baseline", "latency"].map(String::from).to_vec(),
    };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        let value = || pair.get(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{} needs a number", pair[0]));
        match pair[0].as_str() {
            "--events" => args.events = value(),
            "--baseline-events" => args.baseline_events = value(),
            "--per-message" => args.per_message = value(),
            "--rate" => args.rate = value(),
            "--latency-seconds" => args.latency_seconds = value() as u64,
            "--repeat" => args.repeat = value().max(1),
            "--only" => args.only = pair.get(1).expect("--only needs a list").split(',').map(String::from).collect(),
            other => panic!("unknown option {other}"),
        }
    }
    args
}

/// One scenario's database, exchange and queue.
struct Scenario {
    name: String,
    settings: Settings,
    pool: PgPool,
}

impl Scenario {
    async fn new(label: &str) -> Scenario {
        let name = format!("bench_{label}_{}", std::process::id());
        let settings = isolated::settings(&name);
        let pool = ecpat_indicators::app::migrate(&settings).await.expect("PostgreSQL is reachable");
        Scenario { name, settings, pool }
    }

    async fn publish(&self, bodies: &[(String, Vec<u8>)]) -> Duration {
        let connection =
            broker::connect(&self.settings.amqp, "benchmark publisher").await.expect("RabbitMQ is reachable");
        broker::declare_topology(&connection, &self.settings.amqp).await.unwrap();
        let publisher = Publisher::new(&connection, &self.settings.amqp.exchange).await.unwrap();
        let start = Instant::now();
        for window in bodies.chunks(2000) {
            publisher.publish_all(window).await.unwrap();
        }
        let took = start.elapsed();
        connection.close(200, "ok".into()).await.unwrap();
        took
    }

    fn spawn(&self, extra: &[(&str, &str)]) -> Child {
        let mut command = Command::new(crate_dir().join("target/release/ecpat-indicators"));
        command
            .arg("run")
            .current_dir(crate_dir())
            .env("DATABASE_URL", &self.settings.database.url)
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("ECPAT_AMQP__EXCHANGE", &self.settings.amqp.exchange)
            .env("ECPAT_AMQP__QUEUE", &self.settings.amqp.queue)
            .env("ECPAT_AMQP__DEAD_LETTER_EXCHANGE", &self.settings.amqp.dead_letter_exchange)
            .env("ECPAT_AMQP__DEAD_LETTER_QUEUE", &self.settings.amqp.dead_letter_queue)
            .env("ECPAT_AMQP__UNROUTED_EXCHANGE", &self.settings.amqp.unrouted_exchange)
            .env("RUST_LOG", std::env::var("BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null());
        for (k, v) in extra {
            command.env(k, v);
        }
        command.spawn().expect("build the worker first: cargo build --release")
    }

    async fn stored(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events").fetch_one(&self.pool).await.unwrap()
    }

    /// Messages ready in the queue (not yet delivered to a worker).
    async fn ready(&self, channel: &lapin::Channel) -> u32 {
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let queue = channel.queue_declare(self.settings.amqp.queue.as_str().into(), passive, FieldTable::default());
        queue.await.expect("the queue exists").message_count()
    }

    async fn drop(self) {
        isolated::remove(&self.settings, &self.name, self.pool).await;
    }
}

fn stop(child: &mut Child) {
    // SIGTERM, then wait: the worker commits what it holds and exits.
    unsafe { kill(child.id() as i32, 15) };
    let _ = child.wait();
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

fn unique(events: &[Value]) -> i64 {
    events.iter().map(|e| (e["source"].to_string(), e["id"].to_string())).collect::<HashSet<_>>().len() as i64
}

/// Messages of `per_message` events each (a CloudEvents batch when more than one).
fn bodies(events: &[Value], per_message: usize) -> Vec<(String, Vec<u8>)> {
    events
        .chunks(per_message)
        .map(|chunk| {
            let body = if chunk.len() == 1 { chunk[0].to_string() } else { Value::from(chunk.to_vec()).to_string() };
            (routing_key_for(&body), body.into_bytes())
        })
        .collect()
}

/// A port nothing listens on now, for a worker's HTTP server.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// New events a worker has committed (applied or stale), from its `/metrics`; 0 until its
/// HTTP server answers.
async fn committed_events(http: &reqwest::Client, port: u16) -> u64 {
    let Ok(response) = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await else { return 0 };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("ecpat_events_applied_total ") || l.starts_with("ecpat_events_stale_total "))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

struct Drain {
    events: i64,
    seconds: f64,
    peak_rss_mib: f64,
    /// The machine's busy share of its CPU time during the drain (all processes: worker,
    /// PostgreSQL, RabbitMQ, the watcher).
    busy: f64,
    /// Busy CPU time per event, in microseconds.
    cpu_us_per_event: f64,
    /// The workers' own CPU time per event, in microseconds.
    worker_us_per_event: f64,
}

/// Queues `events`, then starts `workers` workers and times the drain.
async fn drain(label: &str, events: &[Value], per_message: usize, workers: usize, extra: &[(&str, &str)]) -> Drain {
    let scenario = Scenario::new(label).await;
    let bodies = bodies(events, per_message);
    let took = scenario.publish(&bodies).await;
    let expected = unique(events);
    eprintln!("  {label}: queued {} messages ({expected} unique events) in {:.1} s", bodies.len(), took.as_secs_f64());
    let connection =
        broker::connect(&scenario.settings.amqp, "benchmark watcher").await.expect("RabbitMQ is reachable");
    let channel = connection.create_channel().await.unwrap();
    let start = Instant::now();
    let (busy_before, total_before) = machine::cpu_ticks();
    let ports: Vec<u16> = (0..workers).map(|_| free_port()).collect();
    let mut children: Vec<Child> = ports
        .iter()
        .map(|port| {
            let addr = format!("127.0.0.1:{port}");
            scenario.spawn(&[extra, &[("HTTP_ADDR", addr.as_str())]].concat())
        })
        .collect();
    let mut peak = vec![0u64; workers];
    // Each worker's committed events, and when that count last moved.
    let mut per_worker = vec![(0u64, Duration::ZERO); workers];
    // The watcher reads each worker's own count of committed new events (`/metrics`:
    // applied + stale, counted after each commit) every POLL: counting rows in PostgreSQL
    // while it drains would load the machine that is measured. One full count of the stored
    // events confirms the end; it is also taken if the count stalls (a stall would show as
    // 2 s more in the result).
    const POLL: Duration = Duration::from_millis(20);
    let http = reqwest::Client::new();
    let (mut last_seen, mut last_change) = (0u64, Instant::now());
    loop {
        for (i, child) in children.iter().enumerate() {
            peak[i] = peak[i].max(machine::status_kib(child.id(), "VmHWM:"));
        }
        let mut seen = 0;
        for (i, port) in ports.iter().enumerate() {
            let committed = committed_events(&http, *port).await;
            if committed != per_worker[i].0 {
                per_worker[i] = (committed, start.elapsed());
            }
            seen += committed;
        }
        if seen != last_seen {
            if last_seen == 0 {
                eprintln!("  {label}: first commit seen {:.0} ms after the start", start.elapsed().as_secs_f64() * 1e3);
            }
            (last_seen, last_change) = (seen, Instant::now());
        }
        let stalled = last_change.elapsed() > Duration::from_secs(2);
        if (seen >= expected as u64 || stalled)
            && scenario.ready(&channel).await == 0
            && scenario.stored().await >= expected
        {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let _ = connection.close(200, "ok".into()).await;
    let seconds = start.elapsed().as_secs_f64();
    if workers > 1 {
        let each: Vec<String> =
            per_worker.iter().map(|(n, t)| format!("{n} events, last at {:.2} s", t.as_secs_f64())).collect();
        eprintln!("  {label}: per worker: {}", each.join("; "));
    }
    let (busy_after, total_after) = machine::cpu_ticks();
    let busy_ticks = (busy_after - busy_before) as f64;
    let busy = busy_ticks / (total_after - total_before).max(1) as f64;
    // Clock ticks are 1/100 s on Linux (USER_HZ).
    let cpu_us_per_event = busy_ticks / 100.0 * 1e6 / expected as f64;
    let mut worker_ticks = 0;
    for (i, child) in children.iter_mut().enumerate() {
        peak[i] = peak[i].max(machine::status_kib(child.id(), "VmHWM:"));
        worker_ticks += machine::process_ticks(child.id());
        stop(child);
    }
    let worker_us_per_event = worker_ticks as f64 / 100.0 * 1e6 / expected as f64;
    scenario.drop().await;
    let peak_rss_mib = *peak.iter().max().unwrap() as f64 / 1024.0;
    Drain { events: expected, seconds, peak_rss_mib, busy, cpu_us_per_event, worker_us_per_event }
}

struct Latency {
    count: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    peak_rss_mib: f64,
}

/// Publishes at `rate` events/s for `seconds` and measures publish-to-committed latency.
async fn latency(events: &[Value], rate: usize, seconds: u64) -> Latency {
    let scenario = Scenario::new("latency").await;
    let mut worker = scenario.spawn(&[]);
    // Wait until the worker consumes (its queue exists and the first event comes through).
    let connection = broker::connect(&scenario.settings.amqp, "benchmark latency").await.unwrap();
    broker::declare_topology(&connection, &scenario.settings.amqp).await.unwrap();
    let publisher = Publisher::new(&connection, &scenario.settings.amqp.exchange).await.unwrap();
    let events: Vec<&Value> = events.iter().take((rate as u64 * seconds) as usize).collect();
    let total = events.iter().map(|e| e["id"].as_str().unwrap_or_default()).collect::<HashSet<_>>().len();
    let pool = scenario.pool.clone();
    let poller = tokio::spawn(async move {
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let mut last = 0i64;
        let deadline = Instant::now() + Duration::from_secs(seconds + 60);
        while seen.len() < total && Instant::now() < deadline {
            // The number inline, not bound: a cached generic plan would scan the whole table.
            let query = format!("select seq, id from events where seq > {last} order by seq");
            let rows: Vec<(i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(query)).persistent(false).fetch_all(&pool).await.unwrap();
            let now = Instant::now();
            for (seq, id) in rows {
                last = last.max(seq);
                seen.entry(id).or_insert(now);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        seen
    });
    let mut published: HashMap<String, Instant> = HashMap::new();
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let start = Instant::now();
    for (n, chunk) in events.chunks(per_tick).enumerate() {
        let due = start + tick * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let messages: Vec<(String, Vec<u8>)> = chunk
            .iter()
            .map(|e| {
                let body = e.to_string();
                (routing_key_for(&body), body.into_bytes())
            })
            .collect();
        let now = Instant::now();
        for e in chunk {
            published.entry(e["id"].as_str().unwrap().to_owned()).or_insert(now);
        }
        publisher.publish_all(&messages).await.unwrap();
    }
    let seen = poller.await.unwrap();
    let peak = machine::status_kib(worker.id(), "VmHWM:");
    stop(&mut worker);
    connection.close(200, "ok".into()).await.unwrap();
    scenario.drop().await;
    let mut latencies: Vec<f64> = published
        .iter()
        .filter_map(|(id, sent)| seen.get(id).map(|s| s.saturating_duration_since(*sent).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Latency {
        count: latencies.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        peak_rss_mib: peak as f64 / 1024.0,
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    println!("machine: {}", machine::describe());
    println!(
        "events: {} (seed 2026, 5% exact duplicates, 8% withdrawals), {} per message",
        args.events, args.per_message
    );
    let events = generate::events_with_pool(2026, args.events, 5_000);
    let rate = |d: &Drain| d.events as f64 / d.seconds;

    // One worker and two workers in turn, `repeat` times: a slow spell of this shared
    // machine falls on both, and the median of each is compared.
    let (mut ones, mut twos) = (vec![], vec![]);
    for _ in 0..args.repeat {
        if args.runs("one") {
            ones.push(drain("one", &events, args.per_message, 1, &[]).await);
        }
        if args.runs("two") {
            twos.push(drain("two", &events, args.per_message, 2, &[]).await);
        }
    }
    let runs_of = |drains: &[Drain]| drains.iter().map(|d| format!("{:.0}", rate(d))).collect::<Vec<_>>().join(", ");
    let (one_runs, two_runs) = (runs_of(&ones), runs_of(&twos));
    let peak_of = |drains: &[Drain]| {
        drains.iter().map(|d| d.peak_rss_mib).fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))))
    };
    let (one_peak, two_peak) = (peak_of(&ones), peak_of(&twos));
    let one = median(ones);
    let two = median(twos);
    let baseline = if args.runs("baseline") {
        let baseline_set = &events[..args.baseline_events.min(events.len())];
        let baseline_settings = [("ECPAT_CONSUMER__BATCH_SIZE", "1"), ("ECPAT_AMQP__PREFETCH", "1")];
        Some(drain("baseline", baseline_set, 1, 1, &baseline_settings).await)
    } else {
        None
    };
    let lat = if args.runs("latency") {
        let latency_events = generate::events_with_pool(4242, args.rate * args.latency_seconds as usize, 5_000);
        Some(latency(&latency_events, args.rate, args.latency_seconds).await)
    } else {
        None
    };

    println!();
    println!("| measure | value |");
    println!("| --- | --- |");
    for (label, run, runs) in
        [("backlog drain, 1 worker", &one, &one_runs), ("backlog drain, 2 workers", &two, &two_runs)]
    {
        if let Some(d) = run {
            println!(
                "| {label} | {:.0} events/s, the median of {} runs ({runs}); that run: {} events in {:.2} s, CPU {:.0}% busy, {:.0} µs per event, of which the workers {:.0} µs |",
                rate(d),
                args.repeat,
                d.events,
                d.seconds,
                d.busy * 100.0,
                d.cpu_us_per_event,
                d.worker_us_per_event
            );
        }
    }
    if let Some(b) = &baseline {
        let label = "baseline (1 event per transaction, 1 ack per message)";
        println!("| {label} | {:.0} events/s ({} events in {:.2} s) |", rate(b), b.events, b.seconds);
    }
    if let (Some(o), Some(b)) = (&one, &baseline) {
        println!("| 1 worker / baseline | {:.1}x |", rate(o) / rate(b));
    }
    if let (Some(o), Some(t)) = (&one, &two) {
        println!("| 2 workers / 1 worker | {:.2}x |", rate(t) / rate(o));
    }
    if let Some(l) = &lat {
        println!(
            "| publish-to-committed at {} events/s ({} events) | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
            args.rate, l.count, l.p50_ms, l.p99_ms, l.max_ms
        );
    }
    let mib = |peak: Option<f64>| peak.map_or("-".to_owned(), |p| format!("{p:.1} MiB"));
    println!(
        "| peak resident memory (highest of the runs) | drain 1 worker {}, 2 workers {} each at most, latency run {} |",
        mib(one_peak),
        mib(two_peak),
        lat.as_ref().map_or("-".to_owned(), |l| format!("{:.1} MiB", l.peak_rss_mib))
    );
}

/// The drain with the median rate (the slower middle one of an even count).
fn median(mut drains: Vec<Drain>) -> Option<Drain> {
    drains.sort_by(|a, b| (a.events as f64 / a.seconds).total_cmp(&(b.events as f64 / b.seconds)));
    let middle = drains.len().saturating_sub(1) / 2;
    drains.into_iter().nth(middle)
}
