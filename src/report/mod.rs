//! The report for donors: one framework's figures for one period, read in one snapshot of
//! the database, per objective and indicator (value, baseline, target, progress, every
//! breakdown, the years, the evidence), rendered as a printable page ([`html`]) or a
//! workbook ([`xlsx`]).

pub mod html;
pub mod xlsx;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::api::ApiError;
use crate::api::evidence::behind;
use crate::api::schema::{Counted, EvidenceRecord};
use crate::framework::{Framework, Title};
use crate::indicators::Period;
use crate::store::read;

/// The languages a report is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    /// `fr` or `en`.
    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// A title in this language, else in French, else the first.
    pub fn title(self, titles: &Title) -> String {
        crate::framework::title(titles, self.as_str())
    }

    /// An integer with this language's thousands separator: `12 345` (a narrow no-break
    /// space) in French, `12,345` in English.
    pub fn number(self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let separator = match self {
            Lang::Fr => "\u{202f}",
            Lang::En => ",",
        };
        let mut out = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(separator);
            }
            out.push(digit);
        }
        if n < 0 { format!("-{out}") } else { out }
    }
}

/// A framework's figures for one period, as read at `as_of`.
pub struct Report {
    pub framework: String,
    pub title: String,
    pub period: String,
    pub lang: Lang,
    /// When the snapshot the figures come from was taken.
    pub as_of: DateTime<Utc>,
    pub objectives: Vec<ObjectiveSection>,
}

pub struct ObjectiveSection {
    pub code: String,
    pub title: String,
    pub indicators: Vec<IndicatorSection>,
}

pub struct IndicatorSection {
    pub code: String,
    pub title: String,
    pub value: i64,
    pub baseline: Option<i64>,
    /// The target for the report's period.
    pub target: Option<i64>,
    /// Each dimension's keys and values, every one (not only the largest).
    pub breakdowns: Vec<(String, Vec<(String, i64)>)>,
    /// Every year of the framework and every other year with data, oldest first, with the
    /// year's target if any.
    pub years: Vec<YearValue>,
    /// The records behind the value and their events.
    pub evidence: Vec<EvidenceRecord>,
}

pub struct YearValue {
    pub year: String,
    pub value: i64,
    pub target: Option<i64>,
}

impl IndicatorSection {
    /// The value over the target, in percent, rounded; none without a positive target.
    pub fn progress(&self) -> Option<i64> {
        self.target.filter(|t| *t > 0).map(|t| ((self.value as f64) * 100.0 / t as f64).round() as i64)
    }
}

/// What an evidence record counts for, as text: its amount or its items.
pub fn counted_text(counted: &Counted) -> String {
    match counted {
        Counted::Amount(a) => a.amount.to_string(),
        Counted::Items(i) => i.items.join(", "),
    }
}

/// Reads the report of `framework` for `period` in one read-only snapshot, so that every
/// figure and every piece of evidence agree.
pub async fn gather(pool: &PgPool, framework: &Framework, period: &Period, lang: Lang) -> Result<Report, ApiError> {
    let (mut tx, as_of) = read::snapshot(pool).await?;
    let rows = read::values_for_period(&mut *tx, &framework.id, period.as_str()).await?;
    let mut objectives = Vec::new();
    for objective in &framework.objectives {
        let mut indicators = Vec::new();
        for definition in framework.indicators.iter().filter(|i| i.objective == objective.code) {
            let mine: Vec<&read::ValueRow> = rows.iter().filter(|r| r.indicator == definition.code).collect();
            let value = mine.iter().find(|r| r.dimension.is_empty()).map_or(0, |r| r.value);
            let mut breakdowns: Vec<(String, Vec<(String, i64)>)> = Vec::new();
            for row in mine.iter().filter(|r| !r.dimension.is_empty()) {
                match breakdowns.last_mut() {
                    Some((dimension, keys)) if *dimension == row.dimension => keys.push((row.key.clone(), row.value)),
                    _ => breakdowns.push((row.dimension.clone(), vec![(row.key.clone(), row.value)])),
                }
            }
            let totals = read::yearly_totals(&mut *tx, &framework.id, &definition.code).await?;
            let mut years: Vec<String> = (framework.years.0..=framework.years.1).map(|y| y.to_string()).collect();
            years.extend(totals.iter().map(|(year, _)| year.clone()));
            years.sort();
            years.dedup();
            let years = years
                .into_iter()
                .map(|year| YearValue {
                    value: totals.iter().find(|(y, _)| *y == year).map_or(0, |(_, v)| *v),
                    target: definition.targets.get(&year).copied(),
                    year,
                })
                .collect();
            let evidence = behind(&mut tx, framework, definition, period).await?;
            indicators.push(IndicatorSection {
                code: definition.code.clone(),
                title: lang.title(&definition.title),
                value,
                baseline: definition.baseline,
                target: definition.targets.get(period.as_str()).copied(),
                breakdowns,
                years,
                evidence,
            });
        }
        objectives.push(ObjectiveSection {
            code: objective.code.clone(),
            title: lang.title(&objective.title),
            indicators,
        });
    }
    tx.commit().await?;
    Ok(Report {
        framework: framework.id.clone(),
        title: lang.title(&framework.title),
        period: period.as_str().to_owned(),
        lang,
        as_of,
        objectives,
    })
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn numbers_are_grouped_by_thousands_one_way_per_language() {
        assert_eq!(Lang::Fr.number(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(Lang::En.number(1234567), "1,234,567");
        assert_eq!(Lang::En.number(999), "999");
        assert_eq!(Lang::En.number(-1000), "-1,000");
        assert_eq!(Lang::Fr.number(0), "0");
    }
}
