//! Facebook Graph API: `GET {base}/{post-id}?fields=shares,reactions.summary(total_count)
//! .limit(0),comments.summary(total_count).limit(0)`, one post per request, with the Page
//! access token of `ECPAT_FACEBOOK_ACCESS_TOKEN` as a bearer token.
//!
//! | Facebook | metric |
//! | --- | --- |
//! | `shares.count` (absent when never shared: 0) | `shares` |
//! | `reactions.summary.total_count` | `likes` |
//! | `comments.summary.total_count` | `comments` |
//!
//! A `404` or `410` means gone. The Graph API answers a deleted post with `400`, code 100,
//! subcode 33, which it also uses for a missing permission: such a post stays active, with
//! the error kept in `last_error`. Errors with the throttling codes 4, 17, 32 and 613
//! pause Facebook; code 190 (an expired or invalid token) is a refusal.

use serde_json::Value;

use super::http::{Answer, Call, HttpError};
use super::{Metrics, Observation, count, metrics};
use crate::records::Metric;

/// The fields asked for: counts only (`limit(0)`), no reaction or comment lists.
pub const FIELDS: &str = "shares,reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0)";

/// The API reads one post per request here (a batch fails whole if one post is missing).
pub const PER_REQUEST: usize = 1;

/// The Graph API's throttling error codes.
const THROTTLED: [i64; 4] = [4, 17, 32, 613];
/// Its code for an invalid or expired access token.
const BAD_TOKEN: i64 = 190;

/// Reads each post's counts.
pub async fn fetch(call: &Call<'_>, ids: &[String]) -> Result<Vec<(String, Observation)>, HttpError> {
    let mut observations = Vec::with_capacity(ids.len());
    for id in ids {
        let mut url = call.url(&[id]);
        url.query_pairs_mut().append_pair("fields", FIELDS);
        let observation = match call.send(call.get_with_bearer(url)).await {
            Ok(Answer::Json(post)) => Observation::Metrics(post_metrics(&post)),
            Ok(Answer::NotFound) => Observation::Gone,
            Err(HttpError::Refused { status, detail, body } | HttpError::Rejected { status, detail, body }) => {
                return Err(refine(call, status, detail, body));
            }
            Err(e) => return Err(e),
        };
        observations.push((id.clone(), observation));
    }
    Ok(observations)
}

/// The metrics of a post with [`FIELDS`].
pub fn post_metrics(post: &Value) -> Metrics {
    metrics(&[
        (Metric::Shares, count(post.pointer("/shares/count")).or(Some(0))),
        (Metric::Likes, count(post.pointer("/reactions/summary/total_count"))),
        (Metric::Comments, count(post.pointer("/comments/summary/total_count"))),
    ])
}

/// Turns throttling into a pause of Facebook alone, and a bad token into a refusal.
fn refine(call: &Call<'_>, status: u16, detail: String, body: Value) -> HttpError {
    let code = body.pointer("/error/code").and_then(Value::as_i64).unwrap_or_default();
    if THROTTLED.contains(&code) {
        let until = call.now + call.http.rate_limit_default();
        call.gate.pause_until(until);
        return HttpError::RateLimited { until };
    }
    if code == BAD_TOKEN || status == 401 || status == 403 {
        return HttpError::Refused { status, detail, body };
    }
    HttpError::Rejected { status, detail, body }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_post_gives_shares_likes_and_comments() {
        let post = json!({"id": "1_2", "shares": {"count": 12},
            "reactions": {"data": [], "summary": {"total_count": 50, "viewer_reaction": "NONE"}},
            "comments": {"data": [], "summary": {"order": "ranked", "total_count": 7, "can_comment": true}}});
        let expected = Metrics::from([(Metric::Shares, 12), (Metric::Likes, 50), (Metric::Comments, 7)]);
        assert_eq!(post_metrics(&post), expected);
        let never_shared = json!({"id": "1_3", "reactions": {"data": [], "summary": {"total_count": 1}}});
        assert_eq!(post_metrics(&never_shared), Metrics::from([(Metric::Shares, 0), (Metric::Likes, 1)]));
    }
}
