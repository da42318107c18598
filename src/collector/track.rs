//! `ecpat-indicators track add|list|remove`: the posts registered for the collector, beside
//! those it finds among the records. Fields are checked by the rules of docs/events.md here, so
//! the collector never publishes a snapshot the worker would reject.

use anyhow::Context;
use chrono::Utc;
use serde_json::Value;

use super::Platform;
use crate::app::migrate;
use crate::config::Settings;
use crate::records::fields;
use crate::store::tracking::{self, NewPost};

/// The post to track, as given on the command line.
#[derive(Clone, Debug, clap::Args)]
pub struct AddArgs {
    /// mastodon, youtube, x or facebook.
    pub platform: String,
    /// The platform's id of the post (Mastodon status id, YouTube video id, X post id,
    /// Facebook `{page-id}_{post-id}`).
    pub post_id: String,
    /// The ECPAT member who published it, e.g. ecpat-france.
    #[arg(long)]
    pub member: String,
    /// When it was published, RFC 3339 with offset, e.g. 2026-11-02T09:30:00+01:00.
    #[arg(long)]
    pub published_at: String,
    /// The research or review the post disseminates (counts it in KE3).
    #[arg(long)]
    pub publication_id: Option<String>,
    /// A link to the post.
    #[arg(long)]
    pub url: Option<String>,
}

impl AddArgs {
    /// The post, checked by the rules of docs/events.md.
    pub fn parse(&self) -> anyhow::Result<NewPost> {
        let platform = Platform::parse(&self.platform).with_context(|| {
            let known: Vec<&str> = Platform::ALL.iter().map(|p| p.name()).collect();
            format!("platform {:?} is not one of {}", self.platform, known.join(", "))
        })?;
        let text = |value: &str| Value::from(value);
        Ok(NewPost {
            platform: platform.name().to_owned(),
            post_id: fields::identifier(&text(&self.post_id), "post_id")?,
            member: fields::member(&text(&self.member), "member")?,
            published_at: fields::timestamp(&text(&self.published_at), "published_at")?,
            publication_id: self
                .publication_id
                .as_deref()
                .map(|p| fields::identifier(&text(p), "publication_id"))
                .transpose()?,
            url: self.url.as_deref().map(|u| fields::free_text(&text(u), "url")).transpose()?,
        })
    }
}

/// Tracks a post (again, if it was removed or gone), due at once.
pub async fn add(settings: &Settings, args: &AddArgs) -> anyhow::Result<()> {
    let post = args.parse()?;
    let pool = migrate(settings).await?;
    tracking::add(&pool, &post, Utc::now()).await?;
    eprintln!("Tracking {} post {}.", post.platform, post.post_id);
    Ok(())
}

/// The statuses a tracked post can have (docs/collector.md).
pub const STATUSES: [&str; 4] = ["active", "gone", "withdrawn", "removed"];

/// Checks a `--status` as the command line reads it: one of [`STATUSES`].
pub fn known_status(text: &str) -> Result<String, String> {
    if STATUSES.contains(&text) {
        Ok(text.to_owned())
    } else {
        Err(format!("not a status; one of {}", STATUSES.join(", ")))
    }
}

/// Prints the tracked posts (optionally of one status) as JSON Lines. An unknown status is
/// an error, not an empty list.
pub async fn list(settings: &Settings, status: Option<&str>) -> anyhow::Result<()> {
    if let Some(status) = status {
        known_status(status).map_err(|e| anyhow::anyhow!("--status {status:?} is {e}"))?;
    }
    let pool = migrate(settings).await?;
    let posts = tracking::list(&pool, status).await?;
    for post in &posts {
        println!("{}", serde_json::to_string(post)?);
    }
    eprintln!("{} tracked post(s).", posts.len());
    Ok(())
}

/// Stops polling a post; the values already counted stay.
pub async fn remove(settings: &Settings, platform: &str, post_id: &str) -> anyhow::Result<()> {
    let pool = migrate(settings).await?;
    if tracking::remove(&pool, platform, post_id).await? {
        eprintln!("No longer tracking {platform} post {post_id}.");
        Ok(())
    } else {
        anyhow::bail!("{platform} post {post_id} is not tracked")
    }
}
