//! The social-metrics collector (`ecpat-indicators collect`): polls the platforms' public
//! APIs for the tracked posts and publishes `org.ecpat.social.metrics.snapshot` events.
//!
//! - [`poll`]: the [`Collector`]: which posts are due, one poll of every platform, publishing;
//! - [`schedule`]: when a post is polled, and the deterministic event ids (pure);
//! - [`snapshot`]: the event an observation becomes (pure);
//! - [`http`]: timeouts, retries with backoff, rate limits ([`http::Gate`]);
//! - [`mastodon`], [`youtube`], [`x`], [`facebook`]: one adapter per platform, mapping its
//!   documented answer onto the metric names of docs/events.md;
//! - [`secret`]: the tokens, from the environment only and never shown;
//! - [`track`]: `track add|list|remove`.

pub mod facebook;
pub mod http;
pub mod mastodon;
pub mod poll;
pub mod schedule;
pub mod secret;
pub mod snapshot;
pub mod track;
pub mod x;
pub mod youtube;

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::Value;
use tokio::sync::watch;
use tracing::info;

pub use poll::{Collector, PlatformReport, PollReport};
pub use secret::Tokens;

use crate::config::Settings;
use crate::records::Metric;
use http::{Call, HttpError};

/// The platforms the collector knows, by their `platform` name in snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    Mastodon,
    Youtube,
    X,
    Facebook,
}

impl Platform {
    pub const ALL: [Platform; 4] = [Platform::Mastodon, Platform::Youtube, Platform::X, Platform::Facebook];

    /// The `platform` of its snapshots.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Mastodon => "mastodon",
            Platform::Youtube => "youtube",
            Platform::X => "x",
            Platform::Facebook => "facebook",
        }
    }

    /// The platform with this snapshot name.
    pub fn parse(name: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The `source` of its snapshots.
    pub fn source(self) -> String {
        format!("urn:ecpat:collector:{}", self.name())
    }

    /// The environment variable holding its token.
    pub fn token_var(self) -> &'static str {
        match self {
            Platform::Mastodon => "ECPAT_MASTODON_ACCESS_TOKEN",
            Platform::Youtube => "ECPAT_YOUTUBE_API_KEY",
            Platform::X => "ECPAT_X_BEARER_TOKEN",
            Platform::Facebook => "ECPAT_FACEBOOK_ACCESS_TOKEN",
        }
    }

    /// Whether it can be polled without a token (public Mastodon statuses can).
    pub fn needs_token(self) -> bool {
        self != Platform::Mastodon
    }

    /// Posts asked for in one request.
    pub fn per_request(self) -> usize {
        match self {
            Platform::Mastodon => mastodon::PER_REQUEST,
            Platform::Youtube => youtube::PER_REQUEST,
            Platform::X => x::PER_REQUEST,
            Platform::Facebook => facebook::PER_REQUEST,
        }
    }

    /// Asks the platform about `ids` (at most [`Platform::per_request`]).
    pub async fn fetch(self, call: &Call<'_>, ids: &[String]) -> Fetched {
        match self {
            Platform::Mastodon => mastodon::fetch(call, ids).await,
            Platform::Youtube => youtube::fetch(call, ids).await,
            Platform::X => x::fetch(call, ids).await,
            Platform::Facebook => facebook::fetch(call, ids).await,
        }
    }
}

/// What one request to a platform gave: an observation per post asked about, or why none.
pub type Fetched = Result<Vec<(String, Observation)>, HttpError>;

/// Cumulative totals observed for one post, by metric name (docs/events.md).
pub type Metrics = BTreeMap<Metric, i64>;

/// What a platform said about one post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Its current totals (possibly none, when the platform hides them all).
    Metrics(Metrics),
    /// It no longer exists: no zeros are published, its last values stay counted.
    Gone,
    /// The platform answered, but not about this post (e.g. a protected account).
    Failed(String),
}

/// The largest total a snapshot may carry.
pub const MAX_METRIC: i64 = 1_000_000_000_000;

/// A count in a platform's answer: a JSON integer, or a string of digits (YouTube), within
/// the 0..=1e12 a snapshot allows. Anything else is treated as not given.
pub fn count(value: Option<&Value>) -> Option<i64> {
    let n = match value? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.parse::<i64>().ok()?,
        _ => return None,
    };
    (0..=MAX_METRIC).contains(&n).then_some(n)
}

/// The metrics of `pairs` that the answer gave.
pub fn metrics(pairs: &[(Metric, Option<i64>)]) -> Metrics {
    pairs.iter().filter_map(|&(metric, value)| value.map(|v| (metric, v))).collect()
}

/// `ecpat-indicators collect`: polls and publishes until `shutdown` turns true.
pub async fn run(settings: Settings, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let Some(pool) = crate::app::migrate_until_done(&settings, shutdown.clone()).await else { return Ok(()) };
    let collector = Collector::new(&settings, pool, Tokens::from_env()).context("cannot start the collector")?;
    for platform in Platform::ALL {
        if !collector.enabled(platform) {
            info!(platform = platform.name(), variable = platform.token_var(), "No token; its posts are not polled.");
        }
    }
    collector.run(shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn counts_are_integers_or_digit_strings_within_the_allowed_range() {
        assert_eq!(count(Some(&json!(12))), Some(12));
        assert_eq!(count(Some(&json!("12345"))), Some(12345));
        assert_eq!(count(Some(&json!(-1))), None);
        assert_eq!(count(Some(&json!(1_000_000_000_001_i64))), None);
        assert_eq!(count(Some(&json!("12a"))), None);
        assert_eq!(count(Some(&json!(1.5))), None);
        assert_eq!(count(None), None);
    }

    #[test]
    fn platforms_are_named_as_in_snapshots() {
        for platform in Platform::ALL {
            assert_eq!(Platform::parse(platform.name()), Some(platform));
        }
        assert_eq!(Platform::parse("linkedin"), None);
        assert_eq!(Platform::X.source(), "urn:ecpat:collector:x");
    }
}
