//! X API v2: `GET {base}/2/tweets?ids=...&tweet.fields=public_metrics`, up to 100 posts
//! per request, with the bearer token of `ECPAT_X_BEARER_TOKEN`.
//!
//! | X (`public_metrics`) | metric |
//! | --- | --- |
//! | `like_count` | `likes` |
//! | `retweet_count` + `quote_count` | `shares` |
//! | `reply_count` | `comments` |
//! | `impression_count` | `impressions` |
//!
//! A post named in `errors` as `resource-not-found` is gone; other per-post errors (e.g. a
//! protected account) leave it active. Rate limits: `429` with `x-rate-limit-reset`, and a
//! successful answer with `x-rate-limit-remaining: 0` pauses X until that reset.

use std::collections::HashMap;

use serde_json::Value;

use super::http::{Answer, Call, HttpError};
use super::{MAX_METRIC, Metrics, Observation, count, metrics};
use crate::records::Metric;

/// The API reads up to 100 posts per request.
pub const PER_REQUEST: usize = 100;

/// Reads the public metrics of `ids` in one request.
pub async fn fetch(call: &Call<'_>, ids: &[String]) -> Result<Vec<(String, Observation)>, HttpError> {
    // Post ids are numbers; anything else would spoil the whole request.
    let (valid, invalid): (Vec<&String>, Vec<&String>) =
        ids.iter().partition(|id| !id.is_empty() && id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit()));
    let mut observations: Vec<(String, Observation)> =
        invalid.iter().map(|id| ((*id).clone(), Observation::Failed("not an X post id".into()))).collect();
    if valid.is_empty() {
        return Ok(observations);
    }
    let mut url = call.url(&["2", "tweets"]);
    let joined = valid.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(",");
    url.query_pairs_mut().append_pair("ids", &joined).append_pair("tweet.fields", "public_metrics");
    let body = match call.send(call.get_with_bearer(url)).await? {
        Answer::Json(body) => body,
        Answer::NotFound => {
            let detail = "no tweets endpoint here (check collector.x_url)".into();
            return Err(HttpError::Rejected { status: 404, detail, body: Value::Null });
        }
    };
    let empty = Vec::new();
    let data = body.get("data").and_then(Value::as_array).unwrap_or(&empty);
    let errors = body.get("errors").and_then(Value::as_array).unwrap_or(&empty);
    let found: HashMap<&str, &Value> =
        data.iter().filter_map(|post| Some((post.get("id")?.as_str()?, post.get("public_metrics")?))).collect();
    let failed: HashMap<&str, &Value> =
        errors.iter().filter_map(|error| Some((error.get("resource_id")?.as_str()?, error))).collect();
    observations.extend(valid.into_iter().map(|id| {
        let observation = match (found.get(id.as_str()), failed.get(id.as_str())) {
            (Some(public), _) => Observation::Metrics(public_metrics(public)),
            (None, Some(error)) if is_not_found(error) => Observation::Gone,
            (None, Some(error)) => Observation::Failed(describe(error)),
            (None, None) => Observation::Failed("left out of the answer".into()),
        };
        (id.clone(), observation)
    }));
    Ok(observations)
}

/// The metrics of a post's `public_metrics`.
pub fn public_metrics(public: &Value) -> Metrics {
    let shares = match (count(public.get("retweet_count")), count(public.get("quote_count"))) {
        (None, None) => None,
        (retweets, quotes) => Some((retweets.unwrap_or(0) + quotes.unwrap_or(0)).min(MAX_METRIC)),
    };
    metrics(&[
        (Metric::Likes, count(public.get("like_count"))),
        (Metric::Shares, shares),
        (Metric::Comments, count(public.get("reply_count"))),
        (Metric::Impressions, count(public.get("impression_count"))),
    ])
}

fn is_not_found(error: &Value) -> bool {
    error.get("type").and_then(Value::as_str).is_some_and(|t| t.ends_with("/resource-not-found"))
}

fn describe(error: &Value) -> String {
    let text = |name| error.get(name).and_then(Value::as_str).unwrap_or_default();
    format!("{}: {}", text("title"), text("detail"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn public_metrics_give_likes_shares_comments_and_impressions() {
        let public = json!({"retweet_count": 4, "reply_count": 2, "like_count": 30, "quote_count": 1,
            "bookmark_count": 3, "impression_count": 900});
        let expected = Metrics::from([
            (Metric::Likes, 30),
            (Metric::Shares, 5),
            (Metric::Comments, 2),
            (Metric::Impressions, 900),
        ]);
        assert_eq!(public_metrics(&public), expected);
        assert_eq!(public_metrics(&json!({"like_count": 1})), Metrics::from([(Metric::Likes, 1)]));
    }
}
