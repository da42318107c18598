//! `run`: migrations, topology, consumer and HTTP API in one process, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::api::{self, AppState, stream};
use crate::config::{Settings, redact};
use crate::consumer;
use crate::health::Health;
use crate::indicators::catalogue::Catalogue;
use crate::store;

/// Creates the database if it does not exist, then applies the pending migrations.
pub async fn migrate(settings: &Settings) -> anyhow::Result<PgPool> {
    let url = &settings.database.url;
    if !Postgres::database_exists(url).await.with_context(|| format!("cannot reach PostgreSQL at {}", redact(url)))? {
        Postgres::create_database(url).await.with_context(|| format!("cannot create the database {}", redact(url)))?;
        info!(database = %redact(url), "Created the database.");
    }
    let pool = store::connect(url, settings.database.max_connections)?;
    store::migrate(&pool).await.context("cannot apply the migrations")?;
    Ok(pool)
}

/// Runs the worker and its API until `shutdown` turns true.
pub async fn run(settings: Settings, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let catalogue = Arc::new(Catalogue::load(&settings.catalogue.path)?);
    let health = Arc::new(Health::default());
    let listener = TcpListener::bind(&settings.http.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http.addr))?;
    info!(addr = %listener.local_addr()?, "Serving the HTTP API.");

    let pool = store::connect(&settings.database.url, settings.database.max_connections)?;
    crate::metrics::handle();
    let (tallies, _) = tokio::sync::broadcast::channel(stream::BUFFER);
    tokio::spawn(stream::relay(pool.clone(), tallies.clone(), shutdown.clone()));
    let state = AppState { pool: pool.clone(), catalogue, health: health.clone(), tallies, shutdown: shutdown.clone() };
    let mut http_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, api::router(state))
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });

    let mut waiting = shutdown.clone();
    loop {
        match migrate(&settings).await {
            Ok(_) => break,
            Err(e) => {
                warn!(error = format!("{e:#}"), "Cannot migrate yet; retrying in 2 s.");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = waiting.wait_for(|stop| *stop) => return Ok(()),
                }
            }
        }
    }
    health.set_migrated();
    health.set_database_ok(true);
    consumer::run(settings, pool.clone(), health, shutdown).await;
    server.await.context("the HTTP server panicked")?.context("the HTTP server failed")?;
    pool.close().await;
    info!("Stopped.");
    Ok(())
}
