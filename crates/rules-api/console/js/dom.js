// Building DOM nodes without HTML strings: text is always text, never markup.

/**
 * h('button', {class: 'x', onclick: f, disabled: true}, 'Save') → <button>.
 * Props: `class`, `text`, `on<event>` listeners, `dataset`, the boolean and value
 * properties below as properties, anything else as an attribute (skipped when
 * null, undefined or false).
 */
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'readOnly']);

export function h(tag, props = {}, ...children) {
  const svg = SVG_TAGS.has(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.setAttribute('class', value);
    else if (name === 'text') el.textContent = value;
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (PROPERTIES.has(name) && !svg) el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

const SVG_TAGS = new Set(['svg', 'g', 'line', 'polyline', 'rect', 'text', 'title', 'circle', 'path']);

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces everything inside `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idCounter = 0;
/** A fresh id for label/field and description links. */
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/**
 * A labelled form field: { wrap, input, error } where `error(message)` shows a
 * message tied to the input (aria-describedby, aria-invalid) or clears it.
 */
export function field(label, input, hint) {
  const id = input.id || uid('f');
  input.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint`, text: hint }) : null;
  const errorEl = h('span', { class: 'field-error', id: `${id}-error`, hidden: true });
  const wrap = h('div', { class: 'field' }, h('label', { for: id, text: label }), input, hintEl, errorEl);
  const describe = (withError) => {
    const ids = [hintEl && hintEl.id, withError && errorEl.id].filter(Boolean).join(' ');
    if (ids) input.setAttribute('aria-describedby', ids);
    else input.removeAttribute('aria-describedby');
  };
  describe(false);
  const error = (message) => {
    errorEl.textContent = message ?? '';
    errorEl.hidden = !message;
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
    describe(Boolean(message));
  };
  return { wrap, input, error };
}

/** JSON shown in a <pre>, two-space indented. */
export function jsonBlock(value, label) {
  return h('pre', { class: 'json', tabindex: 0, 'aria-label': label }, JSON.stringify(value, null, 2));
}

/** A small definition list of [term, value] pairs. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([term, value]) => [h('dt', { text: term }), h('dd', {}, value)]));
}

/** A short message in the status line (a polite live region): what just happened.
 * `beforeNavigation`: the caller is about to change pages and the message is about
 * that ("Saved …"): it stays on the next page. Messages clear after 10 s. */
let keepOnce = false;
let clearTimer = null;
export function announce(message, { beforeNavigation = false } = {}) {
  const line = document.getElementById('status');
  if (line) line.textContent = message;
  keepOnce = beforeNavigation;
  clearTimeout(clearTimer);
  if (message) clearTimer = setTimeout(() => announce(''), 10_000);
}

/** Clears the status line when a page is left, unless it was announced for the next page. */
export function clearStale() {
  if (keepOnce) keepOnce = false;
  else announce('');
}
