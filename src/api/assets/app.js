// The dashboard of the ECPAT indicators: reads the JSON API and follows the live stream of
// docs/api.md (`/api/v1/indicators`, `/api/v1/indicators/{code}`, `.../series`,
// `/api/v1/stream`). Plain JavaScript modules, no framework and no build step: `strings.js`
// holds the words, `state.js` what the page knows, `render.js` draws it, and this module
// loads the data and follows the stream.

import { applyLanguage, card, noteYear, renderIndicator, renderSeries, renderTarget, renderValue, setLanguage, setStatus, showError } from './render.js';
import { state, t } from './state.js';

const DEBOUNCE_MS = 300;
// A steady flow of tallies must not postpone the re-fetch for ever.
const DEBOUNCE_MAX_MS = 2000;
const RETRY_MS = 5000;

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
  const { framework, code, period, value } = tally;
  if (framework !== state.framework) return;
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
