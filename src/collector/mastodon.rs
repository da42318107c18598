//! Mastodon: `GET {base}/api/v1/statuses/:id` on the configured instance. Public statuses
//! need no token; `ECPAT_MASTODON_ACCESS_TOKEN` (scope `read:statuses`) is sent if set.
//!
//! | Mastodon (Status entity) | metric |
//! | --- | --- |
//! | `favourites_count` | `likes` |
//! | `reblogs_count` | `shares` |
//! | `replies_count` | `comments` |

use serde_json::Value;

use super::http::{Answer, Call, HttpError};
use super::{Metrics, Observation, count, metrics};
use crate::records::Metric;

/// The API reads one status per request.
pub const PER_REQUEST: usize = 1;

/// Reads each status; a `404` or `410` (the instance's JSON error) means it is gone.
pub async fn fetch(call: &Call<'_>, ids: &[String]) -> Result<Vec<(String, Observation)>, HttpError> {
    let mut observations = Vec::with_capacity(ids.len());
    for id in ids {
        let request = call.get_with_bearer(call.url(&["api", "v1", "statuses", id]));
        let observation = match call.send(request).await? {
            Answer::Json(status) => Observation::Metrics(status_metrics(&status)),
            Answer::NotFound => Observation::Gone,
        };
        observations.push((id.clone(), observation));
    }
    Ok(observations)
}

/// The metrics of a Status entity.
pub fn status_metrics(status: &Value) -> Metrics {
    metrics(&[
        (Metric::Likes, count(status.get("favourites_count"))),
        (Metric::Shares, count(status.get("reblogs_count"))),
        (Metric::Comments, count(status.get("replies_count"))),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_status_gives_likes_shares_and_comments() {
        let status =
            json!({"id": "1", "replies_count": 2, "reblogs_count": 5, "favourites_count": 11, "quotes_count": 1});
        let expected = Metrics::from([(Metric::Likes, 11), (Metric::Shares, 5), (Metric::Comments, 2)]);
        assert_eq!(status_metrics(&status), expected);
    }
}
