//! The HTTP API of docs/api.md: indicator values, rejections, health and readiness, the
//! live stream, metrics and the dashboard page.

mod answers;
pub use answers::Answers;
mod auth;
mod binary;
mod dashboard;
mod doc;
pub mod evidence;
pub mod report;
pub mod schema;
pub mod stream;
pub mod values;
pub mod write;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use headers::Header;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::IntoParams;

use crate::framework::{self, Frameworks, Loaded};
use crate::health::Health;
use crate::indicators::Period;
use crate::store::frameworks;
use crate::store::read::{self, ValueRow};
use crate::telemetry::one_line;
use doc::{BadRequest, NotFound, Unavailable};
use schema::{
    Breakdowns, ErrorBody, FrameworkEntry, FrameworkList, Indicator, IndicatorForPeriod, IndicatorList, ObjectiveEntry,
    Rejections, Series, SeriesPoint,
};
use values::{Snapshot, Values};

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The worker's pool (readiness only).
    pub pool: PgPool,
    /// The API's own small pool, for the reads that query (`database.reader_connections`).
    pub readers: PgPool,
    pub health: Arc<Health>,
    /// Every value and the frameworks, in memory, and the live streams' changes.
    pub values: Arc<Values>,
    /// Heavy requests served at once (`http.heavy_requests`).
    pub heavy: Arc<Semaphore>,
    /// Heavy answers, made once per version of the values.
    pub answers: Arc<answers::Answers>,
    /// Turns true at shutdown, so that open streams end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The API's routes, behind the token of `ECPAT_API_TOKEN` when it is set (see `auth`),
/// and with `writes`, `POST /api/v1/events` behind its own token (see `write`).
pub fn router(state: AppState, writes: Option<write::Writes>) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/frameworks", get(list_frameworks))
        .route("/api/v1/indicators", get(list))
        .route("/api/v1/indicators/{code}", get(one))
        .route("/api/v1/indicators/{code}/series", get(series))
        .route("/api/v1/indicators/{code}/records", get(evidence::records))
        .route("/api/v1/export.csv", get(evidence::export))
        .route("/api/v1/export.xlsx", get(report::workbook))
        .route("/report", get(report::page))
        .route("/api/v1/stream", get(stream::stream))
        .route("/api/v1/openapi.json", get(doc::document))
        .route("/api/v1/rejections", get(rejections))
        .route("/metrics", get(metrics))
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(state);
    let routes = auth::protect(routes, auth::Token::from_env(auth::TOKEN_VAR));
    match writes {
        Some(writes) => write::routes(writes).merge(routes),
        None => routes,
    }
}

/// An error answer: `{"error": "..."}` with its status.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Unavailable(String),
    /// As many heavy requests as `http.heavy_requests` are being served: 503 with
    /// `Retry-After`.
    Busy,
}

/// The seconds a client is asked to wait after a 503 for too many heavy requests.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::BadRequest(m) | ApiError::NotFound(m) | ApiError::Unavailable(m) => f.write_str(m),
            ApiError::Busy => f.write_str("too many evidence and export requests at once; retry later"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.to_string();
        let status = match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Busy => {
                let retry = HeaderValue::from(BUSY_RETRY_AFTER_SECS);
                return (StatusCode::SERVICE_UNAVAILABLE, [(RETRY_AFTER, retry)], Json(ErrorBody { error }))
                    .into_response();
            }
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

/// The values in memory are not loaded (the database is not reachable, or not yet).
fn values_unavailable() -> ApiError {
    ApiError::Unavailable("database unavailable".into())
}

/// One of the `http.heavy_requests` places for a heavy request (evidence, an export, the
/// report), held until it is answered; none free: [`ApiError::Busy`].
pub fn heavy(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    Arc::clone(&state.heavy).try_acquire_owned().map_err(|_| ApiError::Busy)
}

/// Whether the request's `If-None-Match` names `etag` (weak comparison, or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let Ok(tag) = etag.parse::<headers::ETag>() else { return false };
    headers::IfNoneMatch::decode(&mut headers.get_all(IF_NONE_MATCH).iter())
        .is_ok_and(|condition| !condition.precondition_passes(&tag))
}

/// `304 Not Modified` (with the `ETag` and `Cache-Control`) when the request's
/// `If-None-Match` names `etag`: nothing else to read.
pub fn unchanged(headers: &HeaderMap, etag: &str) -> Option<Response> {
    not_modified(headers, etag).then(|| revalidated(headers, etag, || StatusCode::NOT_MODIFIED.into_response()))
}

/// An answer that a client may keep and revalidate: 304 without a body when its
/// `If-None-Match` names `etag`, else the answer `body` makes; either with the `ETag` and
/// `Cache-Control: no-cache` (keep, but ask again before using).
pub fn revalidated(headers: &HeaderMap, etag: &str, body: impl FnOnce() -> Response) -> Response {
    let mut response = if not_modified(headers, etag) { StatusCode::NOT_MODIFIED.into_response() } else { body() };
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(ETAG, value);
    }
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A JSON answer made from the values in memory, with the `ETag` of their version (see
/// [`revalidated`]); no query.
fn from_memory<T: Serialize>(
    state: &AppState,
    headers: &HeaderMap,
    answer: impl FnOnce(&Snapshot) -> Result<T, ApiError>,
) -> Result<Response, ApiError> {
    let current = state.values.current().ok_or_else(values_unavailable)?;
    let etag = current.etag();
    let body = answer(current.snapshot())?;
    drop(current);
    Ok(revalidated(headers, &etag, || Json(body).into_response()))
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::warn!(error = one_line(&e), "Database query failed.");
        ApiError::Unavailable("database unavailable".into())
    }
}

impl From<frameworks::ReadError> for ApiError {
    fn from(e: frameworks::ReadError) -> Self {
        match e {
            frameworks::ReadError::Database(e) => e.into(),
            unreadable => ApiError::Unavailable(unreadable.to_string()),
        }
    }
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "Always, while the process runs.", body = schema::Health)))]
async fn healthz() -> Json<schema::Health> {
    Json(schema::Health { status: "ok" })
}

/// Whether the worker is ready.
///
/// 200 once migrations are applied, the topology is declared, the consumer is running and
/// the indicator values are loaded, and while database and broker are reachable; 503
/// otherwise.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", responses(
    (status = 200, description = "Ready.", body = schema::Ready),
    (status = 503, description = "Not ready.", body = schema::NotReady),
))]
async fn readyz(State(state): State<AppState>) -> Response {
    let reason = match state.health.not_ready_because() {
        Some(reason) => Some(reason),
        None if !read::ping(&state.pool).await => Some("database unreachable".to_owned()),
        None if !state.values.is_current() => Some("indicator values not loaded yet".to_owned()),
        None => None,
    };
    match reason {
        None => Json(schema::Ready { status: "ready" }).into_response(),
        Some(error) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(schema::NotReady { status: "not ready", error })).into_response()
        }
    }
}

/// Prometheus metrics of this process.
///
/// Counters are per process and start at 0: `ecpat_events_applied_total`,
/// `ecpat_events_duplicate_total`, `ecpat_events_stale_total`, `ecpat_rejections_total{reason}`,
/// `ecpat_batch_retries_total`, `ecpat_messages_returned_total`; gauges `ecpat_database_up`,
/// `ecpat_broker_up`, `ecpat_last_commit_timestamp_seconds`; histograms
/// `ecpat_batch_messages`, `ecpat_batch_duration_seconds`. A counter appears once it has
/// been incremented.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text exposition format.", body = String, content_type = "text/plain"),
))]
async fn metrics() -> String {
    crate::metrics::handle().render()
}

/// `?period=`, of every endpoint that reads one period.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// `all` (the default), a year from 1990 to 2100, or the framework's span (e.g.
    /// `2018-2021`); anything else is a 400.
    #[param(value_type = schema::Period, required = false, default = "all")]
    pub period: Option<String>,
}

pub fn period(query: &PeriodQuery, framework: &framework::Framework) -> Result<Period, ApiError> {
    let text = query.period.as_deref().unwrap_or("all");
    Period::parse(text, framework.years).ok_or_else(|| {
        let (first, last) = framework.years;
        ApiError::BadRequest(format!(
            "period must be \"all\", a year from 1990 to 2100 or the framework's span \"{first}-{last}\", not {text:?}"
        ))
    })
}

/// `?framework=`, of every endpoint about indicators.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FrameworkQuery {
    /// A framework's id (default: the default framework, `ecpat-2018-2021`); an unknown
    /// one is a 404.
    #[param(required = false)]
    pub framework: Option<String>,
}

/// The framework asked for, among the frameworks as loaded now.
pub struct Chosen {
    frameworks: Arc<Frameworks>,
    index: usize,
}

impl Chosen {
    pub fn loaded(&self) -> &Loaded {
        &self.frameworks.loaded[self.index]
    }

    /// The framework's id.
    pub fn id(&self) -> &str {
        &self.loaded().framework.id
    }
}

/// The framework of `?framework=` (the default one without it), among the frameworks the
/// values in memory were counted by; an unknown one is a 404.
pub fn framework(state: &AppState, query: &FrameworkQuery) -> Result<Chosen, ApiError> {
    let frameworks = state.values.frameworks().ok_or_else(values_unavailable)?;
    choose(frameworks, query)
}

/// The framework of `?framework=` among `frameworks`.
fn choose(frameworks: Arc<Frameworks>, query: &FrameworkQuery) -> Result<Chosen, ApiError> {
    let id = query.framework.as_deref().unwrap_or(framework::DEFAULT_ID);
    match frameworks.loaded.iter().position(|l| l.framework.id == id) {
        Some(index) => Ok(Chosen { frameworks, index }),
        None => Err(ApiError::NotFound(format!("no framework {id:?}"))),
    }
}

/// `{code}`, of every endpoint about one indicator.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CodePath {
    /// An indicator code of the framework (exact, upper-case); an unknown one is a 404.
    #[param(value_type = schema::IndicatorCode)]
    pub code: String,
}

/// The indicator `{code}` of a framework.
pub fn indicator_of<'a>(loaded: &'a Loaded, path: &CodePath) -> Result<&'a framework::Indicator, ApiError> {
    let text = &path.code;
    loaded.framework.indicator(text).ok_or_else(|| ApiError::NotFound(format!("no indicator {text:?}")))
}

/// One indicator's object, from the rows of its period.
fn indicator(definition: &framework::Indicator, period: &Period, rows: &[ValueRow]) -> Indicator {
    let mut value = 0;
    let mut breakdowns: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.indicator == definition.code) {
        if row.dimension.is_empty() {
            value = row.value;
        } else {
            breakdowns.entry(row.dimension.clone()).or_default().insert(row.key.clone(), row.value);
        }
    }
    Indicator {
        code: definition.code.clone(),
        objective: definition.objective.clone(),
        title: framework::title(&definition.title, "fr"),
        title_en: framework::title(&definition.title, "en"),
        value,
        baseline: definition.baseline,
        target: definition.targets.get(period.as_str()).copied(),
        breakdowns: Breakdowns(breakdowns),
    }
}

/// 304 to a client whose `If-None-Match` names the current `ETag`.
const NOT_MODIFIED: &str = "Not modified: the `If-None-Match` sent names the current `ETag` (no body).";

/// The frameworks loaded.
#[utoipa::path(get, path = "/api/v1/frameworks", operation_id = "listFrameworks", tag = "indicators",
    responses(
        (status = 200, description = "Every framework loaded, by id, at its current version.", body = FrameworkList,
            headers(("ETag" = String, description = "The version of the values and frameworks served."),
                ("Cache-Control" = String, description = "`no-cache`"))),
        (status = 304, description = NOT_MODIFIED),
        (status = 503, response = Unavailable),
    ))]
async fn list_frameworks(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    from_memory(&state, &headers, |snapshot| {
        let frameworks = snapshot
            .frameworks
            .loaded
            .iter()
            .map(|loaded| FrameworkEntry {
                id: loaded.framework.id.clone(),
                title: loaded.framework.title.clone(),
                years: [loaded.framework.years.0, loaded.framework.years.1],
                objectives: loaded
                    .framework
                    .objectives
                    .iter()
                    .map(|o| ObjectiveEntry { code: o.code.clone(), title: o.title.clone() })
                    .collect(),
                default: loaded.framework.id == framework::DEFAULT_ID,
                version: loaded.version,
                loaded_at: loaded.loaded_at,
            })
            .collect();
        Ok(FrameworkList { frameworks })
    })
}

/// Every indicator of a framework for a period.
#[utoipa::path(get, path = "/api/v1/indicators", operation_id = "listIndicators", tag = "indicators",
    params(PeriodQuery, FrameworkQuery),
    responses(
        (status = 200, description = "Every indicator of the framework, in its order; a year with no data gives zeros.",
            body = IndicatorList,
            headers(("ETag" = String, description = "The version of the values served."),
                ("Cache-Control" = String, description = "`no-cache`"))),
        (status = 304, description = NOT_MODIFIED),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<PeriodQuery>,
    Query(which): Query<FrameworkQuery>,
) -> Result<Response, ApiError> {
    from_memory(&state, &headers, |snapshot| {
        let chosen = choose(Arc::clone(&snapshot.frameworks), &which)?;
        let (loaded, id) = (chosen.loaded(), chosen.id());
        let period = period(&query, &loaded.framework)?;
        let rows = snapshot.period_rows(id, period.as_str());
        let indicators = loaded.framework.indicators.iter().map(|i| indicator(i, &period, &rows)).collect();
        Ok(IndicatorList { period: period.as_str().to_owned(), indicators })
    })
}

/// One indicator for a period.
#[utoipa::path(get, path = "/api/v1/indicators/{code}", operation_id = "getIndicator", tag = "indicators",
    params(CodePath, PeriodQuery, FrameworkQuery),
    responses(
        (status = 200, description = "The indicator.", body = IndicatorForPeriod,
            headers(("ETag" = String, description = "The version of the values served."),
                ("Cache-Control" = String, description = "`no-cache`"))),
        (status = 304, description = NOT_MODIFIED),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
async fn one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<CodePath>,
    Query(query): Query<PeriodQuery>,
    Query(which): Query<FrameworkQuery>,
) -> Result<Response, ApiError> {
    from_memory(&state, &headers, |snapshot| {
        let chosen = choose(Arc::clone(&snapshot.frameworks), &which)?;
        let (loaded, id) = (chosen.loaded(), chosen.id());
        let definition = indicator_of(loaded, &path)?;
        let period = period(&query, &loaded.framework)?;
        let rows = snapshot.period_rows(id, period.as_str());
        let indicator = indicator(definition, &period, &rows);
        Ok(IndicatorForPeriod { indicator, period: period.as_str().to_owned() })
    })
}

/// An indicator's total for every year with data.
#[utoipa::path(get, path = "/api/v1/indicators/{code}/series", operation_id = "getSeries", tag = "indicators",
    params(CodePath, FrameworkQuery),
    responses(
        (status = 200, description = "Years with a non-zero total, oldest first.", body = Series,
            headers(("ETag" = String, description = "The version of the values served."),
                ("Cache-Control" = String, description = "`no-cache`"))),
        (status = 304, description = NOT_MODIFIED),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
async fn series(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<CodePath>,
    Query(which): Query<FrameworkQuery>,
) -> Result<Response, ApiError> {
    from_memory(&state, &headers, |snapshot| {
        let chosen = choose(Arc::clone(&snapshot.frameworks), &which)?;
        let definition = indicator_of(chosen.loaded(), &path)?;
        let points = snapshot.yearly_totals(chosen.id(), &definition.code);
        let points = points.into_iter().map(|(period, value)| SeriesPoint { period, value }).collect();
        Ok(Series { code: definition.code.clone(), points })
    })
}

/// `?limit=` of the rejections.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LimitQuery {
    /// How many rejections to list, 1 to 1000 (default 100); anything else is a 400.
    #[param(value_type = i64, required = false, minimum = 1, maximum = 1000, default = 100)]
    limit: Option<String>,
}

/// Stored rejections, newest first.
#[utoipa::path(get, path = "/api/v1/rejections", operation_id = "listRejections", tag = "operations",
    params(LimitQuery),
    responses(
        (status = 200, description = "The total and the newest `limit` rejections.", body = Rejections),
        (status = 400, response = BadRequest),
        (status = 503, response = Unavailable),
    ))]
async fn rejections(
    State(state): State<AppState>,
    Query(query): Query<LimitQuery>,
) -> Result<Json<Rejections>, ApiError> {
    let limit =
        match query.limit.as_deref() {
            None => 100,
            Some(text) => text.parse::<i64>().ok().filter(|n| read::REJECTIONS_LIMIT.contains(n)).ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be an integer from 1 to 1000, not {text:?}"))
            })?,
        };
    let (total, items) = read::rejections(&state.readers, limit).await?;
    Ok(Json(Rejections { total, items }))
}
