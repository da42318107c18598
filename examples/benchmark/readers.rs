//! Dashboard readers during a drain (`readers`): each client asks, in turn, for the
//! indicator values, a series, the evidence behind a value and the CSV export, at a fixed
//! rate, as a dashboard would: it keeps each answer's `ETag` and sends it back as
//! `If-None-Match`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};

/// What the clients ask for, in turn.
pub const PATHS: [&str; 4] = [
    "/api/v1/indicators?period=all",
    "/api/v1/indicators/KE1/series",
    "/api/v1/indicators/KE1/records?period=2019",
    "/api/v1/export.csv?period=all",
];

/// The readers' load: `clients` clients of `rate` requests per second each.
#[derive(Clone, Copy)]
pub struct Load {
    pub clients: usize,
    pub rate: usize,
}

/// What the readers got during the drain.
#[derive(Default)]
pub struct Stats {
    /// Every answer's latency, in ms.
    pub latencies: Vec<f64>,
    /// Answers by status (0: no answer: a connection error).
    pub statuses: BTreeMap<u16, usize>,
    /// Latencies by path, in ms.
    pub by_path: BTreeMap<&'static str, Vec<f64>>,
    pub seconds: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

impl Stats {
    pub fn answers_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }

    /// p50 and p99 in ms.
    pub fn p50_p99(&self) -> (f64, f64) {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        (percentile(&sorted, 0.5), percentile(&sorted, 0.99))
    }

    pub fn describe(&self) -> String {
        let (p50, p99) = self.p50_p99();
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        let paths: Vec<String> = self
            .by_path
            .iter()
            .map(|(path, latencies)| {
                let mut sorted = latencies.clone();
                sorted.sort_by(f64::total_cmp);
                format!("{path} p50 {:.1} p99 {:.1} ms", percentile(&sorted, 0.5), percentile(&sorted, 0.99))
            })
            .collect();
        format!(
            "{:.0} answers/s, p50 {p50:.1} ms, p99 {p99:.1} ms ({} answers in {:.2} s; by status {}; {})",
            self.answers_per_second(),
            self.latencies.len(),
            self.seconds,
            statuses.join(", "),
            paths.join("; ")
        )
    }
}

/// Readers running against one worker's HTTP address until [`Running::stop`].
pub struct Running {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Stats>>,
    start: Instant,
}

/// Starts `load.clients` clients against `http` (they wait for it to answer first).
pub fn start(http: String, load: Load) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let period = Duration::from_secs_f64(1.0 / load.rate.max(1) as f64);
    let tasks = (0..load.clients)
        .map(|client| {
            let (stop, http) = (stop.clone(), http.clone());
            tokio::spawn(async move { read(client, &http, period, &stop).await })
        })
        .collect();
    Running { stop, tasks, start: Instant::now() }
}

impl Running {
    pub async fn stop(self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        let seconds = self.start.elapsed().as_secs_f64();
        let mut all = Stats { seconds, ..Default::default() };
        for task in self.tasks {
            let stats = task.await.expect("a reader does not panic");
            all.latencies.extend(stats.latencies);
            for (status, n) in stats.statuses {
                *all.statuses.entry(status).or_default() += n;
            }
            for (path, latencies) in stats.by_path {
                all.by_path.entry(path).or_default().extend(latencies);
            }
        }
        all
    }
}

/// One client: a request every `period` (the next one at once if an answer took longer),
/// each path in turn, starting at a different one per client.
async fn read(client: usize, http: &str, period: Duration, stop: &AtomicBool) -> Stats {
    let agent = reqwest::Client::new();
    let mut stats = Stats::default();
    let mut tags: HashMap<&str, String> = HashMap::new();
    // Wait until the server answers at all.
    while !stop.load(Ordering::Relaxed) && agent.get(format!("http://{http}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut next = tokio::time::Instant::now();
    let mut turn = client;
    while !stop.load(Ordering::Relaxed) {
        let path = PATHS[turn % PATHS.len()];
        turn += 1;
        let mut request = agent.get(format!("http://{http}{path}"));
        if let Some(tag) = tags.get(path) {
            request = request.header(IF_NONE_MATCH, tag);
        }
        let sent = Instant::now();
        let status = match request.send().await {
            Ok(response) => {
                let status = response.status();
                if status == StatusCode::OK
                    && let Some(tag) = response.headers().get(ETAG).and_then(|v| v.to_str().ok())
                {
                    tags.insert(path, tag.to_owned());
                }
                // The whole body, as a client reads it.
                let _ = response.bytes().await;
                status.as_u16()
            }
            Err(_) => 0,
        };
        let ms = sent.elapsed().as_secs_f64() * 1e3;
        stats.latencies.push(ms);
        stats.by_path.entry(path).or_default().push(ms);
        *stats.statuses.entry(status).or_default() += 1;
        next += period;
        let now = tokio::time::Instant::now();
        if next > now {
            tokio::time::sleep_until(next).await;
        } else {
            next = now;
        }
    }
    stats
}
