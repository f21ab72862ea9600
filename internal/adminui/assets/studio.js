// rowhook rule studio: the rule under edit is sent to POST /studio/try as
// YAML on every change (debounced); the answer's matches, bodies and
// requests, or its located errors, are shown. Nothing is sent anywhere.
(function () {
  'use strict';
  const TOKEN_KEY = 'rowhook.admin.token';
  const $ = (id) => document.getElementById(id);
  const { fmtTime } = window.rowhookTime;
  let meta = { tables: [], helpers: [], webhooks: [], names: [] };
  let seq = 0;
  let timer = null;

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
  async function api(method, path, body) {
    const headers = {};
    const t = token();
    if (t) headers['Authorization'] = 'Bearer ' + t;
    if (body !== undefined) headers['Content-Type'] = 'application/yaml';
    const resp = await fetch(path, { method, headers, body });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = { error: resp.statusText }; }
    return { status: resp.status, data };
  }
  function banner(msg) {
    const b = $('banner');
    b.textContent = msg || '';
    b.hidden = !msg;
  }
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function q(s) { return JSON.stringify(s); } // a JSON string is a YAML string

  function columns() {
    const t = meta.tables.find((x) => x.table === $('table').value);
    return t ? t.columns || [] : [];
  }

  // ruleYAML builds the rule document from the form.
  function ruleYAML() {
    const lines = ['name: ' + q($('name').value.trim() || 'studio-rule')];
    const table = $('table').value;
    lines.push('table: ' + q(table)); // schema.table: exactly the table picked
    const ops = [...document.querySelectorAll('.op:checked')].map((c) => c.value);
    if (ops.length) lines.push('on: [' + ops.join(', ') + ']');
    if ($('when').value.trim()) lines.push('when: ' + q($('when').value));
    const fields = $('body').value.split('\n').filter((l) => l.trim());
    if (fields.length) {
      lines.push('body:');
      for (const l of fields) {
        const i = l.indexOf(':');
        if (i < 0) lines.push('  ' + q(l.trim()) + ': ""');
        else lines.push('  ' + q(l.slice(0, i).trim()) + ': ' + q(l.slice(i + 1).trim()));
      }
    }
    const whs = [...document.querySelectorAll('.wh:checked')].map((c) => c.value);
    if (whs.length) lines.push('webhooks: [' + whs.map(q).join(', ') + ']');
    if ($('once').checked) lines.push('once: true');
    return lines.join('\n') + '\n';
  }

  function showErrors(errors) {
    const boxes = { when: [], body: [], other: [] };
    for (const e of errors || []) {
      let where = 'other';
      if (e.path === 'when') where = 'when';
      else if ((e.path || '').startsWith('body')) where = 'body';
      let msg = (e.path ? e.path + ': ' : '') + e.message;
      if (where === 'when') {
        msg = $('when').value + '\n' + ' '.repeat(e.offset || 0) + '^ ' + msg;
      }
      boxes[where].push(msg);
    }
    for (const k of Object.keys(boxes)) {
      const box = $('err-' + k);
      box.textContent = boxes[k].join('\n');
      box.hidden = boxes[k].length === 0;
    }
    $('when').classList.toggle('invalid', boxes.when.length > 0);
  }

  function showMatches(res) {
    const tb = $('matches');
    tb.replaceChildren();
    const n = res ? res.matches.length : 0;
    $('summary').textContent = res ? n + ' of ' + res.scanned + ' changes' + (res.from ? ' committed ' + fmtTime(res.from) + ' – ' + fmtTime(res.to) : '') : '';
    $('warnings').hidden = !(res && res.warnings && res.warnings.length);
    $('warnings').textContent = res && res.warnings ? res.warnings.join('\n') : '';
    if (!res) return;
    for (const m of res.matches) {
      const tr = el('tr', undefined, m.suppressed ? 'suppressed match' : 'match');
      tr.dataset.id = m.id;
      tr.dataset.key = m.key;
      tr.appendChild(el('td', m.key));
      tr.appendChild(el('td', m.op));
      tr.appendChild(el('td', fmtTime(m.ts)));
      const body = el('td');
      body.appendChild(el('pre', JSON.stringify(m.body, null, 1)));
      tr.appendChild(body);
      const req = el('td');
      if (m.suppressed) req.appendChild(el('span', m.suppressed, 'muted'));
      for (const r of m.requests || []) {
        const hs = Object.entries(r.headers || {}).map(([k, v]) => k + ': ' + v.join(', ')).join('\n');
        req.appendChild(el('pre', r.error ? r.webhook + ': ' + r.error : r.method + ' ' + r.url + '\n' + hs + '\n\n' + (r.body || '')));
      }
      if (!m.suppressed && !(m.requests || []).length) req.appendChild(el('span', 'no webhook chosen', 'muted'));
      tr.appendChild(req);
      tb.appendChild(tr);
    }
  }

  // lineDiff is a line diff (LCS) of a → b: [[' '|'-'|'+', line], …].
  function lineDiff(a, b) {
    const x = a.split('\n'), y = b.split('\n');
    const n = x.length, m = y.length;
    const L = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    const out = [];
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && x[i] === y[j]) { out.push([' ', x[i]]); i++; j++; }
      else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) { out.push(['+', y[j]]); j++; }
      else { out.push(['-', x[i]]); i++; }
    }
    return out;
  }
  let last = null;
  function showDiff() {
    const box = $('diff');
    box.replaceChildren();
    if (box.hidden || !last) return;
    if (!last.running) {
      box.appendChild(el('span', 'The running config has no rule named "' + ($('name').value.trim() || 'studio-rule') + '": the block adds one.'));
      return;
    }
    for (const [op, line] of lineDiff(last.running.trimEnd(), last.yaml.trimEnd())) {
      box.appendChild(el('span', op + ' ' + line, op === '+' ? 'add' : op === '-' ? 'del' : ''));
      if (op === ' ') box.appendChild(document.createTextNode('\n'));
    }
  }

  async function tryRule() {
    const my = ++seq;
    const yaml = ruleYAML();
    const { status, data } = await api('POST', '/studio/try', yaml);
    if (my !== seq) return; // a newer edit is on its way
    document.body.dataset.state = 'done';
    if (status === 401 || status === 403) {
      banner('The studio needs the admin token (admin.token): ' + (data.error || status));
      return;
    }
    banner('');
    if (status === 422) {
      showErrors(data.errors);
      showMatches(null);
      $('summary').textContent = 'the rule does not compile';
      return;
    }
    if (status !== 200) {
      banner('studio: ' + (data.error || status));
      return;
    }
    showErrors([]);
    showMatches(data);
    $('yaml').textContent = data.yaml;
    last = data;
    showDiff();
  }
  function schedule() {
    document.body.dataset.state = 'pending';
    clearTimeout(timer);
    timer = setTimeout(tryRule, 250);
  }

  async function loadChanges() {
    const t = $('table').value;
    const { status, data } = await api('GET', '/studio/changes?table=' + encodeURIComponent(t));
    const tb = $('changes');
    tb.replaceChildren();
    if (status !== 200) return;
    const cs = data.changes.slice().reverse();
    $('changes-count').textContent = cs.length + ' kept, newest first';
    for (const c of cs) {
      const tr = el('tr');
      tr.appendChild(el('td', c.op));
      tr.appendChild(el('td', fmtTime(c.ts)));
      const row = el('td');
      row.appendChild(el('pre', JSON.stringify(c.op === 'delete' ? c.before : c.after)));
      tr.appendChild(row);
      tb.appendChild(tr);
    }
  }

  // Completion: after "row." or "old." the table's columns, else the
  // condition helpers and names. Tab or Enter takes the selected one.
  function attachCompletion(input, list) {
    let items = [];
    let sel = 0;
    function word() {
      const pos = input.selectionStart;
      const before = input.value.slice(0, pos);
      const m = /([A-Za-z_][A-Za-z0-9_]*\.)?([A-Za-z_][A-Za-z0-9_]*)?$/.exec(before);
      return { prefix: m[1] || '', part: m[2] || '', pos };
    }
    function render() {
      list.replaceChildren();
      items.forEach((it, i) => {
        const li = el('li', it, i === sel ? 'sel' : '');
        li.addEventListener('mousedown', (e) => { e.preventDefault(); take(it); });
        list.appendChild(li);
      });
      list.hidden = items.length === 0;
    }
    function update() {
      const w = word();
      let cands;
      if (w.prefix === 'row.' || w.prefix === 'old.') cands = columns();
      else if (w.prefix) cands = [];
      else cands = meta.names.concat(meta.helpers);
      items = w.part || w.prefix ? cands.filter((c) => c.startsWith(w.part) && c !== w.part).slice(0, 20) : [];
      sel = 0;
      render();
    }
    function take(it) {
      const w = word();
      const v = input.value;
      const start = w.pos - w.part.length;
      input.value = v.slice(0, start) + it + v.slice(w.pos);
      input.selectionStart = input.selectionEnd = start + it.length;
      items = [];
      render();
      schedule();
    }
    input.addEventListener('input', update);
    input.addEventListener('blur', () => { items = []; render(); });
    input.addEventListener('keydown', (e) => {
      if (list.hidden || !items.length) return;
      if (e.key === 'ArrowDown') { sel = (sel + 1) % items.length; render(); e.preventDefault(); }
      else if (e.key === 'ArrowUp') { sel = (sel + items.length - 1) % items.length; render(); e.preventDefault(); }
      else if (e.key === 'Tab' || (e.key === 'Enter' && input.tagName === 'INPUT')) { take(items[sel]); e.preventDefault(); }
      else if (e.key === 'Escape') { items = []; render(); }
    });
  }

  async function init() {
    $('token').value = token();
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token').value.trim();
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
      init();
    });
    const { status, data } = await api('GET', '/studio/meta');
    if (status !== 200) {
      banner(status === 404 ? 'The rule studio is off: set studio.enabled: true in the config.' : 'The studio needs the admin token (admin.token): ' + (data.error || status));
      return;
    }
    banner('');
    meta = data;
    const sel = $('table');
    const keep = sel.value;
    sel.replaceChildren();
    for (const t of meta.tables) {
      const o = el('option', t.table + ' (' + t.changes + ')');
      o.value = t.table;
      sel.appendChild(o);
    }
    if (keep) sel.value = keep;
    const wh = $('webhooks');
    wh.querySelectorAll('label').forEach((l) => l.remove());
    for (const w of meta.webhooks.sort()) {
      const l = el('label');
      const c = el('input');
      c.type = 'checkbox';
      c.className = 'wh';
      c.value = w;
      c.addEventListener('change', schedule);
      l.appendChild(c);
      l.appendChild(document.createTextNode(' ' + w));
      wh.appendChild(l);
    }
    await loadChanges();
    schedule();
  }

  document.addEventListener('DOMContentLoaded', () => {
    attachCompletion($('when'), $('complete-when'));
    attachCompletion($('body'), $('complete-body'));
    for (const id of ['when', 'body', 'name']) $(id).addEventListener('input', schedule);
    for (const id of ['once']) $(id).addEventListener('change', schedule);
    document.querySelectorAll('.op').forEach((c) => c.addEventListener('change', schedule));
    $('table').addEventListener('change', () => { loadChanges(); schedule(); });
    $('diff-toggle').addEventListener('click', () => { $('diff').hidden = !$('diff').hidden; showDiff(); });
    $('copy').addEventListener('click', () => navigator.clipboard && navigator.clipboard.writeText($('yaml').textContent));
    init();
  });
})();
