//! The evidence behind a value (`/records`) and the CSV export for donor reports.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::{Value, json};

use super::{ApiError, AppState, PeriodQuery, code, period};
use crate::envelope::Version;
use crate::indicators::rules::{Contribution, contributions};
use crate::records::Record;
use crate::records::fields::{parse_rfc3339, subnanos};
use crate::store::read;

/// `GET /api/v1/indicators/{code}/records?period=`: the current records that make up the
/// total, each with what it contributes (an amount, or the distinct items it names) and every stored event that is a version of it.
pub async fn records(
    State(state): State<AppState>,
    Path(code_text): Path<String>,
    Query(query): Query<PeriodQuery>,
) -> Result<Json<Value>, ApiError> {
    let code = code(&code_text)?;
    let period = period(&query)?;
    let record_type = code.record_type().as_str();
    let mut behind = Vec::new();
    for row in read::current_records(&state.pool, record_type).await? {
        let record: Record = serde_json::from_str(&row.record)
            .map_err(|e| ApiError::Unavailable(format!("stored record cannot be read: {e}")))?;
        // A sum counts once; a distinct count may count several items (ND2's beneficiaries).
        let mut amount = None;
        let mut items = Vec::new();
        for contribution in contributions(&record) {
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
            (Some(n), _) => Some(json!({ "amount": n })),
            (None, false) => Some(json!({ "items": items })),
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
    let events = read::events_in_groups(&state.pool, record_type, &groups).await?;
    let mut by_key: HashMap<&str, Vec<&read::EvidenceEvent>> = HashMap::new();
    for event in &events {
        for key in &event.record_keys {
            by_key.entry(key.as_str()).or_default().push(event);
        }
    }
    let items: Vec<Value> = behind
        .iter()
        .map(|(row, record, counted)| {
            let mut history: Vec<&read::EvidenceEvent> =
                by_key.get(row.record_key.as_str()).cloned().unwrap_or_default();
            if let Some(post) = &row.post_key {
                history.extend(by_key.get(post.as_str()).cloned().unwrap_or_default());
            }
            history.sort_by_cached_key(|e| version(e));
            history.dedup_by_key(|e| e.seq);
            let events: Vec<Value> = history
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e).expect("events serialize");
                    v["current"] = Value::from(e.seq == row.event_seq);
                    v
                })
                .collect();
            let key: Value = serde_json::from_str(&row.record_key).unwrap_or(Value::Null);
            json!({ "record_type": record_type, "key": key, "counted": counted, "record": record, "events": events })
        })
        .collect();
    Ok(Json(json!({ "code": code.as_str(), "period": period.as_str(), "records": items })))
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

/// `GET /api/v1/export.csv?period=`: the `indicator_values` rows of one period.
pub async fn export(
    State(state): State<AppState>,
    Query(query): Query<PeriodQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let period = period(&query)?;
    let rows = read::export_rows(&state.pool, period.as_str()).await?;
    let csv = csv_text(&rows).map_err(|e| ApiError::Unavailable(format!("the export cannot be written: {e}")))?;
    let disposition = format!("attachment; filename=\"ecpat-indicators-{}.csv\"", period.as_str());
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        csv,
    ))
}
