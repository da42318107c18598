//! The throughput benchmark (not a test): `scripts/bench` builds and runs it
//! (`scripts/bench --help` lists the options; docs/performance.md tells what it measures).
//!
//! 1. Drain (`drain`): queues N events (realistic mixed ones, or all-distinct records with
//!    `--distinct`) with no worker running, starts worker processes, and times them until
//!    the last event is committed (one worker, two workers, and the baseline: one event
//!    per transaction, one ack per message).
//! 2. Peers (`peer`): the same messages drained by the consumers a user would write
//!    instead (`bench/peers/`), in the same run, so that their figures compare.
//! 3. Latency (`latency`): one idle worker; events are published at a fixed rate and a
//!    poller notes when each becomes visible in the database: publish-to-committed p50/p99.
//! 4. Readers (`readers`, only when asked): one worker drains the backlog alone, then
//!    again while dashboard clients read its API (`readers`), in turn, `repeat` times: the
//!    drain with readers against without, and the readers' answers and latency.
//! 5. Memory and CPU: each worker's peak resident set (VmHWM), and CPU time per event of
//!    the machine and by process (`cpu`: the workers or the peer, PostgreSQL, RabbitMQ).

mod args;
mod cpu;
mod drain;
mod latency;
mod peer;
mod readers;
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
use peer::{Peer, PeerDrain};
use serde_json::Value;

/// The events of a run: the mixed stream, or all-distinct records with `--distinct`.
fn backlog(args: &args::Args, seed: u64, n: usize) -> Vec<Value> {
    if args.distinct { distinct::events(seed, 0, n) } else { generate::events_with_pool(seed, n, 5_000) }
}

#[tokio::main]
async fn main() {
    let args = args::parse();
    scenario::SETUP.set((args.frameworks, args.worker_migrates)).expect("set once");
    println!("machine: {}", machine::describe());
    if args.frameworks == 2 {
        println!("frameworks: the default one and a copy of it (every record counted twice)");
    }
    if args.worker_migrates {
        println!("the workers create their own tables (the drain includes their migration)");
    }
    let mode = if args.distinct {
        "all distinct records: each event a record of its own, no corrections, no duplicates"
    } else {
        "mixed: 5% exact duplicates, 8% withdrawals, corrections, 5,000 keys per record type"
    };
    println!("events: {} (seed 2026, {mode}), {} per message", args.events, args.per_message);
    let events = backlog(&args, 2026, args.events);

    // One worker, two workers and the batched peer in turn, `repeat` times: a slow spell of
    // this shared machine falls on all of them, and the median of each is compared.
    let (mut ones, mut twos, mut peers) = (vec![], vec![], vec![]);
    for _ in 0..args.repeat {
        if args.runs("one") {
            ones.push(drain("one", &events, args.per_message, 1, &[], None).await);
        }
        if args.runs("two") {
            twos.push(drain("two", &events, args.per_message, 2, &[], None).await);
        }
        if args.runs("peers") {
            peers.push(peer::drain(Peer::Batched, "batched_peer", &events, args.per_message).await);
        }
    }
    let baseline_set = &events[..args.baseline_events.min(events.len())];
    // The naive peer reads one event per message (it is not changed for batches).
    let naive = if args.runs("peers") && args.per_message == 1 {
        Some(peer::drain(Peer::Naive, "naive_peer", baseline_set, 1).await)
    } else {
        None
    };
    let baseline = if args.runs("baseline") {
        let baseline_settings = [("ECPAT_CONSUMER__BATCH_SIZE", "1"), ("ECPAT_AMQP__PREFETCH", "1")];
        Some(drain("baseline", baseline_set, 1, 1, &baseline_settings, None).await)
    } else {
        None
    };
    // The drain alone and with readers, in turn.
    let (mut alone, mut read) = (vec![], vec![]);
    if args.runs("readers") {
        let load = readers::Load { clients: args.readers, rate: args.reader_rate };
        println!(
            "readers: {} clients at {} requests/s each, in turn: {}; each sends back the ETag it was given",
            load.clients,
            load.rate,
            readers::PATHS.join(", ")
        );
        for _ in 0..args.repeat {
            alone.push(drain("alone", &events, args.per_message, 1, &[], None).await);
            read.push(drain("readers", &events, args.per_message, 1, &[], Some(load)).await);
            let last = read.last().expect("a drain with readers");
            eprintln!(
                "  drain alone {:.0} events/s, with readers {:.0} events/s; readers: {}",
                alone.last().expect("a drain alone").rate(),
                last.rate(),
                last.readers.as_ref().expect("readers ran").describe()
            );
        }
    }
    let lat = if args.runs("latency") {
        let latency_events = backlog(&args, 4242, args.rate * args.latency_seconds as usize);
        Some(latency(&latency_events, args.rate, args.latency_seconds).await)
    } else {
        None
    };

    println!();
    println!("| measure | value |");
    println!("| --- | --- |");
    let (one_runs, two_runs, peer_runs) = (runs_of(&ones), runs_of(&twos), peer_runs_of(&peers));
    let (one_peak, two_peak) = (peak_of(&ones), peak_of(&twos));
    let one = median_by(ones, Drain::rate);
    let two = median_by(twos, Drain::rate);
    let batched = median_by(peers, PeerDrain::wall_rate);
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
    if let Some(p) = &batched {
        let label = "batched peer (Python: batches of 1000, one transaction and one ack each)";
        println!(
            "| {label} | {:.0} events/s by its own clock, {:.0} by wall time, the median of {} runs by wall time (own clock / wall time: {peer_runs}); {} |",
            p.own_rate(),
            p.wall_rate(),
            args.repeat,
            peer_run(p)
        );
    }
    match &naive {
        Some(p) => {
            let label = "naive peer (Python: one transaction and one ack per message)";
            println!(
                "| {label} | {:.0} events/s by its own clock, {:.0} by wall time; {} |",
                p.own_rate(),
                p.wall_rate(),
                peer_run(p)
            );
        }
        None if args.runs("peers") => println!("| naive peer | not run: it reads one event per message |"),
        None => {}
    }
    if let Some(b) = &baseline {
        let label = "baseline (1 event per transaction, 1 ack per message)";
        let cpu = b.cpu.describe("worker");
        println!("| {label} | {:.0} events/s ({} events in {:.2} s), {cpu} |", b.rate(), b.events, b.seconds);
    }
    if let Some(o) = &one {
        for (label, peer) in [("batched peer", &batched), ("naive peer", &naive)] {
            if let Some(p) = peer {
                println!(
                    "| 1 worker / {label} | {:.2}x against its wall time, {:.2}x against its own clock |",
                    o.rate() / p.wall_rate(),
                    o.rate() / p.own_rate()
                );
            }
        }
        if let Some(b) = &baseline {
            println!("| 1 worker / baseline | {:.1}x |", o.rate() / b.rate());
        }
    }
    if let (Some(o), Some(t)) = (&one, &two) {
        println!("| 2 workers / 1 worker | {:.2}x |", t.rate() / o.rate());
    }
    let (alone_runs, read_runs) = (runs_of(&alone), runs_of(&read));
    if let (Some(a), Some(r)) = (median_by(alone, Drain::rate), median_by(read, Drain::rate)) {
        println!(
            "| backlog drain, 1 worker, no readers | {:.0} events/s, the median of {} runs ({alone_runs}) |",
            a.rate(),
            args.repeat
        );
        println!(
            "| backlog drain, 1 worker, with readers | {:.0} events/s (**{:.2}x** without), the median of {} runs ({read_runs}); that run: {} |",
            r.rate(),
            r.rate() / a.rate(),
            args.repeat,
            r.cpu.describe("worker")
        );
        println!("| readers during that drain | {} |", r.readers.as_ref().expect("readers ran").describe());
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

/// Every run's rate.
fn runs_of(drains: &[Drain]) -> String {
    drains.iter().map(|d| format!("{:.0}", d.rate())).collect::<Vec<_>>().join(", ")
}

/// Every peer run's rates, by its own clock and by wall time.
fn peer_runs_of(drains: &[PeerDrain]) -> String {
    drains.iter().map(|p| format!("{:.0} / {:.0}", p.own_rate(), p.wall_rate())).collect::<Vec<_>>().join(", ")
}

/// A peer run's events, times and CPU.
fn peer_run(p: &PeerDrain) -> String {
    format!(
        "that run: {} events received ({} stored) in {:.2} s by its clock, {:.2} s from its start to its exit, {}",
        p.events,
        p.stored,
        p.own_seconds,
        p.wall_seconds,
        p.cpu.describe("peer")
    )
}

/// The highest peak resident set of the drains.
fn peak_of(drains: &[Drain]) -> Option<f64> {
    drains.iter().map(|d| d.peak_rss_mib).reduce(f64::max)
}

/// The run with the median rate (the slower middle one of an even count).
fn median_by<T>(mut runs: Vec<T>, rate: fn(&T) -> f64) -> Option<T> {
    runs.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
    let middle = runs.len().saturating_sub(1) / 2;
    runs.into_iter().nth(middle)
}
