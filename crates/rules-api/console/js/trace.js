// A dry run's trace (every condition node, pre-order, each with its path) as a
// nested list: each node under the nearest node whose path is a prefix of its own.
import { h } from './dom.js';

const show = (v) => (v === undefined ? '—' : JSON.stringify(v));

function label(node) {
  const verdict = h('span', { class: node.result ? 'verdict yes' : 'verdict no', text: node.result ? 'true' : 'false' });
  if (node.node !== 'leaf') return [h('strong', { text: node.node }), ' → ', verdict];
  const found = node.found === false ? h('span', { class: 'missing', text: ' (field not in the event)' }) : null;
  return [
    h('code', { text: node.field ?? '' }), ' ', h('em', { text: node.op ?? '' }), ' ', h('code', { text: show(node.value) }),
    h('span', { class: 'actual' }, ' — actual ', h('code', { text: node.found === false ? 'missing' : show(node.actual) })),
    found, ' → ', verdict,
  ];
}

/** The trace as a tree; empty traces (no condition) say so. */
export function traceTree(trace, caption = 'Condition trace') {
  if (!trace?.length) return h('p', { text: 'The rule has no condition: every event of its types matches.' });
  const root = h('ul', { class: 'trace', 'aria-label': caption });
  const stack = [{ path: null, list: root }];
  for (const node of trace) {
    while (stack.length > 1 && !isChild(node.path, stack[stack.length - 1].path)) stack.pop();
    const item = h('li', { 'data-path': node.path, 'data-result': String(node.result) },
      h('span', { class: 'node', title: node.path }, label(node)));
    stack[stack.length - 1].list.append(item);
    const children = h('ul', {});
    item.append(children);
    stack.push({ path: node.path, list: children });
  }
  for (const ul of root.querySelectorAll('ul')) if (!ul.children.length) ul.remove();
  return root;
}

function isChild(path, parent) {
  return parent !== null && path.startsWith(parent) && /^[.[]/.test(path.slice(parent.length));
}
