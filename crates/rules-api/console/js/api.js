// The one way the console talks to the API: same origin, the key from session
// storage as a bearer token, JSON in and out, errors as ApiError with the API's
// `details` (path and message of each problem).
import { h } from './dom.js';

const STORAGE = 'rule-engine-api-key';

export const apiKey = {
  get: () => sessionStorage.getItem(STORAGE),
  set: (value) => sessionStorage.setItem(STORAGE, value),
  clear: () => sessionStorage.removeItem(STORAGE),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `the API answered ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? null;
    this.details = body?.error?.details ?? [];
  }
}

/**
 * `api('PATCH', '/api/rules/…', {body, headers, contentType})` → {data, etag, status}.
 * A 401 forgets the key and sends the operator back to the sign-in form (unless
 * `signingIn`: the form that is checking a key shows the refusal itself).
 */
export async function api(method, path, { body, headers = {}, contentType = 'application/json', signingIn = false } = {}) {
  const sent = { Accept: 'application/json', Authorization: `Bearer ${apiKey.get() ?? ''}`, ...headers };
  let payload;
  if (body !== undefined) {
    sent['Content-Type'] = contentType;
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: payload, cache: 'no-store' });
  } catch (cause) {
    throw new ApiError(0, { error: { code: 'network', message: `the API cannot be reached (${cause.message})` } });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401 && !signingIn) {
    apiKey.clear();
    window.dispatchEvent(new CustomEvent('console:signed-out'));
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, etag: response.headers.get('ETag'), status: response.status };
}

/** The version an ETag carries (`"3"` → 3). */
export function etagVersion(etag) {
  const m = /"(\d+)"/.exec(etag ?? '');
  return m ? Number(m[1]) : null;
}

/** An error as an alert: its message and, for a 422, every problem by path. */
export function problems(error, { title } = {}) {
  const details = error instanceof ApiError ? error.details : [];
  return h('div', { class: 'problems', role: 'alert' },
    h('p', { class: 'problem-title', text: title ?? error.message }),
    details.length
      ? h('ul', {}, details.map((d) => h('li', {},
        h('code', { class: 'path', text: d.path || '(the whole body)' }), ' ', d.message)))
      : null);
}

export const rulePath = (id) => `/api/rules/${encodeURIComponent(id)}`;
