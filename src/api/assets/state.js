// The dashboard's state and settings, shared by its modules.

import { STRINGS } from './strings.js';

const LANG_KEY = 'ecpat-indicators.lang';
// The default framework's years, until `/api/v1/frameworks` has answered.
const DEFAULT_YEARS = [2018, 2021];

export const state = {
  // The framework shown: the one named by `?framework=` in the page's address, else the
  // default one (known once `/api/v1/frameworks` has answered).
  framework: initialFramework(),
  // The frameworks loaded, as `/api/v1/frameworks` lists them ([] until it answers).
  frameworks: [],
  // `?lang=` in the page's address, else the reader's last choice, else French.
  lang: initialLanguage(),
  // When the page last received figures (an answer or a live update), for "data as of".
  asOf: null,
  period: initialPeriod(),
  status: 'connecting',
  // code → the API's indicator object for `period`.
  indicators: new Map(),
  // code → [{period, value}] from the series endpoint, patched by yearly tallies.
  series: new Map(),
  // Years offered by the period selector: the framework's, plus any seen in the data.
  years: yearRange(DEFAULT_YEARS),
  // code → count of tallies received, so a fetch that started before a tally knows it is stale.
  generation: new Map(),
  // "code period" → the latest total the stream announced.
  tallies: new Map(),
  // code → {timer, first}: the pending debounced re-fetch.
  pending: new Map(),
};

// The API token, when the page was opened as `/?access_token=...` (the server asks for one
// when ECPAT_API_TOKEN is set): sent as a header to the API, and in the stream's URL and
// the page's links because EventSource and links cannot send headers.
export const accessToken = new URLSearchParams(location.search).get('access_token');

// An API path with its query: the framework shown, then `params`.
export function apiPath(path, params = {}) {
  const query = new URLSearchParams({ framework: state.framework, ...params });
  return `${path}?${query}`;
}

// An API address for a link the reader opens: with the token, if the page has one.
export function apiLink(path, params = {}) {
  return apiPath(path, accessToken ? { ...params, access_token: accessToken } : params);
}

export function t() {
  return STRINGS[state.lang];
}

// The framework shown, as `/api/v1/frameworks` describes it (undefined until it answers).
export function currentFramework() {
  return state.frameworks.find((framework) => framework.id === state.framework);
}

// The first and last years of the framework shown.
export function frameworkYears() {
  const framework = currentFramework();
  return framework ? framework.years : DEFAULT_YEARS;
}

// The framework's span as a period, e.g. `2018-2021`.
export function span() {
  const [first, last] = frameworkYears();
  return `${first}-${last}`;
}

export function yearRange([first, last]) {
  const years = new Set();
  for (let year = first; year <= last; year += 1) years.add(year);
  return years;
}

// A title by language in the page's language, else in the other one, else any, else `fallback`.
export function localTitle(titles, fallback) {
  const byLanguage = titles || {};
  return byLanguage[state.lang] || byLanguage[t().other.code] || Object.values(byLanguage)[0] || fallback;
}

// Forgets what the page knew of the framework shown, before showing another one.
export function clearFrameworkState() {
  for (const pending of state.pending.values()) clearTimeout(pending.timer);
  state.pending.clear();
  state.indicators.clear();
  state.series.clear();
  state.generation.clear();
  state.tallies.clear();
  state.years = yearRange(frameworkYears());
}

function initialLanguage() {
  const lang = new URLSearchParams(location.search).get('lang');
  return lang === 'en' || lang === 'fr' ? lang : storedLanguage();
}

function storedLanguage() {
  try {
    const lang = localStorage.getItem(LANG_KEY);
    return lang === 'en' ? 'en' : 'fr';
  } catch {
    return 'fr';
  }
}

// Remembers the reader's language for their next visit.
export function storeLanguage(lang) {
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    // Storage may be disabled (private browsing): the choice then lasts for this page only.
  }
}

function initialFramework() {
  return new URLSearchParams(location.search).get('framework') || null;
}

function initialPeriod() {
  const period = new URLSearchParams(location.search).get('period');
  return period && /^(all|\d{4}|\d{4}-\d{4})$/.test(period) ? period : 'all';
}
