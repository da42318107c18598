//! `GET /report`: the report for donors as a printable page (see `crate::report`).

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use utoipa::IntoParams;

use super::doc::{BadRequest, NotFound, Unavailable};
use super::{ApiError, AppState, FrameworkQuery, PeriodQuery, framework, period};
use crate::report::{self, Lang, html};

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
    let chosen = framework(&state, &which).await?;
    let period = period(&query, &chosen.loaded().framework)?;
    let lang = lang(&language)?;
    let report = report::gather(&state.pool, &chosen.loaded().framework, &period, lang).await?;
    let dashboard = format!("./?framework={}&period={}&lang={}", chosen.id(), period.as_str(), lang.as_str());
    Ok(Html(html::render(&report, Some(&dashboard))))
}
