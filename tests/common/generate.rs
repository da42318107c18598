//! A seeded generator of realistic, valid event streams with corrections, withdrawals,
//! revivals, same-time versions and exact duplicates, drawn from small pools of keys so
//! that records collide often.

use serde_json::{Value, json};

/// A small deterministic pseudo-random generator (SplitMix64).
pub struct Rng {
    state: u64,
    /// How many distinct keys each record type draws from.
    pool: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: seed, pool: 6 }
    }

    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn some<T: Clone>(&mut self, items: &[T], max: usize) -> Vec<T> {
        let n = 1 + self.below(max as u64) as usize;
        (0..n).map(|_| self.pick(items).clone()).collect()
    }
}

const MEMBERS: [&str; 5] = ["ecpat-france", "ecpat-belgique", "ecpat-uk", "ecpat-taiwan", "ecpat-philippines"];
const COUNTRIES: [&str; 5] = ["fr", "BE", "GB", "ph", "XK"];
const PLATFORMS: [&str; 2] = ["facebook", "x"];
const METRICS: [&str; 7] = ["likes", "shares", "clicks", "stories", "comments", "views", "impressions"];
const SCOPES: [&str; 4] = ["global", "thematic", "regional", "national"];
const THEMES: [&str; 4] = ["online", "access_to_justice", "trafficking", "other"];
const MECHANISMS: [&str; 5] = ["upr", "crc", "un_other", "acerwc", "council_of_europe"];
const MANIFESTATIONS: [&str; 4] = ["prostitution", "travel_tourism", "online", "trafficking"];
const SOURCES: [&str; 2] = ["urn:ecpat:fr:a", "urn:ecpat:fr:b"];
pub const RECORD_TYPES: [&str; 10] = [
    "social_post",
    "publication",
    "un_submission",
    "un_recommendation",
    "media_story",
    "advocacy_initiative",
    "survivor_participation",
    "child_outreach",
    "capacity_training",
    "member_expertise",
];

fn date(rng: &mut Rng) -> String {
    // Years 2018-2021, with some first and last days of years.
    let year = 2018 + rng.below(4);
    if rng.chance(15) {
        return format!("{year}-{}", rng.pick(&["01-01", "12-31"]));
    }
    format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))
}

fn timestamp(rng: &mut Rng) -> String {
    // Around new year often, with offsets, so the UTC year differs from the local one.
    let year = 2018 + rng.below(4);
    let offset = rng.pick(&["Z", "+01:00", "-05:00", "+09:30"]);
    if rng.chance(30) {
        return format!("{year}-01-01T00:{:02}:00{offset}", rng.below(60));
    }
    format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}{offset}",
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    )
}

fn key(rng: &mut Rng, prefix: &str) -> String {
    let pool = rng.pool;
    format!("{prefix}{}", rng.below(pool))
}

fn data_for(rng: &mut Rng, record_type: &str) -> (String, Value) {
    let (event_type, data) = match record_type {
        "social_post" => {
            let mut metrics = serde_json::Map::new();
            for metric in rng.some(&METRICS, 3) {
                metrics.insert(metric.to_owned(), json!(rng.below(1000)));
            }
            let mut data = json!({
                "platform": rng.pick(&PLATFORMS), "post_id": key(rng, "p"), "member": rng.pick(&MEMBERS),
                "published_at": timestamp(rng), "metrics": metrics,
            });
            if rng.chance(70) {
                data["publication_id"] = json!(key(rng, "pub"));
            }
            ("social.metrics.snapshot", data)
        }
        "publication" => {
            let scope = *rng.pick(&SCOPES);
            let mut data = json!({
                "publication_id": key(rng, "pub"), "title": "Study", "scope": scope,
                "themes": rng.some(&THEMES, 3), "contributed": rng.chance(60), "published_on": date(rng),
            });
            if scope == "national" || rng.chance(30) {
                data["countries"] = json!(rng.some(&COUNTRIES, 3));
            }
            ("research.publication.recorded", data)
        }
        "un_submission" => (
            "un.submission.recorded",
            json!({
                "submission_id": key(rng, "sub"), "mechanism": rng.pick(&MECHANISMS), "country": rng.pick(&COUNTRIES),
                "submitted_on": date(rng), "in_alliance": rng.chance(50), "members": rng.some(&MEMBERS, 2),
            }),
        ),
        "un_recommendation" => (
            "un.recommendation.outcome",
            json!({
                "recommendation_id": key(rng, "rec"), "mechanism": rng.pick(&["upr", "crc"]),
                "country": rng.pick(&COUNTRIES), "taken_up": rng.chance(60), "decided_on": date(rng),
            }),
        ),
        "media_story" => (
            "media.story.recorded",
            json!({
                "story_id": key(rng, "story"), "member": rng.pick(&MEMBERS), "outlet": "Le Monde",
                "global_advocacy": rng.chance(60), "published_on": date(rng),
            }),
        ),
        "advocacy_initiative" => (
            "advocacy.initiative.recorded",
            json!({
                "initiative_id": key(rng, "ini"), "title": "Code of conduct",
                "private_sector_engagement": rng.pick(&["none", "limited", "significant"]), "started_on": date(rng),
            }),
        ),
        "survivor_participation" => (
            "survivors.participation.recorded",
            json!({
                "participation_id": key(rng, "par"), "country": rng.pick(&COUNTRIES),
                "activity": rng.pick(&["programme", "advocacy"]), "date": date(rng),
            }),
        ),
        "child_outreach" => (
            "children.outreach.recorded",
            json!({
                "outreach_id": key(rng, "out"), "organisation": rng.pick(&MEMBERS),
                "organisation_kind": rng.pick(&["member", "partner"]),
                "channel": rng.pick(&["social_media", "participatory_media", "traditional_media"]),
                "regular": rng.chance(60), "date": date(rng),
            }),
        ),
        "capacity_training" => (
            "capacity.training.recorded",
            json!({
                "training_id": key(rng, "tr"), "title": "Training", "held_on": date(rng),
                "beneficiaries": rng.some(&MEMBERS, 3),
            }),
        ),
        _ => (
            "member.expertise.assessed",
            json!({
                "member": rng.pick(&MEMBERS), "year": 2018 + rng.below(4),
                "manifestations": rng.some(&MANIFESTATIONS, 5),
            }),
        ),
    };
    (format!("org.ecpat.{event_type}"), data)
}

fn withdrawal(rng: &mut Rng) -> Value {
    let record_type = *rng.pick(&RECORD_TYPES);
    let key = match record_type {
        "social_post" => json!({"platform": rng.pick(&PLATFORMS), "post_id": key(rng, "p")}),
        "publication" => json!({"publication_id": key(rng, "pub")}),
        "un_submission" => json!({"submission_id": key(rng, "sub")}),
        "un_recommendation" => json!({"recommendation_id": key(rng, "rec")}),
        "media_story" => json!({"story_id": key(rng, "story")}),
        "advocacy_initiative" => json!({"initiative_id": key(rng, "ini")}),
        "survivor_participation" => json!({"participation_id": key(rng, "par")}),
        "child_outreach" => json!({"outreach_id": key(rng, "out")}),
        "capacity_training" => json!({"training_id": key(rng, "tr")}),
        _ => json!({"member": rng.pick(&MEMBERS), "year": 2018 + rng.below(4)}),
    };
    json!({"record_type": record_type, "key": key})
}

/// `n` events from `seed`: about 8% withdrawals and 5% exact duplicates of earlier ones;
/// event times come from a small set so that versions often tie on time, some of them
/// with more than nine fractional digits (equal or not past the ninth).
pub fn events(seed: u64, n: usize) -> Vec<Value> {
    events_with_pool(seed, n, 6)
}

/// Like [`events`], with `pool` distinct keys per record type (more keys, fewer collisions).
pub fn events_with_pool(seed: u64, n: usize, pool: u64) -> Vec<Value> {
    let mut rng = Rng { state: seed, pool };
    let mut out: Vec<Value> = Vec::with_capacity(n);
    for i in 0..n {
        if !out.is_empty() && rng.chance(5) {
            let copy = out[rng.below(out.len() as u64) as usize].clone();
            out.push(copy);
            continue;
        }
        let (event_type, data) = if rng.chance(8) {
            ("org.ecpat.record.withdrawn".to_owned(), withdrawal(&mut rng))
        } else {
            let record_type = *rng.pick(&RECORD_TYPES);
            data_for(&mut rng, record_type)
        };
        let fraction =
            if rng.chance(20) { rng.pick(&[".000000000", ".0000000001", ".00000000010", ".00000000005"]) } else { &"" };
        let time = format!(
            "2022-01-{:02}T{:02}:00:00{fraction}{}",
            1 + rng.below(5),
            rng.below(3),
            rng.pick(&["Z", "+01:00"])
        );
        out.push(json!({
            "specversion": "1.0", "id": format!("ev-{i}"), "source": rng.pick(&SOURCES), "type": event_type,
            "time": time, "data": data,
        }));
    }
    out
}
