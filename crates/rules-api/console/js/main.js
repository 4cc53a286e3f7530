// The console's shell: sign-in, the routes (#/…), the status line.
import { api, apiKey, ApiError, problems } from './api.js';
import { h, replace, field, announce, clearStale } from './dom.js';
import { rulesPage } from './pages/rules.js';
import { editorPage } from './pages/editor.js';
import { testPage } from './pages/test.js';
import { backtestPage } from './pages/backtest.js';
import { activityPage } from './pages/activity.js';
import { cooldownsPage } from './pages/cooldowns.js';

const main = document.getElementById('main');
const signOut = document.getElementById('sign-out');

const ROUTES = [
  [/^rules$/, (_m, query) => rulesPage(query)],
  [/^rules\/new$/, () => editorPage(null)],
  [/^rules\/([0-9a-f-]{36})$/, (m) => editorPage(m[1])],
  [/^rules\/([0-9a-f-]{36})\/test$/, (m) => testPage(m[1])],
  [/^rules\/([0-9a-f-]{36})\/backtest$/, (m) => backtestPage(m[1])],
  [/^rules\/([0-9a-f-]{36})\/activity$/, (m) => activityPage(m[1])],
  [/^rules\/([0-9a-f-]{36})\/cooldowns$/, (m) => cooldownsPage(m[1])],
];

/** The page being shown; its `stop` (timers) runs before the next one renders. */
let current = null;

async function render() {
  current?.stop?.();
  current = null;
  clearStale();
  if (!apiKey.get()) {
    signOut.hidden = true;
    replace(main, signInForm());
    main.querySelector('input')?.focus();
    return;
  }
  signOut.hidden = false;
  const [path, queryText] = (location.hash.replace(/^#\/?/, '') || 'rules').split('?');
  const query = new URLSearchParams(queryText ?? '');
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  markNav(path);
  if (!route) {
    replace(main, h('h1', { tabindex: -1, text: 'Not found' }), h('p', {}, 'No such page. ', h('a', { href: '#/rules', text: 'See the rules' })));
    main.querySelector('h1').focus();
    return;
  }
  try {
    current = await route[1](path.match(route[0]), query);
    replace(main, current.node);
    (main.querySelector('[data-autofocus]') ?? main.querySelector('h1'))?.focus();
    await current.ready?.();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    replace(main, h('h1', { tabindex: -1, text: 'Something went wrong' }), problems(error));
    main.querySelector('h1').focus();
  }
}

function markNav(path) {
  for (const a of document.querySelectorAll('header nav a')) {
    const target = a.getAttribute('href').slice(2);
    if (target === path || (target === 'rules' && path.startsWith('rules/') && path !== 'rules/new')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function signInForm() {
  const key = field('API key', h('input', { type: 'password', autocomplete: 'current-password', required: true }),
    'One of the API keys of this deployment (RULES_API_KEYS). Kept in this tab only, until it closes.');
  // A password form is expected to name its account: this one has none but the key.
  const account = h('input', { type: 'text', autocomplete: 'username', value: 'api-key', hidden: true, 'aria-hidden': 'true', tabindex: -1 });
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title', tabindex: -1, text: 'Sign in' }),
    account,
    key.wrap,
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', text: 'Sign in' })));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    key.error(null);
    apiKey.set(key.input.value.trim());
    try {
      await api('GET', '/api/rules?limit=1', { signingIn: true });
      announce('Signed in', { beforeNavigation: true });
      await render();
    } catch (error) {
      apiKey.clear();
      key.error(error instanceof ApiError && error.status === 401 ? 'This key is not accepted.' : error.message);
      key.input.focus();
    }
  });
  return form;
}

signOut.addEventListener('click', () => {
  apiKey.clear();
  render();
});
window.addEventListener('console:signed-out', () => render());
window.addEventListener('hashchange', () => render());
render();
