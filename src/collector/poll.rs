//! The [`Collector`]: each poll brings the tracked posts up to date with the records, asks
//! every platform at once about its due posts, publishes their snapshots with publisher
//! confirms, and only then records the outcome. A platform that fails, is rate limited or
//! refuses the token is paused on its own; the others go on.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::join_all;
use reqwest::Url;
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::http::{Call, Gate, Http, HttpError};
use super::schedule::Schedule;
use super::snapshot::snapshot;
use super::{Fetched, Observation, Platform, Tokens};
use crate::broker::{BrokerError, LazyPublisher};
use crate::config::{self, Settings};
use crate::store::tracking::{self, Polled, TrackedPost};

/// Why the collector cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("collector.{platform}_url is not an http(s) URL: {url:?}")]
    BaseUrl { platform: &'static str, url: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// What stopped one platform's poll before its outcome was recorded (its posts stay due).
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// What one poll did on one platform.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlatformReport {
    /// Active posts due at this poll.
    pub due: usize,
    /// Snapshots published and confirmed by the broker.
    pub published: usize,
    /// Posts found gone (no longer polled).
    pub gone: usize,
    /// Posts the platform gave no values for this time (still active, due next slot).
    pub failed: usize,
    /// Posts not asked about, the platform being paused or unavailable (still due).
    pub deferred: usize,
    /// When the platform may be asked again, if it is paused.
    pub paused_until: Option<DateTime<Utc>>,
    /// What went wrong on this platform, if anything (never holds a token).
    pub error: Option<String>,
}

/// What one poll did, per enabled platform.
#[derive(Clone, Debug, Default)]
pub struct PollReport {
    pub platforms: BTreeMap<Platform, PlatformReport>,
}

impl PollReport {
    /// The report of `platform` (empty if it was not polled).
    pub fn platform(&self, platform: Platform) -> PlatformReport {
        self.platforms.get(&platform).cloned().unwrap_or_default()
    }

    /// Snapshots published in all.
    pub fn published(&self) -> usize {
        self.platforms.values().map(|r| r.published).sum()
    }
}

/// Polls the platforms and publishes snapshots.
pub struct Collector {
    settings: config::Collector,
    schedule: Schedule,
    pool: PgPool,
    http: Http,
    tokens: Tokens,
    /// Each platform's API base URL, checked at start.
    bases: BTreeMap<Platform, Url>,
    /// Each platform's gate: a rate limit or an outage pauses that platform alone.
    gates: BTreeMap<Platform, Gate>,
    outbox: LazyPublisher,
}

impl Collector {
    /// A collector with these settings, database and tokens (read by the caller, from the
    /// environment in production).
    pub fn new(settings: &Settings, pool: PgPool, tokens: Tokens) -> Result<Collector, SetupError> {
        let c = &settings.collector;
        let mut bases = BTreeMap::new();
        for (platform, url) in [
            (Platform::Mastodon, &c.mastodon_url),
            (Platform::Youtube, &c.youtube_url),
            (Platform::X, &c.x_url),
            (Platform::Facebook, &c.facebook_url),
        ] {
            let parsed = Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
            let parsed = parsed.ok_or_else(|| SetupError::BaseUrl { platform: platform.name(), url: url.clone() })?;
            bases.insert(platform, parsed);
        }
        Ok(Collector {
            settings: c.clone(),
            schedule: Schedule::new(c),
            pool,
            http: Http::new(c)?,
            tokens,
            bases,
            gates: Platform::ALL.into_iter().map(|p| (p, Gate::default())).collect(),
            outbox: LazyPublisher::patient(settings, "ecpat-indicators collect"),
        })
    }

    /// Whether `platform` is polled: it needs no token, or its token is set.
    pub fn enabled(&self, platform: Platform) -> bool {
        !platform.needs_token() || self.tokens.get(platform).is_some()
    }

    /// Polls until `shutdown` turns true. A poll in progress is dropped at shutdown: what it
    /// published is published again under the same ids at the next start.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let tick = Duration::from_secs(self.settings.tick_secs.max(1));
        let names: Vec<&str> = Platform::ALL.into_iter().filter(|p| self.enabled(*p)).map(Platform::name).collect();
        info!(platforms = ?names, tick_secs = tick.as_secs(), "Collecting social metrics.");
        loop {
            tokio::select! {
                report = self.poll_once(Utc::now()) => debug!(published = report.published(), "Poll done."),
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
        self.outbox.close().await;
        info!("Stopped collecting.");
    }

    /// One poll at `now` (the clock is a parameter so that tests need not wait for it).
    pub async fn poll_once(&self, now: DateTime<Utc>) -> PollReport {
        let platforms: Vec<Platform> = Platform::ALL.into_iter().filter(|p| self.enabled(*p)).collect();
        if let Err(e) = self.refresh(&platforms, now).await {
            warn!(error = %e, "Cannot update the tracked posts from the records; polling those already known.");
        }
        let reports = join_all(platforms.into_iter().map(|p| async move { (p, self.poll_platform(p, now).await) }));
        PollReport { platforms: reports.await.into_iter().collect() }
    }

    /// Tracks the posts seen in snapshots, and stops those withdrawn since.
    async fn refresh(&self, platforms: &[Platform], now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        let names: Vec<String> = platforms.iter().map(|p| p.name().to_owned()).collect();
        let found = tracking::discover(&self.pool, &names, self.schedule.oldest(now), now).await?;
        let withdrawn = tracking::mark_withdrawn(&self.pool).await?;
        if found > 0 || withdrawn > 0 {
            info!(found, withdrawn, "Updated the tracked posts from the records.");
        }
        Ok(())
    }

    async fn poll_platform(&self, platform: Platform, now: DateTime<Utc>) -> PlatformReport {
        let mut report = PlatformReport::default();
        if let Err(e) = self.try_poll_platform(platform, now, &mut report).await {
            warn!(platform = platform.name(), error = %e, "Poll not recorded; its posts stay due.");
            report.error = Some(self.tokens.redact(&e.to_string()));
        }
        report.paused_until = self.gates[&platform].closed_until(now);
        if report.published + report.gone + report.failed > 0 {
            info!(
                platform = platform.name(),
                due = report.due,
                published = report.published,
                gone = report.gone,
                failed = report.failed,
                deferred = report.deferred,
                "Polled."
            );
        }
        report
    }

    async fn try_poll_platform(
        &self,
        platform: Platform,
        now: DateTime<Utc>,
        report: &mut PlatformReport,
    ) -> Result<(), PollError> {
        let gate = &self.gates[&platform];
        let due = tracking::due(&self.pool, platform.name(), self.schedule.oldest(now), now).await?;
        report.due = due.len();
        if due.is_empty() {
            return Ok(());
        }
        let call = Call { http: &self.http, gate, base: &self.bases[&platform], token: self.tokens.get(platform), now };
        let call = &call;
        let answers: Vec<_> = futures::stream::iter(due.chunks(platform.per_request()))
            .map(|chunk| async move {
                let ids: Vec<String> = chunk.iter().map(|p| p.post_id.clone()).collect();
                (chunk, platform.fetch(call, &ids).await)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let harvest = self.harvest(platform, &due, answers, now);
        report.deferred = harvest.deferred;
        report.failed = harvest.polled.iter().filter(|p| p.error.is_some()).count();
        match &harvest.stopped {
            Some(e) => {
                self.stopped(platform, e, now);
                report.error = Some(self.tokens.redact(&e.to_string()));
            }
            None => gate.recovered(),
        }

        for window in harvest.messages.chunks(PUBLISH_WINDOW) {
            self.outbox.publish(window).await?;
            report.published += window.len();
        }
        if !harvest.polled.is_empty() || !harvest.gone.is_empty() {
            let mut tx = self.pool.begin().await?;
            tracking::record_polls(&mut *tx, platform.name(), &harvest.polled, now).await?;
            tracking::mark_gone(&mut *tx, platform.name(), &harvest.gone, now).await?;
            tx.commit().await?;
        }
        report.gone = harvest.gone.len();
        for id in &harvest.gone {
            info!(platform = platform.name(), post_id = %id, "The post is gone; no longer polled, its last values stay.");
        }
        Ok(())
    }

    /// Sorts a platform's answers into snapshots to publish, polls and gone posts to record,
    /// and posts left for later.
    fn harvest(
        &self,
        platform: Platform,
        due: &[TrackedPost],
        answers: Vec<(&[TrackedPost], Fetched)>,
        now: DateTime<Utc>,
    ) -> Harvest {
        let by_id: HashMap<&str, &TrackedPost> = due.iter().map(|p| (p.post_id.as_str(), p)).collect();
        let next = |post: &TrackedPost| self.schedule.next_poll(post.published_at, now);
        let mut harvest = Harvest::default();
        for (chunk, answer) in answers {
            match answer {
                Ok(observations) => {
                    for (id, observation) in observations {
                        let Some(post) = by_id.get(id.as_str()).copied() else { continue };
                        let error = match observation {
                            Observation::Metrics(metrics) if !metrics.is_empty() => {
                                let slot = self.schedule.slot(post.published_at, now);
                                harvest.messages.push(snapshot(platform, post, &metrics, slot, now));
                                None
                            }
                            Observation::Metrics(_) => Some("the answer gave no metrics".to_owned()),
                            Observation::Gone => {
                                harvest.gone.push(id);
                                continue;
                            }
                            Observation::Failed(why) => Some(self.tokens.redact(&why)),
                        };
                        harvest.polled.push(Polled { post_id: id, next_poll_at: next(post), error });
                    }
                }
                Err(e) if !e.stops_platform() => {
                    let error = self.tokens.redact(&e.to_string());
                    harvest.polled.extend(chunk.iter().map(|post| Polled {
                        post_id: post.post_id.clone(),
                        next_poll_at: next(post),
                        error: Some(error.clone()),
                    }));
                }
                Err(e) => {
                    harvest.deferred += chunk.len();
                    // The first stopping error says why; later ones only met the closed gate.
                    if harvest.stopped.as_ref().is_none_or(|s| matches!(s, HttpError::Paused { .. })) {
                        harvest.stopped = Some(e);
                    }
                }
            }
        }
        harvest
    }

    /// Logs why a platform stopped, at the level an operator needs, and pauses it after a
    /// refusal (an outage and a rate limit have paused it already).
    fn stopped(&self, platform: Platform, e: &HttpError, now: DateTime<Utc>) {
        let error = self.tokens.redact(&e.to_string());
        let name = platform.name();
        match e {
            HttpError::Paused { .. } => debug!(platform = name, error, "Still paused."),
            HttpError::RateLimited { .. } => {
                info!(platform = name, error, "Rate limited; this platform waits, the others go on.");
            }
            HttpError::Refused { .. } | HttpError::Request => {
                let until = self.http.outage(&self.gates[&platform], now);
                error!(platform = name, variable = platform.token_var(), %until, error, "The platform refuses the token.");
            }
            _ => warn!(platform = name, error, "The platform is unavailable; it waits, the others go on."),
        }
    }
}

/// Snapshots published per confirm window.
const PUBLISH_WINDOW: usize = 1000;

/// What the answers of one platform's poll come to.
#[derive(Default)]
struct Harvest {
    /// Snapshots to publish.
    messages: Vec<(String, Vec<u8>)>,
    /// Posts the platform answered about that stay active: when next, and any error.
    polled: Vec<Polled>,
    /// Posts the platform says no longer exist.
    gone: Vec<String>,
    /// Posts not asked about, the platform having stopped (they stay due).
    deferred: usize,
    /// Why the platform stopped, if it did.
    stopped: Option<HttpError>,
}
