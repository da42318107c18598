//! The counting rules of docs/indicators.md, through `rules::contributions` and `tally::Delta`;
//! periods.

use std::collections::BTreeSet;

/// The default framework's span.
const SPAN: &str = "2018-2021";

use chrono::{DateTime, NaiveDate, Utc};

use super::rules::{ALL, Contribution, TallyKey, contributions};
use super::tally::Delta;
use super::*;
use crate::records::*;

// ---- Arrange: records, and the values the store would hold for them. ----

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("a timestamp").with_timezone(&Utc)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn publication(id: &str, scope: Scope, contributed: bool) -> Publication {
    Publication {
        publication_id: id.into(),
        title: "Une recherche".into(),
        scope,
        countries: if scope == Scope::National { strings(&["FR"]) } else { vec![] },
        themes: vec![],
        contributed,
        published_on: day("2019-03-15"),
        doi: None,
        url: None,
    }
}

fn post(post_id: &str, metric: Metric, value: i64) -> SocialSeries {
    SocialSeries {
        platform: "facebook".into(),
        post_id: post_id.into(),
        metric,
        value,
        member: "ecpat-france".into(),
        published_at: instant("2019-06-01T10:00:00Z"),
        publication_id: Some("pub-1".into()),
        url: None,
    }
}

fn recommendation(id: &str, mechanism: RecommendationMechanism, taken_up: bool) -> Record {
    Record::UnRecommendation(UnRecommendation {
        recommendation_id: id.into(),
        mechanism,
        country: "FR".into(),
        taken_up,
        document: None,
        paragraph: None,
        decided_on: day("2019-02-01"),
    })
}

fn story(id: &str, member: &str, global_advocacy: bool, published_on: &str) -> Record {
    Record::MediaStory(MediaStory {
        story_id: id.into(),
        member: member.into(),
        outlet: "Le Monde".into(),
        global_advocacy,
        published_on: day(published_on),
        url: None,
    })
}

fn initiative(id: &str, engagement: Engagement) -> Record {
    Record::AdvocacyInitiative(AdvocacyInitiative {
        initiative_id: id.into(),
        title: "The Code".into(),
        private_sector_engagement: engagement,
        partners: vec![],
        started_on: day("2018-04-01"),
    })
}

fn participation(id: &str, country: &str, activity: Activity) -> Record {
    Record::SurvivorParticipation(SurvivorParticipation {
        participation_id: id.into(),
        country: country.into(),
        activity,
        date: day("2019-05-05"),
    })
}

fn outreach(id: &str, organisation: &str, kind: OrganisationKind, channel: Channel, regular: bool) -> Record {
    Record::ChildOutreach(ChildOutreach {
        outreach_id: id.into(),
        organisation: organisation.into(),
        organisation_kind: kind,
        channel,
        regular,
        date: day("2020-02-02"),
    })
}

fn submission(id: &str, mechanism: Mechanism, country: &str) -> Record {
    Record::UnSubmission(UnSubmission {
        submission_id: id.into(),
        mechanism,
        country: country.into(),
        submitted_on: day("2017-10-01"),
        cycle: None,
        in_alliance: false,
        members: strings(&["ecpat-france"]),
        document: None,
    })
}

fn training(id: &str, beneficiaries: &[&str]) -> Record {
    Record::CapacityTraining(CapacityTraining {
        training_id: id.into(),
        title: "Formation".into(),
        held_on: day("2019-09-09"),
        beneficiaries: strings(beneficiaries),
    })
}

fn expertise(member: &str, year: i32, manifestations: &[Manifestation]) -> Record {
    Record::MemberExpertise(MemberExpertise { member: member.into(), year, manifestations: manifestations.to_vec() })
}

/// The tallies of `records`, as the store keeps them: each sum, and each distinct count
/// as the number of items named by at least one record.
fn tallies(records: &[Record]) -> Delta {
    let mut delta = Delta::default();
    for record in records {
        delta.add(record, 1);
    }
    delta
}

/// One value (`dimension` and `key` empty for the total) of `records`; a missing tally is 0.
fn value(records: &[Record], indicator: Code, period: &str, dimension: &str, key: &str) -> i64 {
    let delta = tallies(records);
    let wanted = |k: &TallyKey| {
        k.indicator == indicator.as_str() && k.period == period && k.dimension == dimension && k.key == key
    };
    let sum: i64 = delta.sums.iter().filter(|(k, _)| wanted(k)).map(|(_, v)| v).sum();
    let distinct = delta.items.iter().filter(|((k, _), n)| wanted(k) && **n > 0).count();
    sum + distinct as i64
}

/// The total of `records` for `indicator` over all periods.
fn total(records: &[Record], indicator: Code) -> i64 {
    value(records, indicator, ALL, "", "")
}

/// The (dimension, key) breakdowns `record` contributes to `indicator`, totals excluded.
fn breakdowns(record: &Record, indicator: Code) -> BTreeSet<(String, String)> {
    contributions(record)
        .into_iter()
        .map(|c| match c {
            Contribution::Sum(k, _) | Contribution::Distinct(k, _) => k,
        })
        .filter(|k| k.indicator == indicator.as_str() && !k.dimension.is_empty())
        .map(|k| (k.dimension, k.key))
        .collect()
}

/// The indicators `record` contributes to.
fn indicators(record: &Record) -> BTreeSet<Code> {
    contributions(record)
        .into_iter()
        .map(|c| match c {
            Contribution::Sum(k, _) | Contribution::Distinct(k, _) => k.indicator,
        })
        .map(|code| Code::parse(&code).expect("a code of the default framework"))
        .collect()
}

fn set<const N: usize>(items: [(&str, &str); N]) -> BTreeSet<(String, String)> {
    items.into_iter().map(|(d, k)| (d.to_owned(), k.to_owned())).collect()
}

// ---- KE1, KE2, CV3: publications. ----

#[test]
fn ke1_counts_contributed_global_and_thematic_publications_by_scope() {
    let records = [
        Record::Publication(publication("p1", Scope::Global, true)),
        Record::Publication(publication("p2", Scope::Thematic, true)),
        Record::Publication(publication("p3", Scope::Global, true)),
    ];

    assert_eq!(total(&records, Code::KE1), 3);
    assert_eq!(value(&records, Code::KE1, "2019", "", ""), 3);
    assert_eq!(value(&records, Code::KE1, ALL, "scope", "global"), 2);
    assert_eq!(value(&records, Code::KE1, ALL, "scope", "thematic"), 1);
}

#[test]
fn ke1_ignores_regional_national_and_uncontributed_publications() {
    let records = [
        Record::Publication(publication("p1", Scope::Regional, true)),
        Record::Publication(publication("p2", Scope::National, true)),
        Record::Publication(publication("p3", Scope::Global, false)),
        Record::Publication(publication("p4", Scope::Thematic, false)),
    ];

    assert_eq!(total(&records, Code::KE1), 0);
}

#[test]
fn ke2_counts_national_publications_once_per_country_breakdown() {
    let mut two_countries = publication("p1", Scope::National, false);
    two_countries.countries = strings(&["FR", "BE", "FR"]);
    let records = [Record::Publication(two_countries), Record::Publication(publication("p2", Scope::National, true))];

    assert_eq!(total(&records, Code::KE2), 2);
    assert_eq!(value(&records, Code::KE2, ALL, "country", "FR"), 2);
    assert_eq!(value(&records, Code::KE2, ALL, "country", "BE"), 1);
    assert_eq!(value(&records, Code::KE2, "2019", "country", "BE"), 1);
}

#[test]
fn ke2_ignores_publications_that_are_not_national() {
    let records = [
        Record::Publication(publication("p1", Scope::Global, true)),
        Record::Publication(publication("p2", Scope::Thematic, true)),
        Record::Publication(publication("p3", Scope::Regional, true)),
    ];

    assert_eq!(total(&records, Code::KE2), 0);
}

#[test]
fn cv3_counts_publications_on_access_to_justice_by_scope_whoever_wrote_them() {
    let mut on_justice = publication("p1", Scope::Regional, false);
    on_justice.themes = vec![Theme::Online, Theme::AccessToJustice];
    let mut national = publication("p2", Scope::National, true);
    national.themes = vec![Theme::AccessToJustice];
    let mut elsewhere = publication("p3", Scope::Global, true);
    elsewhere.themes = vec![Theme::Online, Theme::Legislation, Theme::Other];
    let records = [Record::Publication(on_justice), Record::Publication(national), Record::Publication(elsewhere)];

    assert_eq!(total(&records, Code::CV3), 2);
    assert_eq!(value(&records, Code::CV3, ALL, "scope", "regional"), 1);
    assert_eq!(value(&records, Code::CV3, ALL, "scope", "national"), 1);
    assert_eq!(value(&records, Code::CV3, ALL, "scope", "global"), 0);
}

// ---- KE3, AP3: social posts. ----

#[test]
fn ke3_sums_likes_shares_clicks_and_stories_of_posts_disseminating_a_publication() {
    let mut on_x = post("p2", Metric::Shares, 5);
    on_x.platform = "x".into();
    let records = [
        Record::SocialPost(post("p1", Metric::Likes, 100)),
        Record::SocialPost(post("p1", Metric::Shares, 20)),
        Record::SocialPost(post("p1", Metric::Clicks, 3)),
        Record::SocialPost(post("p1", Metric::Stories, 1)),
        Record::SocialPost(on_x),
    ];

    assert_eq!(total(&records, Code::KE3), 129);
    assert_eq!(value(&records, Code::KE3, "2019", "", ""), 129);
    assert_eq!(value(&records, Code::KE3, ALL, "metric", "shares"), 25);
    assert_eq!(value(&records, Code::KE3, ALL, "metric", "likes"), 100);
    assert_eq!(value(&records, Code::KE3, ALL, "platform", "facebook"), 124);
    assert_eq!(value(&records, Code::KE3, ALL, "platform", "x"), 5);
}

#[test]
fn ke3_ignores_comments_views_impressions_and_posts_without_a_publication() {
    let mut unrelated = post("p2", Metric::Likes, 50);
    unrelated.publication_id = None;
    let records = [
        Record::SocialPost(post("p1", Metric::Comments, 7)),
        Record::SocialPost(post("p1", Metric::Views, 1000)),
        Record::SocialPost(post("p1", Metric::Impressions, 5000)),
        Record::SocialPost(unrelated),
    ];

    assert_eq!(total(&records, Code::KE3), 0);
}

#[test]
fn ke3_breaks_down_by_metric_and_platform_only() {
    let record = Record::SocialPost(post("p1", Metric::Clicks, 3));

    let by = breakdowns(&record, Code::KE3);

    assert_eq!(by, set([("metric", "clicks"), ("platform", "facebook")]));
}

#[test]
fn ap3_counts_each_member_active_on_social_media_once_with_any_metric_and_value() {
    let mut on_x = post("p9", Metric::Views, 0);
    on_x.platform = "x".into();
    let mut other_member = post("p3", Metric::Impressions, 4);
    other_member.member = "ecpat-belgique".into();
    other_member.publication_id = None;
    let records = [
        Record::SocialPost(post("p1", Metric::Likes, 10)),
        Record::SocialPost(post("p2", Metric::Comments, 0)),
        Record::SocialPost(on_x),
        Record::SocialPost(other_member),
    ];

    assert_eq!(total(&records, Code::AP3), 2);
    assert_eq!(value(&records, Code::AP3, ALL, "platform", "facebook"), 2);
    assert_eq!(value(&records, Code::AP3, ALL, "platform", "x"), 1);
    assert_eq!(breakdowns(&records[0], Code::AP3), set([("platform", "facebook")]));
}

// ---- AP1, AP2, AP4. ----

#[test]
fn ap1_counts_recommendations_taken_up_by_mechanism() {
    let records = [
        recommendation("r1", RecommendationMechanism::Upr, true),
        recommendation("r2", RecommendationMechanism::Crc, true),
        recommendation("r3", RecommendationMechanism::Crc, true),
        recommendation("r4", RecommendationMechanism::Crc, false),
    ];

    assert_eq!(total(&records, Code::AP1), 3);
    assert_eq!(value(&records, Code::AP1, "2019", "mechanism", "crc"), 2);
    assert_eq!(value(&records, Code::AP1, "2019", "mechanism", "upr"), 1);
}

#[test]
fn ap2_counts_distinct_members_with_stories_for_global_advocacy() {
    let records = [
        story("s1", "ecpat-france", true, "2019-01-10"),
        story("s2", "ecpat-france", true, "2019-05-10"),
        story("s3", "ecpat-belgique", true, "2019-07-10"),
        story("s4", "ecpat-suisse", false, "2019-07-10"),
    ];

    assert_eq!(total(&records, Code::AP2), 2);
    assert_eq!(value(&records, Code::AP2, "2019", "", ""), 2);
    assert_eq!(breakdowns(&records[0], Code::AP2), set([]));
}

#[test]
fn ap4_counts_only_initiatives_with_significant_private_sector_engagement() {
    let records = [
        initiative("i1", Engagement::Significant),
        initiative("i2", Engagement::Limited),
        initiative("i3", Engagement::None),
        initiative("i4", Engagement::Significant),
    ];

    assert_eq!(total(&records, Code::AP4), 2);
    assert_eq!(value(&records, Code::AP4, "2018", "", ""), 2);
}

// ---- CV1, CV2. ----

#[test]
fn cv1_counts_distinct_countries_by_activity() {
    let records = [
        participation("a", "PH", Activity::Programme),
        participation("b", "PH", Activity::Advocacy),
        participation("c", "PH", Activity::Advocacy),
        participation("d", "KE", Activity::Advocacy),
    ];

    assert_eq!(total(&records, Code::CV1), 2);
    assert_eq!(value(&records, Code::CV1, ALL, "activity", "programme"), 1);
    assert_eq!(value(&records, Code::CV1, ALL, "activity", "advocacy"), 2);
}

#[test]
fn cv2_counts_distinct_organisations_reaching_children_regularly() {
    let records = [
        outreach("o1", "ecpat-france", OrganisationKind::Member, Channel::SocialMedia, true),
        outreach("o2", "ecpat-france", OrganisationKind::Member, Channel::TraditionalMedia, true),
        outreach("o3", "unicef-fr", OrganisationKind::Partner, Channel::ParticipatoryMedia, true),
        outreach("o4", "ecpat-belgique", OrganisationKind::Member, Channel::SocialMedia, false),
    ];

    assert_eq!(total(&records, Code::CV2), 2);
    assert_eq!(value(&records, Code::CV2, "2020", "", ""), 2);
    assert_eq!(value(&records, Code::CV2, ALL, "channel", "social_media"), 1);
    assert_eq!(value(&records, Code::CV2, ALL, "channel", "traditional_media"), 1);
    assert_eq!(value(&records, Code::CV2, ALL, "channel", "participatory_media"), 1);
    assert_eq!(value(&records, Code::CV2, ALL, "organisation_kind", "member"), 1);
    assert_eq!(value(&records, Code::CV2, ALL, "organisation_kind", "partner"), 1);
}

// ---- ND1, ND2, ND3. ----

#[test]
fn nd1_counts_distinct_countries_reported_on_by_level() {
    let records = [
        submission("s1", Mechanism::Upr, "FR"),
        submission("s2", Mechanism::Crc, "FR"),
        submission("s3", Mechanism::CouncilOfEurope, "FR"),
        submission("s4", Mechanism::Acerwc, "KE"),
    ];

    assert_eq!(total(&records, Code::ND1), 2);
    assert_eq!(value(&records, Code::ND1, "2017", "level", "global"), 1);
    assert_eq!(value(&records, Code::ND1, "2017", "level", "regional"), 2);
}

#[test]
fn nd1_levels_are_global_for_un_mechanisms_and_regional_for_the_others() {
    let global = [Mechanism::Upr, Mechanism::Crc, Mechanism::UnSpecialProcedures, Mechanism::UnOther];
    for &mechanism in Mechanism::ALL {
        let expected = if global.contains(&mechanism) { "global" } else { "regional" };

        let by = breakdowns(&submission("s", mechanism, "FR"), Code::ND1);

        assert_eq!(by, set([("level", expected)]), "{}", mechanism.as_str());
    }
}

#[test]
fn nd2_counts_each_beneficiary_member_once() {
    let records = [
        training("t1", &["ecpat-france", "ecpat-belgique", "ecpat-france"]),
        training("t2", &["ecpat-belgique", "ecpat-suisse"]),
    ];

    assert_eq!(total(&records, Code::ND2), 3);
    assert_eq!(value(&records, Code::ND2, "2019", "", ""), 3);
    assert_eq!(value(&records[..1], Code::ND2, ALL, "", ""), 2);
}

#[test]
fn nd3_counts_members_whose_expertise_covers_three_distinct_manifestations() {
    use Manifestation::*;
    let records = [
        expertise("ecpat-france", 2019, &[Online, Trafficking, TravelTourism]),
        expertise("ecpat-belgique", 2019, &[Online, Online, Trafficking, Prostitution]),
        expertise("ecpat-suisse", 2019, &[Online, Online, Online]),
        expertise("ecpat-italia", 2019, &[Online, Trafficking, Online, Trafficking]),
        expertise("ecpat-uk", 2019, &[]),
    ];

    assert_eq!(total(&records, Code::ND3), 2);
    assert_eq!(value(&records, Code::ND3, "2019", "", ""), 2);
}

#[test]
fn nd3_counts_a_member_once_across_years_in_all() {
    use Manifestation::*;
    let every = [Online, Trafficking, TravelTourism, Prostitution];
    let records = [expertise("ecpat-france", 2019, &every), expertise("ecpat-france", 2020, &every)];

    assert_eq!(value(&records, Code::ND3, "2019", "", ""), 1);
    assert_eq!(value(&records, Code::ND3, "2020", "", ""), 1);
    assert_eq!(total(&records, Code::ND3), 1);
}

// ---- Which indicators each record feeds. ----

#[test]
fn each_record_feeds_only_its_own_indicators() {
    let mut everything = publication("p", Scope::Global, true);
    everything.themes = vec![Theme::AccessToJustice];
    let cases = [
        (Record::SocialPost(post("p", Metric::Likes, 1)), vec![Code::KE3, Code::AP3]),
        (Record::Publication(everything), vec![Code::KE1, Code::CV3]),
        (Record::Publication(publication("p", Scope::National, true)), vec![Code::KE2]),
        (recommendation("r", RecommendationMechanism::Upr, true), vec![Code::AP1]),
        (story("s", "ecpat-france", true, "2019-01-01"), vec![Code::AP2]),
        (initiative("i", Engagement::Significant), vec![Code::AP4]),
        (participation("p", "PH", Activity::Programme), vec![Code::CV1]),
        (outreach("o", "ecpat-france", OrganisationKind::Member, Channel::SocialMedia, true), vec![Code::CV2]),
        (submission("s", Mechanism::Upr, "FR"), vec![Code::ND1]),
        (training("t", &["ecpat-france"]), vec![Code::ND2]),
        (expertise("ecpat-france", 2019, Manifestation::ALL), vec![Code::ND3]),
    ];
    for (record, expected) in cases {
        assert_eq!(indicators(&record), expected.into_iter().collect(), "{record:?}");
    }
}

// ---- Attribution to periods. ----

#[test]
fn a_post_published_just_after_new_year_at_plus_one_counts_in_the_previous_utc_year() {
    let mut series = post("p1", Metric::Likes, 10);
    series.published_at = instant("2020-01-01T00:30:00+01:00");
    let records = [Record::SocialPost(series)];

    assert_eq!(value(&records, Code::KE3, "2019", "", ""), 10);
    assert_eq!(value(&records, Code::KE3, "2020", "", ""), 0);
    assert_eq!(value(&records, Code::AP3, "2019", "", ""), 1);
    assert_eq!(value(&records, Code::AP3, "2020", "", ""), 0);
}

#[test]
fn records_count_in_the_year_of_their_attribution_date() {
    let mut publication = publication("p", Scope::Global, true);
    publication.published_on = day("2021-12-31");
    let cases = [
        (Record::Publication(publication), Code::KE1, "2021"),
        (recommendation("r", RecommendationMechanism::Upr, true), Code::AP1, "2019"),
        (story("s", "ecpat-france", true, "2018-01-01"), Code::AP2, "2018"),
        (initiative("i", Engagement::Significant), Code::AP4, "2018"),
        (participation("p", "PH", Activity::Programme), Code::CV1, "2019"),
        (outreach("o", "ecpat-france", OrganisationKind::Member, Channel::SocialMedia, true), Code::CV2, "2020"),
        (submission("s", Mechanism::Upr, "FR"), Code::ND1, "2017"),
        (training("t", &["ecpat-france"]), Code::ND2, "2019"),
        (expertise("ecpat-france", 2021, Manifestation::ALL), Code::ND3, "2021"),
    ];
    for (record, indicator, year) in cases {
        let periods: BTreeSet<String> = contributions(&record)
            .into_iter()
            .map(|c| match c {
                Contribution::Sum(k, _) | Contribution::Distinct(k, _) => k,
            })
            .filter(|k| k.indicator == indicator.as_str())
            .map(|k| k.period)
            .collect();

        let mut expected = BTreeSet::from([year.to_owned(), ALL.to_owned()]);
        if ("2018"..="2021").contains(&year) {
            // The year is in the default framework's span.
            expected.insert(SPAN.to_owned());
        }
        assert_eq!(periods, expected, "{record:?}");
    }
}

#[test]
fn every_contribution_appears_under_its_year_under_all_and_under_the_span() {
    let mut national = publication("p", Scope::National, true);
    national.countries = strings(&["FR", "BE"]);
    national.themes = vec![Theme::AccessToJustice];
    let records = [
        Record::SocialPost(post("p", Metric::Shares, 4)),
        Record::Publication(national),
        Record::Publication(publication("q", Scope::Thematic, true)),
        recommendation("r", RecommendationMechanism::Crc, true),
        story("s", "ecpat-france", true, "2019-01-01"),
        initiative("i", Engagement::Significant),
        participation("p", "PH", Activity::Programme),
        outreach("o", "ecpat-france", OrganisationKind::Partner, Channel::ParticipatoryMedia, true),
        submission("s", Mechanism::Iachr, "BR"),
        training("t", &["ecpat-france", "ecpat-belgique"]),
        expertise("ecpat-france", 2019, Manifestation::ALL),
    ];
    for record in &records {
        let contributions = contributions(record);
        let in_all = |c: &Contribution| match c.clone() {
            Contribution::Sum(k, n) => Contribution::Sum(TallyKey { period: ALL.into(), ..k }, n),
            Contribution::Distinct(k, item) => Contribution::Distinct(TallyKey { period: ALL.into(), ..k }, item),
        };
        let in_span = |c: &Contribution| match c.clone() {
            Contribution::Sum(k, n) => Contribution::Sum(TallyKey { period: SPAN.into(), ..k }, n),
            Contribution::Distinct(k, item) => Contribution::Distinct(TallyKey { period: SPAN.into(), ..k }, item),
        };
        let period = |c: &Contribution| match c {
            Contribution::Sum(k, _) | Contribution::Distinct(k, _) => k.period.clone(),
        };
        let yearly: Vec<_> = contributions.iter().filter(|c| period(c).len() == 4).collect();
        let all = contributions.iter().filter(|c| period(c) == ALL).count();
        let span = contributions.iter().filter(|c| period(c) == SPAN).count();

        // Years 2018 to 2021 are in the span; 2017 (the submission helper's) is not.
        let in_the_span = yearly.iter().all(|c| ("2018"..="2021").contains(&period(c).as_str()));
        let spanned = if in_the_span { yearly.len() } else { 0 };

        assert!(!yearly.is_empty(), "{record:?}");
        assert_eq!((all, span), (yearly.len(), spanned), "{record:?}");
        for c in yearly {
            assert!(contributions.contains(&in_all(c)), "{c:?} has no twin under all");
            assert_eq!(contributions.contains(&in_span(c)), in_the_span, "{c:?} and the span");
        }
    }
}

#[test]
fn all_counts_a_distinct_item_once_whatever_its_years() {
    let records = [
        story("s1", "ecpat-france", true, "2019-01-10"),
        story("s2", "ecpat-france", true, "2020-01-10"),
        story("s3", "ecpat-belgique", true, "2020-03-10"),
    ];

    assert_eq!(value(&records, Code::AP2, "2019", "", ""), 1);
    assert_eq!(value(&records, Code::AP2, "2020", "", ""), 2);
    assert_eq!(total(&records, Code::AP2), 2);
}

#[test]
fn all_adds_up_sums_over_the_years() {
    let mut earlier = publication("p1", Scope::Global, true);
    earlier.published_on = day("2018-05-01");
    let records = [Record::Publication(earlier), Record::Publication(publication("p2", Scope::Global, true))];

    assert_eq!(value(&records, Code::KE1, "2018", "", ""), 1);
    assert_eq!(value(&records, Code::KE1, "2019", "", ""), 1);
    assert_eq!(total(&records, Code::KE1), 2);
}

// ---- Periods. ----

#[test]
fn periods_are_all_a_year_from_1990_to_2100_or_the_span() {
    for text in ["all", "1990", "2019", "2100", SPAN] {
        let period = Period::parse(text, (2018, 2021));

        assert_eq!(period.as_ref().map(Period::as_str), Some(text));
    }
}

#[test]
fn other_periods_are_rejected() {
    let texts = [
        "1989",
        "2101",
        "20a9",
        "",
        " 2019",
        "2019 ",
        "+201",
        "-199",
        "ALL",
        "All",
        "019",
        "02019",
        "٢٠١٩",
        "2018-2022",
    ];
    for text in texts {
        assert_eq!(Period::parse(text, (2018, 2021)), None, "{text:?}");
    }
}

// ---- Deltas. ----

#[test]
fn replacing_a_record_by_itself_changes_nothing() {
    let record = Record::SocialPost(post("p1", Metric::Likes, 10));
    let mut delta = Delta::default();

    delta.replace(Some(&record), Some(&record));

    assert_eq!(delta, Delta::default());
}

#[test]
fn replacing_a_record_by_a_changed_one_gives_the_difference() {
    let old = Record::SocialPost(post("p1", Metric::Likes, 10));
    let new = Record::SocialPost(post("p1", Metric::Likes, 15));
    let mut delta = Delta::default();

    delta.replace(Some(&old), Some(&new));
    delta.prune();

    let moved: Vec<(Code, &str, &str, &str, i64)> = delta
        .sums
        .iter()
        .map(|(k, v)| (Code::parse(&k.indicator).unwrap(), k.period.as_str(), k.dimension.as_str(), k.key.as_str(), *v))
        .collect();
    assert_eq!(
        moved,
        vec![
            (Code::KE3, SPAN, "", "", 5),
            (Code::KE3, SPAN, "metric", "likes", 5),
            (Code::KE3, SPAN, "platform", "facebook", 5),
            (Code::KE3, "2019", "", "", 5),
            (Code::KE3, "2019", "metric", "likes", 5),
            (Code::KE3, "2019", "platform", "facebook", 5),
            (Code::KE3, ALL, "", "", 5),
            (Code::KE3, ALL, "metric", "likes", 5),
            (Code::KE3, ALL, "platform", "facebook", 5),
        ]
    );
    assert!(delta.items.is_empty(), "AP3 did not move: {:?}", delta.items);
}

#[test]
fn a_lower_newer_total_lowers_the_sum() {
    let old = Record::SocialPost(post("p1", Metric::Shares, 40));
    let new = Record::SocialPost(post("p1", Metric::Shares, 25));
    let mut delta = Delta::default();

    delta.replace(Some(&old), Some(&new));

    let total = TallyKey {
        framework: crate::framework::DEFAULT_ID.into(),
        indicator: "KE3".into(),
        period: ALL.into(),
        dimension: String::new(),
        key: String::new(),
    };
    assert_eq!(delta.sums.get(&total), Some(&-15));
}

#[test]
fn replacing_a_record_moves_distinct_items_between_breakdowns() {
    let old = participation("p", "PH", Activity::Programme);
    let new = participation("p", "PH", Activity::Advocacy);
    let mut delta = Delta::default();

    delta.replace(Some(&old), Some(&new));
    delta.prune();

    let moved: Vec<(&str, &str, &str, i64)> =
        delta.items.iter().map(|((k, item), n)| (k.period.as_str(), k.key.as_str(), item.as_str(), *n)).collect();
    assert_eq!(
        moved,
        vec![
            (SPAN, "advocacy", "PH", 1),
            (SPAN, "programme", "PH", -1),
            ("2019", "advocacy", "PH", 1),
            ("2019", "programme", "PH", -1),
            (ALL, "advocacy", "PH", 1),
            (ALL, "programme", "PH", -1),
        ]
    );
    assert!(delta.sums.is_empty());
}

#[test]
fn creating_and_withdrawing_a_record_add_and_remove_its_contributions() {
    let record = Record::Publication(publication("p1", Scope::Global, true));
    let mut created = Delta::default();
    let mut withdrawn = Delta::default();

    created.replace(None, Some(&record));
    withdrawn.replace(Some(&record), None);

    let total = TallyKey {
        framework: crate::framework::DEFAULT_ID.into(),
        indicator: "KE1".into(),
        period: ALL.into(),
        dimension: String::new(),
        key: String::new(),
    };
    assert_eq!(created.sums.get(&total), Some(&1));
    assert_eq!(withdrawn.sums.get(&total), Some(&-1));
    assert_eq!(created.sums.len(), withdrawn.sums.len());
}

#[test]
fn a_change_that_leaves_the_tallies_alone_prunes_to_nothing() {
    let old = Record::Publication(publication("p1", Scope::Global, true));
    let mut retitled = publication("p1", Scope::Global, true);
    retitled.title = "Un autre titre".into();
    let mut delta = Delta::default();

    delta.replace(Some(&old), Some(&Record::Publication(retitled)));
    delta.prune();

    assert_eq!(delta, Delta::default());
}
