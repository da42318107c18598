//! `run`: migrations, topology, consumer and HTTP API in one process, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::api::{self, AppState, stream, values};
use crate::config::{Settings, redact};
use crate::consumer;
use crate::health::Health;
use crate::store::{self, ConnectError};
use crate::telemetry::one_line;

/// Creates the database if it does not exist, then applies the pending migrations.
/// Connecting takes at most `database.connect_timeout_secs`.
pub async fn migrate(settings: &Settings) -> anyhow::Result<PgPool> {
    let timeout = settings.database.connect_timeout();
    // With several hosts, the database is made on the one that accepts writes.
    let url = &store::primary::Hosts::parse(&settings.database.url)?.primary(timeout).await?;
    let exists = tokio::time::timeout(timeout, Postgres::database_exists(url))
        .await
        .map_err(|_| ConnectError::TimedOut { url: redact(url), timeout })?
        .map_err(|e| ConnectError::from_sqlx(url, e, timeout))?;
    if !exists {
        Postgres::create_database(url).await.with_context(|| format!("cannot create the database {}", redact(url)))?;
        info!(database = %redact(url), "Created the database.");
    }
    let pool = store::connect(&settings.database.url, settings.database.max_connections, timeout)?;
    // Where a list of hosts starts: the server just found (a standby may not have replayed
    // the new database yet).
    pool.set_connect_options(store::connect_options(url)?);
    store::migrate(&pool).await.context("cannot apply the migrations")?;
    Ok(pool)
}

/// Runs the worker and its API until `shutdown` turns true, which it honours at every
/// stage, waiting for the database included.
pub async fn run(settings: Settings, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let health = Arc::new(Health::default());
    let listener = TcpListener::bind(&settings.http.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http.addr))?;
    info!(addr = %listener.local_addr()?, "Serving the HTTP API.");

    let database = &settings.database;
    let pool = store::connect(&database.url, database.max_connections, database.connect_timeout())?;
    crate::metrics::handle();
    let readers = store::connect_readers(
        &database.url,
        database.reader_connections,
        database.connect_timeout(),
        Duration::from_millis(database.reader_statement_timeout_ms),
    )?;
    let (streams, _) = tokio::sync::broadcast::channel(stream::BUFFER);
    let values = values::Values::new(streams);
    let state = AppState {
        pool: pool.clone(),
        readers: readers.clone(),
        health: health.clone(),
        values: values.clone(),
        heavy: Arc::new(tokio::sync::Semaphore::new(settings.http.heavy_requests.max(1))),
        answers: Arc::new(api::Answers::new(Duration::from_millis(settings.http.heavy_max_age_ms))),
        shutdown: shutdown.clone(),
    };
    let writes = api::write::Writes::from_env(&settings.amqp);
    let mut http_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, api::router(state, writes))
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });

    match migrate_until_done(&settings, shutdown.clone()).await {
        // The worker goes on with its own pool, on the server the migrations were applied to.
        Some(migrated) => {
            pool.set_connect_options((*migrated.connect_options()).clone());
            migrated.close().await;
        }
        None => {
            info!("Stopped before the database was ready.");
            return Ok(());
        }
    }
    // The values are read once the tables are there.
    tokio::spawn(values::keep_current(pool.clone(), values, shutdown.clone()));
    health.set_migrated();
    health.set_database_ok();
    consumer::run(settings, pool.clone(), health, shutdown).await;
    server.await.context("the HTTP server panicked")?.context("the HTTP server failed")?;
    readers.close().await;
    pool.close().await;
    info!("Stopped.");
    Ok(())
}

/// Migrates, retrying every 2 s while the database cannot be reached (start order does
/// not matter), until done (the pool) or `shutdown` turns true (`None`), even mid-attempt.
pub async fn migrate_until_done(settings: &Settings, mut shutdown: watch::Receiver<bool>) -> Option<PgPool> {
    loop {
        let migrated = tokio::select! {
            migrated = migrate(settings) => migrated,
            _ = shutdown.wait_for(|stop| *stop) => return None,
        };
        match migrated {
            Ok(pool) => return Some(pool),
            Err(e) => warn!(error = one_line(e.as_ref()), "Cannot migrate yet; retrying in 2 s."),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return None,
        }
    }
}
