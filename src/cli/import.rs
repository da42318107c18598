//! `import`: a register (CSV or `.xlsx`) to events of one record type, one per row,
//! published like `publish` does (persistent, with publisher confirms). Every row is
//! checked first; a file with an invalid row publishes nothing unless told to skip them.

use std::collections::HashMap;
use std::path::Path;

use chrono::{SecondsFormat, Utc};

use crate::broker::LazyPublisher;
use crate::config::Settings;
use crate::import::read;
use crate::import::rows::{Importer, Prepared, RowError, importable};
use crate::records::RecordType;

/// Messages published per confirm window.
const WINDOW: usize = 1000;

/// What to do with a register.
pub struct ImportOptions {
    /// Check and list what would be published; publish nothing.
    pub dry_run: bool,
    /// Publish the valid rows even when others are invalid.
    pub skip_invalid: bool,
}

/// The record type of `--type`: one a register can hold.
pub fn importable_type(text: &str) -> Result<RecordType, String> {
    RecordType::parse(text).filter(|t| importable(*t).is_some()).ok_or_else(|| {
        let known: Vec<&str> =
            RecordType::ALL.iter().filter(|t| importable(**t).is_some()).map(|t| t.as_str()).collect();
        format!("not a record type that can be imported (one of {})", known.join(", "))
    })
}

/// Imports `file` as records of `record_type`: reports each invalid row (`row N: field F:
/// reason`) on standard error, then publishes one event per valid row (none if any row is
/// invalid, unless `skip_invalid`), and ends with `imported N rows as events; M invalid`.
/// A dry run prints each row's event id on standard output instead of publishing. Returns
/// the number of events published; an error when a row was invalid.
pub async fn import(
    settings: &Settings,
    file: &Path,
    record_type: RecordType,
    options: ImportOptions,
) -> anyhow::Result<usize> {
    let sheet = read::read(file)?;
    // One time for the whole file: a corrected row is newer than what it corrects.
    let time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let importer = Importer::new(record_type, &sheet.header, time)?;
    let (events, invalid) = prepare(&importer, &sheet.rows);
    for error in &invalid {
        eprintln!("{error}");
    }
    let bad = invalid.len();
    if options.dry_run {
        for event in &events {
            println!("row {}: {} {}", event.row, event.id, event.key);
        }
        eprintln!("would import {} rows as events; {bad} invalid (dry run: nothing published)", events.len());
        anyhow::ensure!(bad == 0, "{bad} invalid row(s) (reported above)");
        return Ok(0);
    }
    if bad > 0 && !options.skip_invalid {
        eprintln!("imported 0 rows as events; {bad} invalid");
        anyhow::bail!(
            "nothing was published: {bad} invalid row(s) (reported above); correct them, or pass --skip-invalid to \
             publish the other rows"
        );
    }
    let published = publish(settings, &importer, &events).await?;
    eprintln!("imported {published} rows as events; {bad} invalid");
    anyhow::ensure!(bad == 0, "{bad} invalid row(s) were not published (reported above)");
    Ok(published)
}

/// Every row's event, or why it is invalid; a second row for the same record is invalid
/// (its events would have the same time, and which one won would be a matter of chance).
fn prepare(importer: &Importer, rows: &[read::Row]) -> (Vec<Prepared>, Vec<RowError>) {
    let mut events = Vec::with_capacity(rows.len());
    let mut invalid = vec![];
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in rows {
        match importer.event(row) {
            Ok(event) => match seen.get(&event.key) {
                Some(first) => invalid.push(RowError {
                    row: row.number,
                    field: importer.key_fields(),
                    problem: format!("the same record as row {first} (one row per record)"),
                }),
                None => {
                    seen.insert(event.key.clone(), row.number);
                    events.push(event);
                }
            },
            Err(error) => invalid.push(error),
        }
    }
    (events, invalid)
}

/// Publishes the events, one message each with the event type as routing key; returns how
/// many the broker confirmed.
async fn publish(settings: &Settings, importer: &Importer, events: &[Prepared]) -> anyhow::Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let publisher = LazyPublisher::patient(settings, "ecpat-indicators import");
    publisher.connect().await?;
    let routing_key = importer.event_type().as_str();
    let mut published = 0;
    for window in events.chunks(WINDOW) {
        let messages: Vec<(String, Vec<u8>)> =
            window.iter().map(|e| (routing_key.to_owned(), e.body.clone().into_bytes())).collect();
        publisher.publish(&messages).await.map_err(|e| {
            anyhow::Error::new(e).context(format!("publishing stopped after {published} confirmed row(s)"))
        })?;
        published += window.len();
    }
    publisher.close().await;
    Ok(published)
}
