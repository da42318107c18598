// The dashboard of the ECPAT indicators: reads the JSON API and follows the live stream of
// docs/api.md (`/api/v1/indicators`, `/api/v1/indicators/{code}`, `.../series`,
// `/api/v1/stream`). Plain JavaScript, no framework and no build step.
'use strict';

const OBJECTIVES = ['knowledge_evidence', 'advocacy_partnerships', 'children_voices', 'network_development'];
const STRATEGY_YEARS = [2018, 2019, 2020, 2021];
const LANG_KEY = 'ecpat-indicators.lang';
const DEBOUNCE_MS = 300;
// A steady flow of tallies must not postpone the re-fetch for ever.
const DEBOUNCE_MAX_MS = 2000;
const RETRY_MS = 5000;
const SVG_NS = 'http://www.w3.org/2000/svg';

const STRINGS = {
  fr: {
    title: 'Indicateurs ECPAT 2018-2021',
    heading: 'Indicateurs du réseau ECPAT 2018-2021',
    subtitle: "Contribution d'ECPAT France, mise à jour en continu",
    skip: 'Aller aux indicateurs',
    period: 'Période',
    all: 'Toute la période',
    footer: 'Données : API JSON',
    connecting: 'Connexion…',
    live: 'En direct',
    reconnecting: 'Reconnexion…',
    loadError: 'Impossible de charger les indicateurs ; nouvel essai dans quelques secondes.',
    target: (target, percent) => `Objectif : ${target} · ${percent} % atteint`,
    progressLabel: 'Avancement vers l’objectif',
    noTarget: 'Pas d’objectif pour cette période',
    series: 'Évolution annuelle',
    noSeries: 'Pas encore de données annuelles',
    seriesLabel: (list) => `Valeurs annuelles : ${list}`,
    breakdownBy: (dimension) => `Par ${dimension.toLowerCase()}`,
    valueColumn: 'Valeur',
    objective: {
      knowledge_evidence: 'Connaissances et données probantes',
      advocacy_partnerships: 'Plaidoyer et partenariats',
      children_voices: 'Voix des enfants et des survivants',
      network_development: 'Développement du réseau',
    },
    dimension: {
      scope: 'Portée', country: 'Pays', metric: 'Mesure', platform: 'Plateforme', mechanism: 'Mécanisme',
      activity: 'Activité', channel: 'Canal', organisation_kind: 'Type d’organisation', level: 'Niveau',
    },
    key: {
      scope: { global: 'Globale', thematic: 'Thématique', regional: 'Régionale', national: 'Nationale' },
      metric: { likes: 'J’aime', shares: 'Partages', clicks: 'Clics', stories: 'Récits (stories)' },
      mechanism: { upr: 'EPU', crc: 'Comité des droits de l’enfant' },
      activity: { programme: 'Programmes', advocacy: 'Plaidoyer' },
      channel: { social_media: 'Médias sociaux', participatory_media: 'Médias participatifs', traditional_media: 'Médias traditionnels' },
      organisation_kind: { member: 'Membres', partner: 'Partenaires' },
      level: { global: 'Mondial', regional: 'Régional' },
    },
    locale: 'fr-FR',
    other: { code: 'en', name: 'English' },
  },
  en: {
    title: 'ECPAT indicators 2018-2021',
    heading: 'ECPAT network indicators 2018-2021',
    subtitle: 'ECPAT France’s contribution, updated live',
    skip: 'Skip to the indicators',
    period: 'Period',
    all: 'Whole period',
    footer: 'Data: JSON API',
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    loadError: 'Cannot load the indicators; trying again in a few seconds.',
    target: (target, percent) => `Target: ${target} · ${percent}% reached`,
    progressLabel: 'Progress towards the target',
    noTarget: 'No target for this period',
    series: 'Year by year',
    noSeries: 'No yearly data yet',
    seriesLabel: (list) => `Yearly values: ${list}`,
    breakdownBy: (dimension) => `By ${dimension.toLowerCase()}`,
    valueColumn: 'Value',
    objective: {
      knowledge_evidence: 'Knowledge & evidence',
      advocacy_partnerships: 'Advocacy & partnerships',
      children_voices: 'Children’s & survivors’ voices',
      network_development: 'Network development',
    },
    dimension: {
      scope: 'Scope', country: 'Country', metric: 'Metric', platform: 'Platform', mechanism: 'Mechanism',
      activity: 'Activity', channel: 'Channel', organisation_kind: 'Organisation type', level: 'Level',
    },
    key: {
      scope: { global: 'Global', thematic: 'Thematic', regional: 'Regional', national: 'National' },
      metric: { likes: 'Likes', shares: 'Shares', clicks: 'Clicks', stories: 'Stories' },
      mechanism: { upr: 'UPR', crc: 'Committee on the Rights of the Child' },
      activity: { programme: 'Programmes', advocacy: 'Advocacy' },
      channel: { social_media: 'Social media', participatory_media: 'Participatory media', traditional_media: 'Traditional media' },
      organisation_kind: { member: 'Members', partner: 'Partners' },
      level: { global: 'Global', regional: 'Regional' },
    },
    locale: 'en-GB',
    other: { code: 'fr', name: 'Français' },
  },
};

const PLATFORMS = { facebook: 'Facebook', x: 'X', linkedin: 'LinkedIn', instagram: 'Instagram', youtube: 'YouTube', tiktok: 'TikTok' };

const state = {
  lang: storedLanguage(),
  period: initialPeriod(),
  status: 'connecting',
  // code → the API's indicator object for `period`.
  indicators: new Map(),
  // code → [{period, value}] from the series endpoint, patched by yearly tallies.
  series: new Map(),
  // Years offered by the period selector: the strategy's, plus any seen in the data.
  years: new Set(STRATEGY_YEARS),
  // code → count of tallies received, so a fetch that started before a tally knows it is stale.
  generation: new Map(),
  // "code period" → the latest total the stream announced.
  tallies: new Map(),
  // code → {timer, first}: the pending debounced re-fetch.
  pending: new Map(),
};

function t() {
  return STRINGS[state.lang];
}

function storedLanguage() {
  try {
    const lang = localStorage.getItem(LANG_KEY);
    return lang === 'en' ? 'en' : 'fr';
  } catch {
    return 'fr';
  }
}

function initialPeriod() {
  const period = new URLSearchParams(location.search).get('period');
  return period && /^(all|\d{4})$/.test(period) ? period : 'all';
}

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

function applyLanguage() {
  const strings = t();
  document.documentElement.lang = state.lang;
  document.title = strings.title;
  for (const node of document.querySelectorAll('[data-i18n]')) {
    const path = node.dataset.i18n.split('.');
    const text = path.reduce((value, part) => (value ? value[part] : undefined), strings);
    if (typeof text === 'string') node.textContent = text;
  }
  const toggle = document.getElementById('lang-toggle');
  toggle.textContent = strings.other.name;
  toggle.lang = strings.other.code;
  renderStatus();
  renderPeriodOptions();
  for (const code of state.indicators.keys()) renderIndicator(code);
}

function setLanguage(lang) {
  state.lang = lang;
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    // Storage may be disabled (private browsing): the choice then lasts for this page only.
  }
  applyLanguage();
}

function renderStatus() {
  const status = document.getElementById('status');
  status.className = `status status-${state.status}`;
  document.getElementById('status-text').textContent = t()[state.status];
}

function setStatus(status) {
  if (state.status === status) return;
  state.status = status;
  renderStatus();
}

function noteYear(period) {
  if (!/^\d{4}$/.test(period) || state.years.has(Number(period))) return;
  state.years.add(Number(period));
  renderPeriodOptions();
}

function renderPeriodOptions() {
  const select = document.getElementById('period');
  const years = [...state.years].sort((a, b) => a - b);
  if (!years.includes(Number(state.period)) && state.period !== 'all') years.push(Number(state.period));
  const options = [element('option', { value: 'all', text: t().all })];
  for (const year of years) options.push(element('option', { value: String(year), text: String(year) }));
  select.replaceChildren(...options);
  select.value = state.period;
}

function showError(message) {
  const banner = document.getElementById('error');
  banner.textContent = message || '';
  banner.hidden = !message;
}

// ---- Indicator cards -------------------------------------------------------------------

function card(code) {
  return document.querySelector(`article[data-code="${code}"]`);
}

function createCard(indicator) {
  const code = indicator.code;
  const section = document.querySelector(`section[data-objective="${indicator.objective}"] .cards`);
  if (!section) return null;
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
      element('span', { class: 'value', text: '0' }),
    ]),
    element('div', { class: 'target' }),
    element('div', { class: 'breakdowns' }),
    element('figure', { class: 'series' }, [element('figcaption'), element('div', { class: 'chart' })]),
  ]);
  section.append(article);
  return article;
}

function renderIndicator(code) {
  const indicator = state.indicators.get(code);
  const article = card(code) || createCard(indicator);
  if (!article) return;
  article.querySelector('.title').textContent = state.lang === 'en' ? indicator.title_en : indicator.title;
  renderValue(article, indicator.value);
  renderTarget(article, indicator);
  renderBreakdowns(article, indicator.breakdowns || {});
  renderSeries(article, code);
}

// The `.value` element holds the plain integer (its text is what tests and scrapers read);
// the thousands grouping is drawn by CSS around digit groups, not written into the text.
function renderValue(article, value) {
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

function renderTarget(article, indicator) {
  const box = article.querySelector('.target');
  if (indicator.target === null || indicator.target === undefined || indicator.target <= 0) {
    box.replaceChildren(element('p', { class: 'no-target', text: t().noTarget }));
    return;
  }
  const percent = Math.round((100 * indicator.value) / indicator.target);
  const id = `target-${indicator.code}`;
  box.replaceChildren(
    element('p', {
      id,
      class: 'target-text',
      text: t().target(formatNumber(indicator.target), formatNumber(percent)),
    }),
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

function renderSeries(article, code) {
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
  const low = Math.min(STRATEGY_YEARS[0], ...seen);
  const high = Math.max(STRATEGY_YEARS[STRATEGY_YEARS.length - 1], ...seen);
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

// ---- Data ------------------------------------------------------------------------------

// The API token, when the page was opened as `/?access_token=...` (the server asks for one
// when ECPAT_API_TOKEN is set): sent as a header to the API, and in the stream's URL because
// EventSource cannot send headers.
const accessToken = new URLSearchParams(location.search).get('access_token');

async function getJson(path) {
  const headers = { accept: 'application/json' };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function generation(code) {
  return state.generation.get(code) || 0;
}

// A tally that arrived after a fetch started is at least as new as the fetched total.
function freshest(indicator, period, started) {
  if (generation(indicator.code) === started) return indicator;
  const announced = state.tallies.get(`${indicator.code} ${period}`);
  return announced === undefined ? indicator : { ...indicator, value: announced };
}

async function loadIndicators() {
  const period = state.period;
  const started = new Map([...state.generation]);
  const body = await getJson(`/api/v1/indicators?period=${encodeURIComponent(period)}`);
  if (period !== state.period) return;
  for (const indicator of body.indicators) {
    state.indicators.set(indicator.code, freshest(indicator, period, started.get(indicator.code) || 0));
    renderIndicator(indicator.code);
  }
}

async function loadSeries(code) {
  const body = await getJson(`/api/v1/indicators/${encodeURIComponent(code)}/series`);
  state.series.set(code, body.points);
  for (const point of body.points) noteYear(point.period);
  if (state.indicators.has(code)) renderSeries(card(code), code);
}

async function loadAll() {
  try {
    await loadIndicators();
    await Promise.all([...state.indicators.keys()].map(loadSeries));
    showError(null);
  } catch (error) {
    console.warn('Loading the indicators failed:', error);
    showError(t().loadError);
    setTimeout(loadAll, RETRY_MS);
  }
}

async function refresh(code) {
  const period = state.period;
  const started = generation(code);
  try {
    const [indicator] = await Promise.all([
      getJson(`/api/v1/indicators/${encodeURIComponent(code)}?period=${encodeURIComponent(period)}`),
      loadSeries(code),
    ]);
    if (period !== state.period) return;
    state.indicators.set(code, freshest(indicator, period, started));
    renderIndicator(code);
  } catch (error) {
    console.warn(`Refreshing ${code} failed:`, error);
    scheduleRefresh(code, RETRY_MS);
  }
}

function scheduleRefresh(code, delay = DEBOUNCE_MS) {
  const now = Date.now();
  const pending = state.pending.get(code);
  if (pending) clearTimeout(pending.timer);
  const first = pending ? pending.first : now;
  const wait = Math.max(0, Math.min(delay, first + DEBOUNCE_MAX_MS - now));
  const timer = setTimeout(() => {
    state.pending.delete(code);
    refresh(code);
  }, wait);
  state.pending.set(code, { timer, first });
}

// ---- Live stream -----------------------------------------------------------------------

function onTally(event) {
  let tally;
  try {
    tally = JSON.parse(event.data);
  } catch {
    return;
  }
  const { code, period, value } = tally;
  if (typeof code !== 'string' || typeof period !== 'string' || typeof value !== 'number') return;
  state.generation.set(code, generation(code) + 1);
  state.tallies.set(`${code} ${period}`, value);
  noteYear(period);
  const indicator = state.indicators.get(code);
  if (indicator && period === state.period && indicator.value !== value) {
    state.indicators.set(code, { ...indicator, value });
    const article = card(code);
    renderValue(article, value);
    renderTarget(article, state.indicators.get(code));
  }
  if (/^\d{4}$/.test(period) && state.series.has(code)) {
    const points = state.series.get(code).filter((point) => point.period !== period);
    points.push({ period, value });
    points.sort((a, b) => a.period.localeCompare(b.period));
    state.series.set(code, points);
    if (indicator) renderSeries(card(code), code);
  }
  scheduleRefresh(code);
}

let source = null;
let reconnectDelay = 1000;

function connect() {
  const query = accessToken ? `?access_token=${encodeURIComponent(accessToken)}` : '';
  source = new EventSource(`/api/v1/stream${query}`);
  source.addEventListener('open', () => {
    reconnectDelay = 1000;
    setStatus('live');
  });
  source.addEventListener('tally', onTally);
  source.addEventListener('error', () => {
    setStatus('reconnecting');
    // The browser retries a dropped stream by itself; a refused one (an HTTP error) is
    // closed for good, so retry that with a backoff.
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 30000);
    }
  });
}

// ---- Start -----------------------------------------------------------------------------

function start() {
  document.getElementById('lang-toggle').addEventListener('click', () => setLanguage(t().other.code));
  document.getElementById('period').addEventListener('change', (event) => {
    state.period = event.target.value;
    const url = new URL(location.href);
    if (state.period === 'all') url.searchParams.delete('period');
    else url.searchParams.set('period', state.period);
    history.replaceState(null, '', url);
    loadIndicators().catch((error) => {
      console.warn('Loading the period failed:', error);
      showError(t().loadError);
    });
  });
  applyLanguage();
  loadAll();
  connect();
}

start();
