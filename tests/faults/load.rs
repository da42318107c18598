//! What a scenario publishes: the generator's valid events with invalid messages
//! interleaved, and what must be stored once all of it has been applied.

use std::collections::{BTreeMap, HashSet};

use ecpat_indicators::broker::routing_key_for;
use serde_json::{Value, json};

use crate::common::generate::Rng;

/// One invalid message after every this many events.
const INVALID_EVERY: usize = 97;
const PUBLICATION: &str = "org.ecpat.research.publication.recorded";

/// What one message is, and so what applying it stores.
#[derive(Clone, Debug)]
pub enum Kind {
    /// A valid event: its `source` and `id` (a duplicate pair stores nothing).
    Event(String, String),
    /// An invalid message: one rejection with this reason.
    Invalid(&'static str),
    /// A valid event that fails every time it is applied: nothing.
    Poison,
}

/// Messages in publishing order, and what they must leave behind.
pub struct Load {
    /// The valid events, in publishing order: the model's input.
    pub events: Vec<Value>,
    /// Every message with its routing key.
    pub messages: Vec<(String, Vec<u8>)>,
    /// What each message is, by position.
    pub kinds: Vec<Kind>,
}

impl Load {
    /// `events`, one message each, with an invalid message after every [`INVALID_EVERY`].
    pub fn new(events: Vec<Value>) -> Load {
        let mut load = Load { events: vec![], messages: vec![], kinds: vec![] };
        for (i, event) in events.into_iter().enumerate() {
            let identity = (text(&event["source"]), text(&event["id"]));
            load.push(event.to_string(), Kind::Event(identity.0, identity.1));
            load.events.push(event);
            if i % INVALID_EVERY == INVALID_EVERY / 2 {
                let (reason, body) = invalid(i);
                load.push(body, Kind::Invalid(reason));
            }
        }
        load
    }

    /// The same load with `poison` published halfway through.
    pub fn with_poison(mut self, poison: &Value) -> Load {
        let middle = self.messages.len() / 2;
        let body = poison.to_string();
        self.messages.insert(middle, (routing_key_for(&body), body.into_bytes()));
        self.kinds.insert(middle, Kind::Poison);
        self
    }

    fn push(&mut self, body: String, kind: Kind) {
        self.messages.push((routing_key_for(&body), body.into_bytes()));
        self.kinds.push(kind);
    }

    /// Stored events and rejections once exactly the first `k` messages have been applied.
    pub fn after(&self, k: usize) -> (i64, i64) {
        let mut events = HashSet::new();
        let mut rejections = 0;
        for kind in &self.kinds[..k] {
            match kind {
                Kind::Event(source, id) => {
                    events.insert((source, id));
                }
                Kind::Invalid(_) => rejections += 1,
                Kind::Poison => {}
            }
        }
        (events.len() as i64, rejections)
    }

    /// Stored events and rejections once everything has been applied.
    pub fn expected(&self) -> (i64, i64) {
        self.after(self.kinds.len())
    }

    /// Rejections by reason once everything has been applied.
    pub fn rejections(&self) -> BTreeMap<String, i64> {
        let mut reasons = BTreeMap::new();
        for kind in &self.kinds {
            if let Kind::Invalid(reason) = kind {
                *reasons.entry((*reason).to_owned()).or_default() += 1;
            }
        }
        reasons
    }
}

fn text(value: &Value) -> String {
    value.as_str().expect("generated events have string attributes").to_owned()
}

/// The `i`-th invalid message: each reason in turn, each body distinct.
fn invalid(i: usize) -> (&'static str, String) {
    let event = |event_type: &str, data: Value| {
        json!({
            "specversion": "1.0", "id": format!("invalid-{i}"), "source": "urn:ecpat:fr:faults",
            "type": event_type, "time": "2022-01-01T00:00:00Z", "data": data,
        })
    };
    match i / INVALID_EVERY % 4 {
        0 => ("not_json", format!("{{\"id\": \"invalid-{i}\", ")),
        1 => {
            let mut body = event(PUBLICATION, json!({}));
            body["specversion"] = json!("0.3");
            ("invalid_envelope", body.to_string())
        }
        2 => ("unknown_type", event("org.ecpat.unknown.recorded", json!({"n": i})).to_string()),
        _ => {
            // A publication without its title.
            let data = json!({
                "publication_id": format!("pub-{i}"), "scope": "global", "contributed": true,
                "published_on": "2019-05-01",
            });
            ("invalid_data", event(PUBLICATION, data).to_string())
        }
    }
}

/// Every event of `events` three times, in an order shuffled by `seed`.
pub fn storm(events: &[Value], seed: u64) -> Vec<Value> {
    let mut out: Vec<Value> = events.iter().flat_map(|e| [e.clone(), e.clone(), e.clone()]).collect();
    let mut rng = Rng::new(seed);
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i as u64 + 1) as usize);
    }
    out
}
