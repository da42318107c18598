//! A social post's attributes follow its latest snapshot, whatever the order of arrival,
//! the split into batches, and the withdrawals in between.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::indicators::Code;
use crate::indicators::rules::TallyKey;

/// A snapshot of post `x`/`1` published at `published_at`.
fn published(id: &str, time: &str, published_at: &str, metrics: serde_json::Value) -> Event {
    let data = json!({"platform": "x", "post_id": "1", "member": "ecpat-france",
        "published_at": published_at, "publication_id": "p", "metrics": metrics});
    event("urn:a", id, time, "org.ecpat.social.metrics.snapshot", data)
}

/// What the store holds after applying plans batch after batch: the current versions
/// and the tallies (as `apply_delta_in` moves them).
#[derive(Default)]
struct Stored {
    before: Before,
    sums: BTreeMap<TallyKey, i64>,
    items: BTreeMap<(TallyKey, String), i64>,
    next_seq: i64,
}

impl Stored {
    /// Plans one batch against what is stored, and stores the plan.
    fn apply(&mut self, events: &[&Event]) -> &mut Self {
        let numbered: Vec<(i64, &Event)> = events
            .iter()
            .map(|&e| {
                self.next_seq += 1;
                (self.next_seq, e)
            })
            .collect();
        let plan = plan(&self.before, &numbered);
        let delta = plan.delta(&self.before, crate::framework::built_in());
        self.before.records.extend(plan.records);
        self.before.post_withdrawals.extend(plan.post_withdrawals);
        for (key, change) in delta.sums {
            *self.sums.entry(key).or_default() += change;
        }
        for (key, change) in delta.items {
            *self.items.entry(key).or_default() += change;
        }
        self.sums.retain(|_, v| *v != 0);
        self.items.retain(|_, v| *v != 0);
        self
    }

    /// Each live series: metric -> (value, year published).
    fn live(&self) -> BTreeMap<&'static str, (i64, i32)> {
        use chrono::Datelike;
        self.before
            .records
            .values()
            .filter_map(|c| match &c.record {
                Some(Record::SocialPost(s)) => Some((s.metric.as_str(), (s.value, s.published_at.year()))),
                _ => None,
            })
            .collect()
    }

    /// KE3's total for `year`, and AP3's.
    fn totals(&self, year: &str) -> (i64, i64) {
        let total = |indicator: Code| TallyKey {
            framework: crate::framework::DEFAULT_ID.to_owned(),
            indicator: indicator.as_str().to_owned(),
            period: year.to_owned(),
            dimension: String::new(),
            key: String::new(),
        };
        let ke3 = self.sums.get(&total(Code::KE3)).copied().unwrap_or(0);
        let ap3 = self.items.iter().filter(|((key, _), refs)| *key == total(Code::AP3) && **refs > 0).count();
        (ke3, ap3 as i64)
    }

    /// The tallies moved batch by batch are those of the current records, counted afresh.
    fn check_recompute(&self) {
        let mut delta = Delta::default();
        for record in self.before.records.values().filter_map(|c| c.record.as_ref()) {
            delta.add(record, 1);
        }
        delta.prune();
        // Batches give distinct items under their year only (the store derives the others).
        delta.items.retain(|(key, _), _| key.period.parse::<i32>().is_ok());
        assert_eq!((&delta.sums, &delta.items), (&self.sums, &self.items), "recomputed tallies differ");
    }
}

/// Every split of `events` into one or two batches, in every order of the events.
fn every_arrival(events: &[&Event], check: impl Fn(&Stored)) {
    let mut orders: Vec<Vec<&Event>> = vec![vec![]];
    for event in events {
        orders = orders
            .into_iter()
            .flat_map(|order| {
                (0..=order.len()).map(move |at| {
                    let mut order = order.clone();
                    order.insert(at, *event);
                    order
                })
            })
            .collect();
    }
    for order in &orders {
        for split in 0..=order.len() {
            let mut stored = Stored::default();
            stored.apply(&order[..split]).apply(&order[split..]);
            stored.check_recompute();
            check(&stored);
            let mut one_by_one = Stored::default();
            for event in order {
                one_by_one.apply(&[event]);
            }
            one_by_one.check_recompute();
            check(&one_by_one);
        }
    }
}

#[test]
fn a_snapshot_with_only_likes_and_a_corrected_published_at_moves_every_metric_of_the_post() {
    let first = published("s1", "2019-06-01T00:00:00Z", "2019-05-01T00:00:00Z", json!({"likes": 10, "shares": 3}));
    let corrected = published("s2", "2019-07-01T00:00:00Z", "2020-05-01T00:00:00Z", json!({"likes": 12}));
    every_arrival(&[&first, &corrected], |stored| {
        assert_eq!(stored.live(), [("likes", (12, 2020)), ("shares", (3, 2020))].into());
        assert_eq!(stored.totals("2020"), (15, 1));
        assert_eq!(stored.totals("2019"), (0, 0), "shares left in the old year");
    });
}

#[test]
fn a_late_older_snapshot_gives_its_series_a_value_but_not_its_attributes() {
    let older = published("s1", "2019-06-01T00:00:00Z", "2019-05-01T00:00:00Z", json!({"likes": 10, "shares": 3}));
    let latest = published("s3", "2019-08-01T00:00:00Z", "2021-05-01T00:00:00Z", json!({"likes": 12}));
    let between = published("s2", "2019-07-01T00:00:00Z", "2022-05-01T00:00:00Z", json!({"shares": 5}));
    every_arrival(&[&older, &latest, &between], |stored| {
        assert_eq!(stored.live(), [("likes", (12, 2021)), ("shares", (5, 2021))].into());
        assert_eq!(stored.totals("2021"), (17, 1));
    });
}

#[test]
fn after_a_post_withdrawal_a_newer_snapshot_brings_back_its_series_with_its_attributes() {
    let first = published("s1", "2019-06-01T00:00:00Z", "2019-05-01T00:00:00Z", json!({"likes": 10, "shares": 3}));
    let withdrawal = withdraw_post("w", "2019-07-01T00:00:00Z");
    let newer = published("s2", "2019-08-01T00:00:00Z", "2020-05-01T00:00:00Z", json!({"clicks": 4}));
    every_arrival(&[&first, &withdrawal, &newer], |stored| {
        assert_eq!(stored.live(), [("clicks", (4, 2020))].into());
        assert_eq!((stored.totals("2019"), stored.totals("2020")), ((0, 0), (4, 1)));
    });
}

#[test]
fn a_snapshot_older_than_a_withdrawal_changes_nothing_even_when_it_is_the_post_latest() {
    // The withdrawal removes every series; the latest snapshot is older than it, and
    // the one live series comes from a snapshot newer than the withdrawal: which then is
    // the post's latest snapshot.
    let first = published("s1", "2019-06-01T00:00:00Z", "2019-05-01T00:00:00Z", json!({"likes": 10}));
    let withdrawal = withdraw_post("w", "2019-07-01T00:00:00Z");
    let late = published("s0", "2019-06-15T00:00:00Z", "2022-05-01T00:00:00Z", json!({"shares": 3}));
    every_arrival(&[&first, &withdrawal, &late], |stored| {
        assert!(stored.live().is_empty());
        assert!(stored.sums.is_empty() && stored.items.is_empty());
    });
    let revived = published("s2", "2019-08-01T00:00:00Z", "2020-05-01T00:00:00Z", json!({"likes": 7}));
    every_arrival(&[&first, &withdrawal, &late, &revived], |stored| {
        assert_eq!(stored.live(), [("likes", (7, 2020))].into());
        assert_eq!(stored.totals("2020"), (7, 1));
    });
}

#[test]
fn a_withdrawal_between_two_snapshots_keeps_the_series_of_the_newer_with_the_latest_attributes() {
    // likes is carried by a snapshot newer than the withdrawal; shares only by an older
    // one, withdrawn; a snapshot newer still, with only comments, gives the attributes.
    let old = published("s1", "2019-06-01T00:00:00Z", "2019-05-01T00:00:00Z", json!({"shares": 3}));
    let withdrawal = withdraw_post("w", "2019-07-01T00:00:00Z");
    let likes = published("s2", "2019-08-01T00:00:00Z", "2020-05-01T00:00:00Z", json!({"likes": 7}));
    let latest = published("s3", "2019-09-01T00:00:00Z", "2021-05-01T00:00:00Z", json!({"comments": 2}));
    every_arrival(&[&old, &withdrawal, &likes, &latest], |stored| {
        assert_eq!(stored.live(), [("comments", (2, 2021)), ("likes", (7, 2021))].into());
        assert_eq!((stored.totals("2020"), stored.totals("2021")), ((0, 0), (7, 1)));
    });
}
