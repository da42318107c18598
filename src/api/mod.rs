//! The HTTP API of docs/api.md: indicator values, rejections, health and readiness, the
//! live stream, metrics and the dashboard page.

mod auth;
mod dashboard;
mod evidence;
pub mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::health::Health;
use crate::indicators::catalogue::Catalogue;
use crate::indicators::{Code, Period};
use crate::store::read::{self, ValueRow};
use crate::telemetry::one_line;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub catalogue: Arc<Catalogue>,
    pub health: Arc<Health>,
    /// Changed totals from every worker process, for the live streams.
    pub tallies: tokio::sync::broadcast::Sender<crate::store::tallies::TotalChange>,
    /// Turns true at shutdown, so that open streams end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The API's routes, behind the token of `ECPAT_API_TOKEN` when it is set (see `auth`).
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/api/v1/indicators", get(list))
        .route("/api/v1/indicators/{code}", get(one))
        .route("/api/v1/indicators/{code}/series", get(series))
        .route("/api/v1/indicators/{code}/records", get(evidence::records))
        .route("/api/v1/export.csv", get(evidence::export))
        .route("/api/v1/stream", get(stream::stream))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/rejections", get(rejections))
        .route("/metrics", get(|| async { crate::metrics::handle().render() }))
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(state);
    auth::protect(routes, auth::Token::from_env())
}

/// An error answer: `{"error": "..."}` with its status.
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::warn!(error = one_line(&e), "Database query failed.");
        ApiError::Unavailable("database unavailable".into())
    }
}

/// The OpenAPI 3.1 description of this API (kept true by `tests/api.rs`).
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn readyz(State(state): State<AppState>) -> Response {
    let reason = match state.health.not_ready_because() {
        Some(reason) => Some(reason),
        None if !read::ping(&state.pool).await => Some("database unreachable".to_owned()),
        None => None,
    };
    match reason {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(reason) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "error": reason}))).into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct PeriodQuery {
    pub period: Option<String>,
}

pub fn period(query: &PeriodQuery) -> Result<Period, ApiError> {
    let text = query.period.as_deref().unwrap_or("all");
    Period::parse(text).ok_or_else(|| {
        ApiError::BadRequest(format!("period must be \"all\" or a year from 1990 to 2100, not {text:?}"))
    })
}

pub fn code(text: &str) -> Result<Code, ApiError> {
    Code::parse(text).ok_or_else(|| ApiError::NotFound(format!("no indicator {text:?}")))
}

/// One indicator's object, from the rows of its period.
fn indicator_json(catalogue: &Catalogue, code: Code, period: &Period, rows: &[ValueRow]) -> Value {
    let entry = catalogue.get(code);
    let mut value = 0;
    let mut breakdowns: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.indicator == code.as_str()) {
        if row.dimension.is_empty() {
            value = row.value;
        } else {
            breakdowns.entry(&row.dimension).or_default().insert(&row.key, row.value);
        }
    }
    json!({
        "code": code.as_str(),
        "objective": entry.objective,
        "title": entry.title_fr,
        "title_en": entry.title_en,
        "value": value,
        "target": entry.targets.get(period.as_str()),
        "breakdowns": breakdowns,
    })
}

async fn list(State(state): State<AppState>, Query(query): Query<PeriodQuery>) -> Result<Json<Value>, ApiError> {
    let period = period(&query)?;
    let rows = read::values_for_period(&state.pool, period.as_str()).await?;
    let indicators: Vec<Value> =
        Code::ALL.iter().map(|&code| indicator_json(&state.catalogue, code, &period, &rows)).collect();
    Ok(Json(json!({ "period": period.as_str(), "indicators": indicators })))
}

async fn one(
    State(state): State<AppState>,
    Path(code_text): Path<String>,
    Query(query): Query<PeriodQuery>,
) -> Result<Json<Value>, ApiError> {
    let code = code(&code_text)?;
    let period = period(&query)?;
    let rows = read::values_for_period(&state.pool, period.as_str()).await?;
    let mut object = indicator_json(&state.catalogue, code, &period, &rows);
    object["period"] = Value::from(period.as_str());
    Ok(Json(object))
}

async fn series(State(state): State<AppState>, Path(code_text): Path<String>) -> Result<Json<Value>, ApiError> {
    let code = code(&code_text)?;
    let points = read::yearly_totals(&state.pool, code.as_str()).await?;
    let points: Vec<Value> =
        points.into_iter().map(|(period, value)| json!({"period": period, "value": value})).collect();
    Ok(Json(json!({ "code": code.as_str(), "points": points })))
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<String>,
}

async fn rejections(State(state): State<AppState>, Query(query): Query<LimitQuery>) -> Result<Json<Value>, ApiError> {
    let limit =
        match query.limit.as_deref() {
            None => 100,
            Some(text) => text.parse::<i64>().ok().filter(|n| read::REJECTIONS_LIMIT.contains(n)).ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be an integer from 1 to 1000, not {text:?}"))
            })?,
        };
    let (total, items) = read::rejections(&state.pool, limit).await?;
    Ok(Json(json!({ "total": total, "items": items })))
}
