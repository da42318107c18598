//! The records that events carry (docs/events.md), in their validated, normalised form.
//!
//! A record is built only by [`parse`](parse::parse_event_data) from an event's `data`, so
//! everything after it can trust the types. Records are also stored in the database (as
//! JSON) as the current version of their key, and read back to compute what a newer
//! version replaces.

pub mod countries;
pub(crate) mod fields;
pub mod parse;
pub mod schema;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use schema::{Country, Member};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use fields::FieldError;

/// Declares a closed set of lower-case values, with their exact wire spelling (also in its
/// JSON Schema, for the API's OpenAPI document).
macro_rules! str_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let doc: &[&str] = &[$($doc),*];
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::ALL.iter().map(|value| value.as_str())))
                    .description(Some(doc.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value as it is written on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// The value for an exact, lower-case spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl $crate::records::fields::Closed for $name {
            const VALUES: &'static [Self] = Self::ALL;
            fn from_wire(text: &str) -> Option<Self> { Self::parse(text) }
            fn wire(self) -> &'static str { self.as_str() }
        }
    };
}
pub(crate) use str_enum;

str_enum!(
    /// The kinds of record, as named by withdrawals and stored with each version.
    RecordType {
        SocialPost = "social_post",
        Publication = "publication",
        UnSubmission = "un_submission",
        UnRecommendation = "un_recommendation",
        MediaStory = "media_story",
        AdvocacyInitiative = "advocacy_initiative",
        SurvivorParticipation = "survivor_participation",
        ChildOutreach = "child_outreach",
        CapacityTraining = "capacity_training",
        MemberExpertise = "member_expertise",
        Fact = "fact",
    }
);

str_enum!(
    /// The event types of docs/events.md.
    EventType {
        SocialSnapshot = "org.ecpat.social.metrics.snapshot",
        Publication = "org.ecpat.research.publication.recorded",
        UnSubmission = "org.ecpat.un.submission.recorded",
        UnRecommendation = "org.ecpat.un.recommendation.outcome",
        MediaStory = "org.ecpat.media.story.recorded",
        AdvocacyInitiative = "org.ecpat.advocacy.initiative.recorded",
        SurvivorParticipation = "org.ecpat.survivors.participation.recorded",
        ChildOutreach = "org.ecpat.children.outreach.recorded",
        CapacityTraining = "org.ecpat.capacity.training.recorded",
        MemberExpertise = "org.ecpat.member.expertise.assessed",
        Fact = "org.ecpat.fact.recorded",
        Withdrawal = "org.ecpat.record.withdrawn",
    }
);

str_enum!(
    /// Social metrics; each is its own series per post.
    Metric {
        Likes = "likes",
        Shares = "shares",
        Clicks = "clicks",
        Stories = "stories",
        Comments = "comments",
        Views = "views",
        Impressions = "impressions",
    }
);

str_enum!(
    /// A publication's reach.
    Scope { Global = "global", Thematic = "thematic", Regional = "regional", National = "national" }
);

str_enum!(
    /// Themes a publication can cover.
    Theme {
        Prostitution = "prostitution",
        TravelTourism = "travel_tourism",
        Online = "online",
        Trafficking = "trafficking",
        AccessToJustice = "access_to_justice",
        ChildParticipation = "child_participation",
        RecoveryReintegration = "recovery_reintegration",
        Legislation = "legislation",
        Other = "other",
    }
);

str_enum!(
    /// Human-rights mechanisms a submission can go to.
    Mechanism {
        Upr = "upr",
        Crc = "crc",
        UnSpecialProcedures = "un_special_procedures",
        UnOther = "un_other",
        Acerwc = "acerwc",
        Achpr = "achpr",
        CouncilOfEurope = "council_of_europe",
        EuropeanUnion = "european_union",
        Iachr = "iachr",
        RegionalOther = "regional_other",
    }
);

impl Mechanism {
    /// `global` for the UN mechanisms, `regional` for the others (ND1's breakdown).
    pub fn level(self) -> &'static str {
        match self {
            Self::Upr | Self::Crc | Self::UnSpecialProcedures | Self::UnOther => "global",
            _ => "regional",
        }
    }
}

str_enum!(
    /// Mechanisms whose outcomes take up ECPAT recommendations.
    RecommendationMechanism { Upr = "upr", Crc = "crc" }
);

str_enum!(
    /// How much the private sector is engaged in an advocacy initiative.
    Engagement { None = "none", Limited = "limited", Significant = "significant" }
);

str_enum!(
    /// What survivors took part in.
    Activity { Programme = "programme", Advocacy = "advocacy" }
);

str_enum!(
    /// Who reached children.
    OrganisationKind { Member = "member", Partner = "partner" }
);

str_enum!(
    /// The medium through which children were addressed.
    Channel {
        SocialMedia = "social_media",
        ParticipatoryMedia = "participatory_media",
        TraditionalMedia = "traditional_media",
    }
);

str_enum!(
    /// Manifestations of sexual exploitation of children (ND3).
    Manifestation {
        Prostitution = "prostitution",
        TravelTourism = "travel_tourism",
        Online = "online",
        Trafficking = "trafficking",
    }
);

/// One metric series of a social post: that metric's cumulative total, from the series'
/// current snapshot, and the post's attributes, from the post's latest snapshot (whichever
/// metrics that one carries: docs/events.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SocialSeries {
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,31}$")]
    pub platform: String,
    #[schema(min_length = 1, max_length = 256)]
    pub post_id: String,
    pub metric: Metric,
    /// The metric's current cumulative total.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub value: i64,
    #[schema(value_type = Member)]
    pub member: String,
    pub published_at: DateTime<Utc>,
    #[schema(min_length = 1, max_length = 256)]
    pub publication_id: Option<String>,
    #[schema(max_length = 2000)]
    pub url: Option<String>,
}

impl SocialSeries {
    /// Whether `other` gives the post the same attributes (`member`, `published_at`,
    /// `publication_id`, `url`).
    pub fn same_post_attributes(&self, other: &SocialSeries) -> bool {
        self.member == other.member
            && self.published_at == other.published_at
            && self.publication_id == other.publication_id
            && self.url == other.url
    }

    /// This series (its metric and value) with the post attributes of `latest`.
    pub fn with_post_attributes(&self, latest: &SocialSeries) -> SocialSeries {
        SocialSeries {
            member: latest.member.clone(),
            published_at: latest.published_at,
            publication_id: latest.publication_id.clone(),
            url: latest.url.clone(),
            ..self.clone()
        }
    }
}

/// A research study, review or national overview.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Publication {
    #[schema(min_length = 1, max_length = 256)]
    pub publication_id: String,
    #[schema(max_length = 2000)]
    pub title: String,
    pub scope: Scope,
    #[schema(value_type = Vec<Country>)]
    pub countries: Vec<String>,
    pub themes: Vec<Theme>,
    pub contributed: bool,
    pub published_on: NaiveDate,
    #[schema(max_length = 2000)]
    pub doi: Option<String>,
    #[schema(max_length = 2000)]
    pub url: Option<String>,
}

/// A report to a UN or regional human-rights mechanism.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnSubmission {
    #[schema(min_length = 1, max_length = 256)]
    pub submission_id: String,
    pub mechanism: Mechanism,
    #[schema(value_type = Country)]
    pub country: String,
    pub submitted_on: NaiveDate,
    #[schema(max_length = 2000)]
    pub cycle: Option<String>,
    pub in_alliance: bool,
    #[schema(value_type = Vec<Member>, min_items = 1)]
    pub members: Vec<String>,
    #[schema(max_length = 2000)]
    pub document: Option<String>,
}

/// The outcome of one ECPAT recommendation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnRecommendation {
    #[schema(min_length = 1, max_length = 256)]
    pub recommendation_id: String,
    pub mechanism: RecommendationMechanism,
    #[schema(value_type = Country)]
    pub country: String,
    pub taken_up: bool,
    #[schema(max_length = 2000)]
    pub document: Option<String>,
    #[schema(schema_with = schema::paragraph)]
    pub paragraph: Option<serde_json::Value>,
    pub decided_on: NaiveDate,
}

/// A story in the media by a member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MediaStory {
    #[schema(min_length = 1, max_length = 256)]
    pub story_id: String,
    #[schema(value_type = Member)]
    pub member: String,
    #[schema(max_length = 2000)]
    pub outlet: String,
    pub global_advocacy: bool,
    pub published_on: NaiveDate,
    #[schema(max_length = 2000)]
    pub url: Option<String>,
}

/// An advocacy initiative.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdvocacyInitiative {
    #[schema(min_length = 1, max_length = 256)]
    pub initiative_id: String,
    #[schema(max_length = 2000)]
    pub title: String,
    pub private_sector_engagement: Engagement,
    #[schema(schema_with = schema::free_text_list)]
    pub partners: Vec<String>,
    pub started_on: NaiveDate,
}

/// Survivors taking part in a programme or in advocacy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SurvivorParticipation {
    #[schema(min_length = 1, max_length = 256)]
    pub participation_id: String,
    #[schema(value_type = Country)]
    pub country: String,
    pub activity: Activity,
    pub date: NaiveDate,
}

/// A member or partner addressing children through the media.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChildOutreach {
    #[schema(min_length = 1, max_length = 256)]
    pub outreach_id: String,
    #[schema(value_type = Member)]
    pub organisation: String,
    pub organisation_kind: OrganisationKind,
    pub channel: Channel,
    pub regular: bool,
    pub date: NaiveDate,
}

/// A capacity-building activity and the members who benefited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CapacityTraining {
    #[schema(min_length = 1, max_length = 256)]
    pub training_id: String,
    #[schema(max_length = 2000)]
    pub title: String,
    pub held_on: NaiveDate,
    #[schema(value_type = Vec<Member>, min_items = 1)]
    pub beneficiaries: Vec<String>,
}

/// A member's technical expertise in one year.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemberExpertise {
    #[schema(value_type = Member)]
    pub member: String,
    #[schema(minimum = 1990, maximum = 2100)]
    pub year: i32,
    pub manifestations: Vec<Manifestation>,
}

/// What no other record type carries: a fact of some `kind`, counted by the frameworks
/// that name it. Lists hold each item once, in order; `value` is 1 when the event has none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Fact {
    #[schema(min_length = 1, max_length = 256)]
    pub fact_id: String,
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    pub kind: String,
    pub date: NaiveDate,
    #[schema(value_type = Option<Member>)]
    pub member: Option<String>,
    #[schema(value_type = Vec<Country>)]
    pub countries: Vec<String>,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub value: i64,
    #[schema(schema_with = schema::slug_list)]
    pub tags: Vec<String>,
    #[schema(schema_with = schema::attributes)]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// A current record, as counted by the indicators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record_type", rename_all = "snake_case")]
pub enum Record {
    SocialPost(SocialSeries),
    Publication(Publication),
    UnSubmission(UnSubmission),
    UnRecommendation(UnRecommendation),
    MediaStory(MediaStory),
    AdvocacyInitiative(AdvocacyInitiative),
    SurvivorParticipation(SurvivorParticipation),
    ChildOutreach(ChildOutreach),
    CapacityTraining(CapacityTraining),
    MemberExpertise(MemberExpertise),
    Fact(Fact),
}

/// Identifies one versioned record: its type and its key fields, encoded as a JSON array
/// (e.g. `["x","123","likes"]`) so that the text is unambiguous.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    pub record_type: RecordType,
    pub key: String,
}

/// Canonical text of a key made of several parts.
fn key_text(parts: &[serde_json::Value]) -> String {
    serde_json::Value::Array(parts.to_vec()).to_string()
}

/// The key of a social post (all its series), used to apply a post withdrawal.
pub fn post_key(platform: &str, post_id: &str) -> String {
    serde_json::to_string(&[platform, post_id]).expect("strings serialize")
}

impl Record {
    /// The record's type.
    pub fn record_type(&self) -> RecordType {
        match self {
            Record::SocialPost(_) => RecordType::SocialPost,
            Record::Publication(_) => RecordType::Publication,
            Record::UnSubmission(_) => RecordType::UnSubmission,
            Record::UnRecommendation(_) => RecordType::UnRecommendation,
            Record::MediaStory(_) => RecordType::MediaStory,
            Record::AdvocacyInitiative(_) => RecordType::AdvocacyInitiative,
            Record::SurvivorParticipation(_) => RecordType::SurvivorParticipation,
            Record::ChildOutreach(_) => RecordType::ChildOutreach,
            Record::CapacityTraining(_) => RecordType::CapacityTraining,
            Record::MemberExpertise(_) => RecordType::MemberExpertise,
            Record::Fact(_) => RecordType::Fact,
        }
    }

    /// The key this record is a version of.
    pub fn key(&self) -> RecordKey {
        // The same text as `key_text` gives, written directly (this is on the hot path).
        let one = |id: &str| serde_json::to_string(&[id]).expect("strings serialize");
        let key = match self {
            Record::SocialPost(s) => {
                serde_json::to_string(&[s.platform.as_str(), s.post_id.as_str(), s.metric.as_str()])
                    .expect("strings serialize")
            }
            Record::Publication(r) => one(&r.publication_id),
            Record::UnSubmission(r) => one(&r.submission_id),
            Record::UnRecommendation(r) => one(&r.recommendation_id),
            Record::MediaStory(r) => one(&r.story_id),
            Record::AdvocacyInitiative(r) => one(&r.initiative_id),
            Record::SurvivorParticipation(r) => one(&r.participation_id),
            Record::ChildOutreach(r) => one(&r.outreach_id),
            Record::CapacityTraining(r) => one(&r.training_id),
            Record::MemberExpertise(r) => serde_json::to_string(&(&r.member, r.year)).expect("strings serialize"),
            Record::Fact(r) => one(&r.fact_id),
        };
        RecordKey { record_type: self.record_type(), key }
    }

    /// For a social series, the key of its post; `None` for other records.
    pub fn group(&self) -> Option<String> {
        match self {
            Record::SocialPost(s) => Some(post_key(&s.platform, &s.post_id)),
            _ => None,
        }
    }
}

/// What one event says about one record or group of records.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A version of one record (a social snapshot gives one per metric it carries).
    Upsert(Record),
    /// The named record does not exist (from this version on).
    Withdraw(RecordKey),
    /// Every series of a social post, including ones not yet seen, does not exist.
    WithdrawPost(String),
}

#[cfg(test)]
mod tests;
