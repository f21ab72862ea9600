// rowhook admin page. Vanilla JS, no dependencies. Every value from the API
// reaches the DOM through textContent or attributes set one by one, never as
// HTML.
'use strict';

(function () {
  const API = (document.querySelector('meta[name="rowhook-api"]') || {}).content || '/';
  const TOKEN_KEY = 'rowhook.admin.token';
  const PAGE = 100;
  const $ = (id) => document.getElementById(id);

  const state = {
    status: null,        // last /api/status document
    next: '',            // cursor for older deliveries
    pages: 1,            // pages loaded (auto-refresh only reloads the first)
    open: '',            // id of the delivery shown in the detail pane
    openDelivery: null,
    openKey: '',         // JSON of the delivery shown, to skip identical redraws
    listKey: '',         // JSON of the first page shown, likewise
    bulkArmed: false,    // the bulk re-run button waits for its confirmation click
    busy: false,
  };

  // el builds an element: attrs are set as properties or attributes, children
  // are nodes or strings (text nodes, so never parsed as HTML).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, opts) {
    // X-Rowhook-Client lets a re-run's log entry say the page asked
    // (adminapi.PageClientHeader).
    const headers = { 'Accept': 'application/json', 'X-Rowhook-Client': 'admin-page' };
    const t = token();
    if (t) headers['Authorization'] = 'Bearer ' + t;
    let res;
    try {
      res = await fetch(path, Object.assign({ method, headers, cache: 'no-store', credentials: 'omit' }, opts || {}));
    } catch (e) {
      throw new APIError(0, `${method} ${path}: rowhook unreachable (${e.message})`);
    }
    let body = null;
    const text = await res.text();
    if (text) {
      try { body = JSON.parse(text); } catch (e) { body = { error: text.slice(0, 300) }; }
    }
    if (!res.ok) {
      const msg = body && body.error ? body.error : res.statusText;
      throw new APIError(res.status, `${method} ${path}: ${res.status} ${msg}`);
    }
    return body;
  }

  // banner shows one message; kind is "error" or "info".
  function banner(msg, kind) {
    const b = $('banner');
    if (!msg) { b.hidden = true; clear(b); return; }
    b.className = 'banner ' + (kind || 'error');
    clear(b);
    b.append(msg);
    b.hidden = false;
  }

  function showError(err) {
    if (err.status === 401 || err.status === 403) {
      const t = token();
      banner((t ? 'The admin token was refused: ' : 'This rowhook needs its admin token (admin.token): ') + err.message, 'error');
      document.body.classList.add('locked');
      $('token').focus();
      return;
    }
    banner(err.message, 'error');
  }

  const { pad, fmtZone, fmtTime, fmtTimesIn } = window.rowhookTime;
  // timeEl shows a time in that format, marked for the page's test.
  function timeEl(s, prefix) {
    return el('span', { class: 'ts', 'data-time': s, text: (prefix || '') + fmtTime(s) });
  }
  // fmtAge is a duration in seconds, to two units ("4m 12s", "3h 05m").
  function fmtAge(sec) {
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return `${sec}s`;
    if (sec < 3600) return `${Math.floor(sec / 60)}m ${pad(sec % 60)}s`;
    if (sec < 86400) return `${Math.floor(sec / 3600)}h ${pad(Math.floor(sec % 3600 / 60))}m`;
    return `${Math.floor(sec / 86400)}d ${Math.floor(sec % 86400 / 3600)}h`;
  }
  // readableLink shows a URL with its percent-escapes decoded ("/deals/Geschäft
  // neu"), except those that stand for URL syntax (%2F, %3F, %26, ...),
  // which decodeURI keeps.
  function readableLink(u) {
    try { return decodeURI(u); } catch (e) { return u; }
  }
  // prettyJSON indents a JSON text two spaces a level. It re-spaces the
  // text's own tokens rather than JSON.parse and stringify them, so numbers
  // stay as sent (1500.00, 9007199254740993) and key order is kept. Text
  // that is not JSON comes back unchanged.
  function prettyJSON(text) {
    const t = (text || '').trim();
    if (!(t.startsWith('{') || t.startsWith('['))) return text;
    try { JSON.parse(t); } catch (e) { return text; }
    let out = '', depth = 0, inStr = false, esc = false;
    const nl = () => '\n' + '  '.repeat(depth);
    for (let i = 0; i < t.length; i++) {
      const c = t[i];
      if (inStr) {
        out += c;
        if (esc) esc = false; else if (c === '\\') esc = true; else if (c === '"') inStr = false;
        continue;
      }
      if (c === '"') { inStr = true; out += c; } else if (c === '{' || c === '[') {
        let j = i + 1;
        while (j < t.length && ' \t\r\n'.includes(t[j])) j++;
        if (t[j] === (c === '{' ? '}' : ']')) { out += c + t[j]; i = j; continue; }
        depth++;
        out += c + nl();
      } else if (c === '}' || c === ']') { depth--; out += nl() + c; } else if (c === ',') out += ',' + nl();
      else if (c === ':') out += ': ';
      else if (!' \t\r\n'.includes(c)) out += c;
    }
    return out;
  }
  function fmtAgo(s, now) {
    if (!s) return '';
    const sec = Math.round(((now ? new Date(now) : new Date()) - new Date(s)) / 1000);
    if (sec < 60) return `${sec}s ago`;
    if (sec < 3600) return `${Math.floor(sec / 60)}m ago`;
    if (sec < 86400) return `${Math.floor(sec / 3600)}h ago`;
    return `${Math.floor(sec / 86400)}d ago`;
  }
  function fmtLag(s) {
    if (s === undefined || s === null) return 'unknown';
    if (s < 1) return `${s.toFixed(2)} s`;
    if (s < 120) return `${s.toFixed(1)} s`;
    if (s < 7200) return `${(s / 60).toFixed(1)} min`;
    return `${(s / 3600).toFixed(1)} h`;
  }

  function badge(status) {
    return el('span', { class: 'badge s-' + String(status).replace(/[^a-z]/g, ''), text: status });
  }

  // ---- status panels ----

  async function loadStatus() {
    const st = await api('GET', 'api/status');
    state.status = st;
    renderStatus(st);
    return st;
  }

  function renderStatus(st) {
    $('version').textContent = st.version || '';
    const b = st.binlog || {};
    const dl = $('binlog');
    clear(dl);
    const row = (k, v) => { dl.append(el('dt', { text: k }), el('dd', {}, v)); };
    row('State', el('span', { class: 'badge ' + (b.connected ? 's-ok' : 's-dead'), text: b.connected ? 'connected' : 'disconnected' }));
    if (b.error) row('Error', el('span', { class: 'err', text: b.error }));
    if (b.source) row('Source', b.source);
    row('Lag', el('span', { id: 'lag', class: b.lag_seconds > 60 ? 'err' : '', text: fmtLag(b.lag_seconds) }));
    row('Position', el('code', { id: 'position', text: b.file ? `${b.file}:${b.pos}` : 'none yet' }));
    if (b.gtid_set) row('GTID set', el('code', { class: 'wrap', text: b.gtid_set }));
    if (b.flavor) row('Flavor', b.flavor);
    if (b.event_time) row('Last event', el('span', {}, timeEl(b.event_time), ` (${fmtAgo(b.event_time, st.now)})`));

    const wh = $('webhooks');
    clear(wh);
    for (const w of st.webhooks) {
      let stateCell = el('td', {}, badge(w.state || 'active'));
      if (w.reason) stateCell.append(' ', el('span', { class: 'muted', text: fmtTimesIn(w.reason) }));
      if (w.state === 'disabled') {
        stateCell.append(' ', el('button', { type: 'button', class: 'secondary enable', 'data-webhook': w.name,
          title: 'Deliver to this webhook again (after it answered 410 Gone)', onclick: () => enableWebhook(w.name) }, 'Enable'));
      }
      if (w.paused_until && !w.next_probe_at) stateCell.append(' ', el('span', { class: 'muted' }, timeEl(w.paused_until, 'until ')));
      if (w.failing_since) stateCell.append(' ', el('span', { class: 'muted' }, timeEl(w.failing_since, 'failing since ')));
      // The endpoint circuit: open, its deliveries wait while one probe per interval is sent.
      const circuit = w.circuit || 'closed';
      const circuitCell = el('td', { class: 'circuit' }, el('span', { class: 'badge circuit s-' + (circuit === 'closed' ? 'ok' : circuit.replace(/[^a-z]/g, '')),
        'data-circuit': circuit, text: circuit.replace('_', '-'),
        title: circuit === 'closed' ? 'Endpoint circuit closed: deliveries are sent as they come' :
          'Endpoint circuit ' + circuit.replace('_', '-') + ': the webhook failed repeatedly; its deliveries wait while one probe is sent per interval' }));
      if (w.next_probe_at) circuitCell.append(' ', el('span', { class: 'muted' }, timeEl(w.next_probe_at, 'next probe ')));
      const unknown = w.pending < 0;
      const oldest = w.oldest_pending ? (new Date(st.now) - new Date(w.oldest_pending)) / 1000 : null;
      wh.append(el('tr', { 'data-webhook': w.name },
        el('td', {}, el('strong', { text: w.name }), w.kind ? el('span', { class: 'muted', text: ' ' + w.kind }) : null),
        el('td', {}, el('code', { class: 'wrap', text: readableLink(w.url) })),
        stateCell,
        circuitCell,
        el('td', { class: 'num pending' + (unknown ? ' err' : ''), title: unknown ? w.queue_error : 'Pending deliveries', text: unknown ? '?' : String(w.pending || 0) }),
        el('td', { class: 'num oldest', title: w.oldest_pending ? 'Oldest pending delivery queued ' + fmtTime(w.oldest_pending) : 'Nothing pending',
          text: oldest === null ? '' : fmtAge(oldest) }),
        el('td', { class: 'num', text: w.in_flight || 0 })));
    }
    if (!st.webhooks.length) wh.append(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'No webhooks configured.' })));

    const rl = $('rules');
    clear(rl);
    for (const r of st.rules) {
      rl.append(el('tr', {},
        el('td', { text: r.name }), el('td', {}, el('code', { text: r.table })),
        el('td', { text: (r.on || []).join(', ') }), el('td', { text: r.event }),
        el('td', { text: (r.webhooks || []).join(', ') })));
    }
    if (!st.rules.length) rl.append(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'No rules loaded.' })));

    // Webhook filter choices: configured webhooks, keeping the current choice.
    const sel = $('f-webhook');
    const cur = sel.value || new URLSearchParams(location.search).get('webhook') || '';
    const names = st.webhooks.map((w) => w.name);
    if (cur && !names.includes(cur)) names.push(cur);
    const have = Array.from(sel.options).slice(1).map((o) => o.value);
    if (have.join('\n') !== names.join('\n')) {
      while (sel.options.length > 1) sel.remove(1);
      for (const n of names) sel.append(el('option', { value: n, text: n }));
    }
    sel.value = cur;
    updateRerun();
    updateBulk();
  }

  async function enableWebhook(name) {
    try {
      await api('POST', `${API}webhooks/${encodeURIComponent(name)}/enable`);
      banner(`Webhook ${name} enabled: its pending deliveries will be sent.`, 'info');
    } catch (e) {
      showError(e);
    }
    await refreshAll();
  }

  // ---- delivery list ----

  // fromLocal reads a datetime-local value (the browser's zone) as an
  // RFC 3339 time in UTC; toLocal writes one back.
  function fromLocal(v) {
    const d = new Date(v);
    return isNaN(d) ? '' : d.toISOString().replace('.000Z', 'Z');
  }
  function toLocal(s) {
    const d = new Date(s);
    if (isNaN(d)) return '';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  // filterQuery is the API query of the filters: the absolute range (From,
  // To) or the relative one (Last), and the search: a record key prefix
  // when it ends in *, else any of record key, event id and delivery id.
  function filterQuery() {
    const q = new URLSearchParams();
    for (const [k, id] of [['webhook', 'f-webhook'], ['status', 'f-status']]) {
      const v = $(id).value;
      if (v) q.set(k, v);
    }
    const from = $('f-from').value ? fromLocal($('f-from').value) : '';
    if (from) q.set('since', from); else if ($('f-since').value) q.set('since', $('f-since').value);
    const to = $('f-to').value ? fromLocal($('f-to').value) : '';
    if (to) q.set('until', to);
    const s = $('f-q').value.trim();
    if (s) q.set(s.endsWith('*') ? 'key' : 'q', s);
    return q;
  }

  function saveLocation() {
    const q = filterQuery();
    const s = q.toString();
    history.replaceState(null, '', (s ? '?' + s : location.pathname) + (state.open ? '#' + encodeURIComponent(state.open) : ''));
  }

  async function loadDeliveries(more) {
    const q = filterQuery();
    q.set('limit', String(PAGE));
    if (more) q.set('before', state.next);
    const res = await api('GET', `${API}deliveries?${q}`);
    const tb = $('deliveries');
    const key = q.toString() + JSON.stringify(res);
    if (!more && key === state.listKey) { document.body.classList.remove('locked'); return; }
    if (!more) { clear(tb); state.pages = 1; state.listKey = key; } else state.pages++;
    for (const d of res.deliveries) tb.append(deliveryRow(d));
    state.next = res.next || '';
    $('more').hidden = !state.next;
    const n = tb.rows.length;
    $('empty').hidden = n > 0;
    $('count').textContent = `${n}${state.next ? '+' : ''} deliver${n === 1 ? 'y' : 'ies'}`;
    // The filters answer again: an error they caused (a refused range) is over.
    if ($('banner').classList.contains('error')) banner('');
    document.body.classList.remove('locked');
    updateBulk();
  }

  function deliveryRow(d) {
    const tr = el('tr', {
      class: 'row' + (d.id === state.open ? ' selected' : ''), 'data-id': d.id, 'data-status': d.status, tabindex: 0,
      title: 'Show the request and response of each attempt',
      onclick: () => openDetail(d.id),
      onkeydown: (e) => { if (e.key === 'Enter') openDetail(d.id); },
    },
      el('td', { class: 'time', title: `queued ${fmtTime(d.created_at)}\nlast change ${fmtTime(d.updated_at)}` }, timeEl(d.created_at)),
      el('td', {}, badge(d.status)),
      el('td', { text: d.webhook + (d.subscription ? ' (subscription)' : '') }),
      el('td', { text: d.event }),
      el('td', {}, el('code', { class: 'key', text: d.record_key })),
      el('td', { class: 'num', text: d.attempts }),
      el('td', { class: 'num' + (d.last_status >= 400 ? ' err' : ''), text: d.last_status || '' }),
      el('td', { class: 'lasterr', title: d.last_error || '', text: d.last_error || '' }));
    return tr;
  }

  // ---- detail ----

  async function openDetail(id) {
    state.open = id;
    saveLocation();
    for (const tr of $('deliveries').rows) tr.classList.toggle('selected', tr.dataset.id === id);
    try {
      const d = await api('GET', `${API}deliveries/${encodeURIComponent(id)}`);
      if (state.open !== id) return;
      renderDetail(d);
    } catch (e) {
      showError(e);
    }
  }

  function closeDetail() {
    state.open = '';
    state.openDelivery = null;
    state.openKey = '';
    $('detail').hidden = true;
    document.body.classList.remove('with-detail');
    for (const tr of $('deliveries').rows) tr.classList.remove('selected');
    saveLocation();
  }

  function headersBlock(h) {
    if (!h || !Object.keys(h).length) return el('p', { class: 'muted', text: 'no headers recorded' });
    const t = el('table', { class: 'headers' });
    for (const k of Object.keys(h).sort()) {
      for (const v of h[k]) t.append(el('tr', {}, el('th', { text: k }), el('td', {}, el('code', { text: v }))));
    }
    return t;
  }

  function bodyBlock(text, b64) {
    if (b64) return el('pre', { class: 'body' }, el('span', { class: 'muted', text: `binary, base64:\n` }), b64);
    if (!text) return el('p', { class: 'muted', text: 'empty body' });
    return el('pre', { class: 'body', text: prettyJSON(text) });
  }

  function renderDetail(d) {
    const key = JSON.stringify(d);
    if (key === state.openKey && !$('detail').hidden) return;
    state.openKey = key;
    state.openDelivery = d;
    $('detail').hidden = false;
    document.body.classList.add('with-detail');
    $('d-id').textContent = d.id;
    const f = $('d-fields');
    clear(f);
    const row = (k, v) => { if (v !== undefined && v !== null && v !== '') f.append(el('dt', { text: k }), el('dd', {}, v)); };
    row('Status', badge(d.status));
    row('Webhook', d.webhook);
    row('Subscription', d.subscription);
    row('Event', d.event);
    row('Rule', d.rule);
    row('Record', el('code', { text: d.record_key }));
    row('Request', el('code', { class: 'wrap', text: `${d.method} ${readableLink(d.url)}` }));
    row('Attempts', String(d.attempts));
    row('Last HTTP status', d.last_status ? String(d.last_status) : '');
    row('Last error', d.last_error ? el('span', { class: 'err', text: d.last_error }) : '');
    row('Re-runs', d.redelivered ? String(d.redelivered) : '');
    row('Writeback', d.writeback);
    row('Writeback error', d.writeback_error ? el('span', { class: 'err', text: d.writeback_error }) : '');
    row('Event time', timeEl(d.event_time));
    row('Queued', timeEl(d.created_at));
    row('Updated', timeEl(d.updated_at));
    if (d.next_at) row('Next attempt', timeEl(d.next_at));
    row('Event id', el('code', { text: d.event_id }));

    const body = $('d-body');
    clear(body);
    body.append(d.body_base64 ? 'binary, base64:\n' + d.body_base64 : (prettyJSON(d.body) || '(empty)'));

    const log = $('d-log');
    clear(log);
    for (const a of d.log || []) log.append(attemptItem(a));
    if (!(d.log || []).length) log.append(el('li', { class: 'muted', text: 'No attempts yet.' }));
    updateRerun();
  }

  function attemptItem(a) {
    const head = el('div', { class: 'attempt-head' });
    if (a.kind === 'attempt') {
      head.append(el('strong', { text: `Attempt ${a.n || ''}` }), ' ');
      if (a.response) head.append(el('span', { class: 'badge ' + (a.response.status < 300 ? 's-ok' : a.response.status < 500 ? 's-failed' : 's-dead'), text: `HTTP ${a.response.status}` }), ' ');
      else head.append(badge('no response'), ' ');
    } else {
      head.append(el('strong', { text: a.kind === 'redeliver' ? 'Re-run' : a.kind === 'writeback' ? 'Writeback' : a.kind }), ' ');
    }
    head.append(el('span', { class: 'muted' }, timeEl(a.at)));
    if (a.duration_ms) head.append(el('span', { class: 'muted', text: ` · ${a.duration_ms} ms` }));
    const li = el('li', { class: 'attempt kind-' + a.kind }, head);
    if (a.error) li.append(el('p', { class: 'err', text: fmtTimesIn(a.error) }));
    if (a.note) li.append(el('p', { class: 'note', text: fmtTimesIn(a.note) }));
    if (a.request) {
      li.append(el('details', { class: 'req', open: true },
        el('summary', {}, 'Request ', el('code', { class: 'wrap', text: `${a.request.method} ${readableLink(a.request.url)}` })),
        headersBlock(a.request.headers), bodyBlock(a.request.body, a.request.body_base64)));
    }
    if (a.response) {
      li.append(el('details', { class: 'resp', open: true },
        el('summary', {}, `Response ${a.response.status}` + (a.duration_ms ? ` in ${a.duration_ms} ms` : '')),
        headersBlock(a.response.headers), bodyBlock(a.response.body, a.response.body_base64)));
    }
    return li;
  }

  // updateRerun enables the button only when a click can succeed, and says
  // why otherwise.
  function updateRerun() {
    const d = state.openDelivery;
    const btn = $('rerun');
    const why = $('rerun-reason');
    if (!d) return;
    let reason = '';
    if (!state.status) reason = 'loading status…';
    else if (!state.status.allow_redeliver) reason = 'Re-run is turned off in the configuration (admin.allow_redeliver: false).';
    else if (d.status === 'pending') reason = d.next_at ? `Already pending: next attempt ${fmtTime(d.next_at)}.` : 'Already pending.';
    btn.disabled = !!reason || state.busy;
    btn.title = reason || 'Send this delivery again (its event body as stored)';
    why.textContent = reason;
  }

  async function rerun() {
    const d = state.openDelivery;
    if (!d || state.busy) return;
    state.busy = true;
    updateRerun();
    try {
      const res = await api('POST', `${API}deliveries/${encodeURIComponent(d.id)}/redeliver`);
      banner(`Re-run queued for ${(res.redelivered || [d.id]).join(', ')}.`, 'info');
    } catch (e) {
      showError(e);
    } finally {
      state.busy = false;
    }
    await refreshAll();
    watchPending();
  }

  // updateBulk offers "re-run all" for the failed or dead deliveries the
  // filters select; the first click arms it and names exactly what will be
  // re-run, the second sends.
  function updateBulk() {
    const st = $('f-status').value;
    const btn = $('bulk');
    const show = (st === 'failed' || st === 'dead') && $('deliveries').rows.length > 0;
    btn.hidden = !show;
    if (!show) state.bulkArmed = false;
    const allowed = !!(state.status && state.status.allow_redeliver);
    btn.disabled = !allowed || state.busy;
    btn.title = allowed ? 'Re-run every delivery the filters select, not only those listed' : 'Re-run is turned off in the configuration (admin.allow_redeliver: false).';
    btn.textContent = state.bulkArmed ? `Confirm: re-run every ${describeFilter()}` : `Re-run all ${st}…`;
    btn.classList.toggle('armed', state.bulkArmed);
    $('bulk-cancel').hidden = !state.bulkArmed;
  }

  function describeFilter() {
    const q = filterQuery();
    let s = `${q.get('status')} delivery`;
    if (q.get('webhook')) s += ` to ${q.get('webhook')}`;
    if (q.get('key')) s += ` of records ${q.get('key')}`;
    if (q.get('q')) s += ` matching ${q.get('q')}`;
    if ($('f-from').value && q.get('since')) s += ` from ${fmtTime(q.get('since'))}`;
    else if (q.get('since')) s += ` of the last ${q.get('since')}`;
    if (q.get('until')) s += ` before ${fmtTime(q.get('until'))}`;
    return s;
  }

  async function bulkRerun() {
    if (!state.bulkArmed) { state.bulkArmed = true; updateBulk(); return; }
    state.bulkArmed = false;
    state.busy = true;
    updateBulk();
    try {
      const res = await api('POST', `${API}deliveries/redeliver?${filterQuery()}`);
      const n = (res.redelivered || []).length;
      banner(`Re-run queued for ${n} deliver${n === 1 ? 'y' : 'ies'}.`, 'info');
    } catch (e) {
      showError(e);
    } finally {
      state.busy = false;
    }
    await refreshAll();
  }

  // watchPending refreshes the open delivery every second while it is
  // pending, so a re-run's outcome appears without waiting for auto-refresh.
  let watchTimer = 0;
  function watchPending() {
    clearTimeout(watchTimer);
    let left = 30;
    const tick = async () => {
      const d = state.openDelivery;
      if (!d || d.status !== 'pending' || left-- <= 0) return;
      await openDetail(d.id);
      if (state.openDelivery && state.openDelivery.status !== 'pending') { await loadDeliveries(false).catch(showError); return; }
      watchTimer = setTimeout(tick, 1000);
    };
    watchTimer = setTimeout(tick, 1000);
  }

  async function refreshAll() {
    try {
      await loadStatus();
      if (state.pages <= 1) await loadDeliveries(false);
      if (state.open) await openDetail(state.open);
      if ($('banner').classList.contains('error')) banner('');
    } catch (e) {
      showError(e);
    }
  }

  function init() {
    const q = new URLSearchParams(location.search);
    const since = q.get('since') || '';
    if (since.includes('T')) { $('f-from').value = toLocal(since); q.delete('since'); }
    if (q.get('until')) $('f-to').value = toLocal(q.get('until'));
    if (q.get('q') || q.get('key')) $('f-q').value = q.get('q') || q.get('key');
    for (const z of document.querySelectorAll(".zone")) z.textContent = `(${fmtZone()})`;
    for (const [k, id] of [['status', 'f-status'], ['since', 'f-since']]) {
      const v = q.get(k);
      if (!v) continue;
      const sel = $(id);
      if (!Array.from(sel.options).some((o) => o.value === v)) sel.append(el('option', { value: v, text: v }));
      sel.value = v;
    }
    if (q.get('webhook')) {
      $('f-webhook').append(el('option', { value: q.get('webhook'), text: q.get('webhook') }));
      $('f-webhook').value = q.get('webhook');
    }
    if (location.hash.length > 1) state.open = decodeURIComponent(location.hash.slice(1));

    $('token').value = token();
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token').value.trim();
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
      banner('');
      refreshAll();
    });
    $('token-clear').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $('token').value = '';
      refreshAll();
    });
    $('filters').addEventListener('submit', (e) => { e.preventDefault(); saveLocation(); loadDeliveries(false).catch(showError); });
    // Last (relative) and From (absolute) are two ways to start the range:
    // choosing one clears the other.
    $('f-since').addEventListener('change', () => { $('f-from').value = ''; });
    $('f-from').addEventListener('change', () => { $('f-since').value = ''; });
    for (const id of ['f-webhook', 'f-status', 'f-since', 'f-from', 'f-to', 'f-q']) {
      $(id).addEventListener('change', () => { state.bulkArmed = false; saveLocation(); loadDeliveries(false).catch(showError); });
    }
    $('more').addEventListener('click', () => loadDeliveries(true).catch(showError));
    $('close').addEventListener('click', closeDetail);
    $('bulk').addEventListener('click', bulkRerun);
    $('bulk-cancel').addEventListener('click', () => { state.bulkArmed = false; updateBulk(); });
    $('rerun').addEventListener('click', rerun);
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && state.open) closeDetail(); });
    setInterval(() => {
      if ($('auto-refresh').checked && !document.hidden && !state.busy && !document.body.classList.contains('locked')) refreshAll();
    }, 5000);
    refreshAll();
  }

  init();
})();
