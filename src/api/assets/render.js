// The dashboard's rendering: the static text and controls, the objectives of the framework
// shown, and the indicator cards with their baselines, targets, breakdowns and yearly bar
// charts.

import { PLATFORMS } from './strings.js';
import { apiLink, currentFramework, frameworkYears, localTitle, span, state, storeLanguage, t } from './state.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svgElement(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatNumber(value, options) {
  return new Intl.NumberFormat(t().locale, options).format(value);
}

function keyLabel(dimension, key) {
  if (dimension === 'country') {
    try {
      const name = new Intl.DisplayNames([state.lang], { type: 'region' }).of(key);
      return name && name !== key ? `${name} (${key})` : key;
    } catch {
      return key;
    }
  }
  if (dimension === 'platform') return PLATFORMS[key] || key;
  return (t().key[dimension] || {})[key] || key;
}

// ---- Static text and controls ----------------------------------------------------------

export function applyLanguage() {
  const strings = t();
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll('[data-i18n]')) {
    const path = node.dataset.i18n.split('.');
    const text = path.reduce((value, part) => (value ? value[part] : undefined), strings);
    if (typeof text === 'string') node.textContent = text;
  }
  const toggle = document.getElementById('lang-toggle');
  toggle.textContent = strings.other.name;
  toggle.lang = strings.other.code;
  renderStatus();
  renderHeading();
  renderFrameworkOptions();
  renderPeriodOptions();
  renderObjectiveTitles();
  renderAsOf();
  renderLinks();
  for (const code of state.indicators.keys()) renderIndicator(code);
}

function renderHeading() {
  document.title = t().title(span());
  document.getElementById('heading').textContent = t().heading(span());
}

// The objectives of the framework shown, each an empty section for its cards, and the
// controls and links that name the framework.
export function renderFramework() {
  const main = document.getElementById('main');
  for (const section of main.querySelectorAll('section.objective')) section.remove();
  for (const objective of (currentFramework() || {}).objectives || []) objectiveSection(objective.code);
  renderHeading();
  renderFrameworkOptions();
  renderPeriodOptions();
  renderLinks();
}

function objectiveSection(code) {
  const existing = document.querySelector(`section[data-objective="${code}"]`);
  if (existing) return existing;
  const id = `objective-${code}`;
  const section = element('section', { class: 'objective', 'data-objective': code, 'aria-labelledby': id }, [
    element('h2', { id, text: objectiveTitle(code) }),
    element('div', { class: 'cards' }),
  ]);
  document.getElementById('main').append(section);
  return section;
}

function objectiveTitle(code) {
  const objective = ((currentFramework() || {}).objectives || []).find((o) => o.code === code);
  return localTitle(objective && objective.title, code);
}

function renderObjectiveTitles() {
  for (const section of document.querySelectorAll('section.objective')) {
    section.querySelector('h2').textContent = objectiveTitle(section.dataset.objective);
  }
}

function renderFrameworkOptions() {
  const select = document.getElementById('framework');
  const options = state.frameworks.map((framework) =>
    element('option', { value: framework.id, text: localTitle(framework.title, framework.id) }),
  );
  select.replaceChildren(...options);
  select.disabled = options.length === 0;
  if (state.framework) select.value = state.framework;
}

// The footer's links to the data shown: the JSON list, the CSV and XLSX exports and the
// printable report.
export function renderLinks() {
  const json = document.getElementById('json-link');
  json.href = apiLink('/api/v1/indicators', { period: state.period });
  json.textContent = `/api/v1/indicators?${new URLSearchParams({ framework: state.framework, period: state.period })}`;
  document.getElementById('csv-link').href = apiLink('/api/v1/export.csv', { period: state.period });
  document.getElementById('xlsx-link').href = apiLink('/api/v1/export.xlsx', { period: state.period, lang: state.lang });
  document.getElementById('report-link').href = apiLink('/report', { period: state.period, lang: state.lang });
  for (const article of document.querySelectorAll('article.indicator')) renderEvidenceLink(article, article.dataset.code);
}

export function setLanguage(lang) {
  state.lang = lang;
  storeLanguage(lang);
  applyLanguage();
}

// "Data as of": when the page last received figures, in the page's language.
export function renderAsOf() {
  const node = document.getElementById('as-of');
  if (!state.asOf) {
    node.textContent = '';
    return;
  }
  const time = new Intl.DateTimeFormat(t().locale, { dateStyle: 'long', timeStyle: 'medium' }).format(state.asOf);
  node.textContent = t().asOf(time);
  node.dataset.time = state.asOf.toISOString();
}

// Notes that figures just arrived.
export function noteFigures() {
  state.asOf = new Date();
  renderAsOf();
}

function renderStatus() {
  const status = document.getElementById('status');
  status.className = `status status-${state.status}`;
  document.getElementById('status-text').textContent = t()[state.status];
}

export function setStatus(status) {
  if (state.status === status) return;
  state.status = status;
  renderStatus();
}

export function noteYear(period) {
  if (!/^\d{4}$/.test(period) || state.years.has(Number(period))) return;
  state.years.add(Number(period));
  renderPeriodOptions();
}

// `all`, the framework's span, and each of its years plus any other year seen in the data.
function renderPeriodOptions() {
  const select = document.getElementById('period');
  const years = [...state.years].sort((a, b) => a - b);
  if (/^\d{4}$/.test(state.period) && !years.includes(Number(state.period))) years.push(Number(state.period));
  const options = [
    element('option', { value: 'all', text: t().all }),
    element('option', { value: span(), text: t().span(span()) }),
  ];
  for (const year of years) options.push(element('option', { value: String(year), text: String(year) }));
  select.replaceChildren(...options);
  select.value = state.period;
}

export function showError(message) {
  const banner = document.getElementById('error');
  banner.textContent = message || '';
  banner.hidden = !message;
}

// ---- Indicator cards -------------------------------------------------------------------

export function card(code) {
  return document.querySelector(`article[data-code="${code}"]`);
}

function createCard(indicator) {
  const code = indicator.code;
  const section = objectiveSection(indicator.objective).querySelector('.cards');
  const article = element('article', { class: 'indicator', 'data-code': code, 'aria-labelledby': `title-${code}` }, [
    element('h3', { id: `title-${code}` }, [
      element('span', { class: 'code', text: code }),
      ' ',
      element('span', { class: 'title' }),
    ]),
    // The live region is the whole figure (code and number), so a screen reader announces
    // which indicator changed, not a bare number.
    element('p', { class: 'figure', 'aria-live': 'polite', 'aria-atomic': 'true' }, [
      element('span', { class: 'visually-hidden', text: `${code} ` }),
      element('a', { class: 'value-link' }, [element('span', { class: 'value', text: '0' })]),
    ]),
    element('div', { class: 'target' }),
    element('div', { class: 'breakdowns' }),
    element('figure', { class: 'series' }, [element('figcaption'), element('div', { class: 'chart' })]),
    element('p', { class: 'evidence' }, [
      element('a', { class: 'evidence-report' }),
      ' (',
      element('a', { class: 'evidence-json' }),
      ') ',
      // Opens the record panel on this indicator's records (record.js).
      element('button', { type: 'button', class: 'evidence-correct', 'data-code': code }),
    ]),
  ]);
  section.append(article);
  return article;
}

export function renderIndicator(code) {
  const indicator = state.indicators.get(code);
  const article = card(code) || createCard(indicator);
  if (!article) return;
  article.querySelector('.title').textContent = state.lang === 'en' ? indicator.title_en : indicator.title;
  renderValue(article, indicator.value);
  renderTarget(article, indicator);
  renderBreakdowns(article, indicator.breakdowns || {});
  renderSeries(article, code);
  renderEvidenceLink(article, code);
}

// The links to the records behind the total of the period shown: the value itself and
// the line under the card open the report's annex for the indicator; "JSON" the API's.
function renderEvidenceLink(article, code) {
  const report = `${apiLink('/report', { period: state.period, lang: state.lang })}#evidence-${encodeURIComponent(code)}`;
  const value = article.querySelector('.value-link');
  value.href = report;
  value.title = t().valueLink(code);
  const link = article.querySelector('.evidence-report');
  link.href = report;
  link.textContent = t().evidence(code);
  const json = article.querySelector('.evidence-json');
  json.href = apiLink(`/api/v1/indicators/${encodeURIComponent(code)}/records`, { period: state.period });
  json.textContent = t().evidenceJson;
  article.querySelector('.evidence-correct').textContent = t().correctRecords;
}

// The `.value` element holds the plain integer (its text is what tests and scrapers read);
// the thousands grouping is drawn by CSS around digit groups, not written into the text.
export function renderValue(article, value) {
  const node = article.querySelector('.value');
  const text = String(value);
  if (node.textContent === text) return;
  const groups = [];
  for (let end = text.length; end > 0; end -= 3) groups.unshift(text.slice(Math.max(0, end - 3), end));
  node.replaceChildren(...groups.map((group) => element('span', { class: 'digits', text: group })));
  node.dataset.value = text;
  if (article.dataset.rendered) {
    article.classList.remove('changed');
    // Restart the highlight animation on every change.
    void article.offsetWidth;
    article.classList.add('changed');
  }
  article.dataset.rendered = 'true';
}

function hasNumber(value) {
  return typeof value === 'number';
}

function goal(term, className, text, id) {
  const attributes = id ? { class: className, id, text } : { class: className, text };
  return element('div', { class: 'goal' }, [element('dt', { text: term }), element('dd', attributes)]);
}

// The baseline, the target of the period and the progress towards it (the value over the
// target, as a fraction, a percentage and a bar), each when the framework gives it.
export function renderTarget(article, indicator) {
  const box = article.querySelector('.target');
  const goals = [];
  if (hasNumber(indicator.baseline)) goals.push(goal(t().baseline, 'baseline', formatNumber(indicator.baseline)));
  if (!hasNumber(indicator.target)) {
    const noTarget = element('p', { class: 'no-target', text: t().noTarget });
    box.replaceChildren(...(goals.length ? [element('dl', { class: 'goals' }, goals)] : []), noTarget);
    return;
  }
  goals.push(goal(t().target, 'target-value', formatNumber(indicator.target)));
  if (indicator.target <= 0) {
    box.replaceChildren(element('dl', { class: 'goals' }, goals));
    return;
  }
  const percent = Math.round((100 * indicator.value) / indicator.target);
  const id = `progress-${indicator.code}`;
  const progress = t().progressText(formatNumber(indicator.value), formatNumber(indicator.target), formatNumber(percent));
  goals.push(goal(t().progress, 'progress-text', progress, id));
  box.replaceChildren(
    element('dl', { class: 'goals' }, goals),
    element('progress', {
      max: String(indicator.target),
      value: String(Math.min(indicator.value, indicator.target)),
      'aria-label': t().progressLabel,
      'aria-describedby': id,
    }),
  );
}

function renderBreakdowns(article, breakdowns) {
  const tables = [];
  for (const [dimension, values] of Object.entries(breakdowns)) {
    const label = t().dimension[dimension] || dimension;
    const rows = Object.entries(values).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const table = element('table', {}, [
      element('caption', { text: t().breakdownBy(label) }),
      element('thead', {}, [
        element('tr', {}, [
          element('th', { scope: 'col', text: label }),
          element('th', { scope: 'col', class: 'number', text: t().valueColumn }),
        ]),
      ]),
      element(
        'tbody',
        {},
        rows.map(([key, value]) =>
          element('tr', {}, [
            element('th', { scope: 'row', text: keyLabel(dimension, key) }),
            element('td', { class: 'number', text: formatNumber(value) }),
          ]),
        ),
      ),
    ]);
    // Long tables (many countries) scroll inside the card; a focusable region keeps that
    // scrolling reachable from the keyboard.
    const attributes = rows.length > 6 ? { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': t().breakdownBy(label) } : { class: 'table-wrap' };
    tables.push(element('div', attributes, [table]));
  }
  article.querySelector('.breakdowns').replaceChildren(...tables);
}

export function renderSeries(article, code) {
  const points = state.series.get(code) || [];
  article.querySelector('.series figcaption').textContent = t().series;
  const chart = article.querySelector('.chart');
  if (!points.some((point) => point.value !== 0)) {
    chart.replaceChildren(element('p', { class: 'no-series', text: t().noSeries }));
    return;
  }
  chart.replaceChildren(barChart(points));
}

function barChart(points) {
  const byYear = new Map(points.map((point) => [Number(point.period), point.value]));
  const seen = [...byYear.keys()];
  const [first, last] = frameworkYears();
  const low = Math.min(first, ...seen);
  const high = Math.max(last, ...seen);
  // A contiguous run of years shows gaps as zeros; a very wide spread shows only the data.
  const years = high - low <= 15 ? Array.from({ length: high - low + 1 }, (_, i) => low + i) : seen.sort((a, b) => a - b);
  const bar = 28;
  const gap = 12;
  const top = 16;
  const plot = 60;
  const bottom = 18;
  const width = years.length * (bar + gap) + gap;
  const height = top + plot + bottom;
  const max = Math.max(1, ...years.map((year) => byYear.get(year) || 0));
  const compact = { notation: 'compact', maximumFractionDigits: 1 };
  const summary = years.map((year) => `${year} : ${formatNumber(byYear.get(year) || 0)}`).join(', ');
  const svg = svgElement('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': t().seriesLabel(state.lang === 'en' ? summary.replaceAll(' : ', ': ') : summary),
  });
  svg.append(svgElement('line', { x1: 0, x2: width, y1: top + plot + 0.5, y2: top + plot + 0.5, class: 'axis' }));
  years.forEach((year, i) => {
    const value = byYear.get(year) || 0;
    const h = value === 0 ? 0 : Math.max(2, Math.round((plot * value) / max));
    const x = gap + i * (bar + gap);
    const selected = String(year) === state.period;
    svg.append(svgElement('rect', { x, y: top + plot - h, width: bar, height: h, class: selected ? 'bar selected' : 'bar' }));
    svg.append(svgElement('text', { x: x + bar / 2, y: top + plot - h - 4, class: 'bar-value' }, formatNumber(value, compact)));
    svg.append(svgElement('text', { x: x + bar / 2, y: height - 4, class: selected ? 'year selected' : 'year' }, String(year)));
  });
  return svg;
}


