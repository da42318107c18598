//! Producer rules: what each RabbitMQ user may publish (`[producers.<user>]` in the
//! settings). The user is the message's `user_id` property, which RabbitMQ checks against
//! the connection's user. Without rules every event is judged as before; with rules, an
//! event whose user is missing, unknown or outside its rules is rejected `unauthorized`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::envelope::{Decoded, Event, Reason, Rejection};
use crate::records::{Change, OrganisationKind, Record};

/// What one user may publish. An absent list, or one holding `*`, allows anything.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Rule {
    /// Prefixes of the `source` attribute it may use.
    pub sources: Option<Vec<String>>,
    /// Event types it may send, exactly.
    pub types: Option<Vec<String>>,
    /// The members it may speak for (the member fields of its records).
    pub members: Option<Vec<String>>,
}

/// The rules of every user; empty: no rules, every user may publish anything.
pub type Producers = BTreeMap<String, Rule>;

fn any(list: &Option<Vec<String>>) -> bool {
    list.as_ref().is_none_or(|items| items.iter().any(|item| item == "*"))
}

fn listed(list: &Option<Vec<String>>) -> String {
    list.as_ref().map(|items| items.join(", ")).unwrap_or_default()
}

/// The members a change speaks for: `member`, `members`, a social post's `member`, a
/// child outreach's organisation when it is a member.
fn members(change: &Change) -> Vec<&str> {
    let Change::Upsert(record) = change else { return vec![] };
    match record {
        Record::SocialPost(r) => vec![&r.member],
        Record::UnSubmission(r) => r.members.iter().map(String::as_str).collect(),
        Record::MediaStory(r) => vec![&r.member],
        Record::ChildOutreach(r) if r.organisation_kind == OrganisationKind::Member => vec![&r.organisation],
        Record::MemberExpertise(r) => vec![&r.member],
        Record::Fact(r) => r.member.iter().map(String::as_str).collect(),
        _ => vec![],
    }
}

/// Whether `user` may publish `event` under `producers`: `Err` names the rule broken.
pub fn judge(producers: &Producers, user: Option<&str>, event: &Event) -> Result<(), String> {
    if producers.is_empty() {
        return Ok(());
    }
    let Some(user) = user else {
        return Err("the message has no user_id, which producer rules require".into());
    };
    let Some(rule) = producers.get(user) else {
        return Err(format!("user {user:?} has no producer rules"));
    };
    if !any(&rule.sources) && !rule.sources.iter().flatten().any(|prefix| event.source.starts_with(prefix.as_str())) {
        return Err(format!(
            "user {user:?} may not publish source {} (its sources: {})",
            event.source,
            listed(&rule.sources)
        ));
    }
    let event_type = event.event_type.as_str();
    if !any(&rule.types) && !rule.types.iter().flatten().any(|t| t == event_type) {
        return Err(format!("user {user:?} may not publish type {event_type} (its types: {})", listed(&rule.types)));
    }
    if !any(&rule.members) {
        let allowed = rule.members.iter().flatten().map(String::as_str).collect::<Vec<_>>();
        for change in &event.changes {
            if let Some(member) = members(change).into_iter().find(|m| !allowed.contains(m)) {
                return Err(format!(
                    "user {user:?} may not speak for member {member} (its members: {})",
                    listed(&rule.members)
                ));
            }
        }
    }
    Ok(())
}

/// Rejects the events of a decoded message that `user` may not publish, each on its own,
/// as the decoder rejects the events of a batch; `body` is the message's body.
pub fn enforce(producers: &Producers, user: Option<&str>, body: &[u8], decoded: &mut Decoded) {
    if producers.is_empty() || decoded.events.is_empty() {
        return;
    }
    let text = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    let is_batch = text.trim_ascii_start().starts_with(b"[");
    // The position of each event in its batch: those the decoder did not reject, in order.
    let rejected: Vec<usize> = decoded.rejections.iter().filter_map(|r| r.index).collect();
    let mut positions = (0..).filter(|i| !rejected.contains(i));
    let mut kept = Vec::with_capacity(decoded.events.len());
    for event in std::mem::take(&mut decoded.events) {
        let index = positions.next().unwrap_or_default();
        match judge(producers, user, &event) {
            Ok(()) => kept.push(event),
            Err(detail) if is_batch => decoded.rejections.push(Rejection {
                reason: Reason::Unauthorized,
                detail: format!("batch event {index}: {detail}"),
                raw: event.raw.into_bytes(),
                index: Some(index),
            }),
            Err(detail) => decoded.rejections.push(Rejection {
                reason: Reason::Unauthorized,
                detail,
                raw: body.to_vec(),
                index: None,
            }),
        }
    }
    decoded.rejections.sort_by_key(|r| r.index);
    decoded.events = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::decode;
    use serde_json::json;

    fn rules() -> Producers {
        let mut producers = Producers::new();
        producers.insert(
            "research".into(),
            Rule {
                sources: Some(vec!["urn:ecpat:research".into()]),
                types: Some(vec!["org.ecpat.research.publication.recorded".into()]),
                members: None,
            },
        );
        producers.insert(
            "ecpat-belgique".into(),
            Rule { sources: Some(vec!["*".into()]), types: None, members: Some(vec!["ecpat-belgique".into()]) },
        );
        producers
    }

    fn publication(source: &str) -> Event {
        let body = json!({"specversion": "1.0", "id": "1", "source": source, "time": "2020-01-01T00:00:00Z",
            "type": "org.ecpat.research.publication.recorded",
            "data": {"publication_id": "p1", "title": "T", "scope": "global", "countries": [], "themes": [],
                     "contributed": true, "published_on": "2020-01-01"}});
        decode(body.to_string().as_bytes()).events.remove(0)
    }

    fn story(member: &str) -> Event {
        let body = json!({"specversion": "1.0", "id": "2", "source": "urn:x", "time": "2020-01-01T00:00:00Z",
            "type": "org.ecpat.media.story.recorded",
            "data": {"story_id": "s1", "member": member, "outlet": "Le Monde", "global_advocacy": false,
                     "published_on": "2020-01-01"}});
        let decoded = decode(body.to_string().as_bytes());
        assert!(decoded.rejections.is_empty(), "{decoded:?}");
        decoded.events.into_iter().next().unwrap()
    }

    #[test]
    fn no_rules_allow_everything() {
        assert_eq!(judge(&Producers::new(), None, &publication("urn:any")), Ok(()));
    }

    #[test]
    fn allowed_source_prefix_and_type() {
        assert_eq!(judge(&rules(), Some("research"), &publication("urn:ecpat:research:team")), Ok(()));
    }

    #[test]
    fn each_rule_broken_is_named() {
        let rules = rules();
        let missing = judge(&rules, None, &publication("urn:ecpat:research")).unwrap_err();
        assert!(missing.contains("no user_id"), "{missing}");
        let unknown = judge(&rules, Some("stranger"), &publication("urn:ecpat:research")).unwrap_err();
        assert_eq!(unknown, "user \"stranger\" has no producer rules");
        let source = judge(&rules, Some("research"), &publication("urn:other")).unwrap_err();
        assert_eq!(source, "user \"research\" may not publish source urn:other (its sources: urn:ecpat:research)");
        let kind = judge(&rules, Some("research"), &story("ecpat-france")).unwrap_err();
        assert!(kind.starts_with("user \"research\" may not publish source urn:x"), "{kind}");
        let member = judge(&rules, Some("ecpat-belgique"), &story("ecpat-france")).unwrap_err();
        assert_eq!(
            member,
            "user \"ecpat-belgique\" may not speak for member ecpat-france (its members: ecpat-belgique)"
        );
        assert_eq!(judge(&rules, Some("ecpat-belgique"), &story("ecpat-belgique")), Ok(()));
    }

    #[test]
    fn types_are_exact() {
        let mut rules = rules();
        rules.get_mut("research").unwrap().sources = None;
        let kind = judge(&rules, Some("research"), &story("ecpat-france")).unwrap_err();
        assert_eq!(
            kind,
            "user \"research\" may not publish type org.ecpat.media.story.recorded (its types: org.ecpat.research.publication.recorded)"
        );
    }

    #[test]
    fn a_batch_is_judged_event_by_event() {
        let good = json!({"specversion": "1.0", "id": "2", "source": "urn:x", "time": "2020-01-01T00:00:00Z",
            "type": "org.ecpat.media.story.recorded",
            "data": {"story_id": "s1", "member": "ecpat-belgique", "outlet": "O", "global_advocacy": false,
                     "published_on": "2020-01-01"}});
        let mut bad = good.clone();
        bad["data"]["member"] = json!("ecpat-france");
        let body = json!([good, {"specversion": "1.0"}, bad]).to_string();
        let mut decoded = decode(body.as_bytes());
        enforce(&rules(), Some("ecpat-belgique"), body.as_bytes(), &mut decoded);
        assert_eq!(decoded.events.len(), 1);
        let reasons: Vec<_> = decoded.rejections.iter().map(|r| (r.reason, r.index)).collect();
        assert_eq!(reasons, vec![(Reason::InvalidEnvelope, Some(1)), (Reason::Unauthorized, Some(2))]);
        assert!(decoded.rejections[1].detail.starts_with("batch event 2: user \"ecpat-belgique\" may not speak"));
    }
}
