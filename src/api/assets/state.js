// The dashboard's state and settings, shared by its modules.

import { STRINGS } from './strings.js';

export const STRATEGY_YEARS = [2018, 2019, 2020, 2021];
const LANG_KEY = 'ecpat-indicators.lang';

export const state = {
  // The framework shown: the default one.
  framework: 'ecpat-2018-2021',
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

export function t() {
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

// Remembers the reader's language for their next visit.
export function storeLanguage(lang) {
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    // Storage may be disabled (private browsing): the choice then lasts for this page only.
  }
}

function initialPeriod() {
  const period = new URLSearchParams(location.search).get('period');
  return period && /^(all|\d{4})$/.test(period) ? period : 'all';
}
