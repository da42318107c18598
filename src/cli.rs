//! The one-shot subcommands: `publish`, `recompute`, `rejections list|replay`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
use tracing::{info, warn};

use crate::app::migrate;
use crate::broker::{self, Publisher, routing_key_for};
use crate::config::Settings;
use crate::store::{read, recompute};

/// Messages published per confirm window.
const WINDOW: usize = 1000;

/// Publishes a JSON Lines file (or standard input, `-`): one message per non-empty line,
/// or with `batch` > 1, lines that are JSON objects grouped into CloudEvents batches of up
/// to `batch` events (a JSON array per message; much faster to drain for a large backlog).
/// Persistent, with publisher confirms. Lines are not judged here: the worker rejects and
/// keeps what is invalid; a line that is not a JSON object is published alone, as it is,
/// and one that is not JSON is reported as a warning. Returns the number of lines published.
pub async fn publish(settings: &Settings, file: &Path, batch: usize) -> anyhow::Result<usize> {
    anyhow::ensure!((1..=MAX_BATCH).contains(&batch), "--batch must be between 1 and {MAX_BATCH}");
    let input: Box<dyn Read> = if file == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?)
    };
    let connection = broker::connect(&settings.amqp, "ecpat-indicators publish").await?;
    let channel = connection.create_channel().await?;
    broker::declare_topology(&channel, &settings.amqp).await?;
    let publisher = Publisher::new(&connection, &settings.amqp.exchange).await?;
    let mut window = Vec::with_capacity(WINDOW);
    let mut grouped: Vec<String> = Vec::with_capacity(batch);
    let mut published = 0;
    for (number, line) in BufReader::new(input).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read line {}", number + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        published += 1;
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(_)) if batch > 1 => {
                grouped.push(line);
                if grouped.len() == batch {
                    window.push(group(&mut grouped));
                }
            }
            parsed => {
                if parsed.is_err() {
                    warn!(
                        line = number + 1,
                        "Line is not JSON; publishing it anyway (the worker will reject and keep it)."
                    );
                }
                window.push((routing_key_for(&line), line.into_bytes()));
            }
        }
        if window.len() == WINDOW {
            publisher.publish_all(&window).await?;
            window.clear();
        }
    }
    if !grouped.is_empty() {
        window.push(group(&mut grouped));
    }
    publisher.publish_all(&window).await?;
    connection.close(200, "done".into()).await?;
    info!(published, "Published and confirmed.");
    Ok(published)
}

/// The most events in one CloudEvents batch (docs/events.md).
const MAX_BATCH: usize = 1000;

/// One message of the grouped lines: a JSON array of them (a lone line stays as it is).
fn group(lines: &mut Vec<String>) -> (String, Vec<u8>) {
    let body = if lines.len() == 1 { lines.remove(0) } else { format!("[{}]", lines.join(",")) };
    lines.clear();
    (routing_key_for(&body), body.into_bytes())
}

/// Rebuilds every tally from the stored records.
pub async fn recompute(settings: &Settings) -> anyhow::Result<usize> {
    let pool = migrate(settings).await?;
    let records = recompute::recompute(&pool).await?;
    info!(records, "Recomputed every tally.");
    Ok(records)
}

/// Prints the newest rejections, one JSON object per line.
pub async fn list_rejections(settings: &Settings, limit: i64) -> anyhow::Result<()> {
    let pool = migrate(settings).await?;
    let (total, items) = read::rejections(&pool, limit).await?;
    for item in items {
        println!("{}", serde_json::to_string(&item)?);
    }
    eprintln!("{total} rejection(s) in all.");
    Ok(())
}

/// Publishes stored rejections again (after a fix), and marks them replayed. Bodies that
/// were too large were not kept whole and cannot be replayed.
pub async fn replay_rejections(settings: &Settings, reason: Option<&str>, id: Option<i64>) -> anyhow::Result<usize> {
    let pool = migrate(settings).await?;
    let rows = read::replayable(&pool, reason, id).await?;
    if rows.is_empty() {
        eprintln!("Nothing to replay.");
        return Ok(0);
    }
    let connection = broker::connect(&settings.amqp, "ecpat-indicators replay").await?;
    let publisher = Publisher::new(&connection, &settings.amqp.exchange).await?;
    for row in &rows {
        publisher.publish_all(&[(row.routing_key.clone(), row.body.clone())]).await?;
        read::mark_replayed(&pool, row.id).await?;
    }
    connection.close(200, "done".into()).await?;
    eprintln!("Replayed {} rejection(s).", rows.len());
    Ok(rows.len())
}
