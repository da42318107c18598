//! The evidence behind a value (`/records`) and the CSV export for donor reports.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;

use super::doc::{BadRequest, NotFound, Unavailable};
use super::schema::{Amount, Counted, Evidence, EvidenceEvent, EvidenceRecord, Items};
use super::{
    ApiError, AppState, CodePath, FrameworkQuery, PeriodQuery, choose, heavy, indicator_of, period, revalidated,
    unchanged,
};
use sqlx::PgConnection;

use crate::envelope::Version;
use crate::framework::{Framework, Indicator};
use crate::indicators::Period;
use crate::indicators::rules::Contribution;
use crate::records::Record;
use crate::records::fields::{parse_rfc3339, subnanos};
use crate::store::read;

/// The evidence behind a total.
///
/// The current records that make up the indicator's total for the period, what each
/// contributes, and every stored event that is a version of it.
#[utoipa::path(get, path = "/api/v1/indicators/{code}/records", operation_id = "getEvidence", tag = "indicators",
    params(CodePath, PeriodQuery, FrameworkQuery),
    responses(
        (status = 200, description = "The evidence.", body = Evidence,
            headers(("ETag" = String, description = "The version of the values the evidence was read at (at most `http.heavy_max_age_ms` behind the current one)."),
                ("Cache-Control" = String, description = "`no-cache`"))),
        (status = 304, description = "Not modified: the `If-None-Match` sent names the current `ETag` (no body, no query)."),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub async fn records(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<CodePath>,
    Query(query): Query<PeriodQuery>,
    Query(which): Query<FrameworkQuery>,
) -> Result<Response, ApiError> {
    let (chosen, etag) = version_and_framework(&state, &which)?;
    let loaded = chosen.loaded();
    let definition = indicator_of(loaded, &path)?;
    let period = period(&query, &loaded.framework)?;
    if let Some(not_modified) = unchanged(&headers, &etag) {
        return Ok(not_modified);
    }
    let key = format!("records {} {} {}", chosen.id(), definition.code, period.as_str());
    let answer = state
        .answers
        .get_or_make(key, &etag, || async {
            let _place = heavy(&state)?;
            let mut connection = state.readers.acquire().await?;
            let records = behind(&mut connection, &loaded.framework, definition, &period).await?;
            let evidence = Evidence { code: definition.code.clone(), period: period.as_str().to_owned(), records };
            Ok(Bytes::from(serde_json::to_vec(&evidence).expect("the evidence serializes")))
        })
        .await?;
    Ok(revalidated(&headers, &answer.etag, || {
        ([(header::CONTENT_TYPE, "application/json")], answer.body).into_response()
    }))
}

/// The framework asked for and the version of the values, taken before any query: what a
/// query then reads is at least as new as that version.
fn version_and_framework(state: &AppState, which: &FrameworkQuery) -> Result<(super::Chosen, String), ApiError> {
    // One read of the values for both (a second read while holding the first could wait
    // behind a writer for ever).
    let current = state.values.current().ok_or_else(|| ApiError::Unavailable("database unavailable".into()))?;
    let (frameworks, etag) = (Arc::clone(&current.snapshot().frameworks), current.etag());
    drop(current);
    Ok((choose(frameworks, which)?, etag))
}

/// The current records behind an indicator's total for `period`, what each contributes,
/// and every stored event that is a version of each.
pub async fn behind(
    connection: &mut PgConnection,
    framework: &Framework,
    definition: &Indicator,
    period: &Period,
) -> Result<Vec<EvidenceRecord>, ApiError> {
    let code = definition.code.as_str();
    let record_type = definition.record.as_str();
    let mut behind = Vec::new();
    for row in read::current_records(&mut *connection, record_type).await? {
        let record: Record = serde_json::from_str(&row.record)
            .map_err(|e| ApiError::Unavailable(format!("stored record cannot be read: {e}")))?;
        // A sum counts once; a distinct count may count several items (ND2's beneficiaries).
        let mut amount = None;
        let mut items = Vec::new();
        for contribution in framework.contributions(&record) {
            match contribution {
                Contribution::Sum(k, n)
                    if k.indicator == code && k.period == period.as_str() && k.dimension.is_empty() =>
                {
                    amount = Some(n);
                }
                Contribution::Distinct(k, item)
                    if k.indicator == code && k.period == period.as_str() && k.dimension.is_empty() =>
                {
                    items.push(item);
                }
                _ => {}
            }
        }
        let counted = match (amount, items.is_empty()) {
            (Some(amount), _) => Some(Counted::Amount(Amount { amount })),
            (None, false) => Some(Counted::Items(Items { items })),
            (None, true) => None,
        };
        if let Some(counted) = counted {
            behind.push((row, record, counted));
        }
    }
    let mut groups: Vec<String> =
        behind.iter().map(|(row, _, _)| row.post_key.clone().unwrap_or_else(|| row.record_key.clone())).collect();
    groups.sort();
    groups.dedup();
    let events = read::events_in_groups(&mut *connection, record_type, &groups).await?;
    let mut by_key: HashMap<&str, Vec<&read::EvidenceEvent>> = HashMap::new();
    for event in &events {
        for key in &event.record_keys {
            by_key.entry(key.as_str()).or_default().push(event);
        }
    }
    let records = behind
        .into_iter()
        .map(|(row, record, counted)| {
            let mut history: Vec<&read::EvidenceEvent> =
                by_key.get(row.record_key.as_str()).cloned().unwrap_or_default();
            if let Some(post) = &row.post_key {
                history.extend(by_key.get(post.as_str()).cloned().unwrap_or_default());
            }
            history.sort_by_cached_key(|e| version(e));
            history.dedup_by_key(|e| e.seq);
            let events = history
                .iter()
                .map(|e| EvidenceEvent {
                    seq: e.seq,
                    source: e.source.clone(),
                    id: e.id.clone(),
                    event_type: e.event_type.clone(),
                    time: e.time,
                    received_at: e.received_at,
                    current: e.seq == row.event_seq,
                })
                .collect();
            let key: Value = serde_json::from_str(&row.record_key).unwrap_or(Value::Null);
            EvidenceRecord { record_type: definition.record, key, counted, record, events }
        })
        .collect();
    Ok(records)
}

/// A stored event's place in the order of versions, from its `time` as sent (the column
/// holds microseconds only).
fn version(event: &read::EvidenceEvent) -> Version {
    let time = parse_rfc3339(&event.time_text).map_or(event.time, |time| time.with_timezone(&Utc));
    Version {
        secs: time.timestamp(),
        nanos: time.timestamp_subsec_nanos(),
        subnanos: subnanos(&event.time_text).to_owned(),
        source: event.source.clone(),
        id: event.id.clone(),
    }
}

/// The rows as RFC 4180 CSV: CRLF line ends, a field quoted when it holds a comma, a quote
/// or a line break.
fn csv_text(rows: &[read::ExportRow]) -> Result<Vec<u8>, csv::Error> {
    let mut csv = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    csv.write_record(["indicator", "period", "dimension", "key", "value", "updated_at"])?;
    for row in rows {
        let (value, updated_at) = (row.value.to_string(), row.updated_at.to_rfc3339());
        csv.write_record([&row.indicator, &row.period, &row.dimension, &row.key, &value, &updated_at])?;
    }
    csv.into_inner().map_err(|e| e.into_error().into())
}

/// The values of a framework (the default one unless asked) for a period, as CSV.
#[utoipa::path(get, path = "/api/v1/export.csv", operation_id = "exportCsv", tag = "indicators",
    params(PeriodQuery, FrameworkQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String,
            description = "RFC 4180 CSV (CRLF line ends, fields with a comma, quote or line break quoted), UTF-8, \
                with the header line `indicator,period,dimension,key,value,updated_at`; rows in the framework's \
                indicator order (KE1 ... ND3 for the default framework), then by dimension and key; totals have empty dimension and key; only \
                non-zero values (a missing row means 0); `updated_at` in RFC 3339.",
            headers(("Content-Disposition" = String,
                description = "`attachment; filename=\"ecpat-indicators-PERIOD.csv\"`"),
                ("ETag" = String, description = "The version of the values the export was read at (at most `http.heavy_max_age_ms` behind the current one)."),
                ("Cache-Control" = String, description = "`no-cache`"))),
        (status = 304, description = "Not modified: the `If-None-Match` sent names the current `ETag` (no body, no query)."),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<PeriodQuery>,
    Query(which): Query<FrameworkQuery>,
) -> Result<Response, ApiError> {
    let (chosen, etag) = version_and_framework(&state, &which)?;
    let (loaded, id) = (chosen.loaded(), chosen.id());
    let period = period(&query, &loaded.framework)?;
    if let Some(not_modified) = unchanged(&headers, &etag) {
        return Ok(not_modified);
    }
    let key = format!("export.csv {id} {}", period.as_str());
    let answer = state
        .answers
        .get_or_make(key, &etag, || async {
            let _place = heavy(&state)?;
            let codes: Vec<String> = loaded.framework.indicators.iter().map(|i| i.code.clone()).collect();
            let rows = read::export_rows(&state.readers, id, &codes, period.as_str()).await?;
            let csv =
                csv_text(&rows).map_err(|e| ApiError::Unavailable(format!("the export cannot be written: {e}")))?;
            Ok(Bytes::from(csv))
        })
        .await?;
    let disposition = format!("attachment; filename=\"ecpat-indicators-{}.csv\"", period.as_str());
    Ok(revalidated(&headers, &answer.etag, || {
        (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
            answer.body,
        )
            .into_response()
    }))
}
