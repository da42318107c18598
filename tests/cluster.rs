//! On a RabbitMQ cluster of three nodes, started by `scripts/cluster-test` (which sets the
//! `ECPAT_CLUSTER_*` variables): two workers and a publisher list the three nodes in
//! `amqp.urls`, the queue has three members; under a steady flow of events (duplicates,
//! corrections and withdrawals among them), the workers' node is killed (kill -9), started
//! again, then their new node is stopped (`rabbitmqctl stop`) and started again. Nothing is
//! lost, nothing is counted twice: the tallies are the brute-force model's and
//! recompute's, and no message is left in the queue. It prints how long the workers took to
//! consume again and the flow to be counted again, and the drain rate of one worker on the
//! cluster against the machine's own single node.
//!
//! Not run by `cargo test` (`test = false` in Cargo.toml): `scripts/cluster-test` runs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::generate::{events, events_with_pool};
use common::{TestEnv, Worker, as_model, binary_env, free_port, model, unique};
use ecpat_indicators::broker::{self, LazyPublisher};
use ecpat_indicators::config::Settings;
use ecpat_indicators::store::recompute::recompute;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(20);

/// The cluster `scripts/cluster-test` started.
struct Cluster {
    /// AMQP URL of each node, in node order.
    urls: Vec<String>,
    /// Erlang name of each node.
    nodes: Vec<String>,
    /// The nodes' folder (their cookie, pid files, logs).
    dir: PathBuf,
    /// Where `rabbitmqctl` and `rabbitmq-queues` are.
    bin: PathBuf,
    /// `scripts/cluster-test`, which starts a node again.
    script: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test needs the cluster that scripts/cluster-test starts; run that script")
    })
}

impl Cluster {
    fn from_env() -> Cluster {
        let list = |name| var(name).split(',').map(str::to_owned).collect::<Vec<_>>();
        let cluster = Cluster {
            urls: list("ECPAT_CLUSTER_URLS"),
            nodes: list("ECPAT_CLUSTER_NODES"),
            dir: var("ECPAT_CLUSTER_DIR").into(),
            bin: var("ECPAT_CLUSTER_BIN").into(),
            script: var("ECPAT_CLUSTER_SCRIPT").into(),
        };
        assert_eq!(cluster.urls.len(), 3, "three URLs in ECPAT_CLUSTER_URLS");
        assert_eq!(cluster.nodes.len(), 3, "three nodes in ECPAT_CLUSTER_NODES");
        cluster
    }

    /// Runs a RabbitMQ command line tool against `node`; its output, or why it failed.
    async fn tool(&self, tool: &str, node: usize, args: &[&str]) -> Result<String, String> {
        let mut command = tokio::process::Command::new(self.bin.join(tool));
        command.arg("-n").arg(&self.nodes[node]).args(args).env("HOME", &self.dir).kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(90), command.output())
            .await
            .map_err(|_| format!("{tool} {args:?} on {} did not answer within 90 s", self.nodes[node]))?
            .unwrap_or_else(|e| panic!("{tool} runs: {e}"));
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!("{tool} {args:?} on {}: {}", self.nodes[node], String::from_utf8_lossy(&output.stderr)))
        }
    }

    /// The node a worker process is connected to, as the cluster lists its connections
    /// (named `ecpat-indicators worker pid <pid>`), asked of `live`, a running node.
    async fn node_of(&self, pid: u32, live: usize) -> Option<usize> {
        let listing = self.tool("rabbitmqctl", live, &["list_connections", "-q", "port", "client_properties"]).await;
        let listing = listing.unwrap_or_else(|e| panic!("{e}"));
        let name = format!("\"ecpat-indicators worker pid {pid}\"");
        let port = listing.lines().find(|line| line.contains(&name))?.split('\t').next()?.trim().parse::<u16>().ok()?;
        self.urls.iter().position(|url| url.contains(&format!(":{port}/")))
    }

    /// Waits until `node` may stop without any quorum queue losing its majority (the node
    /// started last has caught up).
    async fn wait_not_quorum_critical(&self, node: usize) {
        let start = Instant::now();
        loop {
            match self.tool("rabbitmq-queues", node, &["check_if_node_is_quorum_critical"]).await {
                Ok(_) => return,
                Err(e) => assert!(start.elapsed() < WAIT, "node {} stays quorum critical: {e}", self.nodes[node]),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Kills the node's Erlang VM with SIGKILL: its connections die with it.
    fn kill(&self, node: usize) {
        let pid_file = self.dir.join(format!("ecpat-c{}.pid", node + 1));
        let pid = std::fs::read_to_string(&pid_file).unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
        let status = Command::new("kill").args(["-9", pid.trim()]).status().expect("kill runs");
        assert!(status.success(), "kill -9 {} failed", pid.trim());
    }

    /// Stops the node as an operator would (`rabbitmqctl stop`): it closes its connections.
    async fn stop(&self, node: usize) {
        self.tool("rabbitmqctl", node, &["stop"]).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the node again (it rejoins the cluster) and waits until it runs.
    async fn start(&self, node: usize) {
        let mut command = tokio::process::Command::new(&self.script);
        command.args(["start-node", &(node + 1).to_string()]).kill_on_drop(true);
        let status = tokio::time::timeout(Duration::from_secs(180), command.status())
            .await
            .unwrap_or_else(|_| panic!("node {} did not start again within 180 s", self.nodes[node]))
            .expect("scripts/cluster-test runs");
        assert!(status.success(), "node {} did not start again", self.nodes[node]);
    }

    /// The settings of `env` pointed at the three nodes, with a queue of three members.
    fn point(&self, env: &mut TestEnv) {
        env.settings.amqp.urls = self.urls.clone();
        env.settings.amqp.quorum_initial_group_size = 3;
    }
}

/// A worker process whose log (JSON, from `info`) goes to a file.
fn spawn_worker(settings: &Settings, log: &Path) -> Worker {
    let http = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_ecpat-indicators"))
        .arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(binary_env(settings))
        .env("HTTP_ADDR", &http)
        .env("RUST_LOG", "info,sqlx=warn,lapin=off")
        .env("ECPAT_LOG__FORMAT", "json")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(log).expect("a log file"))
        .spawn()
        .expect("the ecpat-indicators binary starts");
    Worker { child, http }
}

/// The first line with `message` the worker logged since `since`: when, and its `node`.
fn logged_since(log: &Path, message: &str, since: DateTime<Utc>) -> Option<(DateTime<Utc>, String)> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).find_map(|line| {
        let at: DateTime<Utc> = line["timestamp"].as_str()?.parse().ok()?;
        (line["message"] == message && at > since).then(|| (at, line["node"].as_str().unwrap_or("").to_owned()))
    })
}

/// A steady flow of events published to the cluster by a publisher of the library (the one
/// `publish` uses), a window of `WINDOW` events every `EVERY`.
struct Flow {
    /// Events whose window was handed to the publisher (every later one is published later).
    handed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

const WINDOW: usize = 25;
const EVERY: Duration = Duration::from_millis(50);

impl Flow {
    fn start(settings: &Settings, events: Arc<Vec<Value>>) -> Flow {
        let handed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = LazyPublisher::patient(settings, "ecpat-indicators cluster test publisher");
        let (counter, stopped) = (handed.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut confirmed = 0;
            let mut tick = tokio::time::interval(EVERY);
            while !stopped.load(Ordering::Relaxed) && confirmed < events.len() {
                tick.tick().await;
                let window = &events[confirmed..(confirmed + WINDOW).min(events.len())];
                let messages: Vec<(String, Vec<u8>)> = window
                    .iter()
                    .map(|e| {
                        let body = e.to_string();
                        (broker::routing_key_for(&body), body.into_bytes())
                    })
                    .collect();
                counter.store(confirmed + window.len(), Ordering::SeqCst);
                publisher.publish(&messages).await.unwrap_or_else(|e| panic!("the flow stopped: {e}"));
                confirmed += window.len();
            }
            publisher.close().await;
            confirmed
        });
        Flow { handed, stop, task }
    }

    /// Stops the flow; returns how many events were published and confirmed.
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the flow ran to its end")
    }
}

/// Whether any of `ids` is stored.
async fn any_stored(env: &TestEnv, ids: &[String]) -> bool {
    sqlx::query_scalar("select exists (select 1 from events where id = any($1))")
        .bind(ids)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// How the node goes down.
#[derive(Clone, Copy, Debug)]
enum Down {
    Killed,
    Stopped,
}

#[tokio::test]
async fn workers_and_publisher_move_to_a_live_node_when_theirs_dies_and_every_tally_stays_exact() {
    let cluster = Cluster::from_env();
    let stream = Arc::new(events(20261201, 200_000));
    let mut env = TestEnv::new("cluster").await;
    cluster.point(&mut env);
    let logs = tempfile::tempdir().unwrap();
    let log = |i: usize| logs.path().join(format!("worker-{i}.log"));
    let mut workers: Vec<Worker> = (0..2).map(|i| spawn_worker(&env.settings, &log(i))).collect();
    for worker in &workers {
        worker.wait_ready(WAIT).await;
    }
    let members = cluster.tool("rabbitmqctl", 0, &["list_queues", "-q", "name", "members"]).await.unwrap();
    let members = members.lines().find(|line| line.starts_with(&env.settings.amqp.queue)).unwrap_or_default();
    assert!(
        cluster.nodes.iter().all(|node| members.contains(node.as_str())),
        "the queue has a member on every node: {members}"
    );

    let flow = Flow::start(&env.settings, stream.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut live = 0;
    for down in [Down::Killed, Down::Stopped] {
        let pids: Vec<u32> = workers.iter().map(|w| w.child.id()).collect();
        let mut nodes = vec![];
        for pid in &pids {
            nodes.push(cluster.node_of(*pid, live).await.unwrap_or_else(|| panic!("worker {pid} has no connection")));
        }
        let node = nodes[0];
        cluster.wait_not_quorum_critical(node).await;
        let handed = flow.handed.load(Ordering::SeqCst);
        let (stopped_at, since) = (Instant::now(), Utc::now());
        match down {
            Down::Killed => cluster.kill(node),
            Down::Stopped => cluster.stop(node).await,
        }
        live = (node + 1) % 3;
        // Each worker that was on that node consumes again, from another node.
        for (i, _) in nodes.iter().enumerate().filter(|(_, n)| **n == node) {
            let (at, on) = loop {
                if let Some(found) = logged_since(&log(i), "Consuming.", since) {
                    break found;
                }
                assert!(stopped_at.elapsed() < WAIT, "worker {i} did not consume again within {WAIT:?}");
                tokio::time::sleep(POLL).await;
            };
            assert!(
                !on.contains(&format!(":{}/", 5681 + node)),
                "worker {i} consumes from the node that is down: {on}"
            );
            let (lost, _) = logged_since(&log(i), "Lost the broker; reconnecting.", since)
                .unwrap_or_else(|| panic!("worker {i} consumes again without having logged the loss"));
            let took = |from: DateTime<Utc>| (at - from).to_std().unwrap_or_default();
            eprintln!(
                "node {} {down:?}: worker {i} consuming again from {on} {:.2?} after the stop began, {:.2?} after it \
                 saw its connection lost",
                cluster.nodes[node],
                took(since),
                took(lost)
            );
        }
        // An event published after the stop is counted.
        let after: Vec<String> = (handed..handed + 1000)
            .filter(|i| stream[*i]["id"] == format!("ev-{i}"))
            .map(|i| format!("ev-{i}"))
            .collect();
        while !any_stored(&env, &after).await {
            assert!(stopped_at.elapsed() < WAIT, "nothing published after the stop counted within {WAIT:?}");
            tokio::time::sleep(POLL).await;
        }
        eprintln!("node {} {down:?}: the flow counted again after {:.2?}", cluster.nodes[node], stopped_at.elapsed());
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.start(node).await;
        eprintln!("node {} started again, {:.1?} after it went down", cluster.nodes[node], stopped_at.elapsed());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let published = flow.stop().await;
    let stream = &stream[..published];
    eprintln!("{published} events published ({} distinct); draining...", unique(stream));
    let start = Instant::now();
    loop {
        let (stored, rejected) = env.counts().await;
        assert_eq!(rejected, 0, "rejections");
        assert!(stored <= unique(stream), "more stored than published: {stored} > {}", unique(stream));
        if stored == unique(stream) && env.queue_depth().await.0 == 0 {
            break;
        }
        assert!(start.elapsed() < WAIT, "not drained after {WAIT:?}: {stored} of {} stored", unique(stream));
        tokio::time::sleep(POLL).await;
    }
    for worker in &mut workers {
        let status = worker.terminate(Duration::from_secs(15));
        assert!(status.success(), "a worker exited with {status:?} after SIGTERM");
    }
    assert_eq!(env.queue_depth().await, (0, 0), "(messages, consumers) left in the queue once the workers stopped");
    assert_eq!(env.counts().await, (unique(stream), 0), "(events, rejections) stored");
    let values = env.values().await;
    assert_eq!(as_model(&values), model::values(stream), "the tallies differ from the model");
    recompute(&env.pool).await.unwrap();
    assert_eq!(env.values().await, values, "recompute differs from the incremental tallies");
    drop(workers);
    env.cleanup().await;
}

/// One worker drains a backlog of `stream`, one event per message; events applied per second,
/// from the first one stored to the last.
async fn drain_rate(mut env: TestEnv, stream: &[Value]) -> f64 {
    env.declare().await;
    env.publish(stream).await;
    let expected = unique(stream);
    let w = env.spawn_worker();
    let start = Instant::now();
    let (first, first_at) = loop {
        let (stored, _) = env.counts().await;
        if stored > 0 {
            break (stored, Instant::now());
        }
        assert!(start.elapsed() < WAIT, "the worker never started applying");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    loop {
        let (stored, rejected) = env.counts().await;
        assert_eq!(rejected, 0, "rejections");
        if stored == expected {
            break;
        }
        assert!(start.elapsed() < WAIT, "not drained after {WAIT:?}: {stored} of {expected} stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = (expected - first) as f64 / first_at.elapsed().as_secs_f64();
    env.wait_for_counts(expected, 0, WAIT).await;
    let status = env.worker(w).terminate(Duration::from_secs(15));
    assert!(status.success(), "the worker exited with {status:?} after SIGTERM");
    assert_eq!(as_model(&env.values().await), model::values(stream), "the tallies differ from the model");
    env.cleanup().await;
    rate
}

#[tokio::test]
async fn drain_rate_on_the_cluster_against_the_single_node() {
    let cluster = Cluster::from_env();
    let n = 20_000;
    let stream = events_with_pool(20261202, n, 1_000_000);
    // Taken in turn, twice, so that what else the machine does weighs on both alike. The single
    // node is the machine's own RabbitMQ, the queue alone there.
    let (mut single, mut clustered) = (vec![], vec![]);
    for round in 0..2 {
        single.push(drain_rate(TestEnv::new(&format!("drain_single_{round}")).await, &stream).await);
        let mut env = TestEnv::new(&format!("drain_cluster_{round}")).await;
        cluster.point(&mut env);
        clustered.push(drain_rate(env, &stream).await);
    }
    let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
    let shown = |rates: &[f64]| rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ");
    eprintln!(
        "drain rate, one worker, {n} events one per message: single node {} events/s, three-node cluster {} \
         events/s (means {:.0} and {:.0}: {:.2}x)",
        shown(&single),
        shown(&clustered),
        mean(&single),
        mean(&clustered),
        mean(&clustered) / mean(&single)
    );
}
