// Backtest: the saved rule replayed over a range of the input streams, with
// cooldowns and thresholds simulated: the counts, a chart, sample traces.
import { api, ApiError, problems } from '../api.js';
import { h, replace, field, facts, jsonBlock } from '../dom.js';
import { lineChart } from '../chart.js';
import { traceTree } from '../trace.js';
import { toLocalInput, fromLocalInput, formatTime } from '../time.js';
import { loadRule, ruleHeader } from './common.js';

const SERIES = [
  { key: 'matched', label: 'matched' },
  { key: 'would_execute', label: 'would execute' },
  { key: 'suppressed_by_cooldown', label: 'suppressed by cooldown' },
  { key: 'below_threshold', label: 'below threshold' },
];

export async function backtestPage(id) {
  const { rule } = await loadRule(id);
  const now = new Date();
  const from = field('From', h('input', { type: 'datetime-local', value: toLocalInput(new Date(now - 3600_000)), 'data-autofocus': true }), 'Your local time.');
  const to = field('To', h('input', { type: 'datetime-local', value: toLocalInput(new Date(now.getTime() + 60_000)) }));
  const limit = field('Entries to read at most', h('input', { type: 'number', min: 1, max: 100000, value: 10000 }), 'The newest first; 1 to 100,000.');
  const out = h('div', { class: 'backtest-out', 'aria-live': 'polite' });
  const byPath = { from, to, limit };

  const run = async () => {
    for (const f of Object.values(byPath)) f.error(null);
    const body = { rule_id: id, limit: Number(limit.input.value) };
    const f = fromLocalInput(from.input.value);
    const t = fromLocalInput(to.input.value);
    if (f) body.from = f;
    if (t) body.to = t;
    replace(out, h('p', { text: 'Replaying…' }));
    try {
      const { data } = await api('POST', '/api/rules/backtest', { body });
      replace(out, result(data));
    } catch (error) {
      if (error instanceof ApiError) for (const d of error.details) byPath[d.path]?.error(d.message);
      replace(out, problems(error));
    }
  };

  const node = h('section', {},
    ruleHeader(rule, '/backtest', 'Backtest'),
    h('form', { class: 'card inline-fields', 'aria-label': 'Backtest range', onsubmit: (e) => { e.preventDefault(); run(); } },
      from.wrap, to.wrap, limit.wrap,
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', text: 'Run the backtest' }))),
    out);
  return { node };
}

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** The API's bucket: a minute for ranges up to 6 hours, else an hour. */
function bucketMs(data) {
  return new Date(data.to) - new Date(data.from) <= 6 * HOUR ? MINUTE : HOUR;
}

/** The series with the buckets the API omits (nothing matched) as zeros. */
function everyBucket(data) {
  const step = bucketMs(data);
  const byStart = new Map(data.series.map((p) => [new Date(p.bucket_start).getTime(), p]));
  const first = Math.floor(new Date(data.from).getTime() / step) * step;
  const points = [];
  for (let t = first; t <= new Date(data.to).getTime() && points.length < 10_000; t += step) {
    points.push(byStart.get(t) ?? { bucket_start: new Date(t).toISOString() });
  }
  return points;
}

function result(data) {
  return h('div', {},
    h('section', { class: 'card', 'aria-labelledby': 'counts-title' },
      h('h2', { id: 'counts-title', text: 'What the rule would have done' }),
      h('p', { text: `${formatTime(data.from)} to ${formatTime(data.to)}` }),
      facts([
        ['Entries read', String(data.scanned)],
        ['Unreadable', String(data.unreadable)],
        ['Events of the livestream', String(data.events)],
        ['Matched', String(data.matched)],
        ['Would execute', String(data.would_execute)],
        ['Suppressed by cooldown', String(data.suppressed_by_cooldown)],
        ['Below threshold', String(data.below_threshold)],
        ['Duplicates', String(data.duplicates)],
        ['Skipped (stale)', String(data.skipped)],
      ]),
      data.truncated ? h('p', { class: 'warning', text: 'The scan stopped at its limit: older events of the range were not replayed.' }) : null,
      lineChart({ title: `Per ${bucketMs(data) === MINUTE ? 'minute' : 'hour'}`, points: everyBucket(data), series: SERIES })),
    h('section', { class: 'card', 'aria-labelledby': 'samples-title' },
      h('h2', { id: 'samples-title', text: `Sample events (${data.samples.length})` }),
      data.samples.length
        ? h('ol', { class: 'samples' }, data.samples.map((s) => h('li', {},
          h('p', {}, h('strong', { text: s.outcome.replaceAll('_', ' ') }), ` — ${s.event.type} ${s.event.id}`),
          traceTree(s.trace, `Trace of ${s.event.id}`),
          h('details', {}, h('summary', { text: 'The event' }), jsonBlock(s.event, `Event ${s.event.id}`)))))
        : h('p', { text: 'No event of the range matched.' })));
}
