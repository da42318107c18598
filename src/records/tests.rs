//! Parsing every event type of docs/events.md: valid data gives the expected, normalised
//! changes; each broken rule gives a `FieldError` naming the field.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::parse::parse_event_data;
use super::*;

// ---- Arrange: valid data for every event type, and ways to break it. ----

/// Valid `data` for `event_type`, using every field (optional ones too).
fn valid(event_type: EventType) -> Value {
    match event_type {
        EventType::SocialSnapshot => json!({
            "platform": "facebook",
            "post_id": "10158",
            "member": "ecpat-france",
            "published_at": "2019-06-01T10:00:00+02:00",
            "publication_id": "pub-2019-01",
            "url": "https://facebook.com/ecpat/posts/10158",
            "metrics": {"likes": 120, "shares": 14, "views": 3000}
        }),
        EventType::Publication => json!({
            "publication_id": "pub-2019-01",
            "title": "Panorama national de l'exploitation sexuelle des enfants",
            "scope": "national",
            "countries": ["fr", "Be"],
            "themes": ["online", "access_to_justice"],
            "contributed": true,
            "published_on": "2019-03-15",
            "doi": "10.1234/ecpat.2019.1",
            "url": "https://ecpat-france.fr/panorama"
        }),
        EventType::UnSubmission => json!({
            "submission_id": "sub-upr-fra-3",
            "mechanism": "upr",
            "country": "fr",
            "submitted_on": "2017-10-01",
            "cycle": "UPR-3",
            "in_alliance": true,
            "members": ["ecpat-france", "ecpat-belgique"],
            "document": "A/HRC/WG.6/29/FRA/3"
        }),
        EventType::UnRecommendation => json!({
            "recommendation_id": "rec-crc-fra-1",
            "mechanism": "crc",
            "country": "fr",
            "taken_up": true,
            "document": "CRC/C/FRA/CO/6-7",
            "paragraph": "45(b)",
            "decided_on": "2023-06-02"
        }),
        EventType::MediaStory => json!({
            "story_id": "story-1",
            "member": "ecpat-france",
            "outlet": "Le Monde",
            "global_advocacy": true,
            "published_on": "2019-11-20",
            "url": "https://lemonde.fr/story-1"
        }),
        EventType::AdvocacyInitiative => json!({
            "initiative_id": "init-1",
            "title": "The Code",
            "private_sector_engagement": "significant",
            "partners": ["Accor", "Air France"],
            "started_on": "2018-04-01"
        }),
        EventType::SurvivorParticipation => json!({
            "participation_id": "part-1",
            "country": "ph",
            "activity": "advocacy",
            "date": "2019-05-05"
        }),
        EventType::ChildOutreach => json!({
            "outreach_id": "out-1",
            "organisation": "ecpat-france",
            "organisation_kind": "member",
            "channel": "social_media",
            "regular": true,
            "date": "2020-02-02"
        }),
        EventType::CapacityTraining => json!({
            "training_id": "train-1",
            "title": "Protéger les enfants en ligne",
            "held_on": "2019-09-09",
            "beneficiaries": ["ecpat-france", "ecpat-luxembourg"]
        }),
        EventType::MemberExpertise => json!({
            "member": "ecpat-france",
            "year": 2019,
            "manifestations": ["online", "trafficking", "travel_tourism"]
        }),
        EventType::Fact => json!({
            "fact_id": "fact-1",
            "kind": "hotline_supported",
            "date": "2019-07-01",
            "member": "ecpat-france",
            "countries": ["fr", "TG", "FR"],
            "value": 3,
            "tags": ["urgent", "online", "urgent"],
            "attributes": {"region": "west_africa", "partner": "Point de Contact"}
        }),
        EventType::Withdrawal => json!({
            "record_type": "publication",
            "key": {"publication_id": "pub-2019-01"}
        }),
    }
}

/// `data` with the field at `path` (dot-separated, e.g. `metrics.likes`) set to `value`.
fn with(data: &Value, path: &str, value: Value) -> Value {
    let mut data = data.clone();
    let (parents, name) = path.rsplit_once('.').map_or(("", path), |(p, n)| (p, n));
    let mut object = &mut data;
    for part in parents.split('.').filter(|p| !p.is_empty()) {
        object = object.get_mut(part).expect("the parent exists");
    }
    object.as_object_mut().expect("the parent is an object").insert(name.to_owned(), value);
    data
}

/// `data` without the field at `path`.
fn without(data: &Value, path: &str) -> Value {
    let mut data = data.clone();
    let (parents, name) = path.rsplit_once('.').map_or(("", path), |(p, n)| (p, n));
    let mut object = &mut data;
    for part in parents.split('.').filter(|p| !p.is_empty()) {
        object = object.get_mut(part).expect("the parent exists");
    }
    object.as_object_mut().expect("the parent is an object").remove(name);
    data
}

/// The single record an event upserts.
fn record(event_type: EventType, data: &Value) -> Record {
    match parse_event_data(event_type, data) {
        Ok(changes) => match changes.as_slice() {
            [Change::Upsert(record)] => record.clone(),
            other => panic!("{data} gave {other:?}, not one upsert"),
        },
        Err(e) => panic!("{data} was rejected: {e}"),
    }
}

/// The field named by the error `data` gives.
fn rejected_field(event_type: EventType, data: &Value) -> String {
    match parse_event_data(event_type, data) {
        Err(e) => e.field,
        Ok(changes) => panic!("{} accepted {data} as {changes:?}", event_type.as_str()),
    }
}

/// Asserts that setting `path` to each of `values` in valid data is rejected, naming `field`.
fn assert_rejects(event_type: EventType, path: &str, values: &[Value], field: &str) {
    for value in values {
        let data = with(&valid(event_type), path, value.clone());
        assert_eq!(rejected_field(event_type, &data), field, "{}: {path} = {value}", event_type.as_str());
    }
}

/// Asserts that setting `path` to each of `values` in valid data is accepted.
fn assert_accepts(event_type: EventType, path: &str, values: &[Value]) {
    for value in values {
        let data = with(&valid(event_type), path, value.clone());
        if let Err(e) = parse_event_data(event_type, &data) {
            panic!("{}: {path} = {value} was rejected: {e}", event_type.as_str());
        }
    }
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
}

fn chars(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

const RECORD_EVENT_TYPES: [EventType; 11] = [
    EventType::SocialSnapshot,
    EventType::Publication,
    EventType::UnSubmission,
    EventType::UnRecommendation,
    EventType::MediaStory,
    EventType::AdvocacyInitiative,
    EventType::SurvivorParticipation,
    EventType::ChildOutreach,
    EventType::CapacityTraining,
    EventType::MemberExpertise,
    EventType::Fact,
];

// ---- Valid events give the expected, normalised records. ----

#[test]
fn a_snapshot_gives_one_social_series_per_metric_it_carries() {
    let data = valid(EventType::SocialSnapshot);

    let changes = parse_event_data(EventType::SocialSnapshot, &data).unwrap();

    let series = |metric, value| {
        Change::Upsert(Record::SocialPost(SocialSeries {
            platform: "facebook".into(),
            post_id: "10158".into(),
            metric,
            value,
            member: "ecpat-france".into(),
            published_at: Utc.with_ymd_and_hms(2019, 6, 1, 8, 0, 0).unwrap(),
            publication_id: Some("pub-2019-01".into()),
            url: Some("https://facebook.com/ecpat/posts/10158".into()),
        }))
    };
    assert_eq!(changes, vec![series(Metric::Likes, 120), series(Metric::Shares, 14), series(Metric::Views, 3000)]);
}

#[test]
fn a_snapshot_carrying_every_metric_gives_seven_series() {
    let metrics =
        json!({"likes": 1, "shares": 2, "clicks": 3, "stories": 4, "comments": 5, "views": 6, "impressions": 7});
    let data = with(&valid(EventType::SocialSnapshot), "metrics", metrics);

    let changes = parse_event_data(EventType::SocialSnapshot, &data).unwrap();

    let carried: Vec<(Metric, i64)> = changes
        .iter()
        .map(|c| match c {
            Change::Upsert(Record::SocialPost(s)) => (s.metric, s.value),
            other => panic!("not a social series: {other:?}"),
        })
        .collect();
    assert_eq!(carried, Metric::ALL.iter().copied().zip(1_i64..=7).collect::<Vec<_>>());
}

#[test]
fn a_snapshot_series_is_keyed_by_platform_post_and_metric_and_grouped_by_post() {
    let data = with(&valid(EventType::SocialSnapshot), "metrics", json!({"likes": 1}));

    let series = record(EventType::SocialSnapshot, &data);

    assert_eq!(
        series.key(),
        RecordKey { record_type: RecordType::SocialPost, key: r#"["facebook","10158","likes"]"#.into() }
    );
    assert_eq!(series.group(), Some(post_key("facebook", "10158")));
}

#[test]
fn a_publication_is_parsed_with_its_countries_upper_cased() {
    let data = valid(EventType::Publication);

    let publication = record(EventType::Publication, &data);

    assert_eq!(
        publication,
        Record::Publication(Publication {
            publication_id: "pub-2019-01".into(),
            title: "Panorama national de l'exploitation sexuelle des enfants".into(),
            scope: Scope::National,
            countries: vec!["FR".into(), "BE".into()],
            themes: vec![Theme::Online, Theme::AccessToJustice],
            contributed: true,
            published_on: day(2019, 3, 15),
            doi: Some("10.1234/ecpat.2019.1".into()),
            url: Some("https://ecpat-france.fr/panorama".into()),
        })
    );
}

#[test]
fn a_un_submission_is_parsed_with_its_country_upper_cased() {
    let data = valid(EventType::UnSubmission);

    let submission = record(EventType::UnSubmission, &data);

    assert_eq!(
        submission,
        Record::UnSubmission(UnSubmission {
            submission_id: "sub-upr-fra-3".into(),
            mechanism: Mechanism::Upr,
            country: "FR".into(),
            submitted_on: day(2017, 10, 1),
            cycle: Some("UPR-3".into()),
            in_alliance: true,
            members: vec!["ecpat-france".into(), "ecpat-belgique".into()],
            document: Some("A/HRC/WG.6/29/FRA/3".into()),
        })
    );
}

#[test]
fn a_un_recommendation_outcome_is_parsed_with_its_country_upper_cased() {
    let data = valid(EventType::UnRecommendation);

    let recommendation = record(EventType::UnRecommendation, &data);

    assert_eq!(
        recommendation,
        Record::UnRecommendation(UnRecommendation {
            recommendation_id: "rec-crc-fra-1".into(),
            mechanism: RecommendationMechanism::Crc,
            country: "FR".into(),
            taken_up: true,
            document: Some("CRC/C/FRA/CO/6-7".into()),
            paragraph: Some(json!("45(b)")),
            decided_on: day(2023, 6, 2),
        })
    );
}

#[test]
fn a_media_story_is_parsed() {
    let data = valid(EventType::MediaStory);

    let story = record(EventType::MediaStory, &data);

    assert_eq!(
        story,
        Record::MediaStory(MediaStory {
            story_id: "story-1".into(),
            member: "ecpat-france".into(),
            outlet: "Le Monde".into(),
            global_advocacy: true,
            published_on: day(2019, 11, 20),
            url: Some("https://lemonde.fr/story-1".into()),
        })
    );
}

#[test]
fn an_advocacy_initiative_is_parsed() {
    let data = valid(EventType::AdvocacyInitiative);

    let initiative = record(EventType::AdvocacyInitiative, &data);

    assert_eq!(
        initiative,
        Record::AdvocacyInitiative(AdvocacyInitiative {
            initiative_id: "init-1".into(),
            title: "The Code".into(),
            private_sector_engagement: Engagement::Significant,
            partners: vec!["Accor".into(), "Air France".into()],
            started_on: day(2018, 4, 1),
        })
    );
}

#[test]
fn a_survivor_participation_is_parsed_with_its_country_upper_cased() {
    let data = valid(EventType::SurvivorParticipation);

    let participation = record(EventType::SurvivorParticipation, &data);

    assert_eq!(
        participation,
        Record::SurvivorParticipation(SurvivorParticipation {
            participation_id: "part-1".into(),
            country: "PH".into(),
            activity: Activity::Advocacy,
            date: day(2019, 5, 5),
        })
    );
}

#[test]
fn a_child_outreach_is_parsed() {
    let data = valid(EventType::ChildOutreach);

    let outreach = record(EventType::ChildOutreach, &data);

    assert_eq!(
        outreach,
        Record::ChildOutreach(ChildOutreach {
            outreach_id: "out-1".into(),
            organisation: "ecpat-france".into(),
            organisation_kind: OrganisationKind::Member,
            channel: Channel::SocialMedia,
            regular: true,
            date: day(2020, 2, 2),
        })
    );
}

#[test]
fn a_capacity_training_is_parsed() {
    let data = valid(EventType::CapacityTraining);

    let training = record(EventType::CapacityTraining, &data);

    assert_eq!(
        training,
        Record::CapacityTraining(CapacityTraining {
            training_id: "train-1".into(),
            title: "Protéger les enfants en ligne".into(),
            held_on: day(2019, 9, 9),
            beneficiaries: vec!["ecpat-france".into(), "ecpat-luxembourg".into()],
        })
    );
}

#[test]
fn a_member_expertise_assessment_is_parsed_and_keyed_by_member_and_year() {
    let data = valid(EventType::MemberExpertise);

    let assessment = record(EventType::MemberExpertise, &data);

    assert_eq!(
        assessment,
        Record::MemberExpertise(MemberExpertise {
            member: "ecpat-france".into(),
            year: 2019,
            manifestations: vec![Manifestation::Online, Manifestation::Trafficking, Manifestation::TravelTourism],
        })
    );
    assert_eq!(assessment.key().key, r#"["ecpat-france",2019]"#);
}

#[test]
fn every_documented_enumerated_value_is_accepted() {
    let cases: [(EventType, &str, &[&str]); 9] = [
        (EventType::Publication, "scope", &["global", "thematic", "regional", "national"]),
        (
            EventType::UnSubmission,
            "mechanism",
            &[
                "upr",
                "crc",
                "un_special_procedures",
                "un_other",
                "acerwc",
                "achpr",
                "council_of_europe",
                "european_union",
                "iachr",
                "regional_other",
            ],
        ),
        (EventType::UnRecommendation, "mechanism", &["upr", "crc"]),
        (EventType::AdvocacyInitiative, "private_sector_engagement", &["none", "limited", "significant"]),
        (EventType::SurvivorParticipation, "activity", &["programme", "advocacy"]),
        (EventType::ChildOutreach, "organisation_kind", &["member", "partner"]),
        (EventType::ChildOutreach, "channel", &["social_media", "participatory_media", "traditional_media"]),
        (
            EventType::Publication,
            "themes",
            &[
                "prostitution",
                "travel_tourism",
                "online",
                "trafficking",
                "access_to_justice",
                "child_participation",
                "recovery_reintegration",
                "legislation",
                "other",
            ],
        ),
        (EventType::MemberExpertise, "manifestations", &["prostitution", "travel_tourism", "online", "trafficking"]),
    ];
    for (event_type, field, values) in cases {
        let is_list = matches!(field, "themes" | "manifestations");
        let values: Vec<Value> = values.iter().map(|v| if is_list { json!([v]) } else { json!(v) }).collect();

        assert_accepts(event_type, field, &values);
    }
}

#[test]
fn a_fact_is_parsed_with_its_lists_normalised_and_each_item_once() {
    let data = valid(EventType::Fact);

    let fact = record(EventType::Fact, &data);

    assert_eq!(
        fact,
        Record::Fact(Fact {
            fact_id: "fact-1".into(),
            kind: "hotline_supported".into(),
            date: day(2019, 7, 1),
            member: Some("ecpat-france".into()),
            countries: vec!["FR".into(), "TG".into()],
            value: 3,
            tags: vec!["urgent".into(), "online".into()],
            attributes: Some(BTreeMap::from([
                ("partner".to_owned(), "Point de Contact".to_owned()),
                ("region".to_owned(), "west_africa".to_owned()),
            ])),
        })
    );
    assert_eq!(fact.key(), RecordKey { record_type: RecordType::Fact, key: r#"["fact-1"]"#.into() });
}

#[test]
fn a_fact_with_only_its_required_fields_is_worth_1_and_has_no_member_list_or_attribute() {
    let data = json!({"fact_id": "f", "kind": "k", "date": "2020-01-01"});

    let fact = record(EventType::Fact, &data);

    assert_eq!(
        fact,
        Record::Fact(Fact {
            fact_id: "f".into(),
            kind: "k".into(),
            date: day(2020, 1, 1),
            member: None,
            countries: vec![],
            value: 1,
            tags: vec![],
            attributes: None,
        })
    );
}

#[test]
fn a_fact_may_have_empty_lists_and_empty_attributes() {
    let data = with(&with(&valid(EventType::Fact), "countries", json!([])), "tags", json!([]));
    let data = with(&data, "attributes", json!({}));

    let fact = record(EventType::Fact, &data);

    assert!(
        matches!(&fact, Record::Fact(f) if f.countries.is_empty() && f.tags.is_empty() && f.attributes == Some(BTreeMap::new())),
        "{fact:?}"
    );
}

#[test]
fn a_fact_kind_must_be_a_slug() {
    let bad = [
        json!(""),
        json!("Hotline"),
        json!("1hotline"),
        json!("_hotline"),
        json!("hotline-supported"),
        json!("hotline supported"),
        json!("hôtline"),
        json!(chars('k', 65)),
        json!(3),
    ];

    assert_rejects(EventType::Fact, "kind", &bad, "data.kind");
    assert_accepts(EventType::Fact, "kind", &[json!("k"), json!("a1_b2"), json!(chars('k', 64))]);
}

#[test]
fn a_fact_tag_must_be_a_slug_and_is_named_by_index() {
    let cases = [
        json!(["urgent", "Urgent"]),
        json!(["urgent", "-x"]),
        json!(["urgent", ""]),
        json!(["urgent", chars('t', 65)]),
        json!(["urgent", 7]),
    ];

    assert_rejects(EventType::Fact, "tags", &cases, "data.tags[1]");
    assert_rejects(EventType::Fact, "tags", &[json!("urgent")], "data.tags");
    assert_accepts(EventType::Fact, "tags", &[json!([chars('t', 64), "a"])]);
}

#[test]
fn a_fact_attribute_name_must_be_a_slug() {
    let cases = [
        (json!({"Region": "x"}), "data.attributes.Region".to_owned()),
        (json!({"region": "x", "1st": "x"}), "data.attributes.1st".to_owned()),
        (json!({"": "x"}), r#"data.attributes."""#.to_owned()),
        (json!({"the region": "x"}), r#"data.attributes."the region""#.to_owned()),
        (json!({"région": "x"}), r#"data.attributes."région""#.to_owned()),
        (json!({chars('a', 65): "x"}), format!("data.attributes.\"{}\"", chars('a', 65))),
    ];
    for (attributes, field) in cases {
        assert_rejects(EventType::Fact, "attributes", &[attributes], &field);
    }
    assert_accepts(EventType::Fact, "attributes", &[json!({chars('a', 64): "x", "a": "x", "a_1": "x"})]);
}

#[test]
fn a_fact_attribute_value_must_be_text_of_at_most_200_characters() {
    let too_long = json!({"region": chars('r', 201)});
    let not_text = [json!({"region": 3}), json!({"region": null}), json!({"region": ["x"]}), json!({"region": true})];

    assert_rejects(EventType::Fact, "attributes", &[too_long], "data.attributes.region");
    assert_rejects(EventType::Fact, "attributes", &not_text, "data.attributes.region");
    assert_rejects(EventType::Fact, "attributes", &[json!(["region"]), json!("x")], "data.attributes");
    assert_accepts(
        EventType::Fact,
        "attributes",
        &[json!({"region": chars('r', 200)}), json!({"region": chars('é', 200)}), json!({"region": ""})],
    );
}

#[test]
fn a_fact_value_is_an_integer_from_0_to_a_trillion() {
    let bad = [json!(-1), json!(1_000_000_000_001_i64), json!(1.5), json!("3"), json!(true), json!(u64::MAX)];

    assert_rejects(EventType::Fact, "value", &bad, "data.value");
    for value in [0_i64, 1_000_000_000_000] {
        let fact = record(EventType::Fact, &with(&valid(EventType::Fact), "value", json!(value)));

        assert!(matches!(&fact, Record::Fact(f) if f.value == value), "{fact:?}");
    }
}

#[test]
fn a_fact_value_that_is_absent_or_null_is_1() {
    for data in [without(&valid(EventType::Fact), "value"), with(&valid(EventType::Fact), "value", Value::Null)] {
        let fact = record(EventType::Fact, &data);

        assert!(matches!(&fact, Record::Fact(f) if f.value == 1), "{fact:?}");
    }
}

#[test]
fn a_fact_country_must_be_an_assigned_code_and_is_named_by_index() {
    let bad = [json!(["FR", "ZZ"]), json!(["FR", "UK"]), json!(["FR", "fra"]), json!(["FR", 250])];

    assert_rejects(EventType::Fact, "countries", &bad, "data.countries[1]");
    assert_rejects(EventType::Fact, "countries", &[json!("FR")], "data.countries");
}

#[test]
fn a_fact_error_is_one_line_naming_the_field() {
    let data = with(&valid(EventType::Fact), "attributes", json!({"region": chars('r', 201)}));

    let error = parse_event_data(EventType::Fact, &data).unwrap_err();

    assert_eq!(error.to_string(), "data.attributes.region: must have at most 200 characters, has 201");
    let data = with(&valid(EventType::Fact), "kind", json!("Hotline"));
    let error = parse_event_data(EventType::Fact, &data).unwrap_err();
    assert_eq!(error.to_string(), r#"data.kind: "Hotline" is not a kind (^[a-z][a-z0-9_]{0,63}$)"#);
}

// ---- Withdrawals. ----

#[test]
fn a_withdrawal_names_the_same_key_as_the_record_it_withdraws() {
    let cases = [
        (EventType::Publication, "publication", json!({"publication_id": "pub-2019-01"})),
        (EventType::UnSubmission, "un_submission", json!({"submission_id": "sub-upr-fra-3"})),
        (EventType::UnRecommendation, "un_recommendation", json!({"recommendation_id": "rec-crc-fra-1"})),
        (EventType::MediaStory, "media_story", json!({"story_id": "story-1"})),
        (EventType::AdvocacyInitiative, "advocacy_initiative", json!({"initiative_id": "init-1"})),
        (EventType::SurvivorParticipation, "survivor_participation", json!({"participation_id": "part-1"})),
        (EventType::ChildOutreach, "child_outreach", json!({"outreach_id": "out-1"})),
        (EventType::CapacityTraining, "capacity_training", json!({"training_id": "train-1"})),
        (EventType::MemberExpertise, "member_expertise", json!({"member": "ecpat-france", "year": 2019})),
        (EventType::Fact, "fact", json!({"fact_id": "fact-1"})),
    ];
    for (event_type, record_type, key) in cases {
        let withdrawal = json!({"record_type": record_type, "key": key});

        let changes = parse_event_data(EventType::Withdrawal, &withdrawal).unwrap();

        let withdrawn = record(event_type, &valid(event_type));
        assert_eq!(changes, vec![Change::Withdraw(withdrawn.key())], "{record_type}");
    }
}

#[test]
fn a_withdrawal_names_the_same_key_as_the_record_even_with_quotes_backslashes_or_non_ascii() {
    let awkward = "pub \"2019\" \\ é 😀";
    let published = with(&valid(EventType::Publication), "publication_id", json!(awkward));
    let withdrawal = json!({"record_type": "publication", "key": {"publication_id": awkward}});
    let changes = parse_event_data(EventType::Withdrawal, &withdrawal).unwrap();
    assert_eq!(changes, vec![Change::Withdraw(record(EventType::Publication, &published).key())]);

    let assessed = with(&valid(EventType::MemberExpertise), "year", json!(2021));
    let withdrawal = json!({"record_type": "member_expertise", "key": {"member": "ecpat-france", "year": 2021}});
    let changes = parse_event_data(EventType::Withdrawal, &withdrawal).unwrap();
    assert_eq!(changes, vec![Change::Withdraw(record(EventType::MemberExpertise, &assessed).key())]);
}

#[test]
fn a_social_post_withdrawal_names_the_whole_post() {
    let withdrawal = json!({"record_type": "social_post", "key": {"platform": "facebook", "post_id": "10158"}});

    let changes = parse_event_data(EventType::Withdrawal, &withdrawal).unwrap();

    let series =
        record(EventType::SocialSnapshot, &with(&valid(EventType::SocialSnapshot), "metrics", json!({"likes": 1})));
    assert_eq!(changes, vec![Change::WithdrawPost(series.group().unwrap())]);
    assert_eq!(changes, vec![Change::WithdrawPost(r#"["facebook","10158"]"#.into())]);
}

#[test]
fn a_withdrawal_with_an_unknown_record_type_is_rejected() {
    assert_rejects(
        EventType::Withdrawal,
        "record_type",
        &[json!("post"), json!("Publication"), json!("publications"), json!(""), json!(3)],
        "data.record_type",
    );
}

#[test]
fn a_withdrawal_without_a_key_field_names_the_missing_field() {
    let cases = [
        (json!({"record_type": "social_post", "key": {"platform": "x"}}), "data.key.post_id"),
        (json!({"record_type": "social_post", "key": {"post_id": "1"}}), "data.key.platform"),
        (json!({"record_type": "member_expertise", "key": {"member": "ecpat-france"}}), "data.key.year"),
        (json!({"record_type": "member_expertise", "key": {"year": 2019}}), "data.key.member"),
        (json!({"record_type": "publication", "key": {}}), "data.key.publication_id"),
        (json!({"record_type": "publication", "key": {"publication_id": null}}), "data.key.publication_id"),
        (json!({"record_type": "publication"}), "data.key"),
        (json!({"record_type": "publication", "key": null}), "data.key"),
        (json!({"key": {"publication_id": "p"}}), "data.record_type"),
    ];
    for (data, field) in cases {
        assert_eq!(rejected_field(EventType::Withdrawal, &data), field, "{data}");
    }
}

#[test]
fn a_withdrawal_with_an_extra_key_field_names_it() {
    let cases = [
        (json!({"record_type": "publication", "key": {"publication_id": "p", "title": "t"}}), "data.key.title"),
        (
            json!({"record_type": "social_post", "key": {"platform": "x", "post_id": "1", "metric": "likes"}}),
            "data.key.metric",
        ),
        (json!({"record_type": "media_story", "key": {"publication_id": "p"}}), "data.key.publication_id"),
    ];
    for (data, field) in cases {
        assert_eq!(rejected_field(EventType::Withdrawal, &data), field, "{data}");
    }
}

#[test]
fn a_withdrawal_key_follows_the_rules_of_its_fields() {
    let cases = [
        (
            json!({"record_type": "member_expertise", "key": {"member": "ecpat-france", "year": "2019"}}),
            "data.key.year",
        ),
        (json!({"record_type": "member_expertise", "key": {"member": "ecpat-france", "year": 1989}}), "data.key.year"),
        (json!({"record_type": "member_expertise", "key": {"member": "ECPAT", "year": 2019}}), "data.key.member"),
        (json!({"record_type": "social_post", "key": {"platform": "X", "post_id": "1"}}), "data.key.platform"),
        (json!({"record_type": "social_post", "key": {"platform": "x", "post_id": ""}}), "data.key.post_id"),
        (json!({"record_type": "publication", "key": {"publication_id": 12}}), "data.key.publication_id"),
        (json!({"record_type": "publication", "key": "pub-2019-01"}), "data.key"),
    ];
    for (data, field) in cases {
        assert_eq!(rejected_field(EventType::Withdrawal, &data), field, "{data}");
    }
}

// ---- Required fields and JSON types. ----

#[test]
fn each_missing_required_field_is_named() {
    let required: [(EventType, &[&str]); 12] = [
        (EventType::SocialSnapshot, &["platform", "post_id", "member", "published_at", "metrics"]),
        (EventType::Publication, &["publication_id", "title", "scope", "contributed", "published_on"]),
        (EventType::UnSubmission, &["submission_id", "mechanism", "country", "submitted_on", "in_alliance", "members"]),
        (EventType::UnRecommendation, &["recommendation_id", "mechanism", "country", "taken_up", "decided_on"]),
        (EventType::MediaStory, &["story_id", "member", "outlet", "global_advocacy", "published_on"]),
        (EventType::AdvocacyInitiative, &["initiative_id", "title", "private_sector_engagement", "started_on"]),
        (EventType::SurvivorParticipation, &["participation_id", "country", "activity", "date"]),
        (EventType::ChildOutreach, &["outreach_id", "organisation", "organisation_kind", "channel", "regular", "date"]),
        (EventType::CapacityTraining, &["training_id", "title", "held_on", "beneficiaries"]),
        (EventType::MemberExpertise, &["member", "year"]),
        (EventType::Fact, &["fact_id", "kind", "date"]),
        (EventType::Withdrawal, &["record_type", "key"]),
    ];
    for (event_type, fields) in required {
        for field in fields {
            let absent = without(&valid(event_type), field);
            let null = with(&valid(event_type), field, Value::Null);

            assert_eq!(
                rejected_field(event_type, &absent),
                format!("data.{field}"),
                "{} without {field}",
                event_type.as_str()
            );
            assert_eq!(
                rejected_field(event_type, &null),
                format!("data.{field}"),
                "{} with {field} null",
                event_type.as_str()
            );
        }
    }
}

/// `manifestations` has no `?` in docs/events.md, so it is required (it may be empty).
#[test]
fn an_expertise_assessment_without_manifestations_is_rejected() {
    let data = without(&valid(EventType::MemberExpertise), "manifestations");

    assert_eq!(rejected_field(EventType::MemberExpertise, &data), "data.manifestations");
}

#[test]
fn an_expertise_assessment_may_name_no_manifestation() {
    let data = with(&valid(EventType::MemberExpertise), "manifestations", json!([]));

    let assessment = record(EventType::MemberExpertise, &data);

    assert!(matches!(assessment, Record::MemberExpertise(e) if e.manifestations.is_empty()));
}

#[test]
fn fields_of_the_wrong_json_type_are_named() {
    let cases = [
        (EventType::SocialSnapshot, "post_id", json!(10158), "data.post_id"),
        (EventType::SocialSnapshot, "platform", json!(["facebook"]), "data.platform"),
        (EventType::SocialSnapshot, "member", json!({"code": "ecpat-france"}), "data.member"),
        (EventType::SocialSnapshot, "published_at", json!(1559376000), "data.published_at"),
        (EventType::SocialSnapshot, "metrics", json!([{"likes": 1}]), "data.metrics"),
        (EventType::SocialSnapshot, "metrics", json!(12), "data.metrics"),
        (EventType::Publication, "title", json!(5), "data.title"),
        (EventType::Publication, "contributed", json!("yes"), "data.contributed"),
        (EventType::Publication, "contributed", json!(1), "data.contributed"),
        (EventType::Publication, "countries", json!("FR"), "data.countries"),
        (EventType::Publication, "countries", json!(["FR", 33]), "data.countries[1]"),
        (EventType::Publication, "themes", json!("online"), "data.themes"),
        (EventType::Publication, "themes", json!([true]), "data.themes[0]"),
        (EventType::Publication, "published_on", json!(20190315), "data.published_on"),
        (EventType::Publication, "doi", json!(10.1234), "data.doi"),
        (EventType::UnSubmission, "in_alliance", json!("true"), "data.in_alliance"),
        (EventType::UnSubmission, "members", json!("ecpat-france"), "data.members"),
        (EventType::UnSubmission, "mechanism", json!(["upr"]), "data.mechanism"),
        (EventType::UnSubmission, "country", json!(250), "data.country"),
        (EventType::UnRecommendation, "taken_up", json!(0), "data.taken_up"),
        (EventType::MediaStory, "global_advocacy", json!("false"), "data.global_advocacy"),
        (EventType::MediaStory, "outlet", json!(["Le Monde"]), "data.outlet"),
        (EventType::AdvocacyInitiative, "partners", json!("Accor"), "data.partners"),
        (EventType::AdvocacyInitiative, "partners", json!(["Accor", 7]), "data.partners[1]"),
        (EventType::ChildOutreach, "regular", json!("yes"), "data.regular"),
        (EventType::CapacityTraining, "beneficiaries", json!({"0": "ecpat-france"}), "data.beneficiaries"),
        (EventType::MemberExpertise, "year", json!("2019"), "data.year"),
        (EventType::MemberExpertise, "year", json!(2019.5), "data.year"),
        (EventType::MemberExpertise, "manifestations", json!("online"), "data.manifestations"),
        (EventType::Withdrawal, "key", json!(["publication_id"]), "data.key"),
    ];
    for (event_type, path, value, field) in cases {
        assert_rejects(event_type, path, &[value], field);
    }
}

#[test]
fn data_that_is_not_an_object_is_rejected_as_data() {
    for data in [json!([]), json!("x"), json!(null), json!(1)] {
        assert_eq!(rejected_field(EventType::MediaStory, &data), "data", "{data}");
    }
}

// ---- Members, platforms, countries. ----

#[test]
fn member_codes_must_match_the_pattern() {
    let bad = [
        json!("a"),
        json!(""),
        json!("Ecpat-france"),
        json!("ECPAT"),
        json!("-ecpat"),
        json!("ecpat_france"),
        json!("ecpat france"),
        json!("écpat"),
        json!(chars('a', 65)),
    ];
    assert_rejects(EventType::MediaStory, "member", &bad, "data.member");
    assert_rejects(EventType::SocialSnapshot, "member", &bad, "data.member");
    assert_rejects(EventType::MemberExpertise, "member", &bad, "data.member");
    assert_rejects(EventType::ChildOutreach, "organisation", &bad, "data.organisation");
    assert_rejects(EventType::Fact, "member", &bad, "data.member");
}

#[test]
fn member_codes_of_two_to_64_characters_are_accepted() {
    let good = [json!("ab"), json!("0-"), json!("ecpat-france"), json!("9ecpat"), json!(chars('a', 64))];

    assert_accepts(EventType::MediaStory, "member", &good);
    assert_accepts(EventType::ChildOutreach, "organisation", &good);
}

#[test]
fn each_member_of_a_list_is_checked_and_named_by_index() {
    assert_rejects(EventType::UnSubmission, "members", &[json!(["ecpat-france", "Ecpat"])], "data.members[1]");
    assert_rejects(EventType::CapacityTraining, "beneficiaries", &[json!(["a"])], "data.beneficiaries[0]");
    assert_rejects(
        EventType::CapacityTraining,
        "beneficiaries",
        &[json!(["ecpat-france", "ecpat-belgique", "-x"])],
        "data.beneficiaries[2]",
    );
}

#[test]
fn empty_members_and_beneficiaries_lists_are_rejected() {
    assert_rejects(EventType::UnSubmission, "members", &[json!([])], "data.members");
    assert_rejects(EventType::CapacityTraining, "beneficiaries", &[json!([])], "data.beneficiaries");
}

#[test]
fn platforms_must_match_the_pattern() {
    let bad = [
        json!(""),
        json!("Facebook"),
        json!("_x"),
        json!("-x"),
        json!("face book"),
        json!("linked.in"),
        json!(chars('x', 33)),
    ];

    assert_rejects(EventType::SocialSnapshot, "platform", &bad, "data.platform");
}

#[test]
fn platforms_of_one_to_32_characters_are_accepted() {
    let good = [
        json!("x"),
        json!("linkedin"),
        json!("tik_tok"),
        json!("mastodon-social"),
        json!("9gag"),
        json!(chars('x', 32)),
    ];

    assert_accepts(EventType::SocialSnapshot, "platform", &good);
}

#[test]
fn countries_must_be_assigned_iso_alpha_2_codes() {
    let bad = [json!("ZZ"), json!("UK"), json!("EU"), json!("FRA"), json!("F"), json!(""), json!(" FR"), json!("F1")];

    assert_rejects(EventType::UnSubmission, "country", &bad, "data.country");
    assert_rejects(EventType::UnRecommendation, "country", &bad, "data.country");
    assert_rejects(EventType::SurvivorParticipation, "country", &bad, "data.country");
    assert_rejects(EventType::Publication, "countries", &[json!(["FR", "UK"])], "data.countries[1]");
    assert_rejects(EventType::Fact, "countries", &[json!(["FR", "UK"])], "data.countries[1]");
}

#[test]
fn countries_are_case_insensitive_and_kosovo_is_accepted() {
    let cases = [("xk", "XK"), ("XK", "XK"), ("fr", "FR"), ("Fr", "FR"), ("fR", "FR"), ("GB", "GB")];
    for (input, stored) in cases {
        let data = with(&valid(EventType::SurvivorParticipation), "country", json!(input));

        let participation = record(EventType::SurvivorParticipation, &data);

        assert!(
            matches!(&participation, Record::SurvivorParticipation(p) if p.country == stored),
            "{input}: {participation:?}"
        );
    }
}

// ---- Dates and timestamps. ----

const DATE_FIELDS: [(EventType, &str); 9] = [
    (EventType::Publication, "published_on"),
    (EventType::UnSubmission, "submitted_on"),
    (EventType::UnRecommendation, "decided_on"),
    (EventType::MediaStory, "published_on"),
    (EventType::AdvocacyInitiative, "started_on"),
    (EventType::SurvivorParticipation, "date"),
    (EventType::ChildOutreach, "date"),
    (EventType::CapacityTraining, "held_on"),
    (EventType::Fact, "date"),
];

#[test]
fn dates_that_are_not_real_yyyy_mm_dd_dates_are_rejected() {
    let bad = [
        json!("2019/03/15"),
        json!("15-03-2019"),
        json!("2019-3-15"),
        json!("2019-03-15T00:00:00Z"),
        json!("2019-02-30"),
        json!("2019-13-01"),
        json!("2019-02-29"),
        json!(""),
    ];
    for (event_type, field) in DATE_FIELDS {
        assert_rejects(event_type, field, &bad, &format!("data.{field}"));
    }
}

#[test]
fn dates_must_be_written_exactly_yyyy_mm_dd() {
    // Ten characters, but not YYYY-MM-DD: a sign, a space or a single-digit part.
    let bad = [json!("+2019-3-15"), json!("+2019-03-5"), json!(" 2019-3-15"), json!("2019-03- 5"), json!("2019- 3-15")];
    for (event_type, field) in DATE_FIELDS {
        assert_rejects(event_type, field, &bad, &format!("data.{field}"));
    }
}

#[test]
fn dates_outside_1990_to_2100_are_rejected() {
    let bad = [json!("1989-12-31"), json!("2101-01-01"), json!("0001-01-01"), json!("9999-12-31")];
    for (event_type, field) in DATE_FIELDS {
        assert_rejects(event_type, field, &bad, &format!("data.{field}"));
    }
}

#[test]
fn the_first_and_last_dates_of_the_range_and_leap_days_are_accepted() {
    let cases = [("1990-01-01", day(1990, 1, 1)), ("2100-12-31", day(2100, 12, 31)), ("2020-02-29", day(2020, 2, 29))];
    for (text, expected) in cases {
        let data = with(&valid(EventType::CapacityTraining), "held_on", json!(text));

        let training = record(EventType::CapacityTraining, &data);

        assert!(matches!(&training, Record::CapacityTraining(t) if t.held_on == expected), "{text}: {training:?}");
    }
    for (event_type, field) in DATE_FIELDS {
        assert_accepts(event_type, field, &[json!("1990-01-01"), json!("2100-12-31")]);
    }
}

#[test]
fn published_at_must_be_an_rfc_3339_timestamp_with_offset() {
    let bad = [
        json!("2019-06-01T10:00:00"),
        json!("2019-06-01"),
        json!("2019-06-01T10:00"),
        json!("2019-06-01T10:00:00+02"),
        json!("01/06/2019 10:00"),
        json!("2019-02-30T10:00:00Z"),
        json!(""),
    ];

    assert_rejects(EventType::SocialSnapshot, "published_at", &bad, "data.published_at");
}

#[test]
fn published_at_outside_the_date_range_is_rejected() {
    let bad = [json!("1989-12-31T23:59:59Z"), json!("2101-01-01T00:00:00Z"), json!("1970-01-01T00:00:00Z")];

    assert_rejects(EventType::SocialSnapshot, "published_at", &bad, "data.published_at");
}

#[test]
fn published_at_at_the_ends_of_the_range_is_accepted_and_kept_in_utc() {
    let cases = [
        ("1990-01-01T00:00:00Z", Utc.with_ymd_and_hms(1990, 1, 1, 0, 0, 0).unwrap()),
        ("2100-12-31T23:59:59Z", Utc.with_ymd_and_hms(2100, 12, 31, 23, 59, 59).unwrap()),
        ("2020-01-01T00:30:00+01:00", Utc.with_ymd_and_hms(2019, 12, 31, 23, 30, 0).unwrap()),
        ("2019-12-31T20:00:00-05:00", Utc.with_ymd_and_hms(2020, 1, 1, 1, 0, 0).unwrap()),
    ];
    for (text, expected) in cases {
        let data = with(&valid(EventType::SocialSnapshot), "metrics", json!({"likes": 1}));
        let data = with(&data, "published_at", json!(text));

        let series = record(EventType::SocialSnapshot, &data);

        assert!(matches!(&series, Record::SocialPost(s) if s.published_at == expected), "{text}: {series:?}");
    }
}

// ---- Identifiers and free text. ----

const IDENTIFIER_FIELDS: [(EventType, &str); 12] = [
    (EventType::SocialSnapshot, "post_id"),
    (EventType::SocialSnapshot, "publication_id"),
    (EventType::Publication, "publication_id"),
    (EventType::UnSubmission, "submission_id"),
    (EventType::UnRecommendation, "recommendation_id"),
    (EventType::MediaStory, "story_id"),
    (EventType::AdvocacyInitiative, "initiative_id"),
    (EventType::SurvivorParticipation, "participation_id"),
    (EventType::ChildOutreach, "outreach_id"),
    (EventType::CapacityTraining, "training_id"),
    (EventType::Fact, "fact_id"),
    (EventType::UnRecommendation, "paragraph"),
];

#[test]
fn identifiers_must_have_1_to_256_characters_and_no_control_character() {
    let bad =
        [json!(""), json!(chars('i', 257)), json!("a\u{7}b"), json!("line\nbreak"), json!("tab\t"), json!("\u{7f}")];
    for (event_type, field) in IDENTIFIER_FIELDS {
        assert_rejects(event_type, field, &bad, &format!("data.{field}"));
    }
}

#[test]
fn identifiers_of_256_characters_are_accepted_counting_characters_not_bytes() {
    let good = [json!("1"), json!(chars('i', 256)), json!(chars('é', 256)), json!("post 12/3 #x")];
    for (event_type, field) in IDENTIFIER_FIELDS {
        assert_accepts(event_type, field, &good);
    }
}

#[test]
fn free_text_over_2000_characters_is_rejected() {
    let cases = [
        (EventType::SocialSnapshot, "url"),
        (EventType::Publication, "title"),
        (EventType::Publication, "doi"),
        (EventType::Publication, "url"),
        (EventType::UnSubmission, "cycle"),
        (EventType::UnSubmission, "document"),
        (EventType::UnRecommendation, "document"),
        (EventType::MediaStory, "outlet"),
        (EventType::MediaStory, "url"),
        (EventType::AdvocacyInitiative, "title"),
        (EventType::CapacityTraining, "title"),
    ];
    for (event_type, field) in cases {
        assert_rejects(event_type, field, &[json!(chars('t', 2001))], &format!("data.{field}"));
        assert_accepts(event_type, field, &[json!(chars('t', 2000)), json!(chars('é', 2000)), json!("")]);
    }
    assert_rejects(
        EventType::AdvocacyInitiative,
        "partners",
        &[json!(["Accor", chars('p', 2001)])],
        "data.partners[1]",
    );
}

// ---- Enumerations. ----

#[test]
fn enumerated_values_must_be_exact_and_lower_case() {
    let cases = [
        (EventType::Publication, "scope", json!("Global"), "data.scope"),
        (EventType::Publication, "scope", json!("GLOBAL"), "data.scope"),
        (EventType::Publication, "scope", json!("worldwide"), "data.scope"),
        (EventType::Publication, "scope", json!(" global"), "data.scope"),
        (EventType::Publication, "themes", json!(["online", "Online"]), "data.themes[1]"),
        (EventType::Publication, "themes", json!(["cyber"]), "data.themes[0]"),
        (EventType::UnSubmission, "mechanism", json!("UPR"), "data.mechanism"),
        (EventType::UnSubmission, "mechanism", json!("ohchr"), "data.mechanism"),
        (EventType::UnRecommendation, "mechanism", json!("acerwc"), "data.mechanism"),
        (EventType::UnRecommendation, "mechanism", json!("Crc"), "data.mechanism"),
        (EventType::AdvocacyInitiative, "private_sector_engagement", json!("high"), "data.private_sector_engagement"),
        (
            EventType::AdvocacyInitiative,
            "private_sector_engagement",
            json!("Significant"),
            "data.private_sector_engagement",
        ),
        (EventType::SurvivorParticipation, "activity", json!("program"), "data.activity"),
        (EventType::SurvivorParticipation, "activity", json!("ADVOCACY"), "data.activity"),
        (EventType::ChildOutreach, "organisation_kind", json!("Member"), "data.organisation_kind"),
        (EventType::ChildOutreach, "organisation_kind", json!("ngo"), "data.organisation_kind"),
        (EventType::ChildOutreach, "channel", json!("social-media"), "data.channel"),
        (EventType::ChildOutreach, "channel", json!("radio"), "data.channel"),
        (EventType::MemberExpertise, "manifestations", json!(["online", "legislation"]), "data.manifestations[1]"),
        (EventType::MemberExpertise, "manifestations", json!(["Online"]), "data.manifestations[0]"),
        (EventType::Withdrawal, "record_type", json!("SOCIAL_POST"), "data.record_type"),
    ];
    for (event_type, path, value, field) in cases {
        assert_rejects(event_type, path, &[value], field);
    }
}

// ---- Social metrics. ----

#[test]
fn metrics_must_carry_at_least_one_known_metric() {
    let bad = [json!({}), json!({"followers": 10}), json!({"Likes": 1}), json!({"likes": null})];

    assert_rejects(EventType::SocialSnapshot, "metrics", &bad, "data.metrics");
}

#[test]
fn metric_values_must_be_integers_from_0_to_a_trillion() {
    let bad =
        [json!(-1), json!(1_000_000_000_001_i64), json!(1.5), json!("12"), json!(true), json!([1]), json!(u64::MAX)];

    assert_rejects(EventType::SocialSnapshot, "metrics.likes", &bad, "data.metrics.likes");
    assert_rejects(EventType::SocialSnapshot, "metrics.impressions", &bad, "data.metrics.impressions");
}

#[test]
fn metric_values_of_0_and_a_trillion_are_accepted() {
    for value in [0_i64, 1_000_000_000_000] {
        let data = with(&valid(EventType::SocialSnapshot), "metrics", json!({"clicks": value}));

        let series = record(EventType::SocialSnapshot, &data);

        assert!(
            matches!(&series, Record::SocialPost(s) if s.metric == Metric::Clicks && s.value == value),
            "{series:?}"
        );
    }
}

#[test]
fn unknown_metrics_beside_known_ones_are_ignored() {
    let data = with(&valid(EventType::SocialSnapshot), "metrics", json!({"followers": 10, "stories": 3}));

    let series = record(EventType::SocialSnapshot, &data);

    assert!(matches!(&series, Record::SocialPost(s) if s.metric == Metric::Stories && s.value == 3), "{series:?}");
}

// ---- Rules particular to one record. ----

#[test]
fn a_national_publication_needs_at_least_one_country() {
    let absent = without(&valid(EventType::Publication), "countries");
    let null = with(&valid(EventType::Publication), "countries", Value::Null);
    let empty = with(&valid(EventType::Publication), "countries", json!([]));

    for data in [absent, null, empty] {
        assert_eq!(rejected_field(EventType::Publication, &data), "data.countries", "{data}");
    }
}

#[test]
fn a_publication_of_another_scope_may_have_no_country() {
    for scope in ["global", "thematic", "regional"] {
        let data = with(&without(&valid(EventType::Publication), "countries"), "scope", json!(scope));

        let publication = record(EventType::Publication, &data);

        assert!(matches!(&publication, Record::Publication(p) if p.countries.is_empty()), "{scope}");
    }
}

#[test]
fn expertise_years_must_be_from_1990_to_2100() {
    assert_rejects(
        EventType::MemberExpertise,
        "year",
        &[json!(1989), json!(2101), json!(-2019), json!(0)],
        "data.year",
    );
    assert_accepts(EventType::MemberExpertise, "year", &[json!(1990), json!(2100)]);
}

#[test]
fn a_paragraph_may_be_a_string_or_a_non_negative_integer() {
    for paragraph in [json!("45(b)"), json!("12"), json!(12), json!(0)] {
        let data = with(&valid(EventType::UnRecommendation), "paragraph", paragraph.clone());

        let recommendation = record(EventType::UnRecommendation, &data);

        assert!(
            matches!(&recommendation, Record::UnRecommendation(r) if r.paragraph.as_ref() == Some(&paragraph)),
            "{paragraph}: {recommendation:?}"
        );
    }
    assert_rejects(
        EventType::UnRecommendation,
        "paragraph",
        &[json!(-1), json!(1.5), json!(true), json!(["12"]), json!("")],
        "data.paragraph",
    );
}

// ---- Unknown and optional fields. ----

#[test]
fn unknown_data_fields_are_accepted_and_ignored() {
    for event_type in RECORD_EVENT_TYPES.into_iter().chain([EventType::Withdrawal]) {
        let plain = valid(event_type);
        let extended =
            with(&with(&plain, "note", json!("free comment")), "extra", json!({"nested": [1, 2, {"deep": null}]}));

        let changes = parse_event_data(event_type, &extended);

        assert_eq!(changes, parse_event_data(event_type, &plain), "{}", event_type.as_str());
        assert!(changes.is_ok(), "{}", event_type.as_str());
    }
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let optional: [(EventType, &[&str]); 7] = [
        (EventType::SocialSnapshot, &["publication_id", "url"]),
        (EventType::Publication, &["themes", "doi", "url"]),
        (EventType::UnSubmission, &["cycle", "document"]),
        (EventType::UnRecommendation, &["document", "paragraph"]),
        (EventType::MediaStory, &["url"]),
        (EventType::AdvocacyInitiative, &["partners"]),
        (EventType::Fact, &["member", "countries", "value", "tags", "attributes"]),
    ];
    for (event_type, fields) in optional {
        let mut absent = valid(event_type);
        let mut null = valid(event_type);
        for field in fields {
            absent = without(&absent, field);
            null = with(&null, field, Value::Null);
        }

        let from_absent = parse_event_data(event_type, &absent);
        let from_null = parse_event_data(event_type, &null);

        assert!(from_absent.is_ok(), "{}: {from_absent:?}", event_type.as_str());
        assert_eq!(from_absent, from_null, "{}", event_type.as_str());
    }
}

#[test]
fn absent_optional_fields_are_stored_as_none_or_empty() {
    let snapshot = without(&without(&valid(EventType::SocialSnapshot), "publication_id"), "url");
    let publication = without(&without(&without(&valid(EventType::Publication), "themes"), "doi"), "url");
    let initiative = without(&valid(EventType::AdvocacyInitiative), "partners");
    let recommendation = without(&without(&valid(EventType::UnRecommendation), "document"), "paragraph");

    let snapshot = parse_event_data(EventType::SocialSnapshot, &snapshot).unwrap();
    let publication = record(EventType::Publication, &publication);
    let initiative = record(EventType::AdvocacyInitiative, &initiative);
    let recommendation = record(EventType::UnRecommendation, &recommendation);

    assert!(
        snapshot.iter().all(
            |c| matches!(c, Change::Upsert(Record::SocialPost(s)) if s.publication_id.is_none() && s.url.is_none())
        )
    );
    assert!(matches!(publication, Record::Publication(p) if p.themes.is_empty() && p.doi.is_none() && p.url.is_none()));
    assert!(matches!(initiative, Record::AdvocacyInitiative(i) if i.partners.is_empty()));
    assert!(matches!(recommendation, Record::UnRecommendation(r) if r.document.is_none() && r.paragraph.is_none()));
}

// ---- Storage. ----

#[test]
fn every_record_reads_back_from_its_stored_json_unchanged() {
    for event_type in RECORD_EVENT_TYPES {
        for change in parse_event_data(event_type, &valid(event_type)).unwrap() {
            let Change::Upsert(record) = change else { panic!("{} gave {change:?}", event_type.as_str()) };

            let stored = serde_json::to_value(&record).unwrap();
            let read: Record = serde_json::from_value(stored.clone()).unwrap();

            assert_eq!(read, record, "{}", event_type.as_str());
            assert_eq!(stored["record_type"], json!(record.record_type().as_str()));
        }
    }
}
