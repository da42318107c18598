//! `POST /api/v1/events`: producers that speak HTTP rather than AMQP publish CloudEvents
//! through the API (the CloudEvents HTTP binding: structured mode, batched mode and binary
//! mode). An event is checked by the worker's own decoder ([`envelope::decode`]) and
//! refused with the reason and detail the worker would store; valid events are published
//! to the events exchange, as `ecpat-indicators publish` does, and accepted once the broker
//! has confirmed them. The worker stays the only writer of the database.
//!
//! The route exists only when `ECPAT_WRITE_TOKEN` is set, and needs that token, distinct
//! from the read token of [`auth`](super::auth).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{self, Token};
use super::binary;
use super::schema::ErrorBody;
use crate::broker::{self, LazyPublisher};
use crate::config::Amqp;
use crate::envelope::{self, MAX_BODY, Reason, Rejection};
use crate::telemetry::one_line;

/// The environment variable that holds the write token.
pub const WRITE_TOKEN_VAR: &str = "ECPAT_WRITE_TOKEN";

/// How long a client should wait before retrying when the broker is unavailable, in seconds.
const RETRY_AFTER_SECS: u64 = 5;

/// What the write endpoint needs: its token and a publisher of its own.
#[derive(Clone)]
pub struct Writes {
    token: Token,
    publisher: Arc<LazyPublisher>,
}

impl Writes {
    /// The write endpoint's state when [`WRITE_TOKEN_VAR`] is set (`None`: no endpoint).
    pub fn from_env(amqp: &Amqp) -> Option<Writes> {
        let token = Token::from_env(WRITE_TOKEN_VAR)?;
        let publisher = Arc::new(LazyPublisher::new(amqp.clone(), "ecpat-indicators run (POST /api/v1/events)"));
        Some(Writes { token, publisher })
    }
}

/// The route, behind the write token.
pub fn routes(writes: Writes) -> Router {
    tracing::info!("POST /api/v1/events accepts events ({WRITE_TOKEN_VAR}).");
    Router::new()
        .route("/api/v1/events", post(publish))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .route_layer(axum::middleware::from_fn_with_state(writes.token.clone(), require))
        .with_state(writes)
}

/// Refuses a request without the write token before its body is read.
async fn require(State(token): State<Token>, request: Request, next: Next) -> Response {
    match auth::bearer(request.headers()) {
        Some(offered) if token.matches(&offered) => next.run(request).await,
        Some(_) => auth::unauthorized("the write token is wrong"),
        None => auth::unauthorized("publishing requires the write token: Authorization: Bearer <token>"),
    }
}

/// The events published, by id, in the order sent.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    pub accepted: Vec<String>,
}

/// A request refused as the worker would reject it; nothing was published.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refused {
    /// What was wrong, in English.
    #[schema(min_length = 1)]
    pub error: String,
    /// The reason of the first rejection.
    pub reason: Reason,
    /// The detail of the first rejection.
    pub detail: String,
    /// Every rejection: one for the body, or one per invalid event of a batch.
    pub rejections: Vec<RefusedEvent>,
}

/// One rejection, as the worker would store it (`GET /api/v1/rejections`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusedEvent {
    pub reason: Reason,
    /// A readable explanation; for `invalid_data` it names the field.
    pub detail: String,
    /// The event's position in its batch, or null for the whole body.
    #[schema(required = true, minimum = 0)]
    pub batch_index: Option<usize>,
}

/// Publishes one CloudEvent or a batch.
///
/// Structured mode: the body is one event (`application/cloudevents+json`) or a JSON array
/// of up to 1000 (`application/cloudevents-batch+json`). Binary mode (a `ce-specversion`
/// header): the `ce-*` headers are the attributes, `Content-Type` is `datacontenttype`,
/// and the body is `data`. Every event is checked as the worker checks it: one invalid
/// event refuses the whole request. Accepted events are published, persistent, to the
/// events exchange and answered once the broker has confirmed them; the worker counts them
/// shortly after. Needs `Authorization: Bearer <ECPAT_WRITE_TOKEN>`; without that variable
/// the route does not exist.
#[utoipa::path(post, path = "/api/v1/events", operation_id = "publishEvents", tag = "events",
    request_body(description = "One event, a batch, or binary mode's `data`.", content(
        (serde_json::Value = "application/cloudevents+json"),
        (Vec<serde_json::Value> = "application/cloudevents-batch+json"),
        (serde_json::Value = "application/json"),
    )),
    security(("write_token" = [])),
    responses(
        (status = 202, description = "Published and confirmed by the broker.", body = Accepted),
        (status = 400, description = "An event the worker would reject; nothing was published.", body = Refused),
        (status = 401, description = "The write token is missing or wrong.", body = ErrorBody),
        (status = 404, description = "`ECPAT_WRITE_TOKEN` is not set: no such endpoint.", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB (`too_large`); nothing was published.", body = Refused),
        (status = 503, description = "The broker is unavailable or did not confirm; retry.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    ))]
pub(super) async fn publish(
    State(writes): State<Writes>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            // Worded as the worker words it, when the request says its size.
            let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let detail = match length {
                Some(length) => format!("body of {length} bytes is over the limit of {MAX_BODY} bytes"),
                None => format!("body is over the limit of {MAX_BODY} bytes"),
            };
            return refused(vec![Rejection { reason: Reason::TooLarge, detail, raw: vec![], index: None }], 0);
        }
        Err(e) => return error(e.status(), e.body_text()),
    };
    let message = match binary::message(&headers, &body) {
        Ok(message) => message,
        Err((reason, detail)) => return refused(vec![Rejection { reason, detail, raw: vec![], index: None }], 0),
    };
    let decoded = envelope::decode(&message);
    if !decoded.rejections.is_empty() {
        return refused(decoded.rejections, decoded.events.len());
    }
    let accepted: Vec<String> = decoded.events.into_iter().map(|event| event.id).collect();
    if accepted.is_empty() {
        return (StatusCode::ACCEPTED, Json(Accepted { accepted })).into_response();
    }
    // Published as the worker read it: without a byte order mark, which would hide the
    // event's type from the routing key.
    let text = String::from_utf8_lossy(&message);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let outgoing = [(broker::routing_key_for(text), text.as_bytes().to_vec())];
    match writes.publisher.publish(&outgoing).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(Accepted { accepted })).into_response(),
        Err(e) => {
            tracing::warn!(error = one_line(&e), events = accepted.len(), "Cannot publish events sent over HTTP.");
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the broker is unavailable, nothing was published: retry in {RETRY_AFTER_SECS} s"),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            response
        }
    }
}

/// The 400 (or 413, for a body too large) of `rejections`; `valid` events were fine.
fn refused(rejections: Vec<Rejection>, valid: usize) -> Response {
    let status = if rejections.iter().any(|r| r.reason == Reason::TooLarge) {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    };
    let first = &rejections[0];
    let error = match first.index {
        None => format!("rejected ({}): {}", first.reason.as_str(), first.detail),
        Some(_) => format!(
            "{} of {} events of the batch are invalid, nothing was published",
            rejections.len(),
            rejections.len() + valid
        ),
    };
    let (reason, detail) = (first.reason, first.detail.clone());
    let rejections = rejections
        .into_iter()
        .map(|r| RefusedEvent { reason: r.reason, detail: r.detail, batch_index: r.index })
        .collect();
    (status, Json(Refused { error, reason, detail, rejections })).into_response()
}

fn error(status: StatusCode, error: String) -> Response {
    (status, Json(ErrorBody { error })).into_response()
}
