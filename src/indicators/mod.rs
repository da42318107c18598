//! Indicator tallies: what records contribute to them ([`rules`]), how they move
//! ([`tally`]), and their periods. The indicators themselves are a framework's
//! (`crate::framework`).

pub mod rules;
pub mod tally;

#[cfg(test)]
use crate::records::str_enum;

#[cfg(test)]
str_enum!(
    /// The default framework's indicator codes, in its order (for tests).
    Code {
        KE1 = "KE1",
        KE2 = "KE2",
        KE3 = "KE3",
        AP1 = "AP1",
        AP2 = "AP2",
        AP3 = "AP3",
        AP4 = "AP4",
        CV1 = "CV1",
        CV2 = "CV2",
        CV3 = "CV3",
        ND1 = "ND1",
        ND2 = "ND2",
        ND3 = "ND3",
    }
);

#[cfg(test)]
impl Code {
    /// The kind of record the indicator counts.
    pub fn record_type(self) -> crate::records::RecordType {
        use crate::records::RecordType;
        match self {
            Code::KE1 | Code::KE2 | Code::CV3 => RecordType::Publication,
            Code::KE3 | Code::AP3 => RecordType::SocialPost,
            Code::AP1 => RecordType::UnRecommendation,
            Code::AP2 => RecordType::MediaStory,
            Code::AP4 => RecordType::AdvocacyInitiative,
            Code::CV1 => RecordType::SurvivorParticipation,
            Code::CV2 => RecordType::ChildOutreach,
            Code::ND1 => RecordType::UnSubmission,
            Code::ND2 => RecordType::CapacityTraining,
            Code::ND3 => RecordType::MemberExpertise,
        }
    }

    /// The strategic objective the indicator belongs to.
    pub fn objective(self) -> &'static str {
        match self {
            Code::KE1 | Code::KE2 | Code::KE3 => "knowledge_evidence",
            Code::AP1 | Code::AP2 | Code::AP3 | Code::AP4 => "advocacy_partnerships",
            Code::CV1 | Code::CV2 | Code::CV3 => "children_voices",
            Code::ND1 | Code::ND2 | Code::ND3 => "network_development",
        }
    }
}

/// A period: a calendar year or `all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period(String);

impl Period {
    /// `all`, a year from 1990 to 2100 (the years a record can count in), or the span
    /// `FIRST-LAST` of a framework whose first and last years are `years`.
    pub fn parse(text: &str, years: (i32, i32)) -> Option<Self> {
        let year_ok = text.len() == 4
            && text.bytes().all(|b| b.is_ascii_digit())
            && text.parse::<i32>().is_ok_and(|y| (1990..=2100).contains(&y));
        let span = format!("{}-{}", years.0, years.1);
        (text == rules::ALL || year_ok || text == span).then(|| Period(text.to_owned()))
    }

    /// The period as written in tallies.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests;
