//! Reading, checking and evaluating framework documents.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};

use super::document::parse;
use crate::indicators::rules::{ContributionRef, PeriodRef};
use crate::records::{Metric, Publication, Record, Scope, SocialSeries, Theme};

const HEADER: &str = r#"
id = "test-2022-2026"
title = { en = "Test" }
years = [2022, 2026]

[[objectives]]
code = "knowledge"
title = { en = "Knowledge" }
"#;

/// A document of `HEADER` and one indicator table (`[[indicators]]` added).
fn with_indicator(body: &str) -> String {
    format!("{HEADER}\n[[indicators]]\n{body}")
}

const NATIONAL: &str = r#"
code = "NAT"
objective = "knowledge"
title = { en = "National studies" }
record = "publication"
when = 'scope == "national"'
value = "count"
date = "published_on"
breakdowns = [{ name = "country", field = "countries" }, "contributed"]
targets = { 2023 = 4, "2022-2026" = 12 }
baseline = 2
"#;

fn refusal(body: &str) -> String {
    parse(&with_indicator(body)).expect_err("the document must be refused").to_string()
}

fn publication(id: &str, scope: Scope, countries: &[&str], themes: &[Theme], year: i32) -> Record {
    Record::Publication(Publication {
        publication_id: id.into(),
        title: "t".into(),
        scope,
        countries: countries.iter().map(|c| c.to_string()).collect(),
        themes: themes.to_vec(),
        contributed: true,
        published_on: NaiveDate::from_ymd_opt(year, 6, 1).unwrap(),
        doi: None,
        url: None,
    })
}

fn series(post: &str, metric: Metric, value: i64, publication: Option<&str>) -> Record {
    Record::SocialPost(SocialSeries {
        platform: "x".into(),
        post_id: post.into(),
        metric,
        value,
        member: "ecpat-france".into(),
        published_at: Utc.with_ymd_and_hms(2023, 12, 31, 23, 30, 0).unwrap(),
        publication_id: publication.map(String::from),
        url: None,
    })
}

/// (indicator, period, dimension, key) -> amount for sums, or the items for distinct counts.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    sums: BTreeMap<(String, String, String, String), i64>,
    items: BTreeMap<(String, String, String, String), Vec<String>>,
}

fn seen(text: &str, record: &Record) -> Seen {
    let framework = parse(text).expect("a valid framework");
    let mut out = Vec::new();
    framework.contributions_into(record, &mut out);
    out.sort();
    out.dedup();
    let mut seen = Seen::default();
    for contribution in out {
        let id = |k: &crate::indicators::rules::KeyRef| {
            let period = match k.period {
                PeriodRef::Year(y) => y.to_string(),
                PeriodRef::All => "all".into(),
                PeriodRef::Span(first, last) => format!("{first}-{last}"),
            };
            (k.indicator.to_owned(), period, k.dimension.to_owned(), k.key.to_string())
        };
        match contribution {
            ContributionRef::Sum(k, n) => *seen.sums.entry(id(&k)).or_default() += n,
            ContributionRef::Distinct(k, item) => seen.items.entry(id(&k)).or_default().push(item.into_owned()),
        }
    }
    seen
}

fn key(indicator: &str, period: &str, dimension: &str, key: &str) -> (String, String, String, String) {
    (indicator.into(), period.into(), dimension.into(), key.into())
}

#[test]
fn the_shipped_framework_states_the_13_indicators_in_order_with_their_objectives() {
    let framework = super::default();

    let codes: Vec<(&str, &str)> =
        framework.indicators.iter().map(|i| (i.code.as_str(), i.objective.as_str())).collect();

    assert_eq!(framework.id, "ecpat-2018-2021");
    assert_eq!(framework.years, (2018, 2021));
    assert_eq!(
        codes,
        [
            ("KE1", "knowledge_evidence"),
            ("KE2", "knowledge_evidence"),
            ("KE3", "knowledge_evidence"),
            ("AP1", "advocacy_partnerships"),
            ("AP2", "advocacy_partnerships"),
            ("AP3", "advocacy_partnerships"),
            ("AP4", "advocacy_partnerships"),
            ("CV1", "children_voices"),
            ("CV2", "children_voices"),
            ("CV3", "children_voices"),
            ("ND1", "network_development"),
            ("ND2", "network_development"),
            ("ND3", "network_development"),
        ]
    );
}

#[test]
fn a_count_with_a_list_breakdown_counts_the_record_once_per_key_and_once_in_the_total() {
    let text = with_indicator(NATIONAL);
    let record = publication("p", Scope::National, &["FR", "TG", "FR"], &[], 2023);

    let seen = seen(&text, &record);

    for period in ["2023", "all", "2022-2026"] {
        assert_eq!(seen.sums[&key("NAT", period, "", "")], 1);
        assert_eq!(seen.sums[&key("NAT", period, "country", "FR")], 1);
        assert_eq!(seen.sums[&key("NAT", period, "country", "TG")], 1);
        assert_eq!(seen.sums[&key("NAT", period, "contributed", "true")], 1);
    }
    assert_eq!(seen.sums.len(), 12, "{seen:?}");
    assert!(seen.items.is_empty());
}

#[test]
fn a_record_that_fails_when_contributes_nothing() {
    let text = with_indicator(NATIONAL);

    let seen = seen(&text, &publication("p", Scope::Global, &[], &[], 2023));

    assert_eq!(seen, Seen::default());
}

#[test]
fn a_sum_adds_the_field_and_a_timestamp_counts_in_its_utc_year() {
    let text = with_indicator(
        r#"
code = "ENG"
objective = "knowledge"
title = { en = "Engagement" }
record = "social_post"
when = 'publication_id != null && metric in ["likes", "shares"]'
value = "sum(value)"
date = "published_at"
breakdowns = ["metric"]
"#,
    );

    let counted = seen(&text, &series("1", Metric::Likes, 40, Some("pub")));
    let views = seen(&text, &series("1", Metric::Views, 40, Some("pub")));
    let unlinked = seen(&text, &series("1", Metric::Likes, 40, None));

    assert_eq!(counted.sums[&key("ENG", "2023", "", "")], 40);
    assert_eq!(counted.sums[&key("ENG", "all", "metric", "likes")], 40);
    assert_eq!((views, unlinked), (Seen::default(), Seen::default()));
}

#[test]
fn a_distinct_count_of_a_list_counts_each_item_and_a_derived_field_can_be_counted() {
    let themes = with_indicator(
        r#"
code = "TH"
objective = "knowledge"
title = { en = "Themes" }
record = "publication"
value = "distinct(themes)"
date = "published_on"
"#,
    );
    let posts = with_indicator(
        r#"
code = "PO"
objective = "knowledge"
title = { en = "Posts" }
record = "social_post"
value = "distinct(post)"
date = "published_at"
"#,
    );
    let record = publication("p", Scope::Global, &[], &[Theme::Online, Theme::Trafficking, Theme::Online], 2022);

    let seen_themes = seen(&themes, &record);
    let seen_posts = seen(&posts, &series("42", Metric::Views, 3, None));

    assert_eq!(seen_themes.items[&key("TH", "2022", "", "")], ["online", "trafficking"]);
    assert_eq!(seen_posts.items[&key("PO", "all", "", "")], ["x:42"]);
}

#[test]
fn a_when_that_fails_on_a_record_makes_it_not_count() {
    let text = with_indicator(
        r#"
code = "DOI"
objective = "knowledge"
title = { en = "With a DOI" }
record = "publication"
when = 'size(doi) > 0'
value = "count"
date = "published_on"
"#,
    );

    // `doi` is null here: size(null) fails, and the record does not count.
    let seen = seen(&text, &publication("p", Scope::Global, &[], &[], 2022));

    assert_eq!(seen, Seen::default());
}

#[test]
fn targets_and_baseline_are_read_per_period() {
    let framework = parse(&with_indicator(NATIONAL)).unwrap();

    let indicator = framework.indicator("NAT").unwrap();

    assert_eq!(indicator.baseline, Some(2));
    assert_eq!(indicator.targets, BTreeMap::from([("2023".to_owned(), 4), ("2022-2026".to_owned(), 12)]));
}

#[test]
fn a_document_with_an_error_is_refused_with_the_indicator_and_the_key() {
    let cases = [
        (NATIONAL.replace(r#"record = "publication""#, r#"record = "book""#), "indicator NAT, key `record`"),
        (NATIONAL.replace(r#"scope == "national""#, r#"scoop == "national""#), "indicator NAT, key `when`"),
        (NATIONAL.replace(r#"scope == "national""#, r#"scope == "#), "indicator NAT, key `when`: does not compile"),
        (
            NATIONAL.replace(r#"scope == "national""#, "size(countries)"),
            "indicator NAT, key `when`: must give true or false",
        ),
        (NATIONAL.replace(r#"value = "count""#, r#"value = "sum(scope)""#), "indicator NAT, key `value`"),
        (NATIONAL.replace(r#"value = "count""#, r#"value = "max(scope)""#), "indicator NAT, key `value`"),
        (NATIONAL.replace(r#"date = "published_on""#, r#"date = "scope""#), "indicator NAT, key `date`"),
        (NATIONAL.replace(r#"objective = "knowledge""#, r#"objective = "wisdom""#), "indicator NAT, key `objective`"),
        (NATIONAL.replace(r#""contributed"]"#, r#""nope"]"#), "indicator NAT, key `breakdowns`"),
        (NATIONAL.replace(r#"2023 = 4"#, r#"2030 = 4"#), "indicator NAT, key `targets`"),
        (NATIONAL.replace(r#"code = "NAT""#, r#"code = "nat""#), "key `code`"),
        (format!("{NATIONAL}colour = \"red\"\n"), "indicator NAT: unknown field `colour`"),
    ];
    for (body, expected) in cases {
        let error = refusal(&body);

        assert!(error.contains(expected), "{error:?} should contain {expected:?}");
        assert!(!error.contains('\n'), "one line: {error:?}");
    }
}

#[test]
fn a_code_used_twice_or_a_bad_header_is_refused() {
    let twice = format!("{}\n[[indicators]]\n{NATIONAL}", with_indicator(NATIONAL));
    let bad_id = with_indicator(NATIONAL).replace(r#"id = "test-2022-2026""#, r#"id = "Test""#);
    let bad_years = with_indicator(NATIONAL).replace("years = [2022, 2026]", "years = [2026, 2022]");
    let unknown = format!("owner = \"me\"\n{}", with_indicator(NATIONAL));

    assert!(parse(&twice).unwrap_err().to_string().contains("indicator NAT, key `code`: the code is used twice"));
    assert!(parse(&bad_id).unwrap_err().to_string().contains("key `id`"));
    assert!(parse(&bad_years).unwrap_err().to_string().contains("key `years`"));
    assert!(parse(&unknown).unwrap_err().to_string().contains("unknown field `owner`"));
}

// ---- Facts. ----

/// A fact read from `data` as the worker reads it.
fn fact(data: serde_json::Value) -> Record {
    let changes = crate::records::parse::parse_event_data(crate::records::EventType::Fact, &data).unwrap();
    match changes.as_slice() {
        [crate::records::Change::Upsert(record)] => record.clone(),
        other => panic!("{other:?}"),
    }
}

const URGENT_HOTLINES: &str = r#"
code = "HOT"
objective = "knowledge"
title = { en = "Urgent hotline support" }
record = "fact"
when = 'kind == "hotline_supported" && "urgent" in tags'
value = "sum(value)"
date = "date"
breakdowns = ["attributes.region", { name = "country", field = "countries" }]
"#;

#[test]
fn a_framework_counts_facts_of_a_kind_with_a_tag_and_sums_their_value() {
    let text = with_indicator(URGENT_HOTLINES);
    let three = fact(serde_json::json!({
        "fact_id": "f1", "kind": "hotline_supported", "date": "2023-05-01", "value": 3,
        "tags": ["urgent", "urgent"], "countries": ["fr", "FR"], "attributes": {"region": "west_africa"},
    }));

    let seen = seen(&text, &three);

    for period in ["2023", "all", "2022-2026"] {
        assert_eq!(seen.sums[&key("HOT", period, "", "")], 3);
        assert_eq!(seen.sums[&key("HOT", period, "region", "west_africa")], 3);
        assert_eq!(seen.sums[&key("HOT", period, "country", "FR")], 3);
    }
    assert_eq!(seen.sums.len(), 9, "{seen:?}");
}

#[test]
fn a_fact_without_a_value_adds_1_and_one_without_the_attribute_gives_no_breakdown_key() {
    let text = with_indicator(URGENT_HOTLINES);
    let no_value = fact(serde_json::json!({
        "fact_id": "f2", "kind": "hotline_supported", "date": "2022-01-01", "tags": ["urgent"],
        "attributes": {"partner": "p"},
    }));
    let no_attributes = fact(serde_json::json!({
        "fact_id": "f3", "kind": "hotline_supported", "date": "2022-01-01", "tags": ["urgent"], "value": 0,
    }));

    let seen_no_value = seen(&text, &no_value);
    let seen_no_attributes = seen(&text, &no_attributes);

    let span = "2022-2026";
    assert_eq!(
        seen_no_value.sums,
        BTreeMap::from([
            (key("HOT", "2022", "", ""), 1),
            (key("HOT", "all", "", ""), 1),
            (key("HOT", span, "", ""), 1)
        ])
    );
    assert_eq!(
        seen_no_attributes.sums,
        BTreeMap::from([
            (key("HOT", "2022", "", ""), 0),
            (key("HOT", "all", "", ""), 0),
            (key("HOT", span, "", ""), 0)
        ])
    );
}

#[test]
fn facts_of_another_kind_or_without_the_tag_do_not_count() {
    let text = with_indicator(URGENT_HOTLINES);
    let other_kind = fact(serde_json::json!({
        "fact_id": "f4", "kind": "helpline_supported", "date": "2023-05-01", "tags": ["urgent"],
    }));
    let not_urgent = fact(serde_json::json!({
        "fact_id": "f5", "kind": "hotline_supported", "date": "2023-05-01", "tags": ["online"],
    }));
    let no_tags = fact(serde_json::json!({"fact_id": "f6", "kind": "hotline_supported", "date": "2023-05-01"}));

    for record in [other_kind, not_urgent, no_tags] {
        assert_eq!(seen(&text, &record), Seen::default(), "{record:?}");
    }
}

#[test]
fn a_distinct_count_of_facts_counts_each_country_or_attribute_once() {
    let countries = with_indicator(
        r#"
code = "CTY"
objective = "knowledge"
title = { en = "Countries with a hotline" }
record = "fact"
when = 'kind == "hotline_supported"'
value = "distinct(countries)"
date = "date"
"#,
    );
    let partners = with_indicator(
        r#"
code = "PAR"
objective = "knowledge"
title = { en = "Partners" }
record = "fact"
value = "distinct(attributes.partner)"
date = "date"
breakdowns = [{ name = "area", field = "attributes.region" }]
"#,
    );
    let record = fact(serde_json::json!({
        "fact_id": "f7", "kind": "hotline_supported", "date": "2024-02-29", "countries": ["tg", "FR", "TG"],
        "attributes": {"partner": "Point de Contact", "region": "europe"},
    }));
    let without_partner = fact(serde_json::json!({
        "fact_id": "f8", "kind": "hotline_supported", "date": "2024-02-29", "attributes": {"region": "europe"},
    }));

    let seen_countries = seen(&countries, &record);
    let seen_partners = seen(&partners, &record);

    assert_eq!(seen_countries.items[&key("CTY", "2024", "", "")], ["FR", "TG"]);
    assert_eq!(seen_partners.items[&key("PAR", "all", "", "")], ["Point de Contact"]);
    assert_eq!(seen_partners.items[&key("PAR", "all", "area", "europe")], ["Point de Contact"]);
    assert_eq!(seen(&partners, &without_partner), Seen::default());
}

#[test]
fn a_when_sees_a_fact_with_cel_types_null_for_what_is_absent_and_lists_each_item_once() {
    let when = |source: &str| {
        with_indicator(&format!(
            "code = \"W\"\nobjective = \"knowledge\"\ntitle = {{ en = \"w\" }}\nrecord = \"fact\"\nwhen = '{source}'\n\
             value = \"count\"\ndate = \"date\"\n"
        ))
    };
    let full = fact(serde_json::json!({
        "fact_id": "f9", "kind": "k", "date": "2023-05-01", "member": "ecpat-france", "value": 7,
        "countries": ["fr", "FR"], "tags": ["a", "b", "a"], "attributes": {"region": "europe"},
    }));
    let bare = fact(serde_json::json!({"fact_id": "f10", "kind": "k", "date": "2023-05-01"}));
    let cases = [
        ("value == 7 && type(value) == int", true, false),
        ("value == 1", false, true),
        (r#"date == "2023-05-01" && date >= "2023-01-01""#, true, true),
        (r#"member == "ecpat-france""#, true, false),
        ("member == null", false, true),
        ("size(countries) == 1 && size(tags) == 2", true, false),
        ("size(countries) == 0 && size(tags) == 0", false, true),
        ("attributes == null", false, true),
        (r#"attributes != null && "region" in attributes && attributes.region == "europe""#, true, false),
        (r#"attributes != null && has(attributes.region)"#, true, false),
        (r#"attributes == {"region": "europe"}"#, true, false),
        (r#"attributes.?region.orValue("") == "europe""#, true, false),
        (r#"attributes.?partner.orValue("none") == "none""#, true, true),
    ];
    for (source, full_counts, bare_counts) in cases {
        let text = when(source);

        let counted = |record: &Record| !seen(&text, record).sums.is_empty();

        assert_eq!((counted(&full), counted(&bare)), (full_counts, bare_counts), "{source}");
    }
}

#[test]
fn a_map_field_is_refused_as_a_date_a_sum_a_breakdown_or_a_distinct_count_but_its_entries_are_not() {
    let cases = [
        (URGENT_HOTLINES.replace(r#"date = "date""#, r#"date = "attributes""#), "indicator HOT, key `date`"),
        (
            URGENT_HOTLINES.replace(r#"value = "sum(value)""#, r#"value = "sum(attributes)""#),
            "indicator HOT, key `value`: sum(attributes) needs an integer field",
        ),
        (
            URGENT_HOTLINES.replace(r#"value = "sum(value)""#, r#"value = "distinct(attributes)""#),
            "indicator HOT, key `value`: \"attributes\" is a map",
        ),
        (
            URGENT_HOTLINES.replace(r#""attributes.region""#, r#""attributes""#),
            "indicator HOT, key `breakdowns`: \"attributes\" is a map",
        ),
        (
            URGENT_HOTLINES.replace(r#""attributes.region""#, r#""attributes.Region""#),
            "indicator HOT, key `breakdowns`: in \"attributes.Region\"",
        ),
        (
            URGENT_HOTLINES.replace(r#""attributes.region""#, r#""countries.fr""#),
            "indicator HOT, key `breakdowns`: \"countries.fr\" names an entry of \"countries\", which is a list field",
        ),
        (
            URGENT_HOTLINES.replace(r#""attributes.region""#, r#""nothing.region""#),
            "indicator HOT, key `breakdowns`: fact has no field \"nothing\"",
        ),
        (
            URGENT_HOTLINES
                .replace(r#"kind == "hotline_supported" && "urgent" in tags"#, r#"attributes.region == "europe""#),
            r#"indicator HOT, key `when`: fails on a sample record: no entry "region"; attributes may lack it or be null: read it as attributes.?region.orValue("")"#,
        ),
        (
            URGENT_HOTLINES.replace(r#"kind == "hotline_supported" && "urgent" in tags"#, r#""urgent" in labels"#),
            "indicator HOT, key `when`: fact has no field \"labels\"",
        ),
    ];
    for (body, expected) in cases {
        let error = refusal(&body);

        assert!(error.contains(expected), "{error:?} should contain {expected:?}");
        assert!(!error.contains('\n'), "one line: {error:?}");
    }
    let entries = URGENT_HOTLINES.replace(r#"value = "sum(value)""#, r#"value = "distinct(attributes.partner)""#);
    assert!(parse(&with_indicator(&entries)).is_ok());
}

#[test]
fn facts_count_in_no_indicator_of_the_shipped_framework() {
    let record = fact(serde_json::json!({
        "fact_id": "f11", "kind": "hotline_supported", "date": "2019-05-01", "tags": ["urgent"],
        "countries": ["FR"], "member": "ecpat-france", "attributes": {"region": "europe"},
    }));
    let mut out = Vec::new();

    super::default().contributions_into(&record, &mut out);

    assert!(out.is_empty(), "{out:?}");
}
