// The test panel: an event (typed, or one of the input streams' newest) against
// the saved rule: the match, the trace tree, the rendered actions, and whether it
// would execute now, and if not, why.
import { api, problems } from '../api.js';
import { h, replace, field, facts, jsonBlock } from '../dom.js';
import { traceTree } from '../trace.js';
import { formatTime, seconds } from '../time.js';
import { loadRule, ruleHeader, sampleEvent, parseJson } from './common.js';

const REASONS = {
  livestream_not_matched: 'The event is of another livestream.',
  event_type_not_matched: 'The rule does not listen to this event type.',
  condition_not_met: 'The condition does not hold.',
  rule_disabled: 'The rule is disabled.',
  rule_not_loaded: 'The workers do not run this rule at this version (not stored, disabled, or changed since).',
  threshold_not_reached: 'The threshold is not reached yet.',
  cooldown_active: 'A cooldown is running.',
  stale: 'Every action would be skipped: the event is too old.',
  already_processed: 'This event was already decided for this rule.',
};

export async function testPage(id) {
  const { rule } = await loadRule(id);
  const eventArea = h('textarea', { rows: 12, spellcheck: 'false', class: 'code', 'data-autofocus': true });
  eventArea.value = JSON.stringify(sampleEvent(rule), null, 2);
  const eventField = field('Event JSON', eventArea);
  const recent = h('div', { class: 'recent' });
  const out = h('div', { class: 'test-out', 'aria-live': 'polite' });

  const loadRecent = async () => {
    try {
      const { data } = await api('GET', `/api/events/recent?livestream_id=${encodeURIComponent(rule.livestream_id)}&limit=10`);
      if (!data.items.length) {
        replace(recent, h('p', { text: `No recent events of this livestream in the input streams (${data.scanned} entries read).` }));
        return;
      }
      replace(recent, h('ul', { class: 'recent-list', 'aria-label': 'Recent events' }, data.items.map((item) => h('li', {},
        h('button', {
          type: 'button',
          class: 'link',
          onclick: () => { eventArea.value = JSON.stringify(item.event, null, 2); eventArea.focus(); },
        }, `Use ${item.event.type} of ${formatTime(item.added_at)}`),
        ' ', h('code', { class: 'muted', text: `${item.stream} ${item.entry_id}` })))));
    } catch (error) {
      replace(recent, problems(error));
    }
  };

  const run = async () => {
    eventField.error(null);
    const parsed = parseJson(eventArea.value);
    if (parsed.error) {
      eventField.error(`Not JSON: ${parsed.error}`);
      eventArea.focus();
      return;
    }
    try {
      const { data } = await api('POST', '/api/rules/test', { body: { rule_id: id, event: parsed.value, live: true } });
      replace(out, result(data));
    } catch (error) {
      for (const d of error.details ?? []) if (d.path.startsWith('event')) eventField.error(`${d.path}: ${d.message}`);
      replace(out, problems(error));
    }
  };

  const node = h('section', {},
    ruleHeader(rule, '/test', 'Test'),
    h('form', { class: 'card', 'aria-label': 'Event to test', onsubmit: (e) => { e.preventDefault(); run(); } },
      eventField.wrap,
      h('div', { class: 'buttons' },
        h('button', { type: 'submit', class: 'primary', text: 'Run the test' }),
        h('button', { type: 'button', text: 'Show recent events', onclick: loadRecent })),
      recent),
    out);
  return { node };
}

function result(data) {
  const yesNo = (b) => h('span', { class: b ? 'verdict yes' : 'verdict no', text: b ? 'yes' : 'no' });
  const live = data.live;
  const threshold = data.threshold;
  const liveBlock = live
    ? h('section', { class: live.would_execute ? 'live ok' : 'live blocked', 'aria-labelledby': 'live-title' },
      h('h2', { id: 'live-title', text: live.would_execute ? 'It would execute now' : 'It would not execute now' }),
      live.reasons.length ? h('ul', { class: 'reasons' }, live.reasons.map((r) => h('li', { 'data-reason': r }, h('code', { text: r }), ' ', REASONS[r] ?? ''))) : null,
      facts([
        ['Cooldown left', live.cooldown_remaining_seconds > 0 ? seconds(live.cooldown_remaining_seconds) : 'none'],
        ['Threshold', live.threshold_progress == null || !threshold ? 'none' : `${live.threshold_progress} of ${threshold.count} in ${seconds(threshold.window_seconds)}`],
        ['Stored rule', live.stored ? `version ${live.stored.version}, ${live.stored.enabled ? 'enabled' : 'disabled'}` : 'not saved'],
      ]))
    : null;
  return h('div', {},
    h('section', { class: 'card', 'aria-labelledby': 'match-title' },
      h('h2', { id: 'match-title', text: data.matched ? 'The rule matches' : 'The rule does not match' }),
      facts([
        ['Event type listened to', yesNo(data.event_type_matched)],
        ['Condition holds', yesNo(data.condition_matched)],
        ['Cooldown', data.cooldown
          ? `${seconds(data.cooldown.seconds)} ${data.cooldown.key ? `per ${data.cooldown.key} (this event: ${JSON.stringify(data.cooldown.key_value)})` : 'for the whole rule'}`
          : 'none'],
        ['Threshold', threshold
          ? `${threshold.count} events in ${seconds(threshold.window_seconds)}${threshold.group_by ? ` per ${threshold.group_by} (this event: ${JSON.stringify(threshold.group)})` : ''}`
          : 'none'],
      ]),
      h('h3', { text: 'Condition, node by node' }),
      traceTree(data.trace)),
    liveBlock,
    h('section', { class: 'card', 'aria-labelledby': 'actions-title' },
      h('h2', { id: 'actions-title', text: 'Rendered actions' }),
      jsonBlock(data.actions, 'Rendered actions')));
}
