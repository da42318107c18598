//! When a tracked post is polled, and the snapshot ids that make a repeated poll a
//! duplicate (pure).
//!
//! Time is cut into poll slots aligned on the Unix epoch (15-minute slots while a post is
//! young, daily ones after). A post is polled once per slot, and a snapshot's id is derived
//! from (platform, post, slot): a poll repeated within its slot, after a failed
//! bookkeeping step, a restart or by a second collector, publishes the same id again, which
//! the worker counts as a duplicate.

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use crate::config;

/// The polling schedule of `[collector]`.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    young: TimeDelta,
    young_for: TimeDelta,
    old: TimeDelta,
    stop_after: TimeDelta,
}

impl Schedule {
    /// The schedule of the settings (intervals from one second to a year).
    pub fn new(settings: &config::Collector) -> Schedule {
        let secs = |n: u64| TimeDelta::seconds(n.clamp(1, 365 * 86_400) as i64);
        Schedule {
            young: secs(settings.young_interval_secs),
            young_for: TimeDelta::days(settings.young_for_days.into()),
            old: secs(settings.old_interval_secs),
            stop_after: TimeDelta::days(settings.stop_after_days.into()),
        }
    }

    /// The poll interval of a post at `at`: short while it is young, long after.
    pub fn interval(&self, published_at: DateTime<Utc>, at: DateTime<Utc>) -> TimeDelta {
        if at - published_at < self.young_for { self.young } else { self.old }
    }

    /// The start of the poll slot that `at` falls in.
    pub fn slot(&self, published_at: DateTime<Utc>, at: DateTime<Utc>) -> DateTime<Utc> {
        let interval = self.interval(published_at, at).num_seconds();
        let start = at.timestamp().div_euclid(interval) * interval;
        DateTime::from_timestamp(start, 0).expect("a slot start is a valid time")
    }

    /// When a post polled at `at` is due again: the start of the next slot.
    pub fn next_poll(&self, published_at: DateTime<Utc>, at: DateTime<Utc>) -> DateTime<Utc> {
        self.slot(published_at, at) + self.interval(published_at, at)
    }

    /// Posts published before this are no longer polled.
    pub fn oldest(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.stop_after
    }
}

/// The id of the snapshot of one post in one poll slot: a SHA-256 of the three, in hex.
pub fn event_id(platform: &str, post_id: &str, slot: DateTime<Utc>) -> String {
    let mut hash = Sha256::new();
    // Identifiers hold no control characters, so NUL separates the parts unambiguously.
    for part in [platform, post_id, &slot.timestamp().to_string()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            young: TimeDelta::minutes(15),
            young_for: TimeDelta::days(30),
            old: TimeDelta::days(1),
            stop_after: TimeDelta::days(365),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn young_posts_are_polled_every_quarter_hour_then_daily() {
        let published = at("2026-11-01T10:07:00Z");
        assert_eq!(schedule().next_poll(published, at("2026-11-01T10:08:30Z")), at("2026-11-01T10:15:00Z"));
        assert_eq!(schedule().next_poll(published, at("2026-11-30T23:59:00Z")), at("2026-12-01T00:00:00Z"));
        assert_eq!(schedule().next_poll(published, at("2026-12-02T10:08:30Z")), at("2026-12-03T00:00:00Z"));
    }

    #[test]
    fn polls_within_one_slot_share_an_id_and_the_next_slot_does_not() {
        let published = at("2026-11-01T10:07:00Z");
        let first = schedule().slot(published, at("2026-11-01T10:15:00Z"));
        let retried = schedule().slot(published, at("2026-11-01T10:29:59Z"));
        let next = schedule().slot(published, at("2026-11-01T10:30:00Z"));
        assert_eq!(event_id("x", "1", first), event_id("x", "1", retried));
        assert_ne!(event_id("x", "1", first), event_id("x", "1", next));
        assert_ne!(event_id("x", "1", first), event_id("x", "2", first));
        assert_ne!(event_id("x", "12", first), event_id("x1", "2", first));
        assert_eq!(event_id("x", "1", first).len(), 64);
    }

    #[test]
    fn posts_older_than_the_stop_age_are_left_out() {
        assert_eq!(schedule().oldest(at("2026-11-01T00:00:00Z")), at("2025-11-01T00:00:00Z"));
    }
}
