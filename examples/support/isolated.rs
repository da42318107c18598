//! A run's own database, exchange and queues, for the benchmark and the memory run.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use ecpat_indicators::broker;
use ecpat_indicators::config::Settings;
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use sqlx::PgPool;

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project's settings, with a database, exchange and queues of their own named after
/// `name` (database server: `BENCH_DATABASE_BASE`, default the local PostgreSQL).
pub fn settings(name: &str) -> Settings {
    let mut settings = Settings::load(&crate_dir().join("config")).expect("config loads");
    let base = std::env::var("BENCH_DATABASE_BASE").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    settings.database.url = format!("{base}/{name}");
    settings.amqp.exchange = format!("{name}.events");
    settings.amqp.queue = format!("{name}.indicators");
    settings.amqp.dead_letter_exchange = format!("{name}.dead");
    settings.amqp.dead_letter_queue = format!("{name}.dead.q");
    settings.amqp.unrouted_exchange = format!("{name}.unrouted");
    settings
}

/// The command that starts a worker on the run's database and queues:
/// `target/release/ecpat-indicators run`, or the binary `BENCH_WORKER` names (another
/// version, to compare both on this machine); logs at `BENCH_WORKER_LOG` (default `warn`).
pub fn worker_command(settings: &Settings) -> Command {
    let binary = std::env::var_os("BENCH_WORKER")
        .map_or_else(|| crate_dir().join("target/release/ecpat-indicators"), PathBuf::from);
    let mut command = Command::new(binary);
    command
        .arg("run")
        .current_dir(crate_dir())
        .env("DATABASE_URL", &settings.database.url)
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("ECPAT_AMQP__EXCHANGE", &settings.amqp.exchange)
        .env("ECPAT_AMQP__QUEUE", &settings.amqp.queue)
        .env("ECPAT_AMQP__DEAD_LETTER_EXCHANGE", &settings.amqp.dead_letter_exchange)
        .env("ECPAT_AMQP__DEAD_LETTER_QUEUE", &settings.amqp.dead_letter_queue)
        .env("ECPAT_AMQP__UNROUTED_EXCHANGE", &settings.amqp.unrouted_exchange)
        .env("RUST_LOG", std::env::var("BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null());
    command
}

/// Messages ready in the run's queue, on a connection of its own.
pub async fn ready_messages(settings: &Settings) -> u32 {
    let connection = broker::connect(&settings.amqp, "benchmark queue depth").await.expect("RabbitMQ is reachable");
    let channel = connection.create_channel().await.unwrap();
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let queue = channel.queue_declare(settings.amqp.queue.as_str().into(), passive, FieldTable::default());
    let count = queue.await.expect("the queue exists").message_count();
    let _ = connection.close(200, "ok".into()).await;
    count
}

/// Deletes the run's queues, exchanges and database (`name`), after closing `pool`.
pub async fn remove(settings: &Settings, name: &str, pool: PgPool) {
    if let Ok(connection) = broker::connect(&settings.amqp, "cleanup").await {
        let channel = connection.create_channel().await.unwrap();
        for q in [&settings.amqp.queue, &settings.amqp.dead_letter_queue] {
            let _ = channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
        }
        for x in [&settings.amqp.exchange, &settings.amqp.dead_letter_exchange, &settings.amqp.unrouted_exchange] {
            let _ = channel.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await;
        }
        let _ = connection.close(200, "ok".into()).await;
    }
    pool.close().await;
    let base = settings.database.url.rsplit_once('/').expect("a database URL").0;
    let admin = PgPool::connect(&format!("{base}/postgres")).await.unwrap();
    let drop = format!("drop database if exists {name} with (force)");
    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await;
}
