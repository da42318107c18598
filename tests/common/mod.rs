//! Test helpers: each test gets its own PostgreSQL database and its own RabbitMQ exchanges
//! and queues, on the real servers of this machine. A missing server fails the test
//! loudly; nothing is mocked and nothing is skipped.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ecpat_indicators::broker::{self, Publisher};
use ecpat_indicators::config::Settings;
use ecpat_indicators::store::read::{self, ValueRow};
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};
use sqlx::PgPool;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The server base URLs (overridable for other machines).
pub fn database_base() -> String {
    std::env::var("TEST_DATABASE_BASE").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| "amqp://127.0.0.1:5672/%2f".into())
}

/// The test run this process belongs to (`TEST_RUN_ID`, set by `scripts/test`), so that a
/// run can drop the databases it created and only those.
pub fn test_run() -> String {
    std::env::var("TEST_RUN_ID").unwrap_or_else(|_| "dev".into())
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One test's isolated world: a database, exchange and queue names of its own.
pub struct TestEnv {
    pub name: String,
    /// The server URL without a database (one host, or several).
    base: String,
    pub settings: Settings,
    pub pool: PgPool,
    workers: Vec<Worker>,
}

impl TestEnv {
    /// Creates a fresh database (migrated) and unique broker names.
    pub async fn new(label: &str) -> TestEnv {
        TestEnv::on(&database_base(), label).await
    }

    /// Like [`TestEnv::new`], on the servers of `base` (`postgres://user@host:port`, or
    /// several `host:port` separated by commas).
    pub async fn on(base: &str, label: &str) -> TestEnv {
        let name =
            format!("t_{}_{}_{}_{}", test_run(), label, std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut settings = Settings::load(&crate_dir().join("config")).expect("config/default.toml loads");
        settings.database.url = format!("{base}/{name}");
        settings.amqp.url = amqp_url();
        settings.amqp.exchange = format!("{name}.events");
        settings.amqp.queue = format!("{name}.indicators");
        settings.amqp.dead_letter_exchange = format!("{name}.events.dead");
        settings.amqp.dead_letter_queue = format!("{name}.indicators.dead");
        settings.amqp.unrouted_exchange = format!("{name}.events.unrouted");
        let pool = ecpat_indicators::app::migrate(&settings)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be running at {base} for the tests: {e:#}"));
        TestEnv { name, base: base.to_owned(), settings, pool, workers: vec![] }
    }

    /// Declares the topology, as a worker or producer would.
    pub async fn declare(&self) {
        let connection = broker::connect(&self.settings.amqp, "test declare")
            .await
            .unwrap_or_else(|e| panic!("RabbitMQ must be running at {} for the tests: {e}", amqp_url()));
        broker::declare_topology(&connection, &self.settings.amqp).await.unwrap();
        connection.close(200, "ok".into()).await.unwrap();
    }

    /// Publishes raw bodies (each with its routing key) with confirms.
    pub async fn publish_raw(&self, messages: &[(String, Vec<u8>)]) {
        let connection = broker::connect(&self.settings.amqp, "test publisher")
            .await
            .unwrap_or_else(|e| panic!("RabbitMQ must be running at {} for the tests: {e}", amqp_url()));
        broker::declare_topology(&connection, &self.settings.amqp).await.unwrap();
        let publisher = Publisher::new(&connection, &self.settings.amqp).await.unwrap();
        for chunk in messages.chunks(500) {
            publisher.publish_all(chunk).await.expect("broker confirms every message");
        }
        connection.close(200, "ok".into()).await.unwrap();
    }

    /// Publishes events, one message each, routed by their type.
    pub async fn publish(&self, events: &[Value]) {
        let messages: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| {
                let body = e.to_string();
                (broker::routing_key_for(&body), body.into_bytes())
            })
            .collect();
        self.publish_raw(&messages).await;
    }

    /// Runs a one-shot command of the binary (`publish`, `rejections`, `track`...) on this
    /// test's database and broker, and waits for it (a minute at most).
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ecpat-indicators"));
        command
            .args(args)
            .current_dir(crate_dir())
            .envs(binary_env(&self.settings))
            .env("RUST_LOG", "warn")
            // Errors as a user sees them: one line, without a backtrace.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap_or_else(|_| panic!("ecpat-indicators {args:?} did not finish within a minute"))
            .expect("the ecpat-indicators binary starts")
    }

    /// Messages ready in the work queue (not counting unacknowledged ones).
    pub async fn queue_depth(&self) -> (u32, u32) {
        let connection = broker::connect(&self.settings.amqp, "test depth").await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(
                self.settings.amqp.queue.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        connection.close(200, "ok".into()).await.unwrap();
        (queue.message_count(), queue.consumer_count())
    }

    /// Starts a worker process (`ecpat-indicators run`) on this test's database and queue.
    pub fn spawn_worker(&mut self) -> usize {
        let worker = Worker::spawn(&self.settings, &[]);
        self.workers.push(worker);
        self.workers.len() - 1
    }

    /// Starts a worker with extra environment variables (settings).
    pub fn spawn_worker_with(&mut self, extra: &[(&str, &str)]) -> usize {
        let worker = Worker::spawn(&self.settings, extra);
        self.workers.push(worker);
        self.workers.len() - 1
    }

    pub fn worker(&mut self, index: usize) -> &mut Worker {
        &mut self.workers[index]
    }

    /// Stored events, rejections.
    pub async fn counts(&self) -> (i64, i64) {
        let events: i64 = sqlx::query_scalar("select count(*) from events").fetch_one(&self.pool).await.unwrap();
        let rejections: i64 =
            sqlx::query_scalar("select count(*) from rejections").fetch_one(&self.pool).await.unwrap();
        (events, rejections)
    }

    /// Waits until `events` events and `rejections` rejections are stored and the queue is
    /// empty; panics after `timeout`.
    pub async fn wait_for_counts(&self, events: i64, rejections: i64, timeout: Duration) {
        let start = Instant::now();
        loop {
            let counts = self.counts().await;
            if counts == (events, rejections) && self.queue_depth().await.0 == 0 {
                return;
            }
            assert!(
                counts.0 <= events && counts.1 <= rejections,
                "more stored than expected: {counts:?} > {:?}",
                (events, rejections)
            );
            assert!(start.elapsed() < timeout, "timed out: stored {counts:?}, expected {:?}", (events, rejections));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every non-zero indicator value.
    pub async fn values(&self) -> Vec<ValueRow> {
        read::all_values(&self.pool).await.unwrap()
    }

    /// One value (0 when missing).
    pub async fn value(&self, indicator: &str, period: &str, dimension: &str, key: &str) -> i64 {
        self.values()
            .await
            .into_iter()
            .find(|r| r.indicator == indicator && r.period == period && r.dimension == dimension && r.key == key)
            .map_or(0, |r| r.value)
    }

    /// Stops the workers, deletes the broker objects and the database.
    pub async fn cleanup(mut self) {
        for worker in &mut self.workers {
            worker.kill();
        }
        if let Ok(connection) = broker::connect(&self.settings.amqp, "test cleanup").await {
            let channel = connection.create_channel().await.unwrap();
            for queue in [&self.settings.amqp.queue, &self.settings.amqp.dead_letter_queue] {
                let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
            }
            let amqp = &self.settings.amqp;
            for exchange in [&amqp.exchange, &amqp.dead_letter_exchange, &amqp.unrouted_exchange] {
                let _ = channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
            }
            let _ = connection.close(200, "ok".into()).await;
        }
        self.pool.close().await;
        let admin = ecpat_indicators::store::connect(&format!("{}/postgres", self.base), 1, Duration::from_secs(10))
            .expect("the test's own server URL reads");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("drop database if exists {} with (force)", self.name)))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

/// Runs `test` in a new environment with one worker, started with the extra environment
/// `variables` and ready, given the worker's HTTP address; cleans up even when the test
/// panics, then passes the panic on.
pub async fn with_worker(label: &str, variables: &[(&str, &str)], test: impl AsyncFnOnce(&mut TestEnv, String)) {
    use futures::FutureExt;
    let mut env = TestEnv::new(label).await;
    let w = env.spawn_worker_with(variables);
    let http = env.worker(w).http.clone();
    let outcome = std::panic::AssertUnwindSafe(async {
        env.worker(w).wait_ready(Duration::from_secs(30)).await;
        test(&mut env, http).await;
    })
    .catch_unwind()
    .await;
    env.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The environment that points the binary at a test's database, exchanges and queues (and
/// at its brokers: `AMQP_URLS` when the settings list several, else `AMQP_URL`).
pub fn binary_env(settings: &Settings) -> Vec<(&'static str, String)> {
    let amqp = &settings.amqp;
    let brokers =
        if amqp.urls.is_empty() { ("AMQP_URL", amqp.url.clone()) } else { ("AMQP_URLS", amqp.urls.join(",")) };
    vec![
        ("DATABASE_URL", settings.database.url.clone()),
        brokers,
        ("ECPAT_AMQP__EXCHANGE", amqp.exchange.clone()),
        ("ECPAT_AMQP__QUEUE", amqp.queue.clone()),
        ("ECPAT_AMQP__DEAD_LETTER_EXCHANGE", amqp.dead_letter_exchange.clone()),
        ("ECPAT_AMQP__DEAD_LETTER_QUEUE", amqp.dead_letter_queue.clone()),
        ("ECPAT_AMQP__UNROUTED_EXCHANGE", amqp.unrouted_exchange.clone()),
        ("ECPAT_AMQP__QUORUM_INITIAL_GROUP_SIZE", amqp.quorum_initial_group_size.to_string()),
    ]
}

/// A worker process.
pub struct Worker {
    pub child: Child,
    pub http: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Worker {
    /// Starts `ecpat-indicators run` with the test's settings (plus extra variables).
    pub fn spawn(settings: &Settings, extra: &[(&str, &str)]) -> Worker {
        let http = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_ecpat-indicators"));
        command
            .arg("run")
            .current_dir(crate_dir())
            .envs(binary_env(settings))
            .env("HTTP_ADDR", &http)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        for (key, value) in extra {
            command.env(key, value);
        }
        let child = command.spawn().expect("the ecpat-indicators binary starts");
        Worker { child, http }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let start = Instant::now();
        let url = format!("http://{}/readyz", self.http);
        loop {
            if let Ok(response) = reqwest::get(&url).await
                && response.status() == 200
            {
                return;
            }
            assert!(start.elapsed() < timeout, "worker not ready after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GETs a path of the API and returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("http://{}{path}", self.http)).await.expect("the API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(json!(null)))
    }

    /// One sample of its `/metrics` (`None` if not there).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let response = reqwest::get(format!("http://{}/metrics", self.http)).await.expect("the worker answers");
        let text = response.text().await.expect("a text body");
        text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) with a valid pid and signal has no memory-safety preconditions.
        unsafe { libc_kill(pid, 15) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < timeout, "worker did not exit within {timeout:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    /// A failing test must not leave its worker running.
    fn drop(&mut self) {
        self.kill();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// A publication of the research team (global or thematic scope counts in KE1; every one in
/// CV3; a national one in KE2, for France).
pub fn publication(id: &str, time: &str, publication_id: &str, scope: &str, published_on: &str) -> Value {
    event(
        "urn:ecpat:fr:research-team",
        id,
        time,
        "org.ecpat.research.publication.recorded",
        json!({
            "publication_id": publication_id, "title": "Sexual exploitation of children online",
            "scope": scope, "countries": ["fr"], "themes": ["online", "access_to_justice"],
            "contributed": true, "published_on": published_on,
        }),
    )
}

/// A snapshot of the likes and shares of one Facebook post disseminating `pub-1`.
pub fn snapshot(id: &str, time: &str, likes: i64, shares: i64) -> Value {
    event(
        "urn:ecpat:fr:social-collector",
        id,
        time,
        "org.ecpat.social.metrics.snapshot",
        json!({
            "platform": "facebook", "post_id": "p1", "member": "ecpat-france",
            "published_at": "2019-03-01T10:00:00+01:00", "publication_id": "pub-1",
            "metrics": {"likes": likes, "shares": shares},
        }),
    )
}

/// A minimal global publication (counted in KE1) whose key is its event id.
pub fn plain_publication(id: &str) -> Value {
    event(
        "urn:ecpat:fr:research-team",
        id,
        "2019-05-01T10:00:00Z",
        "org.ecpat.research.publication.recorded",
        json!({"publication_id": id, "title": "Study", "scope": "global", "contributed": true, "published_on": "2019-04-30"}),
    )
}

/// A CloudEvent with the given type and data.
pub fn event(source: &str, id: &str, time: &str, event_type: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": event_type,
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    })
}

pub mod browser;
pub mod generate;
pub mod model;

/// How many distinct events (by `source` and `id`) `events` holds: what the worker stores.
pub fn unique(events: &[Value]) -> i64 {
    events
        .iter()
        .map(|e| (e["source"].to_string(), e["id"].to_string()))
        .collect::<std::collections::HashSet<_>>()
        .len() as i64
}

/// The stored values in the model's shape.
pub fn as_model(rows: &[ValueRow]) -> model::Values {
    rows.iter()
        .map(|r| ((r.indicator.clone(), r.period.clone(), r.dimension.clone(), r.key.clone()), r.value))
        .collect()
}

/// A message as taken from the broker, holding `body` (for tests that apply batches through
/// the store directly).
pub fn message(body: String) -> ecpat_indicators::apply::Message {
    ecpat_indicators::apply::Message {
        routing_key: "org.ecpat.test".into(),
        headers: Value::Object(Default::default()),
        size: body.len(),
        decoded: ecpat_indicators::envelope::decode(body.as_bytes()),
        maybe_applied: false,
    }
}
