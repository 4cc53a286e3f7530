// The rules: the API's filters, cursor pages, enable/disable in place.
import { api, ApiError, problems, rulePath } from '../api.js';
import { h, replace, field, announce } from '../dom.js';
import { formatShort } from '../time.js';
import { reloadPage } from './common.js';

const PAGE_SIZE = 25;

export async function rulesPage(query) {
  const filters = {
    livestream_id: query.get('livestream_id') ?? '',
    enabled: query.get('enabled') ?? '',
    event_type: query.get('event_type') ?? '',
  };
  // Cursors of the pages before this one (the first page has none).
  const cursors = [];
  let cursor = query.get('cursor') ?? null;

  const livestream = field('Livestream id', h('input', { type: 'text', value: filters.livestream_id, spellcheck: 'false', size: 38 }));
  const enabled = field('State', h('select', {},
    h('option', { value: '', text: 'any', selected: filters.enabled === '' }),
    h('option', { value: 'true', text: 'enabled', selected: filters.enabled === 'true' }),
    h('option', { value: 'false', text: 'disabled', selected: filters.enabled === 'false' })));
  const eventType = field('Event type', h('input', { type: 'text', value: filters.event_type, spellcheck: 'false' }));
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the rules' },
    livestream.wrap, enabled.wrap, eventType.wrap,
    h('div', { class: 'buttons' }, h('button', { type: 'submit', text: 'Apply filters' })));
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  const pager = h('div', { class: 'pager' });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    if (livestream.input.value.trim()) params.set('livestream_id', livestream.input.value.trim());
    if (enabled.input.value) params.set('enabled', enabled.input.value);
    if (eventType.input.value.trim()) params.set('event_type', eventType.input.value.trim());
    const target = `#/rules${params.size ? `?${params}` : ''}`;
    if (location.hash === target) load();
    else location.hash = target;
  });

  async function load() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
    if (cursor) params.set('cursor', cursor);
    try {
      const { data } = await api('GET', `/api/rules?${params}`);
      replace(results, data.items.length ? table(data.items) : h('p', { text: 'No rules match these filters.' }));
      replace(pager,
        cursors.length ? h('button', { type: 'button', text: 'Previous page', onclick: () => { cursor = cursors.pop(); load(); } }) : null,
        data.next_cursor ? h('button', { type: 'button', text: 'Next page', onclick: () => { cursors.push(cursor); cursor = data.next_cursor; load(); } }) : null);
    } catch (error) {
      if (error instanceof ApiError && error.details.length) {
        for (const d of error.details) {
          if (d.path === 'livestream_id') livestream.error(d.message);
          if (d.path === 'event_type') eventType.error(d.message);
        }
      }
      replace(results, problems(error));
      replace(pager);
    }
  }

  const node = h('section', { 'aria-labelledby': 'rules-title' },
    h('div', { class: 'title-row' },
      h('h1', { id: 'rules-title', tabindex: -1, text: 'Rules' }),
      h('a', { class: 'button primary', href: '#/rules/new', text: 'New rule' })),
    form, results, pager);
  return { node, ready: load };
}

function table(rules) {
  return h('table', { class: 'rules' },
    h('caption', { class: 'visually-hidden', text: 'Rules, newest first' }),
    h('thead', {}, h('tr', {},
      ['Name', 'Livestream', 'Event types', 'Enabled', 'Version', 'Updated', 'Pages'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, rules.map(row)));
}

function row(rule) {
  let version = rule.version;
  const note = h('span', { class: 'row-note', role: 'alert' });
  const versionCell = h('td', { class: 'version', text: String(version) });
  const toggle = h('input', { type: 'checkbox', checked: rule.enabled, 'aria-label': `Enabled: ${rule.name}` });
  toggle.addEventListener('change', async () => {
    const wanted = toggle.checked;
    toggle.disabled = true;
    replace(note);
    try {
      const { data } = await api('PATCH', rulePath(rule.id), {
        body: { enabled: wanted },
        contentType: 'application/merge-patch+json',
        headers: { 'If-Match': `"${version}"` },
      });
      version = data.version;
      versionCell.textContent = String(version);
      announce(`${rule.name} ${data.enabled ? 'enabled' : 'disabled'}`);
    } catch (error) {
      toggle.checked = !wanted;
      if (error instanceof ApiError && error.status === 412) {
        replace(note, 'Changed elsewhere, reload. ',
          h('button', { type: 'button', class: 'link', text: 'Reload', onclick: reloadPage }));
      } else {
        replace(note, error.message);
      }
    } finally {
      toggle.disabled = false;
    }
  });
  const types = rule.trigger_config?.event_types ?? [];
  return h('tr', { 'data-rule-id': rule.id },
    h('th', { scope: 'row' }, h('a', { href: `#/rules/${rule.id}`, text: rule.name })),
    h('td', {}, h('code', { text: rule.livestream_id })),
    h('td', { text: types.join(', ') }),
    h('td', {}, toggle, note),
    versionCell,
    h('td', { text: formatShort(rule.updated_at) }),
    h('td', { class: 'links' },
      h('a', { href: `#/rules/${rule.id}/test`, text: 'Test', 'aria-label': `Test ${rule.name}` }),
      h('a', { href: `#/rules/${rule.id}/backtest`, text: 'Backtest', 'aria-label': `Backtest ${rule.name}` }),
      h('a', { href: `#/rules/${rule.id}/activity`, text: 'Executions', 'aria-label': `Executions of ${rule.name}` }),
      h('a', { href: `#/rules/${rule.id}/cooldowns`, text: 'Cooldowns', 'aria-label': `Cooldowns of ${rule.name}` })));
}
