// A rule's executions (newest first, refreshing live) and its analytics chart, in
// the browser's time zone.
import { api, problems, rulePath } from '../api.js';
import { h, replace, field } from '../dom.js';
import { lineChart } from '../chart.js';
import { browserZone, formatTime } from '../time.js';
import { loadRule, ruleHeader } from './common.js';

const REFRESH_MS = 2000;
const RANGES = { minute: 3600_000, hour: 86_400_000, day: 30 * 86_400_000 };
const SERIES = [
  { key: 'matched', label: 'matched' },
  { key: 'executed', label: 'executed' },
  { key: 'suppressed_by_cooldown', label: 'suppressed by cooldown' },
  { key: 'failed', label: 'failed' },
];

export async function activityPage(id) {
  const { rule } = await loadRule(id);
  const live = h('input', { type: 'checkbox', id: 'live-refresh', checked: true });
  const executions = h('div', { class: 'executions' });
  const bucket = field('Bucket', h('select', {},
    h('option', { value: 'minute', text: 'minute (last hour)' }),
    h('option', { value: 'hour', text: 'hour (last 24 hours)', selected: true }),
    h('option', { value: 'day', text: 'day (last 30 days)' })));
  const analytics = h('div', { class: 'analytics' });
  let timer = null;

  const loadExecutions = async () => {
    try {
      const { data } = await api('GET', `${rulePath(id)}/executions?limit=20`);
      replace(executions, data.items.length ? executionTable(data.items) : h('p', { text: 'No executions yet.' }));
    } catch (error) {
      replace(executions, problems(error));
    }
  };
  const loadAnalytics = async () => {
    const to = new Date();
    const from = new Date(to - RANGES[bucket.input.value]);
    const params = new URLSearchParams({ bucket: bucket.input.value, tz: browserZone, from: from.toISOString(), to: to.toISOString() });
    try {
      const { data } = await api('GET', `${rulePath(id)}/analytics?${params}`);
      replace(analytics,
        h('p', { class: 'totals' },
          `${data.matched} matched, ${data.executed} executed (${data.succeeded} succeeded, ${data.failed} failed), `,
          `${data.suppressed_by_cooldown} suppressed by cooldown, ${data.skipped} skipped`,
          data.p95_duration_ms != null ? `; p95 ${data.p95_duration_ms} ms` : ''),
        lineChart({ title: `Per ${data.bucket}, time zone ${data.tz}`, points: data.series, series: SERIES }));
    } catch (error) {
      replace(analytics, problems(error));
    }
  };
  const tick = async () => {
    await Promise.all([loadExecutions(), loadAnalytics()]);
    if (live.checked && timer !== 'stopped') timer = setTimeout(tick, REFRESH_MS);
  };
  live.addEventListener('change', () => {
    clearTimeout(timer);
    if (live.checked) tick();
  });
  bucket.input.addEventListener('change', loadAnalytics);

  const node = h('section', {},
    ruleHeader(rule, '/activity', 'Executions and analytics'),
    h('section', { class: 'card', 'aria-labelledby': 'exec-title' },
      h('div', { class: 'title-row' },
        h('h2', { id: 'exec-title', text: 'Executions, newest first' }),
        h('div', { class: 'field checkbox' }, live, h('label', { for: 'live-refresh', text: `Refresh every ${REFRESH_MS / 1000} s` }))),
      executions),
    h('section', { class: 'card', 'aria-labelledby': 'analytics-title' },
      h('h2', { id: 'analytics-title', text: 'Analytics' }),
      h('div', { class: 'inline-fields' }, bucket.wrap),
      analytics));
  return {
    node,
    ready: tick,
    stop: () => { clearTimeout(timer); timer = 'stopped'; },
  };
}

function executionTable(items) {
  return h('table', { class: 'executions-table' },
    h('caption', { class: 'visually-hidden', text: 'Executions, newest first' }),
    h('thead', {}, h('tr', {}, ['When', 'Status', 'Duration', 'Event', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, items.map((e) => h('tr', { 'data-event-id': e.event_id },
      h('td', { text: formatTime(e.executed_at) }),
      h('td', {}, h('span', { class: `badge ${e.status}`, text: e.status })),
      h('td', { text: `${e.duration_ms} ms` }),
      h('td', {}, h('code', { text: e.event_id })),
      h('td', {}, h('ul', { class: 'outcomes' }, (e.result?.actions ?? []).map((a) => h('li', {},
        `${a.type}: `, h('span', { class: `badge ${a.status}`, text: a.status }),
        a.duration_ms != null ? ` ${a.duration_ms} ms` : '',
        a.error ? h('span', { class: 'error-text', text: ` — ${a.error}` }) : null))))))));
}
