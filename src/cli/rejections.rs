//! `rejections list|replay`: what the worker could not apply, listed or published again.

use anyhow::Context;
use sqlx::PgPool;

use crate::app::migrate;
use crate::broker::LazyPublisher;
use crate::config::Settings;
use crate::envelope::Reason;
use crate::store::read::{self, REJECTIONS_LIMIT, RejectionRow};

/// Rejections published per confirm window (and marked replayed per transaction).
const WINDOW: usize = 500;

/// Prints the newest `limit` rejections (1 to 1000, as the API), one JSON object per line:
/// what is known of each, not its bytes.
pub async fn list_rejections(settings: &Settings, limit: i64) -> anyhow::Result<()> {
    anyhow::ensure!(
        REJECTIONS_LIMIT.contains(&limit),
        "--limit must be from {} to {}, not {limit}",
        REJECTIONS_LIMIT.start(),
        REJECTIONS_LIMIT.end()
    );
    let pool = migrate(settings).await?;
    let (total, items) = read::rejections(&pool, limit).await?;
    for item in items {
        println!("{}", serde_json::to_string(&item)?);
    }
    eprintln!("{total} rejection(s) in all.");
    Ok(())
}

/// Checks a `--reason` as the command line reads it: one of the rejection reasons.
pub fn known_reason(text: &str) -> Result<String, String> {
    match Reason::parse(text) {
        Some(reason) => Ok(reason.as_str().to_owned()),
        None => {
            let known: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
            Err(format!("not a rejection reason; one of {}", known.join(", ")))
        }
    }
}

/// Publishes the stored rejections not replayed yet (optionally of one reason, or one id)
/// again, oldest first, each with the header that names it, and marks each replayed as
/// soon as the broker has confirmed it: each is replayed once. Bodies that were too large
/// were not kept whole and cannot be replayed. Returns how many were replayed.
pub async fn replay_rejections(settings: &Settings, reason: Option<&str>, id: Option<i64>) -> anyhow::Result<usize> {
    let pool = migrate(settings).await?;
    let rows = selected(&pool, reason, id).await?;
    if rows.is_empty() {
        eprintln!("Nothing to replay.");
        return Ok(0);
    }
    let publisher = LazyPublisher::patient(settings, "ecpat-indicators replay");
    publisher.connect().await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut replayed = 0;
    for chunk in ids.chunks(WINDOW) {
        let mut tx = pool.begin().await?;
        let mut claimed = read::claim_for_replay(&mut tx, chunk).await?;
        claimed.sort_by_key(|r| r.id);
        let messages: Vec<(i64, String, Vec<u8>)> =
            claimed.into_iter().map(|r| (r.id, r.routing_key, r.body)).collect();
        publisher
            .publish_replays(&messages)
            .await
            .with_context(|| format!("replay stopped after {replayed} rejection(s)"))?;
        tx.commit().await.with_context(|| {
            format!("the last {} replayed rejection(s) could not be marked replayed", messages.len())
        })?;
        replayed += messages.len();
    }
    publisher.close().await;
    eprintln!("Replayed {replayed} rejection(s).");
    Ok(replayed)
}

/// `replay --dry-run`: prints the rejections a replay would publish, one JSON object per
/// line, and publishes nothing. Returns how many there are.
pub async fn preview_replay(settings: &Settings, reason: Option<&str>, id: Option<i64>) -> anyhow::Result<usize> {
    let pool = migrate(settings).await?;
    let rows = selected(&pool, reason, id).await?;
    for row in &rows {
        println!("{}", serde_json::to_string(row)?);
    }
    eprintln!("{} rejection(s) would be replayed.", rows.len());
    Ok(rows.len())
}

/// The rejections a replay takes. An unknown reason, or an id that names no rejection or
/// one that cannot be replayed, is an error rather than nothing to do.
async fn selected(pool: &PgPool, reason: Option<&str>, id: Option<i64>) -> anyhow::Result<Vec<RejectionRow>> {
    if let Some(reason) = reason {
        known_reason(reason).map_err(|e| anyhow::anyhow!("--reason {reason:?} is {e}"))?;
    }
    if let Some(id) = id {
        let (row, truncated) =
            read::rejection(pool, id).await?.with_context(|| format!("there is no rejection {id}"))?;
        if let Some(reason) = reason.filter(|r| *r != row.reason) {
            anyhow::bail!("rejection {id} has the reason {}, not {reason}", row.reason);
        }
        anyhow::ensure!(
            !truncated,
            "rejection {id} cannot be replayed: its body of {} bytes was too large to be kept whole",
            row.size
        );
        if let Some(at) = row.replayed_at {
            anyhow::bail!("rejection {id} was replayed already, at {}", at.to_rfc3339());
        }
    }
    Ok(read::replayable(pool, reason, id).await?)
}
