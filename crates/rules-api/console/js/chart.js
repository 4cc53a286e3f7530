// A line chart of counters per bucket, as SVG, with the numbers also in a table
// (for screen readers and for reading exact values).
import { h } from './dom.js';
import { formatShort } from './time.js';

const W = 720;
const H = 220;
const PAD = { left: 44, right: 12, top: 12, bottom: 30 };

/**
 * lineChart({title, points: [{bucket_start, ...counters}], series: [{key, label}]})
 * Each series gets a class `s0`…`s3` (colours and dash patterns in console.css).
 */
export function lineChart({ title, points, series }) {
  const figure = h('figure', { class: 'chart' });
  if (!points.length) {
    figure.append(h('figcaption', { text: title }), h('p', { text: 'Nothing in this range.' }));
    return figure;
  }
  const max = Math.max(1, ...points.flatMap((p) => series.map((s) => p[s.key] ?? 0)));
  const x = (i) => PAD.left + (points.length === 1 ? (W - PAD.left - PAD.right) / 2 : (i * (W - PAD.left - PAD.right)) / (points.length - 1));
  const y = (v) => H - PAD.bottom - (v * (H - PAD.top - PAD.bottom)) / max;
  const ticks = [0, Math.round(max / 2), max].filter((v, i, all) => all.indexOf(v) === i);
  const labelled = [...new Set([0, Math.floor((points.length - 1) / 2), points.length - 1])];
  const svg = h('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: ${series.map((s) => s.label).join(', ')} per bucket` },
    h('title', { text: title }),
    ticks.map((t) => h('g', { class: 'tick' },
      h('line', { x1: PAD.left, x2: W - PAD.right, y1: y(t), y2: y(t) }),
      h('text', { x: PAD.left - 6, y: y(t) + 4, 'text-anchor': 'end', text: String(t) }))),
    labelled.map((i) => h('text', { class: 'xlabel', x: x(i), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === points.length - 1 ? 'end' : 'middle', text: formatShort(points[i].bucket_start) })),
    series.map((s, n) => h('g', { class: `series s${n}` },
      h('polyline', { points: points.map((p, i) => `${x(i)},${y(p[s.key] ?? 0)}`).join(' ') }),
      points.length <= 90 ? points.map((p, i) => h('circle', { cx: x(i), cy: y(p[s.key] ?? 0), r: 2.5 })) : null)));
  const legend = h('ul', { class: 'legend' }, series.map((s, n) => h('li', {}, h('span', { class: `swatch s${n}`, 'aria-hidden': 'true' }), s.label)));
  const data = h('details', {},
    h('summary', { text: 'The numbers' }),
    h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Bucket' }), series.map((s) => h('th', { scope: 'col', text: s.label })))),
      h('tbody', {}, points.map((p) => h('tr', {}, h('th', { scope: 'row', text: formatShort(p.bucket_start) }), series.map((s) => h('td', { text: String(p[s.key] ?? 0) })))))));
  figure.append(h('figcaption', { text: title }), svg, legend, data);
  return figure;
}
