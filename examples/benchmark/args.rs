//! The benchmark's options (`scripts/bench --help`).

pub const USAGE: &str = "\
usage: scripts/bench [options]

  --events N            events drained by the workers and the batched peer (200000)
  --per-message K       events per message: 1, or CloudEvents batches of K (1)
  --distinct            every event a record of its own (no corrections, no duplicates),
                        instead of the mixed stream
  --repeat R            drains of 1 worker, 2 workers and the batched peer, in turn (3)
  --baseline-events B   events of the baseline and of the naive peer (20000)
  --rate E              events per second published in the latency run (5000)
  --latency-seconds S   length of the latency run (20)
  --only LIST           scenarios, comma-separated (all but readers by default):
                        one, two, peers, baseline, latency, readers
  --readers C           readers: dashboard clients reading the API during a drain (8)
  --reader-rate Q       readers: requests per second of each client (25)
  --frameworks F        frameworks loaded before the drains: 1 (the default one) or 2
                        (and a copy of it under another id: twice the counting) (1)
  --worker-migrates     the workers create their tables themselves (the benchmark only
                        creates the database): to compare versions with BENCH_WORKER
                        whose migrations differ; with --frameworks 2 the copy is loaded
                        once the workers have loaded the default framework
  --help                this text

The naive peer runs only with one event per message. See docs/performance.md.";

/// The scenarios, in the order they run; all but `readers` run by default.
const SCENARIOS: [&str; 6] = ["one", "two", "peers", "baseline", "readers", "latency"];

pub struct Args {
    pub events: usize,
    pub baseline_events: usize,
    pub per_message: usize,
    /// All-distinct records instead of the mixed stream.
    pub distinct: bool,
    pub rate: usize,
    pub latency_seconds: u64,
    /// Drains of 1 and of 2 workers and of the batched peer, taken in turn; the median of
    /// each is reported.
    pub repeat: usize,
    /// Which scenarios to run (all by default).
    only: Vec<String>,
    /// Frameworks loaded before each drain (1 or 2).
    pub frameworks: usize,
    /// The workers migrate their database themselves.
    pub worker_migrates: bool,
    /// Dashboard clients of the `readers` scenario, and the requests per second of each.
    pub readers: usize,
    pub reader_rate: usize,
}

impl Args {
    pub fn runs(&self, scenario: &str) -> bool {
        self.only.iter().any(|s| s == scenario)
    }
}

pub fn parse() -> Args {
    let mut args = Args {
        events: 200_000,
        baseline_events: 20_000,
        per_message: 1,
        distinct: false,
        rate: 5_000,
        latency_seconds: 20,
        repeat: 3,
        only: SCENARIOS.iter().filter(|s| **s != "readers").map(|s| s.to_string()).collect(),
        frameworks: 1,
        worker_migrates: false,
        readers: 8,
        reader_rate: 25,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(option) = raw.next() {
        let mut value = || raw.next().unwrap_or_else(|| fail(&format!("{option} needs a value")));
        let number = |v: String| v.parse::<usize>().unwrap_or_else(|_| fail(&format!("{option} needs a number")));
        match option.as_str() {
            "--events" => args.events = number(value()),
            "--baseline-events" => args.baseline_events = number(value()),
            "--per-message" => args.per_message = number(value()).max(1),
            "--distinct" => args.distinct = true,
            "--rate" => args.rate = number(value()),
            "--latency-seconds" => args.latency_seconds = number(value()) as u64,
            "--repeat" => args.repeat = number(value()).max(1),
            "--only" => args.only = value().split(',').map(String::from).collect(),
            "--frameworks" => args.frameworks = number(value()),
            "--worker-migrates" => args.worker_migrates = true,
            "--readers" => args.readers = number(value()).max(1),
            "--reader-rate" => args.reader_rate = number(value()).max(1),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => fail(&format!("unknown option {other}")),
        }
    }
    if !(1..=2).contains(&args.frameworks) {
        fail("--frameworks must be 1 or 2");
    }
    if let Some(unknown) = args.only.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
        fail(&format!("unknown scenario {unknown}"));
    }
    args
}

fn fail(message: &str) -> ! {
    eprintln!("{message}\n\n{USAGE}");
    std::process::exit(2);
}
