//! A run's own database, exchange and queues, for the benchmark and the memory run.

use std::path::PathBuf;

use ecpat_indicators::broker;
use ecpat_indicators::config::Settings;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
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
