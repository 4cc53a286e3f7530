// What the pages of one rule share: its heading and the tabs between them.
import { api, rulePath } from '../api.js';
import { h } from '../dom.js';

const TABS = [
  ['', 'Edit'],
  ['/test', 'Test'],
  ['/backtest', 'Backtest'],
  ['/activity', 'Executions and analytics'],
  ['/cooldowns', 'Cooldowns'],
];

/** The stored rule and its ETag. */
export async function loadRule(id) {
  const { data, etag } = await api('GET', rulePath(id));
  return { rule: data, etag };
}

/** The rule's name as the page heading, and the tabs of its pages. */
export function ruleHeader(rule, active, title) {
  return h('div', { class: 'rule-header' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/rules', text: 'Rules' }), ' / ', rule.name),
    h('h1', { tabindex: -1, text: `${title}: ${rule.name}` }),
    h('nav', { class: 'tabs', 'aria-label': 'This rule' },
      TABS.map(([suffix, label]) => h('a', {
        href: `#/rules/${rule.id}${suffix}`,
        'aria-current': suffix === active ? 'page' : null,
        text: label,
      }))));
}

/** Renders the current page again, from fresh answers of the API ("Reload"). */
export function reloadPage() {
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

/** An example event of the rule's livestream, for the test panel and template previews. */
export function sampleEvent(rule) {
  const type = rule?.trigger_config?.event_types?.find((t) => t !== '*') ?? 'donation.received';
  return {
    id: crypto.randomUUID(),
    type,
    livestream_id: rule?.livestream_id ?? '00000000-0000-4000-8000-000000000000',
    data: { amount: 25, currency: 'USD', user: { id: 'u-42', name: 'alice' } },
  };
}

/** Parses a textarea's JSON, or returns the parse error's message. */
export function parseJson(text) {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: error.message };
  }
}
