//! All-distinct records, for the benchmark's `--distinct` mode and the memory run: every
//! event is a record of its own (no correction, no withdrawal, no duplicate), so that the
//! set of current records grows with the backlog.

use std::collections::HashSet;

use serde_json::Value;

/// The field that holds each event type's record key (with `year`, for expertise).
const KEY_FIELDS: [(&str, &str); 10] = [
    ("org.ecpat.social.metrics.snapshot", "post_id"),
    ("org.ecpat.research.publication.recorded", "publication_id"),
    ("org.ecpat.un.submission.recorded", "submission_id"),
    ("org.ecpat.un.recommendation.outcome", "recommendation_id"),
    ("org.ecpat.media.story.recorded", "story_id"),
    ("org.ecpat.advocacy.initiative.recorded", "initiative_id"),
    ("org.ecpat.survivors.participation.recorded", "participation_id"),
    ("org.ecpat.children.outreach.recorded", "outreach_id"),
    ("org.ecpat.capacity.training.recorded", "training_id"),
    ("org.ecpat.member.expertise.assessed", "member"),
];

/// `n` valid events of all record types from `seed`, the realistic ones of the test
/// generator less its withdrawals and exact duplicates, each with an id and a record key
/// of its own: `d{first + i}` for the `i`th. Runs with different `first` do not collide.
pub fn events(seed: u64, first: usize, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    let mut round = 0;
    while out.len() < n {
        // About 13% of the generator's events are withdrawals or copies: draw a quarter more.
        let drawn = crate::generate::events_with_pool(seed + round, (n - out.len()) * 5 / 4 + 16, 5_000);
        round += 1;
        let mut ids = HashSet::new();
        for mut event in drawn {
            let new_id = ids.insert(event["id"].as_str().unwrap_or_default().to_owned());
            let Some((_, field)) = KEY_FIELDS.iter().find(|(t, _)| event["type"] == *t) else { continue };
            if !new_id || out.len() == n {
                continue;
            }
            let unique = format!("d{}", first + out.len());
            event["id"] = Value::from(unique.as_str());
            event["data"][field] = Value::from(unique);
            out.push(event);
        }
    }
    out
}
