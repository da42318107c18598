// Forms generated from the record types' JSON Schemas (those of `/api/v1/openapi.json`):
// one input per field, chosen from the field's schema (enumerations as choices, dates as
// date inputs, booleans as checkboxes, integers as number inputs, lists as one input with
// `;` between items), so that a new field of a record type appears by itself. Reads a
// form back into a record's `data`, and shows the worker's rejection next to its field.

import { t } from './state.js';

// A record type's schema in the OpenAPI document: `un_submission` → `UnSubmissionRecord`.
export function schemaName(recordType) {
  return `${recordType.split('_').map((word) => word[0].toUpperCase() + word.slice(1)).join('')}Record`;
}

function resolve(document, schema) {
  if (schema && schema.$ref) return resolve(document, document.components.schemas[schema.$ref.split('/').pop()]);
  return schema || {};
}

// A field's rule, flattened: {type, nullable, enum, format, pattern, minimum, maximum,
// minItems, item} (item: the same for a list's items).
export function fieldRule(document, raw) {
  let schema = resolve(document, raw);
  let nullable = false;
  if (Array.isArray(schema.oneOf)) {
    const options = schema.oneOf.map((option) => resolve(document, option));
    nullable = options.some((option) => option.type === 'null');
    const others = options.filter((option) => option.type !== 'null');
    schema = others.length === 1 ? others[0] : { type: 'string' };
  }
  let type = schema.type;
  if (Array.isArray(type)) {
    nullable = nullable || type.includes('null');
    type = type.find((name) => name !== 'null') || 'string';
  }
  const rule = { ...schema, type, nullable };
  if (type === 'array') rule.item = fieldRule(document, schema.items);
  if (raw && raw.$ref) rule.ref = raw.$ref.split('/').pop();
  if (schema.oneOf && rule.item === undefined && rule.ref === undefined) {
    const ref = (raw.oneOf || []).find((option) => option.$ref);
    if (ref) rule.ref = ref.$ref.split('/').pop();
  }
  return rule;
}

// Whether a field must be filled in: not nullable, and not a list that may be empty.
function required(rule) {
  if (rule.nullable || rule.type === 'boolean') return false;
  return rule.type !== 'array' || (rule.minItems || 0) > 0;
}

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === undefined || value === null) continue;
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) node.append(child);
  return node;
}

export function fieldLabel(name) {
  const labels = t().fields || {};
  return labels[name] || name;
}

function choiceLabel(name, value) {
  const labels = (t().choices || {})[name] || {};
  return labels[value] || value;
}

// A completion list for members and countries (by the schema's names `Member`, `Country`).
function listFor(rule) {
  const ref = rule.ref || (rule.item && rule.item.ref);
  if (ref === 'Country') return 'countries-list';
  if (ref === 'Member') return 'members-list';
  return undefined;
}

// One field: its label, its input (or group of checkboxes), its hint and its error line.
function fieldNode(name, rule, value, keyField) {
  const id = `field-${name}`;
  const errorId = `error-${name}`;
  const hintId = `hint-${name}`;
  const wrap = element('div', { class: `field field-${rule.type}`, 'data-field': name });
  const error = element('p', { class: 'field-error', id: errorId, hidden: true });
  const isRequired = required(rule);
  const labelText = `${fieldLabel(name)}${isRequired ? ' *' : ''}`;
  let hint = null;
  if (rule.type === 'array' && rule.item && Array.isArray(rule.item.enum)) {
    const chosen = new Set(value || []);
    const boxes = rule.item.enum.map((choice) =>
      element('label', { class: 'choice' }, [
        element('input', { type: 'checkbox', name, value: choice, checked: chosen.has(choice) }),
        ` ${choiceLabel(name, choice)}`,
      ]),
    );
    wrap.append(
      element('fieldset', { id, 'aria-describedby': errorId }, [element('legend', { text: labelText }), ...boxes]),
      error,
    );
    return wrap;
  }
  let input;
  if (rule.type === 'boolean') {
    input = element('input', { type: 'checkbox', id, name, checked: value === true });
    wrap.append(element('label', { class: 'choice', for: id }, [input, ` ${fieldLabel(name)}`]), error);
    input.setAttribute('aria-describedby', errorId);
    return wrap;
  }
  if (Array.isArray(rule.enum)) {
    const options = isRequired ? [] : [element('option', { value: '', text: '—' })];
    for (const choice of rule.enum) options.push(element('option', { value: choice, text: choiceLabel(name, choice) }));
    input = element('select', { id, name, required: isRequired }, options);
    input.value = value ?? (isRequired ? rule.enum[0] : '');
  } else if (rule.type === 'array' || rule.type === 'object') {
    const text = rule.type === 'array' ? (value || []).join('; ') : Object.entries(value || {}).map(([k, v]) => `${k}=${v}`).join('; ');
    input = element('input', { type: 'text', id, name, value: text, list: listFor(rule), required: isRequired });
    const itemHint = (t().formatHints || {})[rule.item && rule.item.ref];
    const hintText = rule.type === 'array' ? [t().listHint, itemHint].filter(Boolean).join(' ') : t().pairsHint;
    hint = element('p', { class: 'hint', id: hintId, text: hintText });
  } else if (rule.format === 'date') {
    input = element('input', { type: 'date', id, name, value: value ?? '', min: '1990-01-01', max: '2100-12-31', required: isRequired });
  } else if (rule.type === 'integer') {
    input = element('input', { type: 'number', id, name, value: value ?? '', step: '1', min: rule.minimum, max: rule.maximum, required: isRequired });
  } else {
    input = element('input', { type: 'text', id, name, value: value ?? '', list: listFor(rule), required: isRequired, maxlength: rule.maxLength });
    const known = (t().formatHints || {})[rule.ref];
    if (known || rule.pattern) hint = element('p', { class: 'hint', id: hintId, text: known || t().patternHint(rule.pattern) });
  }
  // The key of a record being corrected stays the same: a new version of the same record.
  if (keyField) input.readOnly = true;
  input.setAttribute('aria-describedby', hint ? `${hintId} ${errorId}` : errorId);
  wrap.append(element('label', { for: id, text: labelText }), input);
  if (hint) wrap.append(hint);
  wrap.append(error);
  return wrap;
}

// The fields of a record type, in the schema's order, the key first; `values` fills them in.
export function buildFields(document, recordType, values = {}, keys = []) {
  const schema = resolve(document, document.components.schemas[schemaName(recordType)]);
  const names = Object.keys(schema.properties || {}).filter((name) => name !== 'record_type');
  const isKey = (name) => keys.includes(name) || name.endsWith('_id');
  names.sort((a, b) => (isKey(b) ? 1 : 0) - (isKey(a) ? 1 : 0));
  const fieldset = element('div', { class: 'fields' });
  for (const name of names) {
    const rule = fieldRule(document, schema.properties[name]);
    fieldset.append(fieldNode(name, rule, values[name], values[name] !== undefined && keys.includes(name)));
  }
  // An error goes once the field it names is changed.
  fieldset.addEventListener('input', (event) => {
    const wrap = event.target.closest('[data-field]');
    if (!wrap) return;
    const error = wrap.querySelector('.field-error');
    error.textContent = '';
    error.hidden = true;
    for (const input of wrap.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  });
  return fieldset;
}

function splitList(text) {
  return text.split(';').map((item) => item.trim()).filter((item) => item !== '');
}

// The record's `data` as the form holds it: empty fields left out.
export function readFields(document, recordType, form) {
  const schema = resolve(document, document.components.schemas[schemaName(recordType)]);
  const data = {};
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    if (name === 'record_type') continue;
    const rule = fieldRule(document, raw);
    if (rule.type === 'array' && rule.item && Array.isArray(rule.item.enum)) {
      const checked = [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((box) => box.value);
      if (checked.length) data[name] = checked;
      continue;
    }
    const input = form.elements.namedItem(name);
    if (!input) continue;
    if (rule.type === 'boolean') {
      data[name] = input.checked;
      continue;
    }
    // Left empty: not sent, so that the worker applies its default or says it is required.
    const text = input.value.trim();
    if (text === '') continue;
    if (rule.type === 'array') {
      const items = splitList(text);
      data[name] = rule.item && rule.item.type === 'integer' ? items.map(Number) : items;
    } else if (rule.type === 'object') {
      data[name] = Object.fromEntries(splitList(text).map((pair) => pair.split('=').map((part) => part.trim())));
    } else if (rule.type === 'integer') {
      data[name] = /^-?\d+$/.test(text) ? Number(text) : text;
    } else {
      data[name] = text;
    }
  }
  return data;
}

// Clears the errors shown in a form.
export function clearErrors(form) {
  for (const error of form.querySelectorAll('.field-error')) {
    error.textContent = '';
    error.hidden = true;
  }
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

// Shows the worker's rejection `detail` (`data.submitted_on: ...`) next to its field and
// moves the focus there; returns false when the detail names no field of the form.
export function showFieldError(form, detail) {
  const match = /^data\.([A-Za-z0-9_]+)[^:]*: (.*)$/s.exec(detail || '');
  const wrap = match && form.querySelector(`[data-field="${match[1]}"]`);
  if (!wrap) return false;
  const error = wrap.querySelector('.field-error');
  error.textContent = t().fieldError(fieldLabel(match[1]), match[2]);
  error.hidden = false;
  const input = wrap.querySelector('input:not([type="checkbox"]), select, fieldset, input');
  input.setAttribute('aria-invalid', 'true');
  (wrap.querySelector('input, select') || input).focus();
  return true;
}
