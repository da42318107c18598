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
