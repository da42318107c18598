//! The throughput benchmark (not a test): `scripts/bench` builds and runs it
//! (`scripts/bench --help` lists the options; docs/performance.md tells what it measures).
//!
//! 1. Drain: queues N events (realistic mixed ones, or all-distinct records with
//!    `--distinct`) with no worker running, starts worker processes, and times them until
//!    the last event is committed (one worker, two workers, and the baseline: one event
//!    per transaction, one ack per message).
//! 2. Latency: one idle worker; events are published at a fixed rate and a poller notes
//!    when each becomes visible in the database (committed): publish-to-committed p50/p99.
//! 3. Memory and CPU: each worker's peak resident set (VmHWM) is read from /proc before
//!    it stops, and CPU time per event, the machine's and by process (`cpu`: the workers,
//!    PostgreSQL, RabbitMQ).

mod args;
mod cpu;
mod drain;
mod latency;
mod scenario;

#[path = "../support/distinct.rs"]
mod distinct;
#[path = "../support/isolated.rs"]
mod isolated;
#[path = "../support/machine.rs"]
mod machine;

#[path = "../../tests/common/generate.rs"]
#[allow(dead_code)]
mod generate;

use drain::{Drain, drain};
use latency::latency;
use serde_json::Value;

/// The events of a run: the mixed stream, or all-distinct records with `--distinct`.
fn backlog(args: &args::Args, seed: u64, n: usize) -> Vec<Value> {
    if args.distinct { distinct::events(seed, 0, n) } else { generate::events_with_pool(seed, n, 5_000) }
}

#[tokio::main]
async fn main() {
    let args = args::parse();
    println!("machine: {}", machine::describe());
    let mode = if args.distinct {
        "all distinct records: each event a record of its own, no corrections, no duplicates"
    } else {
        "mixed: 5% exact duplicates, 8% withdrawals, corrections, 5,000 keys per record type"
    };
    println!("events: {} (seed 2026, {mode}), {} per message", args.events, args.per_message);
    let events = backlog(&args, 2026, args.events);

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
    let runs_of = |drains: &[Drain]| drains.iter().map(|d| format!("{:.0}", d.rate())).collect::<Vec<_>>().join(", ");
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
        let latency_events = backlog(&args, 4242, args.rate * args.latency_seconds as usize);
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
                "| {label} | {:.0} events/s, the median of {} runs ({runs}); that run: {} events in {:.2} s, {} |",
                d.rate(),
                args.repeat,
                d.events,
                d.seconds,
                d.cpu.describe("workers")
            );
        }
    }
    if let Some(b) = &baseline {
        let label = "baseline (1 event per transaction, 1 ack per message)";
        let cpu = b.cpu.describe("worker");
        println!("| {label} | {:.0} events/s ({} events in {:.2} s), {cpu} |", b.rate(), b.events, b.seconds);
    }
    if let (Some(o), Some(b)) = (&one, &baseline) {
        println!("| 1 worker / baseline | {:.1}x |", o.rate() / b.rate());
    }
    if let (Some(o), Some(t)) = (&one, &two) {
        println!("| 2 workers / 1 worker | {:.2}x |", t.rate() / o.rate());
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
    drains.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let middle = drains.len().saturating_sub(1) / 2;
    drains.into_iter().nth(middle)
}
