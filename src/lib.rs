//! ECPAT indicators: consumes CloudEvents from RabbitMQ, keeps every event as evidence, and
//! keeps the 13 indicator tallies of the ECPAT network's 2018-2021 framework current in
//! PostgreSQL (see docs/events.md and docs/indicators.md).
//!
//! The way through, edge to core:
//! - [`config`], [`telemetry`]: settings and logs;
//! - [`broker`]: RabbitMQ connection (to the first node of `amqp.urls` that answers), topology and confirmed publishing;
//! - [`backoff`]: the waits between retries;
//! - [`collector`]: polls the social platforms and publishes metric snapshots;
//! - [`consumer`]: batches of deliveries, applied then acknowledged;
//! - [`envelope`]: bytes to validated CloudEvents, or rejections;
//! - [`records`]: the records events carry, parsed and normalised;
//! - [`apply`]: a batch from decoded messages to committed tallies, in one place;
//! - [`ledger`]: which version of each record is current (pure);
//! - [`framework`]: the counting rules as data: a framework document (TOML, CEL `when`)
//!   read and checked once, evaluated per record (pure);
//! - [`indicators`]: tally keys, deltas and periods (pure);
//! - [`store`]: all SQL, by table (events, records, tallies, rejections), and reading;
//! - [`api`], [`health`], [`metrics`]: the HTTP API, readiness and Prometheus metrics;
//! - [`report`]: the report for donors (a printable page, a workbook);
//! - [`import`]: registers (CSV, `.xlsx`) to checked events, one per row (pure);
//! - [`app`], [`cli`]: the subcommands.
//!
//! One event's way, in five files: `consumer/deliveries.rs` reads it from RabbitMQ and
//! decodes it with `envelope/mod.rs` (bytes to a validated event and its record);
//! `apply.rs` applies its batch in one transaction: `store/events.rs` stores it,
//! `store/records.rs` loads the current versions, `ledger.rs` decides, and the store writes
//! the records and the tallies (`store/tallies.rs`); `consumer/applying.rs` acknowledges it
//! after the commit.

pub mod api;
pub mod app;
pub mod apply;
pub mod backoff;
pub mod broker;
pub mod cli;
pub mod collector;
pub mod config;
pub mod consumer;
pub mod envelope;
pub mod framework;
pub mod health;
pub mod import;
pub mod indicators;
pub mod ledger;
pub mod metrics;
pub mod producers;
pub mod records;
pub mod report;
pub mod store;
pub mod telemetry;
