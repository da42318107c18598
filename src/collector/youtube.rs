//! YouTube Data API v3: `GET {base}/videos?part=statistics&id=a,b,...`, up to 50 videos
//! per request, with the API key of `ECPAT_YOUTUBE_API_KEY` in the `X-Goog-Api-Key` header.
//!
//! | YouTube (`statistics`, counts as strings) | metric |
//! | --- | --- |
//! | `viewCount` | `views` |
//! | `likeCount` (absent when hidden) | `likes` |
//! | `commentCount` (absent when disabled) | `comments` |
//!
//! A video left out of `items` (deleted or made private) is gone. A `403` with reason
//! `quotaExceeded` pauses YouTube until the daily quota resets (midnight Pacific time: the
//! collector waits until the next 08:00 UTC, which is at or after it all year round).

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveTime, Utc};
use serde_json::Value;

use super::http::{Answer, Call, HttpError};
use super::{Metrics, Observation, count, metrics};
use crate::records::Metric;

/// The API reads up to 50 videos per request.
pub const PER_REQUEST: usize = 50;

/// Reads the statistics of `ids` in one request.
pub async fn fetch(call: &Call<'_>, ids: &[String]) -> Result<Vec<(String, Observation)>, HttpError> {
    // A comma would split one id into two in the `id` list.
    let (valid, invalid): (Vec<&String>, Vec<&String>) = ids.iter().partition(|id| !id.contains(','));
    let mut observations: Vec<(String, Observation)> =
        invalid.iter().map(|id| ((*id).clone(), Observation::Failed("not a YouTube video id".into()))).collect();
    if valid.is_empty() {
        return Ok(observations);
    }
    let mut url = call.url(&["videos"]);
    let joined = valid.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(",");
    url.query_pairs_mut().append_pair("part", "statistics").append_pair("id", &joined).append_pair("maxResults", "50");
    let body = match call.send(call.get_with_key_header(url, "x-goog-api-key")).await {
        Ok(Answer::Json(body)) => body,
        Ok(Answer::NotFound) => return Err(not_there()),
        Err(HttpError::Refused { status, detail, body } | HttpError::Rejected { status, detail, body }) => {
            return Err(refine(call, status, detail, body));
        }
        Err(e) => return Err(e),
    };
    let items = body.get("items").and_then(Value::as_array).ok_or_else(|| HttpError::Body("no `items` list".into()))?;
    let found: HashMap<&str, &Value> =
        items.iter().filter_map(|item| Some((item.get("id")?.as_str()?, item.get("statistics")?))).collect();
    observations.extend(valid.into_iter().map(|id| {
        let observation = match found.get(id.as_str()) {
            Some(statistics) => Observation::Metrics(statistics_metrics(statistics)),
            None => Observation::Gone,
        };
        (id.clone(), observation)
    }));
    Ok(observations)
}

/// The metrics of a video's `statistics`.
pub fn statistics_metrics(statistics: &Value) -> Metrics {
    metrics(&[
        (Metric::Views, count(statistics.get("viewCount"))),
        (Metric::Likes, count(statistics.get("likeCount"))),
        (Metric::Comments, count(statistics.get("commentCount"))),
    ])
}

/// A `404` for the whole list says the base URL is wrong, not that every video is gone.
fn not_there() -> HttpError {
    HttpError::Rejected {
        status: 404,
        detail: "no videos endpoint here (check collector.youtube_url)".into(),
        body: Value::Null,
    }
}

/// Turns quota and rate-limit refusals into pauses of YouTube alone.
fn refine(call: &Call<'_>, status: u16, detail: String, body: Value) -> HttpError {
    let reason = body.pointer("/error/errors/0/reason").and_then(Value::as_str).unwrap_or_default();
    let until = match reason {
        "quotaExceeded" | "dailyLimitExceeded" => next_quota_reset(call.now),
        "rateLimitExceeded" | "userRateLimitExceeded" => call.now + call.http.rate_limit_default(),
        "keyInvalid" | "keyExpired" | "forbidden" => return HttpError::Refused { status, detail, body },
        _ if status == 401 || status == 403 => return HttpError::Refused { status, detail, body },
        _ => return HttpError::Rejected { status, detail, body },
    };
    call.gate.pause_until(until);
    HttpError::RateLimited { until }
}

/// The next 08:00 UTC after `now`.
fn next_quota_reset(now: DateTime<Utc>) -> DateTime<Utc> {
    let eight = NaiveTime::from_hms_opt(8, 0, 0).expect("a valid time");
    let today = now.date_naive().and_time(eight).and_utc();
    if today > now { today } else { today.checked_add_days(Days::new(1)).expect("a representable date") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn statistics_give_views_likes_and_comments() {
        let statistics = json!({"viewCount": "1200", "likeCount": "45", "favoriteCount": "0", "commentCount": "7"});
        let expected = Metrics::from([(Metric::Views, 1200), (Metric::Likes, 45), (Metric::Comments, 7)]);
        assert_eq!(statistics_metrics(&statistics), expected);
        let hidden = json!({"viewCount": "1200", "favoriteCount": "0"});
        assert_eq!(statistics_metrics(&hidden), Metrics::from([(Metric::Views, 1200)]));
    }

    #[test]
    fn the_quota_resets_at_the_next_eight_utc() {
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        assert_eq!(next_quota_reset(at("2026-11-01T07:59:00Z")), at("2026-11-01T08:00:00Z"));
        assert_eq!(next_quota_reset(at("2026-11-01T08:00:00Z")), at("2026-11-02T08:00:00Z"));
    }
}
