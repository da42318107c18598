//! The event one observation of one post becomes: an `org.ecpat.social.metrics.snapshot`
//! (docs/events.md) whose id is derived from the platform, the post and the poll slot (pure).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::schedule::event_id;
use super::{Metrics, Platform};
use crate::records::EventType;
use crate::store::tracking::TrackedPost;

/// The body and routing key of the snapshot of `post`, observed at `observed_at` in the
/// poll slot starting at `slot`. `metrics` must not be empty.
pub fn snapshot(
    platform: Platform,
    post: &TrackedPost,
    metrics: &Metrics,
    slot: DateTime<Utc>,
    observed_at: DateTime<Utc>,
) -> (String, Vec<u8>) {
    let event_type = EventType::SocialSnapshot.as_str();
    let mut data = json!({
        "platform": platform.name(),
        "post_id": post.post_id,
        "member": post.member,
        "published_at": post.published_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "metrics": metrics,
    });
    if let Some(publication_id) = &post.publication_id {
        data["publication_id"] = Value::from(publication_id.as_str());
    }
    if let Some(url) = &post.url {
        data["url"] = Value::from(url.as_str());
    }
    let event = json!({
        "specversion": "1.0",
        "id": event_id(platform.name(), &post.post_id, slot),
        "source": platform.source(),
        "type": event_type,
        "time": observed_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "datacontenttype": "application/json",
        "data": data,
    });
    (event_type.to_owned(), serde_json::to_vec(&event).expect("JSON values serialize"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::envelope;
    use crate::records::Metric;

    #[test]
    fn a_snapshot_is_an_event_the_worker_accepts() {
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 10, 20, 0).unwrap();
        let post = TrackedPost {
            platform: "x".into(),
            post_id: "1850000000000000000".into(),
            member: "ecpat-france".into(),
            published_at: Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap(),
            publication_id: Some("pub-1".into()),
            url: None,
            status: "active".into(),
            origin: "cli".into(),
            tracked_since: at,
            last_polled_at: None,
            next_poll_at: at,
            last_error: None,
        };
        let metrics = Metrics::from([(Metric::Likes, 3), (Metric::Shares, 1)]);
        let slot = Utc.with_ymd_and_hms(2026, 11, 1, 10, 15, 0).unwrap();
        let (routing_key, body) = snapshot(Platform::X, &post, &metrics, slot, at);
        assert_eq!(routing_key, "org.ecpat.social.metrics.snapshot");
        let event: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(event["source"], "urn:ecpat:collector:x");
        assert_eq!(event["time"], "2026-11-01T10:20:00.000Z");
        assert_eq!(event["data"]["metrics"], json!({"likes": 3, "shares": 1}));
        assert_eq!(event["data"]["publication_id"], "pub-1");
        let decoded = envelope::decode(&body);
        assert!(decoded.rejections.is_empty(), "{:?}", decoded.rejections);
        assert_eq!(decoded.events[0].changes.len(), 2, "one series per metric");
    }
}
