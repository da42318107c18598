//! HTTP for the adapters: one client with timeouts and no redirects; retries of `5xx`
//! answers and network errors with jittered exponential backoff; and rate limits (`429`
//! with `Retry-After`, or the platforms' reset headers) that close one platform's [`Gate`]
//! and no other.

use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::debug;

use crate::config;

/// The longest pause a header can impose: a wrong header must not stop a platform for good.
pub const MAX_PAUSE: TimeDelta = TimeDelta::days(1);
/// How much of an error answer is kept in details.
const DETAIL_CHARS: usize = 300;

/// Why a request gave no usable answer. None of these ever quotes a token: credentials
/// travel in headers, never in URLs, and details quote answers, not requests.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("paused by a rate limit or an outage until {until}")]
    Paused { until: DateTime<Utc> },
    #[error("rate limited until {until}")]
    RateLimited { until: DateTime<Utc> },
    #[error("unavailable after {attempts} attempt(s): {detail}")]
    Unavailable { attempts: u32, detail: String },
    #[error("refused (HTTP {status}); check the token and its permissions: {detail}")]
    Refused { status: u16, detail: String, body: Value },
    #[error("rejected the request (HTTP {status}): {detail}")]
    Rejected { status: u16, detail: String, body: Value },
    #[error("cannot build the request (is the token well-formed?)")]
    Request,
    #[error("unexpected answer: {0}")]
    Body(String),
}

impl HttpError {
    /// Whether the error concerns the whole platform (stop asking it for now), rather than
    /// the posts of one request.
    pub fn stops_platform(&self) -> bool {
        !matches!(self, HttpError::Rejected { .. } | HttpError::Body(_))
    }
}

/// A usable answer.
#[derive(Debug)]
pub enum Answer {
    /// `2xx` with a JSON body.
    Json(Value),
    /// `404` or `410` with a JSON body: the API itself says the resource is not there (an
    /// HTML 404 from a wrong base URL is [`HttpError::Rejected`], never a gone post).
    NotFound,
}

/// One platform's permission to be called: closed after a `429`, a spent rate-limit
/// window or an outage, until a time; other platforms have their own.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    until: Option<DateTime<Utc>>,
    /// Outages in a row, for the doubling pause.
    outages: u32,
}

impl Gate {
    /// When the gate opens again, if it is closed at `now`.
    pub fn closed_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.state.lock().expect("gate lock").until.filter(|until| *until > now)
    }

    /// Closes the gate until `until` (or later, if it already is).
    pub fn pause_until(&self, until: DateTime<Utc>) {
        let mut state = self.state.lock().expect("gate lock");
        state.until = state.until.max(Some(until));
    }

    /// Closes the gate after an outage, for `initial` doubling with each outage in a row up
    /// to `max`, jittered; returns until when.
    pub fn outage(&self, now: DateTime<Utc>, initial: TimeDelta, max: TimeDelta) -> DateTime<Utc> {
        let outages = {
            let mut state = self.state.lock().expect("gate lock");
            state.outages = state.outages.saturating_add(1);
            state.outages
        };
        let pause = backoff(initial.to_std().unwrap_or_default(), max.to_std().unwrap_or_default(), outages);
        let until = now + TimeDelta::from_std(pause).unwrap_or(MAX_PAUSE);
        self.pause_until(until);
        until
    }

    /// The platform answered: the next outage starts again from the initial pause.
    pub fn recovered(&self) {
        self.state.lock().expect("gate lock").outages = 0;
    }
}

/// The HTTP client and the retry and pause policy of `[collector]`.
#[derive(Debug)]
pub struct Http {
    client: reqwest::Client,
    retries: u32,
    retry_initial: Duration,
    retry_max: Duration,
    rate_limit_default: TimeDelta,
    outage_initial: TimeDelta,
    outage_max: TimeDelta,
}

impl Http {
    pub fn new(settings: &config::Collector) -> Result<Http, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(&settings.user_agent)
            .timeout(Duration::from_secs(settings.request_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
            // APIs answer in place; following a redirect could carry a key header elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let secs = |n: u64| TimeDelta::seconds(n.min(MAX_PAUSE.num_seconds() as u64) as i64);
        Ok(Http {
            client,
            retries: settings.retries,
            retry_initial: Duration::from_millis(settings.retry_initial_ms),
            retry_max: Duration::from_millis(settings.retry_max_ms),
            rate_limit_default: secs(settings.rate_limit_default_secs),
            outage_initial: secs(settings.outage_initial_secs),
            outage_max: secs(settings.outage_max_secs),
        })
    }

    /// How long a platform rests after a rate limit that names no reset time.
    pub fn rate_limit_default(&self) -> TimeDelta {
        self.rate_limit_default
    }

    /// Closes `gate` after an outage (or refused credentials), with the doubling pause.
    pub fn outage(&self, gate: &Gate, now: DateTime<Utc>) -> DateTime<Utc> {
        gate.outage(now, self.outage_initial, self.outage_max)
    }

    /// Sends a GET, retrying `5xx` answers and network errors; a `429` closes `gate`.
    pub async fn send(&self, gate: &Gate, request: RequestBuilder, now: DateTime<Utc>) -> Result<Answer, HttpError> {
        let mut attempts = 0;
        let mut waits = waits(self.retry_initial, self.retry_max);
        loop {
            if let Some(until) = gate.closed_until(now) {
                return Err(HttpError::Paused { until });
            }
            attempts += 1;
            let attempt = request.try_clone().expect("a GET has no streamed body");
            let failure = match attempt.send().await {
                Ok(response) if !response.status().is_server_error() => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(body) => return self.answer(gate, status, &headers, &body, now),
                        Err(e) => chain(&e.without_url()),
                    }
                }
                Ok(response) => format!("HTTP {}", response.status().as_u16()),
                Err(e) if e.is_builder() => return Err(HttpError::Request),
                Err(e) => chain(&e.without_url()),
            };
            if attempts > self.retries {
                self.outage(gate, now);
                return Err(HttpError::Unavailable { attempts, detail: failure });
            }
            let wait = waits.next().expect("the waits never run out");
            debug!(attempts, wait_ms = wait.as_millis() as u64, failure, "Retrying the request.");
            tokio::time::sleep(wait).await;
        }
    }

    /// Classifies a complete answer other than `5xx`.
    fn answer(
        &self,
        gate: &Gate,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Answer, HttpError> {
        if status == 429 {
            let until = reset_time(headers, now).unwrap_or(now + self.rate_limit_default);
            let until = until.clamp(now + TimeDelta::seconds(1), now + MAX_PAUSE);
            gate.pause_until(until);
            return Err(HttpError::RateLimited { until });
        }
        let json = serde_json::from_slice::<Value>(body);
        if (200..300).contains(&status) {
            if window_spent(headers)
                && let Some(until) = reset_time(headers, now)
            {
                gate.pause_until(until.min(now + MAX_PAUSE));
            }
            return json.map(Answer::Json).map_err(|e| HttpError::Body(format!("the body is not JSON: {e}")));
        }
        let detail = excerpt(body);
        match (status, json) {
            (404 | 410, Ok(_)) => Ok(Answer::NotFound),
            (401 | 403, json) => Err(HttpError::Refused { status, detail, body: json.unwrap_or_default() }),
            (_, json) => Err(HttpError::Rejected { status, detail, body: json.unwrap_or_default() }),
        }
    }
}

/// What one request of an adapter needs: the client, the platform's gate, its base URL,
/// its token and the poll's clock.
pub struct Call<'a> {
    pub http: &'a Http,
    pub gate: &'a Gate,
    pub base: &'a Url,
    pub token: Option<&'a SecretString>,
    pub now: DateTime<Utc>,
}

impl Call<'_> {
    /// The base URL with `segments` appended (each percent-encoded).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("base URLs are checked to be http(s)").pop_if_empty().extend(segments);
        url
    }

    /// A GET of `url`, with the token (if any) as a bearer token.
    pub fn get_with_bearer(&self, url: Url) -> RequestBuilder {
        let request = self.http.client.get(url);
        match self.token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        }
    }

    /// A GET of `url`, with the token (if any) in the header `name`, marked sensitive.
    pub fn get_with_key_header(&self, url: Url, name: &'static str) -> RequestBuilder {
        let request = self.http.client.get(url);
        match self.token.map(|token| HeaderValue::from_str(token.expose_secret())) {
            Some(Ok(mut value)) => {
                value.set_sensitive(true);
                request.header(name, value)
            }
            // Sent without the key: the platform refuses it, and the error names no token.
            Some(Err(_)) | None => request,
        }
    }

    pub async fn send(&self, request: RequestBuilder) -> Result<Answer, HttpError> {
        self.http.send(self.gate, request, self.now).await
    }
}

/// When a rate limit ends, from `Retry-After` (seconds or an HTTP date), X's
/// `x-rate-limit-reset` (Unix seconds) or Mastodon's `X-RateLimit-Reset` (RFC 3339).
pub fn reset_time(headers: &HeaderMap, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(value) = text("retry-after") {
        if let Ok(secs) = value.parse::<u32>() {
            return Some(now + TimeDelta::seconds(secs.into()));
        }
        if let Ok(date) = DateTime::parse_from_rfc2822(value) {
            return Some(date.with_timezone(&Utc));
        }
    }
    if let Some(epoch) = text("x-rate-limit-reset").and_then(|v| v.parse::<i64>().ok()) {
        return DateTime::from_timestamp(epoch, 0);
    }
    text("x-ratelimit-reset").and_then(|v| DateTime::parse_from_rfc3339(v).ok()).map(|d| d.with_timezone(&Utc))
}

/// Whether a successful answer says the rate-limit window is used up.
fn window_spent(headers: &HeaderMap) -> bool {
    ["x-rate-limit-remaining", "x-ratelimit-remaining"]
        .iter()
        .any(|name| headers.get(*name).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() == "0"))
}

/// The waits between retries: `initial` doubling up to `max`, each a random amount from
/// half of that delay to all of it ("equal jitter"), so that collectors do not retry in
/// step. (`backon` adds a random part of each delay to it: hence the halved bounds.)
fn waits(initial: Duration, max: Duration) -> ExponentialBackoff {
    let initial = initial.min(max);
    ExponentialBuilder::new()
        .with_min_delay(initial / 2)
        .with_max_delay(max / 2)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The wait before retry `attempt` (1, 2, ...) of [`waits`].
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    // The delay stops doubling at `max` long before 64 doublings.
    let index = attempt.clamp(1, 64) - 1;
    waits(initial, max).nth(index as usize).expect("the waits never run out")
}

/// The start of an answer's body, as one line of text.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(DETAIL_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().count() > DETAIL_CHARS {
        out.push('…');
    }
    out
}

/// An error and its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (reqwest::header::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn reset_times_come_from_retry_after_or_the_platform_headers() {
        let now = at("2026-11-01T10:00:00Z");
        assert_eq!(reset_time(&headers(&[("retry-after", "120")]), now), Some(at("2026-11-01T10:02:00Z")));
        let date = [("retry-after", "Sun, 01 Nov 2026 10:05:00 GMT")];
        assert_eq!(reset_time(&headers(&date), now), Some(at("2026-11-01T10:05:00Z")));
        let x = [("x-rate-limit-reset", "1793527800")];
        assert_eq!(reset_time(&headers(&x), now), DateTime::from_timestamp(1_793_527_800, 0));
        let mastodon = [("x-ratelimit-reset", "2026-11-01T10:05:00.000Z")];
        assert_eq!(reset_time(&headers(&mastodon), now), Some(at("2026-11-01T10:05:00Z")));
        assert_eq!(reset_time(&headers(&[]), now), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_max_with_jitter() {
        // `backon` computes delays in `f32` seconds.
        let rounding = Duration::from_micros(10);
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let mut waits = waits(initial, max);
        for attempt in 1..10 {
            let full = (initial * 2u32.pow(attempt - 1)).min(max);
            for wait in [backoff(initial, max, attempt), waits.next().unwrap()] {
                assert!(wait + rounding >= full / 2 && wait <= full + rounding, "attempt {attempt}: {wait:?}");
            }
        }
        assert!(backoff(initial, max, u32::MAX) <= max + rounding);
    }

    #[test]
    fn a_gate_closes_for_the_longest_pause_and_reopens() {
        let gate = Gate::default();
        let now = at("2026-11-01T10:00:00Z");
        gate.pause_until(at("2026-11-01T10:05:00Z"));
        gate.pause_until(at("2026-11-01T10:01:00Z"));
        assert_eq!(gate.closed_until(now), Some(at("2026-11-01T10:05:00Z")));
        assert_eq!(gate.closed_until(at("2026-11-01T10:05:00Z")), None);
    }
}
