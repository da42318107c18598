// The dashboard of the ECPAT indicators: reads the JSON API and follows the live stream of
// docs/api.md (`/api/v1/frameworks`, `/api/v1/indicators`, `/api/v1/indicators/{code}`,
// `.../series`, `/api/v1/stream`), for one framework at a time, which the reader picks.
// Plain JavaScript modules, no framework and no build step: `strings.js` holds the words,
// `state.js` what the page knows, `render.js` draws it, and this module loads the data and
// follows the stream.

import {
  applyLanguage, card, noteFigures, noteYear, renderFramework, renderIndicator, renderLinks, renderSeries, renderTarget,
  renderValue, setLanguage, setStatus, showError,
} from './render.js';
import { initRecording } from './record.js';
import { accessToken, apiPath, clearFrameworkState, currentFramework, span, state, t } from './state.js';

const DEBOUNCE_MS = 300;
// A steady flow of tallies must not postpone the re-fetch for ever.
const DEBOUNCE_MAX_MS = 2000;
const RETRY_MS = 5000;

// ---- Data ------------------------------------------------------------------------------

async function getJson(path) {
  const headers = { accept: 'application/json' };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  // `no-cache`: the browser asks again every time, sending the ETag of the answer it kept;
  // a 304 reaches this code as that kept answer.
  const response = await fetch(path, { headers, cache: 'no-cache' });
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

// Whether what was asked for `framework` and `period` is still what the page shows.
function stillShown(framework, period) {
  return framework === state.framework && (period === undefined || period === state.period);
}

// The frameworks loaded, and the one to show: the one the address names, else the default.
async function loadFrameworks() {
  const body = await getJson('/api/v1/frameworks');
  state.frameworks = body.frameworks;
  const asked = state.frameworks.find((framework) => framework.id === state.framework);
  const chosen = asked || state.frameworks.find((framework) => framework.default) || state.frameworks[0];
  if (!chosen) throw new Error('/api/v1/frameworks: no framework loaded');
  state.framework = chosen.id;
  clearFrameworkState();
  fitPeriod();
  updateAddress();
  renderFramework();
}

async function loadIndicators() {
  const { framework, period } = state;
  const started = new Map([...state.generation]);
  const body = await getJson(apiPath('/api/v1/indicators', { period }));
  if (!stillShown(framework, period)) return;
  for (const indicator of body.indicators) {
    state.indicators.set(indicator.code, freshest(indicator, period, started.get(indicator.code) || 0));
    renderIndicator(indicator.code);
  }
  noteFigures();
}

async function loadSeries(code) {
  const framework = state.framework;
  const body = await getJson(apiPath(`/api/v1/indicators/${encodeURIComponent(code)}/series`));
  if (!stillShown(framework)) return;
  state.series.set(code, body.points);
  for (const point of body.points) noteYear(point.period);
  if (state.indicators.has(code)) renderSeries(card(code), code);
}

async function loadAll() {
  let framework = state.framework;
  try {
    if (state.frameworks.length === 0) {
      await loadFrameworks();
      framework = state.framework;
    }
    await loadIndicators();
    if (!stillShown(framework)) return;
    await Promise.all([...state.indicators.keys()].map(loadSeries));
    showError(null);
  } catch (error) {
    console.warn('Loading the indicators failed:', error);
    showError(t().loadError);
    // Retried unless another framework was picked meanwhile (which loads by itself).
    setTimeout(() => {
      if (state.frameworks.length === 0 || stillShown(framework)) loadAll();
    }, RETRY_MS);
  }
}

async function refresh(code) {
  const { framework, period } = state;
  const started = generation(code);
  try {
    const [indicator] = await Promise.all([
      getJson(apiPath(`/api/v1/indicators/${encodeURIComponent(code)}`, { period })),
      loadSeries(code),
    ]);
    if (!stillShown(framework, period)) return;
    state.indicators.set(code, freshest(indicator, period, started));
    renderIndicator(code);
  } catch (error) {
    console.warn(`Refreshing ${code} failed:`, error);
    if (stillShown(framework)) scheduleRefresh(code, RETRY_MS);
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
  const { framework, code, period, value } = tally;
  // For the record panel, which says when what it sent is counted.
  document.dispatchEvent(new CustomEvent('ecpat:tally', { detail: tally }));
  if (framework !== state.framework) return;
  if (typeof code !== 'string' || typeof period !== 'string' || typeof value !== 'number') return;
  state.generation.set(code, generation(code) + 1);
  state.tallies.set(`${code} ${period}`, value);
  noteFigures();
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

// ---- Framework and period -----------------------------------------------------------------

// Keeps the period when the framework shown has it: `all`, one of its years, its span;
// another framework's span becomes this one's, and a year outside it becomes `all`.
function fitPeriod() {
  const [first, last] = currentFramework().years;
  if (/^\d{4}-\d{4}$/.test(state.period)) state.period = span();
  else if (/^\d{4}$/.test(state.period) && (Number(state.period) < first || Number(state.period) > last)) state.period = 'all';
}

// Keeps the framework (when not the default one) and the period (when not `all`) in the
// page's address, so that a reload or a shared link shows the same.
function updateAddress() {
  const url = new URL(location.href);
  const framework = currentFramework();
  if (!framework || framework.default) url.searchParams.delete('framework');
  else url.searchParams.set('framework', state.framework);
  if (state.period === 'all') url.searchParams.delete('period');
  else url.searchParams.set('period', state.period);
  if (state.lang === 'fr') url.searchParams.delete('lang');
  else url.searchParams.set('lang', state.lang);
  history.replaceState(null, '', url);
}

function showFramework(id) {
  if (id === state.framework) return;
  state.framework = id;
  clearFrameworkState();
  fitPeriod();
  updateAddress();
  renderFramework();
  loadAll();
}

function showPeriod(period) {
  state.period = period;
  updateAddress();
  renderLinks();
  loadIndicators().catch((error) => {
    console.warn('Loading the period failed:', error);
    showError(t().loadError);
  });
}

// ---- Start -----------------------------------------------------------------------------

function start() {
  document.getElementById('lang-toggle').addEventListener('click', () => {
    setLanguage(t().other.code);
    updateAddress();
  });
  document.getElementById('framework').addEventListener('change', (event) => showFramework(event.target.value));
  document.getElementById('period').addEventListener('change', (event) => showPeriod(event.target.value));
  // A record corrected or withdrawn in the record panel: its breakdowns may have changed
  // without any total, which the stream would not say.
  document.addEventListener('ecpat:changed', () => {
    for (const code of state.indicators.keys()) scheduleRefresh(code);
  });
  applyLanguage();
  initRecording();
  loadAll();
  connect();
}

start();
