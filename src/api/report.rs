//! `GET /report`: the report for donors as a printable page, and `GET /api/v1/export.xlsx`:
//! the same as a workbook (see `crate::report`).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::doc::{BadRequest, NotFound, Unavailable};
use super::{ApiError, AppState, FrameworkQuery, PeriodQuery, framework, heavy, period};
use crate::report::{self, Lang, html, xlsx};

/// `?lang=` of the report.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `fr` (the default) or `en`; anything else is a 400.
    #[param(required = false, default = "fr")]
    pub lang: Option<String>,
}

/// The language of `?lang=`.
pub fn lang(query: &LangQuery) -> Result<Lang, ApiError> {
    match query.lang.as_deref() {
        None => Ok(Lang::Fr),
        Some(text) => {
            Lang::parse(text).ok_or_else(|| ApiError::BadRequest(format!("lang must be fr or en, not {text:?}")))
        }
    }
}

/// The report that the query asks for: its framework, period and language.
async fn gathered(
    state: &AppState,
    query: &PeriodQuery,
    which: &FrameworkQuery,
    language: &LangQuery,
) -> Result<report::Report, ApiError> {
    let chosen = framework(state, which)?;
    let period = period(query, &chosen.loaded().framework)?;
    let language = lang(language)?;
    let _place = heavy(state)?;
    report::gather(&state.readers, &chosen.loaded().framework, &period, language).await
}

/// The report of a framework (the default one unless asked) for a period.
///
/// A printable HTML page (A4): per objective and indicator, the value, baseline, target
/// and progress, every breakdown, a chart of the years, when the figures were read, and
/// an annex of the evidence. All of it is read in one snapshot of the database.
#[utoipa::path(get, path = "/report", operation_id = "getReport", tag = "indicators",
    params(PeriodQuery, FrameworkQuery, LangQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "The report page."),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub async fn page(
    State(state): State<AppState>,
    Query(query): Query<PeriodQuery>,
    Query(which): Query<FrameworkQuery>,
    Query(language): Query<LangQuery>,
) -> Result<Html<String>, ApiError> {
    let report = gathered(&state, &query, &which, &language).await?;
    let dashboard = format!("./?framework={}&period={}&lang={}", report.framework, report.period, report.lang.as_str());
    Ok(Html(html::render(&report, Some(&dashboard))))
}

/// The report's workbook: the values of a framework (the default one unless asked) for a
/// period, with breakdowns, years and evidence.
#[utoipa::path(get, path = "/api/v1/export.xlsx", operation_id = "exportXlsx", tag = "indicators",
    params(PeriodQuery, FrameworkQuery, LangQuery),
    responses(
        (status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            body = Vec<u8>,
            description = "An XLSX workbook with four sheets: indicators (objective, code, title, period, value, \
                baseline, target, progress), breakdowns, years and evidence (one row per event behind a value); \
                sheet and column names in the language asked.",
            headers(("Content-Disposition" = String,
                description = "`attachment; filename=\"ecpat-indicators-PERIOD.xlsx\"`"))),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub async fn workbook(
    State(state): State<AppState>,
    Query(query): Query<PeriodQuery>,
    Query(which): Query<FrameworkQuery>,
    Query(language): Query<LangQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let report = gathered(&state, &query, &which, &language).await?;
    let bytes = xlsx::render(&report).map_err(|e| ApiError::Unavailable(format!("cannot write the workbook: {e}")))?;
    let disposition = format!("attachment; filename=\"ecpat-indicators-{}.xlsx\"", report.period);
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    ))
}
