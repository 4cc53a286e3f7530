// The rule editor: a form for the common fields and the whole rule as JSON, kept
// in step; the API's 422 shown at each problem's path; templates previewed
// against a sample event through the dry run.
import { api, ApiError, problems, rulePath, etagVersion } from '../api.js';
import { h, replace, field, announce, jsonBlock } from '../dom.js';
import { loadRule, ruleHeader, sampleEvent, parseJson, reloadPage } from './common.js';

/** What the server assigns: not part of what is sent back. */
const SERVER_FIELDS = ['id', 'version', 'created_at', 'updated_at'];

const NEW_RULE = {
  livestream_id: '',
  name: '',
  trigger_config: {
    event_types: ['donation.received'],
    condition: { field: 'data.amount', op: 'gte', value: 10 },
  },
  actions: [{ type: 'log', message: '{{ event.data.user.name }} gave {{ event.data.amount }}' }],
  cooldown_seconds: 0,
  enabled: true,
};

export async function editorPage(id) {
  const loaded = id ? await loadRule(id) : null;
  let version = loaded ? etagVersion(loaded.etag) ?? loaded.rule.version : null;
  let spec = structuredClone(loaded ? loaded.rule : NEW_RULE);
  for (const f of SERVER_FIELDS) delete spec[f];

  // The form: each input reads and writes one path of `spec`.
  const inputs = [
    {
      path: 'name',
      f: field('Name', h('input', { type: 'text', required: true, maxlength: 200 })),
      read: (s) => s.name ?? '',
      write: (s, v) => { s.name = v; },
    },
    {
      path: 'livestream_id',
      f: field('Livestream id', h('input', { type: 'text', spellcheck: 'false', size: 38 }), 'A UUID: the livestream whose events the rule sees.'),
      read: (s) => s.livestream_id ?? '',
      write: (s, v) => { s.livestream_id = v.trim(); },
    },
    {
      path: 'trigger_config.event_types',
      f: field('Event types', h('input', { type: 'text', spellcheck: 'false' }), 'Comma-separated, e.g. donation.received, follow; * for every type.'),
      read: (s) => (s.trigger_config?.event_types ?? []).join(', '),
      write: (s, v) => {
        s.trigger_config ??= {};
        s.trigger_config.event_types = v.split(',').map((t) => t.trim()).filter(Boolean);
      },
    },
    {
      path: 'cooldown_seconds',
      f: field('Cooldown (seconds)', h('input', { type: 'number', min: 0, step: 1 }), '0 for none.'),
      read: (s) => (s.cooldown_seconds ?? '') === '' ? '' : String(s.cooldown_seconds),
      write: (s, v) => { if (v === '') delete s.cooldown_seconds; else s.cooldown_seconds = Number(v); },
    },
    {
      path: 'cooldown_key',
      f: field('Cooldown key', h('input', { type: 'text', spellcheck: 'false' }), 'A field of the event, e.g. data.user.id: one cooldown per value. Empty: one for the whole rule.'),
      read: (s) => s.cooldown_key ?? '',
      write: (s, v) => { if (v.trim()) s.cooldown_key = v.trim(); else delete s.cooldown_key; },
    },
  ];
  const enabled = h('input', { type: 'checkbox', id: 'rule-enabled' });
  const enabledWrap = h('div', { class: 'field checkbox' }, enabled, h('label', { for: 'rule-enabled', text: 'Enabled' }));
  const jsonArea = h('textarea', { rows: 24, spellcheck: 'false', class: 'code' });
  const json = field('Rule JSON', jsonArea, 'The whole rule; the common fields edit the same JSON.');
  const summary = h('div', { class: 'summary' });

  const showSpecInForm = () => {
    for (const i of inputs) i.f.input.value = i.read(spec);
    enabled.checked = spec.enabled !== false;
  };
  const showSpecAsJson = () => { jsonArea.value = JSON.stringify(spec, null, 2); };
  for (const i of inputs) {
    i.f.input.addEventListener('input', () => {
      i.write(spec, i.f.input.value);
      showSpecAsJson();
    });
  }
  enabled.addEventListener('change', () => { spec.enabled = enabled.checked; showSpecAsJson(); });
  jsonArea.addEventListener('input', () => {
    const parsed = parseJson(jsonArea.value);
    if (parsed.error) {
      json.error(`Not JSON: ${parsed.error}`);
      return;
    }
    json.error(null);
    spec = parsed.value;
    showSpecInForm();
  });
  // Leaving the JSON tidies it, when it parses.
  jsonArea.addEventListener('change', () => { if (!parseJson(jsonArea.value).error) showSpecAsJson(); });
  showSpecInForm();
  showSpecAsJson();

  /** The 422's problems: each at its field when the form has it, all in the summary. */
  const showProblems = (error) => {
    for (const i of inputs) i.f.error(null);
    json.error(null);
    const inJson = [];
    for (const d of error?.details ?? []) {
      const at = inputs.find((i) => d.path === i.path || d.path.startsWith(`${i.path}[`) || d.path.startsWith(`${i.path}.`));
      if (at) at.f.error(d.message);
      else inJson.push(`${d.path || '(the rule)'}: ${d.message}`);
    }
    if (inJson.length) json.error(inJson.join(' · '));
    replace(summary, error ? problems(error, {
      title: error.status === 422 ? `The rule was not saved: ${error.details.length} problem${error.details.length === 1 ? '' : 's'}` : error.message,
    }) : null);
  };

  const save = h('button', { type: 'submit', class: 'primary', text: id ? 'Save changes' : 'Create rule' });
  const form = h('form', { class: 'editor', 'aria-label': 'Rule' },
    h('div', { class: 'columns' },
      h('fieldset', {}, h('legend', { text: 'Common fields' }), inputs.map((i) => i.f.wrap), enabledWrap),
      h('div', { class: 'json-column' }, json.wrap)),
    summary,
    h('div', { class: 'buttons' }, save, id ? deleteButton(id, () => spec.name) : null));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const parsed = parseJson(jsonArea.value);
    if (parsed.error) {
      json.error(`Not JSON: ${parsed.error}`);
      jsonArea.focus();
      return;
    }
    save.disabled = true;
    try {
      const { data } = id
        ? await api('PUT', rulePath(id), { body: parsed.value, headers: version ? { 'If-Match': `"${version}"` } : {} })
        : await api('POST', '/api/rules', { body: parsed.value });
      showProblems(null);
      version = data.version;
      announce(`Saved ${data.name} (version ${data.version})`, { beforeNavigation: !id });
      if (!id) location.hash = `#/rules/${data.id}`;
      else replace(summary, h('p', { class: 'ok', text: `Saved: version ${data.version}.` }));
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        showProblems(null);
        replace(summary, h('div', { class: 'problems', role: 'alert' },
          h('p', { class: 'problem-title', text: 'Changed elsewhere, reload: this rule was saved by someone else since you opened it.' }),
          h('button', { type: 'button', text: 'Reload', onclick: reloadPage })));
      } else {
        showProblems(error);
      }
      form.querySelector('[aria-invalid="true"]')?.focus();
    } finally {
      save.disabled = false;
    }
  });

  const heading = loaded
    ? ruleHeader(loaded.rule, '', 'Edit')
    : h('div', { class: 'rule-header' },
      h('p', { class: 'crumbs' }, h('a', { href: '#/rules', text: 'Rules' }), ' / new'),
      h('h1', { tabindex: -1, text: 'New rule' }));
  const node = h('section', {}, heading, form, templatePreview(() => spec));
  return { node };
}

function deleteButton(id, name) {
  const button = h('button', { type: 'button', class: 'danger', text: 'Delete rule' });
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = 'Confirm: delete this rule';
      return;
    }
    try {
      await api('DELETE', rulePath(id));
      announce(`Deleted ${name()}`, { beforeNavigation: true });
      location.hash = '#/rules';
    } catch (error) {
      button.replaceWith(problems(error));
    }
  });
  button.addEventListener('blur', () => { armed = false; button.textContent = 'Delete rule'; });
  return button;
}

/** The actions rendered for a sample event: the dry run of the rule as edited. */
function templatePreview(currentSpec) {
  const eventArea = h('textarea', { rows: 8, spellcheck: 'false', class: 'code' });
  eventArea.value = JSON.stringify(sampleEvent(currentSpec()), null, 2);
  const eventField = field('Sample event', eventArea);
  const out = h('div', { class: 'preview-out', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', text: 'Preview actions' });
  button.addEventListener('click', async () => {
    eventField.error(null);
    const parsed = parseJson(eventArea.value);
    if (parsed.error) {
      eventField.error(`Not JSON: ${parsed.error}`);
      return;
    }
    try {
      const { data } = await api('POST', '/api/rules/test', { body: { rule: currentSpec(), event: parsed.value } });
      replace(out,
        h('p', { text: data.matched ? 'The rule matches this event. Its actions would send:' : 'The rule does not match this event; its actions would send, if it did:' }),
        jsonBlock(data.actions, 'Rendered actions'));
    } catch (error) {
      replace(out, problems(error));
    }
  });
  return h('section', { class: 'card', 'aria-labelledby': 'preview-title' },
    h('h2', { id: 'preview-title', text: 'Template preview' }),
    eventField.wrap, h('div', { class: 'buttons' }, button), out);
}
