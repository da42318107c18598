// Recording by hand: the "Record" panel (opened by its button or at `/#record`) asks for
// the write token once (kept in sessionStorage for the tab, never in the address), offers
// a form per record type (built by forms.js from `/api/v1/openapi.json`), and sends each
// record as a CloudEvent to `POST /api/v1/events`. From the records behind an indicator it
// corrects one (a new version: same key, new id, later time) or withdraws it.

import { COUNTRIES } from './countries.js';
import { buildFields, clearErrors, readFields, schemaName, showFieldError } from './forms.js';
import { accessToken, apiPath, state, t } from './state.js';

const TOKEN_KEY = 'ecpat-indicators.write-token';
const SOURCE = 'urn:ecpat:dashboard';
const WITHDRAWN = 'org.ecpat.record.withdrawn';

// The event type of each record type recorded by hand (social posts come from the collector).
const EVENT_TYPES = {
  publication: 'org.ecpat.research.publication.recorded',
  un_submission: 'org.ecpat.un.submission.recorded',
  un_recommendation: 'org.ecpat.un.recommendation.outcome',
  media_story: 'org.ecpat.media.story.recorded',
  advocacy_initiative: 'org.ecpat.advocacy.initiative.recorded',
  survivor_participation: 'org.ecpat.survivors.participation.recorded',
  child_outreach: 'org.ecpat.children.outreach.recorded',
  capacity_training: 'org.ecpat.capacity.training.recorded',
  member_expertise: 'org.ecpat.member.expertise.assessed',
  fact: 'org.ecpat.fact.recorded',
};

// The key fields of a record type: its `…_id`, or member and year for an assessment.
function keyFields(recordType, record) {
  if (recordType === 'member_expertise') return ['member', 'year'];
  return Object.keys(record).filter((name) => name.endsWith('_id')).slice(0, 1);
}

const panel = { openapi: null, token: storedToken(), editing: null, members: new Set() };

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function keepToken(token) {
  panel.token = token;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Without storage the token lasts as long as the page.
  }
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

function root() {
  return document.getElementById('record');
}

function say(message, kind = 'info') {
  const status = document.getElementById('record-status');
  if (!status) return;
  status.textContent = message || '';
  status.className = `record-status record-${kind}`;
}

// Sends `body` (one event, or a batch) with the write token.
async function send(body, token = panel.token) {
  const headers = {
    'content-type': Array.isArray(body) ? 'application/cloudevents-batch+json' : 'application/cloudevents+json',
  };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch('/api/v1/events', { method: 'POST', headers, body: JSON.stringify(body) });
  let answer = {};
  try {
    answer = await response.json();
  } catch {
    // An answer without JSON is described by its status alone.
  }
  return { status: response.status, answer };
}

async function getJson(path) {
  const headers = { accept: 'application/json' };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function cloudEvent(type, data, after) {
  // Later than every version already stored, so that this one is current.
  const now = Date.now();
  const time = new Date(Math.max(now, after ? Date.parse(after) + 1000 : now)).toISOString();
  return { specversion: '1.0', id: crypto.randomUUID(), source: SOURCE, type, time, datacontenttype: 'application/json', data };
}

// ---- The panel -----------------------------------------------------------------------------

async function open() {
  const node = root();
  node.hidden = false;
  document.getElementById('record-toggle').setAttribute('aria-expanded', 'true');
  node.replaceChildren(element('h2', { id: 'record-heading', tabindex: '-1', text: t().recordHeading }),
    element('p', { id: 'record-status', class: 'record-status', role: 'status', 'aria-live': 'polite' }));
  node.querySelector('h2').focus();
  // Whether the server takes events at all: without its write token the route does not
  // exist (404; behind the API token, once that token is offered).
  const probe = await send([], accessToken).catch(() => ({ status: 0 }));
  if (probe.status === 404) {
    say(t().recordDisabled, 'error');
    return;
  }
  if (!panel.openapi) panel.openapi = await getJson('/api/v1/openapi.json');
  if (panel.token) showChooser();
  else showTokenForm();
}

function close() {
  root().hidden = true;
  document.getElementById('record-toggle').setAttribute('aria-expanded', 'false');
  if (location.hash === '#record') history.replaceState(null, '', `${location.pathname}${location.search}`);
}

function showTokenForm() {
  const form = element('form', { id: 'token-form', class: 'token-form' }, [
    element('label', { for: 'write-token', text: t().tokenLabel }),
    element('input', { type: 'password', id: 'write-token', autocomplete: 'off', required: '' }),
    element('button', { type: 'submit', text: t().tokenSubmit }),
  ]);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = form.querySelector('input').value.trim();
    const { status, answer } = await send([], token);
    if (status === 202) {
      keepToken(token);
      form.remove();
      showChooser();
    } else {
      say(status === 401 ? t().tokenWrong(answer.error || '') : t().sendFailed(status, answer.error || ''), 'error');
      form.querySelector('input').focus();
    }
  });
  root().append(form);
  form.querySelector('input').focus();
}

function showChooser() {
  const types = Object.keys(EVENT_TYPES).filter((type) => panel.openapi.components.schemas[schemaName(type)]);
  const select = element('select', { id: 'record-type' }, types.map((type) => element('option', { value: type, text: t().recordTypes[type] || type })));
  const codes = [...state.indicators.keys()];
  const evidence = element('select', { id: 'evidence-code' }, [element('option', { value: '', text: '—' }), ...codes.map((code) => element('option', { value: code, text: code }))]);
  const forget = element('button', { type: 'button', id: 'forget-token', text: t().tokenForget });
  forget.addEventListener('click', () => {
    keepToken(null);
    root().hidden = true;
    document.getElementById('record-toggle').click();
  });
  root().append(
    element('div', { class: 'record-choice' }, [
      element('div', { class: 'control' }, [element('label', { for: 'record-type', text: t().recordType }), select]),
      element('div', { class: 'control' }, [element('label', { for: 'evidence-code', text: t().correctFrom }), evidence]),
      forget,
    ]),
    element('div', { id: 'evidence-list' }),
    element('div', { id: 'record-form-box' }),
    datalist('countries-list', COUNTRIES),
    datalist('members-list', [...panel.members].sort()),
  );
  select.addEventListener('change', () => showForm(select.value));
  evidence.addEventListener('change', () => showEvidence(evidence.value));
  showForm(select.value);
}

function datalist(id, values) {
  return element('datalist', { id }, values.map((value) => element('option', { value })));
}

// The form of a record type; `editing` ({record, events, key}) fills it in for a
// correction, `typed` with what was typed.
function showForm(recordType, editing = null, typed = null) {
  panel.editing = editing;
  const values = typed || (editing ? editing.record : {});
  const keys = editing ? keyFields(recordType, values) : [];
  const title = editing ? t().correcting(t().recordTypes[recordType] || recordType) : t().recordTypes[recordType] || recordType;
  const form = element('form', { id: 'record-form', class: 'record-form', novalidate: '', 'data-record-type': recordType }, [
    element('h3', { text: title }),
    buildFields(panel.openapi, recordType, values, keys),
    element('p', { class: 'form-error', id: 'form-error', role: 'alert', hidden: '' }),
    element('button', { type: 'submit', class: 'primary', text: editing ? t().sendCorrection : t().send }),
  ]);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit(form, recordType);
  });
  // A refusal is no longer news once the person edits the form.
  form.addEventListener('input', () => {
    if (document.querySelector('#record-status.record-error')) say('');
  });
  document.getElementById('record-form-box').replaceChildren(form);
}

async function submit(form, recordType) {
  clearErrors(form);
  const formError = form.querySelector('#form-error');
  formError.hidden = true;
  const data = readFields(panel.openapi, recordType, form);
  const latest = panel.editing ? panel.editing.events.at(-1).time : null;
  const event = cloudEvent(EVENT_TYPES[recordType], data, latest);
  say(t().sending);
  const { status, answer } = await send(event).catch(() => ({ status: 0, answer: {} }));
  if (status === 202) {
    awaitCount(t().recorded);
    for (const name of ['member', 'members', 'beneficiaries', 'organisation']) rememberMembers(data[name]);
    if (panel.editing) awaitVersion(event.id, panel.editing.key, t().recorded);
    return;
  }
  if (status === 401) {
    keepToken(null);
    await open();
    say(t().tokenWrong(answer.error || ''), 'error');
    return;
  }
  say(t().rejected, 'error');
  if (!(status === 400 && showFieldError(form, answer.detail))) {
    formError.textContent = answer.error || t().sendFailed(status, '');
    formError.hidden = false;
  }
}

// Members seen in records, offered as completions.
function rememberMembers(value) {
  const list = document.getElementById('members-list');
  for (const member of [].concat(value || [])) {
    if (typeof member !== 'string' || panel.members.has(member)) continue;
    panel.members.add(member);
    if (list) list.append(element('option', { value: member }));
  }
}

// Says `message`, then that the record is counted once the live stream reports a change
// (and shows the records behind the indicator picked as they now are).
function awaitCount(message) {
  say(message, 'ok');
  document.addEventListener('ecpat:tally', () => {
    say(`${message} ${t().counted}`, 'ok');
    const code = document.getElementById('evidence-code');
    if (code && code.value) showEvidence(code.value);
  }, { once: true });
}

// ---- Correcting and withdrawing from the evidence ------------------------------------------

const VERSION_POLL_MS = 500;
const VERSION_POLLS = 40;

// A correction may change no total (only a breakdown), so the live stream may say nothing:
// waits until the records behind the indicator picked no longer show an older version than
// `eventId` (the record is gone, or `eventId` is its current version), then has the cards
// fetched again and the records shown anew.
async function awaitVersion(eventId, key, message) {
  const wanted = JSON.stringify(key);
  const code = document.getElementById('evidence-code').value;
  if (!code) return;
  for (let poll = 0; poll < VERSION_POLLS; poll += 1) {
    await new Promise((resolve) => setTimeout(resolve, VERSION_POLL_MS));
    const body = await getJson(apiPath(`/api/v1/indicators/${encodeURIComponent(code)}/records`, { period: 'all' })).catch(() => null);
    if (!body) continue;
    const record = body.records.find((item) => JSON.stringify(item.key) === wanted);
    const stale = record && !record.events.some((e) => e.current && e.id === eventId);
    if (!stale) {
      say(`${message} ${t().counted}`, 'ok');
      document.dispatchEvent(new CustomEvent('ecpat:changed'));
      showEvidence(code);
      return;
    }
  }
}

async function showEvidence(code) {
  const box = document.getElementById('evidence-list');
  if (!code) {
    box.replaceChildren();
    return;
  }
  const body = await getJson(apiPath(`/api/v1/indicators/${encodeURIComponent(code)}/records`, { period: 'all' }));
  const rows = body.records.filter((item) => EVENT_TYPES[item.record_type]).map((item) => {
    const { record_type: recordType, ...record } = item.record;
    for (const name of ['member', 'members', 'beneficiaries']) rememberMembers(record[name]);
    const correct = element('button', { type: 'button', class: 'correct', text: t().correct });
    correct.addEventListener('click', () => {
      document.getElementById('record-type').value = recordType;
      showForm(recordType, { record, events: item.events, key: item.key });
      document.querySelector('#record-form input:not([readonly]), #record-form select').focus();
    });
    const withdraw = element('button', { type: 'button', class: 'withdraw', text: t().withdraw });
    withdraw.addEventListener('click', () => confirmWithdrawal(recordType, record, item));
    return element('li', { 'data-key': JSON.stringify(item.key) }, [
      element('span', { class: 'record-summary', text: `${t().recordTypes[recordType] || recordType} ${item.key.join(' · ')}` }),
      ' ', correct, ' ', withdraw,
    ]);
  });
  box.replaceChildren(rows.length ? element('ul', { class: 'evidence-records' }, rows) : element('p', { text: t().noRecords }));
}

function confirmWithdrawal(recordType, record, item) {
  const key = Object.fromEntries(keyFields(recordType, record).map((name) => [name, record[name]]));
  const dialog = element('dialog', { id: 'withdraw-dialog', 'aria-labelledby': 'withdraw-question' }, [
    element('p', { id: 'withdraw-question', text: t().withdrawQuestion(Object.values(key).join(' · ')) }),
    element('form', { method: 'dialog' }, [
      element('button', { value: 'cancel', id: 'withdraw-cancel', text: t().cancel }),
      ' ',
      element('button', { value: 'confirm', id: 'withdraw-confirm', class: 'primary', text: t().withdraw }),
    ]),
  ]);
  dialog.addEventListener('close', async () => {
    dialog.remove();
    if (dialog.returnValue !== 'confirm') return;
    const event = cloudEvent(WITHDRAWN, { record_type: recordType, key }, item.events.at(-1).time);
    const { status, answer } = await send(event).catch(() => ({ status: 0, answer: {} }));
    if (status === 202) {
      awaitCount(t().withdrawn);
      awaitVersion(event.id, item.key, t().withdrawn);
    } else {
      say(status === 401 ? t().tokenWrong(answer.error || '') : t().sendFailed(status, answer.error || ''), 'error');
    }
  });
  document.body.append(dialog);
  dialog.showModal();
}

// ---- Start -----------------------------------------------------------------------------

export function initRecording() {
  const toggle = document.getElementById('record-toggle');
  const show = () => open().catch((error) => {
    console.warn('Opening the record panel failed:', error);
    say(t().loadError, 'error');
  });
  toggle.addEventListener('click', () => (root().hidden ? show() : close()));
  document.getElementById('lang-toggle').addEventListener('click', async () => {
    toggle.textContent = t().record;
    if (root().hidden) return;
    // Drawn again in the other language, with what was typed.
    const form = document.getElementById('record-form');
    const typed = form && { type: form.dataset.recordType, values: readFields(panel.openapi, form.dataset.recordType, form), editing: panel.editing };
    await show();
    const select = document.getElementById('record-type');
    if (!typed || !select) return;
    select.value = typed.type;
    showForm(typed.type, typed.editing, typed.values);
  });
  if (location.hash === '#record') show();
  // "Correct or withdraw" under a card: the panel, on that indicator's records.
  document.getElementById('main').addEventListener('click', async (event) => {
    const button = event.target.closest('button.evidence-correct');
    if (!button) return;
    await show();
    const select = document.getElementById('evidence-code');
    if (!select) return;
    select.value = button.dataset.code;
    await showEvidence(button.dataset.code);
    root().scrollIntoView();
  });
}
