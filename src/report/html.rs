//! The report as one self-contained HTML page, made to be printed: A4, no controls on
//! paper, no indicator split across pages, every breakdown in full, a chart of the years
//! with its axes and targets, and an annex of the evidence.

use std::fmt::Write;

use serde_json::Value;

use super::{IndicatorSection, Lang, Report, counted_text};

/// The labels of the page, by language.
struct Labels {
    report: &'static str,
    period: &'static str,
    as_of: &'static str,
    value: &'static str,
    baseline: &'static str,
    target: &'static str,
    progress: &'static str,
    none: &'static str,
    years: &'static str,
    annex: &'static str,
    annex_intro: &'static str,
    record: &'static str,
    counts: &'static str,
    events: &'static str,
    current: &'static str,
    no_record: &'static str,
    back: &'static str,
    print: &'static str,
}

const FR: Labels = Labels {
    report: "Rapport",
    period: "Période",
    as_of: "Données au",
    value: "Valeur",
    baseline: "Référence",
    target: "Cible",
    progress: "Progrès",
    none: "aucune",
    years: "Par année",
    annex: "Annexe : les preuves",
    annex_intro: "Pour chaque indicateur, les enregistrements qui composent sa valeur et les événements reçus pour chacun (le courant en gras).",
    record: "Enregistrement",
    counts: "Compte pour",
    events: "Événements (source, id)",
    current: "courant",
    no_record: "Aucun enregistrement.",
    back: "Retour au tableau de bord",
    print: "Imprimez cette page (Ctrl+P) pour un PDF A4.",
};

const EN: Labels = Labels {
    report: "Report",
    period: "Period",
    as_of: "Data as of",
    value: "Value",
    baseline: "Baseline",
    target: "Target",
    progress: "Progress",
    none: "none",
    years: "By year",
    annex: "Annex: the evidence",
    annex_intro: "For each indicator, the records that make up its value and the events received for each (the current one in bold).",
    record: "Record",
    counts: "Counts for",
    events: "Events (source, id)",
    current: "current",
    no_record: "No record.",
    back: "Back to the dashboard",
    print: "Print this page (Ctrl+P) for an A4 PDF.",
};

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; color: #1a1a1a; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; line-height: 1.4; }
h1 { margin-bottom: 0.2rem; } .meta { color: #444; margin: 0.2rem 0; }
.indicator { border: 1px solid #bbb; border-radius: 4px; padding: 0.6rem 1rem; margin: 1rem 0; break-inside: avoid; page-break-inside: avoid; }
.indicator h3 { margin: 0 0 0.4rem; font-size: 1.05rem; } .code { font-weight: bold; margin-right: 0.4rem; }
.figures { display: grid; grid-template-columns: repeat(4, auto); gap: 0 1.5rem; margin: 0.4rem 0; }
.figures dt { font-size: 0.8rem; color: #555; grid-row: 1; } .figures dd { margin: 0; font-size: 1.1rem; grid-row: 2; }
.figures .value { font-weight: bold; font-size: 1.4rem; }
table { border-collapse: collapse; margin: 0.4rem 0; font-size: 0.85rem; }
caption { text-align: left; font-weight: bold; } th, td { border: 1px solid #ccc; padding: 0.1rem 0.5rem; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.breakdowns { display: flex; flex-wrap: wrap; gap: 0 1.5rem; }
svg text { font-size: 10px; fill: #333; } .bar { fill: #2b6cb0; } .target-line { stroke: #c53030; stroke-width: 2; stroke-dasharray: 4 2; }
.annex table { width: 100%; } .annex .indicator-evidence { break-inside: avoid-page; }
.screen-only { color: #444; }
@page { size: A4; margin: 15mm; }
@media print { .screen-only { display: none; } body { margin: 0; max-width: none; } .annex { break-before: page; } }
"#;

/// Text made safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page. `dashboard` is the link back to the dashboard (none when written to a file).
pub fn render(report: &Report, dashboard: Option<&str>) -> String {
    let l = labels(report.lang);
    let lang = report.lang;
    let mut page = String::new();
    let title = format!("{} — {} {}", report.title, l.report, report.period);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        lang.as_str(),
        escape(&title)
    );
    let _ = write!(page, "<header><h1>{}</h1>", escape(&report.title));
    let _ = write!(
        page,
        "<p class=\"meta\">{} <span id=\"framework\">{}</span> · {} <span id=\"period\">{}</span></p>",
        l.report,
        escape(&report.framework),
        l.period,
        escape(&report.period)
    );
    let _ = write!(
        page,
        "<p class=\"meta as-of\">{} <time id=\"as-of\" datetime=\"{}\">{}</time></p>",
        l.as_of,
        report.as_of.to_rfc3339(),
        report.as_of.format("%Y-%m-%d %H:%M:%S UTC")
    );
    page.push_str("<p class=\"screen-only\">");
    if let Some(link) = dashboard {
        let _ = write!(page, "<a href=\"{}\">{}</a> · ", escape(link), l.back);
    }
    let _ = write!(page, "{}</p></header>\n<main>\n", l.print);
    for objective in &report.objectives {
        let _ = writeln!(page, "<section class=\"objective\"><h2>{}</h2>", escape(&objective.title));
        for indicator in &objective.indicators {
            indicator_card(&mut page, indicator, lang, &l);
        }
        page.push_str("</section>\n");
    }
    let _ = writeln!(page, "<section class=\"annex\"><h2>{}</h2><p>{}</p>", l.annex, l.annex_intro);
    for indicator in report.objectives.iter().flat_map(|o| &o.indicators) {
        annex(&mut page, indicator, &l);
    }
    page.push_str("</section></main></body></html>\n");
    page
}

fn labels(lang: Lang) -> Labels {
    match lang {
        Lang::Fr => FR,
        Lang::En => EN,
    }
}

fn indicator_card(page: &mut String, indicator: &IndicatorSection, lang: Lang, l: &Labels) {
    let code = escape(&indicator.code);
    let _ = write!(
        page,
        "<article class=\"indicator\" id=\"indicator-{code}\" data-code=\"{code}\"><h3><span class=\"code\">{code}</span>{}</h3>",
        escape(&indicator.title)
    );
    let optional = |n: Option<i64>| n.map_or_else(|| l.none.to_owned(), |n| lang.number(n));
    let progress = indicator.progress().map_or_else(|| l.none.to_owned(), |p| format!("{} %", lang.number(p)));
    let _ = write!(
        page,
        "<dl class=\"figures\"><dt>{}</dt><dd class=\"value\" data-value=\"{}\">{}</dd><dt>{}</dt><dd class=\"baseline\">{}</dd>\
         <dt>{}</dt><dd class=\"target\">{}</dd><dt>{}</dt><dd class=\"progress\">{}</dd></dl>",
        l.value,
        indicator.value,
        lang.number(indicator.value),
        l.baseline,
        optional(indicator.baseline),
        l.target,
        optional(indicator.target),
        l.progress,
        progress
    );
    chart(page, indicator, lang, l);
    if !indicator.breakdowns.is_empty() {
        page.push_str("<div class=\"breakdowns\">");
        for (dimension, keys) in &indicator.breakdowns {
            let _ = write!(
                page,
                "<table class=\"breakdown\" data-dimension=\"{0}\"><caption>{0}</caption>",
                escape(dimension)
            );
            for (key, value) in keys {
                let _ = write!(
                    page,
                    "<tr><th>{}</th><td class=\"n\" data-value=\"{value}\">{}</td></tr>",
                    escape(key),
                    lang.number(*value)
                );
            }
            page.push_str("</table>");
        }
        page.push_str("</div>");
    }
    page.push_str("</article>\n");
}

/// The years as bars, with a y axis from 0, the year under each bar, and each year's
/// target as a dashed line across its bar.
fn chart(page: &mut String, indicator: &IndicatorSection, lang: Lang, l: &Labels) {
    let years = &indicator.years;
    if years.is_empty() {
        return;
    }
    let (left, top, height, slot) = (48.0, 10.0, 100.0, 44.0);
    let width = left + slot * years.len() as f64 + 10.0;
    let max = years.iter().map(|y| y.value.max(y.target.unwrap_or(0))).max().unwrap_or(0).max(1) as f64;
    let y_of = |v: i64| top + height - (v as f64 / max) * height;
    let _ = write!(
        page,
        "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" width=\"{width}\" height=\"{}\" viewBox=\"0 0 {width} {}\">",
        l.years,
        top + height + 24.0,
        top + height + 24.0
    );
    let _ = write!(
        page,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{0}\" stroke=\"#333\"/><line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#333\"/>",
        top + height,
        width - 5.0
    );
    for tick in [0, max as i64 / 2, max as i64] {
        let _ = write!(
            page,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 4.0,
            y_of(tick) + 3.0,
            lang.number(tick)
        );
    }
    for (i, year) in years.iter().enumerate() {
        let x = left + slot * i as f64 + 8.0;
        let y = y_of(year.value);
        let _ = write!(
            page,
            "<rect class=\"bar\" x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\"><title>{}: {}</title></rect>",
            slot - 16.0,
            top + height - y,
            year.year,
            lang.number(year.value)
        );
        let _ = write!(
            page,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + (slot - 16.0) / 2.0,
            top + height + 14.0,
            year.year
        );
        if let Some(target) = year.target {
            let ty = y_of(target);
            let _ = write!(
                page,
                "<line class=\"target-line\" x1=\"{}\" y1=\"{ty}\" x2=\"{}\" y2=\"{ty}\"><title>{} {}: {}</title></line>",
                x - 4.0,
                x + slot - 12.0,
                l.target,
                year.year,
                lang.number(target)
            );
        }
    }
    page.push_str("</svg>");
}

/// A record's key as text: its parts joined by ` / `.
fn key_text(key: &Value) -> String {
    match key {
        Value::Object(parts) => parts.values().map(part).collect::<Vec<_>>().join(" / "),
        Value::Array(parts) => parts.iter().map(part).collect::<Vec<_>>().join(" / "),
        other => part(other),
    }
}

fn part(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn annex(page: &mut String, indicator: &IndicatorSection, l: &Labels) {
    let code = escape(&indicator.code);
    let _ = write!(
        page,
        "<div class=\"indicator-evidence\" id=\"evidence-{code}\"><h3><span class=\"code\">{code}</span>{} ({})</h3>",
        escape(&indicator.title),
        indicator.evidence.len()
    );
    if indicator.evidence.is_empty() {
        let _ = writeln!(page, "<p>{}</p></div>", l.no_record);
        return;
    }
    let _ = write!(page, "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>", l.record, l.counts, l.events);
    for record in &indicator.evidence {
        let events: Vec<String> = record
            .events
            .iter()
            .map(|e| {
                let text = format!("{} {}", escape(&e.source), escape(&e.id));
                if e.current { format!("<b title=\"{}\">{text}</b>", l.current) } else { text }
            })
            .collect();
        let _ = write!(
            page,
            "<tr class=\"evidence\"><td>{} {}</td><td>{}</td><td>{}</td></tr>",
            record.record_type.as_str(),
            escape(&key_text(&record.key)),
            escape(&counted_text(&record.counted)),
            events.join("<br>")
        );
    }
    page.push_str("</table></div>\n");
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
