// A rule's running cooldowns, each with a button that clears it, and one for all.
import { api, problems, rulePath } from '../api.js';
import { h, replace, announce } from '../dom.js';
import { seconds } from '../time.js';
import { loadRule, ruleHeader } from './common.js';

export async function cooldownsPage(id) {
  const { rule } = await loadRule(id);
  const list = h('div', { class: 'cooldowns', 'aria-live': 'polite' });

  const clear = async (scope, what) => {
    try {
      await api('DELETE', `${rulePath(id)}/cooldowns${scope ? `?scope=${encodeURIComponent(scope)}` : ''}`);
      announce(`Cleared ${what}`);
      await load();
    } catch (error) {
      replace(list, problems(error));
    }
  };
  const load = async () => {
    try {
      const { data } = await api('GET', `${rulePath(id)}/cooldowns`);
      if (!data.cooldowns.length) {
        replace(list, h('p', { text: 'No cooldown is running: the next match executes.' }));
        return;
      }
      const keyText = (c) => (c.key === null || c.key === undefined ? (c.scope === '_' ? 'the whole rule' : 'events without the key') : JSON.stringify(c.key));
      replace(list,
        h('table', {},
          h('caption', { class: 'visually-hidden', text: 'Running cooldowns, longest first' }),
          h('thead', {}, h('tr', {}, ['Key', 'Scope', 'Time left', 'Started by event', ''].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, data.cooldowns.map((c) => h('tr', { 'data-scope': c.scope },
            h('th', { scope: 'row' }, h('code', { text: keyText(c) })),
            h('td', {}, h('code', { text: c.scope })),
            h('td', { text: seconds(c.seconds_remaining) }),
            h('td', {}, h('code', { text: c.started_by_event_id })),
            h('td', {}, h('button', { type: 'button', text: 'Clear', 'aria-label': `Clear the cooldown of ${keyText(c)}`, onclick: () => clear(c.scope, `the cooldown of ${keyText(c)}`) })))))),
        h('div', { class: 'buttons' },
          h('button', { type: 'button', class: 'danger', text: 'Clear all cooldowns', onclick: () => clear(null, 'every cooldown of this rule') })));
    } catch (error) {
      replace(list, problems(error));
    }
  };

  const node = h('section', {},
    ruleHeader(rule, '/cooldowns', 'Cooldowns'),
    h('p', { text: rule.cooldown_seconds > 0 ? `${seconds(rule.cooldown_seconds)} ${rule.cooldown_key ? `per value of ${rule.cooldown_key}` : 'for the whole rule'}.` : 'This rule has no cooldown.' }),
    h('div', { class: 'buttons' }, h('button', { type: 'button', text: 'Refresh', onclick: () => load() })),
    list);
  return { node, ready: load };
}
