// Ferry's web dashboard: one ES module, no framework, no build step.
//
// Every page is rebuilt as a detached DOM tree from the API's answers and
// merged into the page in place (`morph`), so a refresh changes only the
// text that changed: no flicker, and scroll position, focus and a half-typed
// input survive it. Nodes are made with createElement and textContent only,
// never from HTML strings. Buttons carry what they act on in data-
// attributes and one listener handles them all.
//
// The queue page's Limits panel is in limits.js; its Batches panel, the
// batch and flow pages and the job page's links to them in batches.js.

import { limitsView } from './limits.js';
import { batchesModule } from './batches.js';

const REFRESH_MS = 2000;
const PAGE_SIZE = 10;
const TOKEN_KEY = 'ferry-token';
const PRIORITIES = ['critical', 'high', 'normal', 'low'];
const JOB_TABS = ['queued', 'running', 'scheduled', 'finished', 'dead'];
const SVG_NS = 'http://www.w3.org/2000/svg';
/** Oldest pending entries older than these are shown as a warning. */
const AGE_WARN_MS = 10_000;
const AGE_OLD_MS = 60_000;
/** Live rate samples kept (about three minutes at one per refresh). */
const MAX_SAMPLES = 90;
/** Queues whose stats the overview reads on each refresh (for its chart). */
const MAX_STATS = 50;

const ui = {
  app: document.getElementById('app'),
  flash: document.getElementById('flash'),
  login: document.getElementById('login'),
  loginForm: document.getElementById('login-form'),
  loginError: document.getElementById('login-error'),
  tokenInput: document.getElementById('token-input'),
  badge: document.getElementById('readonly-badge'),
  updated: document.getElementById('updated'),
  refreshToggle: document.getElementById('refresh-toggle'),
  forget: document.getElementById('forget-token'),
};

const state = {
  token: readToken(),
  /** `{write, read_only, token_required}` from /v1/access. */
  access: null,
  auto: true,
  route: { name: 'overview' },
  /** What the current page remembers between refreshes (cursors, confirm). */
  page: {},
  /** Bumped on each route change: answers for an older route are dropped. */
  gen: 0,
  loading: false,
  again: false,
  timer: null,
  flashTimer: null,
  /** Samples of the counters for the live rate: `{t, completed, failed}`. */
  samples: [],
};

// ---------------------------------------------------------------- DOM ---

/** An element: `h('a', {href, class, testid, text}, ...children)`; a tag
 * `svg:x` is an SVG element. Null, undefined and false props are skipped. */
function h(tag, props, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS(SVG_NS, tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'testid') el.setAttribute('data-testid', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function keyOf(node) {
  return node.nodeType === Node.ELEMENT_NODE ? node.getAttribute('data-key') : null;
}

/** Makes `from` (in the page) look like `to` (detached), reusing nodes. */
function morph(from, to) {
  if (
    from.nodeType !== to.nodeType ||
    from.nodeName !== to.nodeName ||
    keyOf(from) !== keyOf(to)
  ) {
    from.replaceWith(to);
    return;
  }
  if (from.nodeType !== Node.ELEMENT_NODE) {
    if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
    return;
  }
  for (const a of [...from.attributes]) {
    if (!to.hasAttribute(a.name)) from.removeAttribute(a.name);
  }
  for (const a of [...to.attributes]) {
    if (from.getAttribute(a.name) !== a.value) from.setAttribute(a.name, a.value);
  }
  const a = [...from.childNodes];
  const b = [...to.childNodes];
  for (let i = 0; i < b.length; i++) {
    if (i < a.length) morph(a[i], b[i]);
    else from.appendChild(b[i]);
  }
  for (let i = b.length; i < a.length; i++) a[i].remove();
}

/** Puts `node` in the main area, merging it into what is there. */
function show(node) {
  const current = ui.app.firstElementChild;
  if (current && ui.app.childNodes.length === 1) morph(current, node);
  else ui.app.replaceChildren(node);
}

// ---------------------------------------------------------- formatting ---

const nf = new Intl.NumberFormat('en');
const num = (n) => (n === null || n === undefined ? '—' : nf.format(n));
const pad = (n) => String(n).padStart(2, '0');
const enc = encodeURIComponent;

function time(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

const ago = (ms) => (ms === null || ms === undefined ? '—' : `${duration(Date.now() - ms)} ago`);

/** The ms of a stream entry id (`<ms>-<seq>`). */
function entryMs(id) {
  const ms = Number(String(id ?? '').split('-')[0]);
  return Number.isFinite(ms) && ms > 0 ? ms : null;
}

function json(value) {
  if (value === undefined) return 'not known';
  if (typeof value === 'string') return value;
  return JSON.stringify(value, null, 2);
}

const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(x > 0 && x < 0.01 ? 2 : 1)} %`);
const rate = (x) => (x === null || x === undefined ? '—' : `${x < 10 ? x.toFixed(2) : x.toFixed(1)}/s`);
const sum = (o) => PRIORITIES.reduce((t, p) => t + (o?.[p] ?? 0), 0);

// ----------------------------------------------------------------- API ---

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function readToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function storeToken(token) {
  state.token = token;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage refused: the token lives in this page only.
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach ferry serve (${e.message})`);
  }
  const text = await r.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!r.ok) {
    const err = data?.error ?? {};
    const e = new ApiError(r.status, err.code ?? `http_${r.status}`, err.message ?? `HTTP ${r.status}`);
    if (r.status === 401) askToken(null);
    throw e;
  }
  return data;
}

const get = (path) => api('GET', path);
const post = (path, body = {}) => api('POST', path, body);
const canWrite = () => state.access?.write !== false;

// --------------------------------------------------------- access/login ---

async function loadAccess() {
  try {
    state.access = await get('/v1/access');
  } catch (e) {
    if (e.status === 401) return false;
    if (e.status === 403 && state.token) {
      storeToken(null);
      askToken(`${e.message}.`);
      return false;
    }
    if (e.status === 404) {
      // A server without the route: act as allowed; a refused change says why.
      state.access = { write: true, read_only: false, token_required: Boolean(state.token) };
    } else {
      throw e;
    }
  }
  ui.badge.hidden = canWrite();
  ui.badge.title = state.access.read_only
    ? 'This server runs with --read-only: nothing can be changed here'
    : 'Your token allows looking only (FERRY_READ_TOKEN)';
  ui.forget.hidden = !state.token;
  return true;
}

function askToken(message) {
  stopTimer();
  ui.app.hidden = true;
  ui.refreshToggle.hidden = true;
  ui.login.hidden = false;
  ui.badge.hidden = true;
  ui.forget.hidden = true;
  ui.loginError.hidden = !message;
  ui.loginError.textContent = message ?? '';
  ui.updated.textContent = '';
  ui.tokenInput.focus();
}

ui.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = ui.tokenInput.value.trim();
  if (!token) return;
  storeToken(token);
  ui.tokenInput.value = '';
  start();
});

ui.forget.addEventListener('click', () => {
  storeToken(null);
  state.access = null;
  start();
});

ui.refreshToggle.addEventListener('click', () => {
  state.auto = !state.auto;
  ui.refreshToggle.setAttribute('aria-pressed', String(state.auto));
  ui.refreshToggle.textContent = state.auto ? 'Pause refresh' : 'Resume refresh';
  if (state.auto) refresh();
  else {
    stopTimer();
    ui.updated.textContent = 'Refresh paused';
  }
});

ui.flash.addEventListener('click', () => {
  ui.flash.hidden = true;
});

function flash(message, kind = 'ok') {
  clearTimeout(state.flashTimer);
  ui.flash.textContent = message;
  ui.flash.className = `flash flash-${kind}`;
  ui.flash.hidden = false;
  if (kind === 'ok') state.flashTimer = setTimeout(() => (ui.flash.hidden = true), 6000);
}

// ------------------------------------------------------------- routing ---

function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  let parts;
  try {
    parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return { name: 'notfound' };
  }
  const params = new URLSearchParams(query);
  if (parts.length === 0) return { name: 'overview' };
  if (parts.length === 1 && parts[0] === 'workers') return { name: 'workers' };
  if (parts[0] === 'queues' && parts.length >= 2) {
    const queue = parts[1];
    if (parts.length === 2) {
      const tab = params.get('state');
      return { name: 'queue', queue, tab: JOB_TABS.includes(tab) ? tab : 'queued' };
    }
    if (parts[2] === 'jobs' && parts.length === 4) return { name: 'job', queue, id: parts[3] };
    if (parts[2] === 'dead' && parts.length === 3) return { name: 'dead', queue };
    if (parts[2] === 'dead' && parts.length === 4) return { name: 'letter', queue, id: parts[3] };
    if (batches.route(queue, parts)) return batches.route(queue, parts);
  }
  return { name: 'notfound' };
}

const links = {
  queue: (q, tab) => `#/queues/${enc(q)}${tab ? `?state=${enc(tab)}` : ''}`,
  job: (q, id) => `#/queues/${enc(q)}/jobs/${enc(id)}`,
  dead: (q) => `#/queues/${enc(q)}/dead`,
  letter: (q, id) => `#/queues/${enc(q)}/dead/${enc(id)}`,
};
const batches = batchesModule({ h, td, table, num, time, badge, stateBadge, breadcrumbs, section, card, get, enc, links });

function onRoute() {
  state.route = parseRoute();
  state.gen += 1;
  state.page = { cursors: [null], confirm: null, filter: null };
  for (const a of document.querySelectorAll('[data-nav]')) {
    const current =
      (a.dataset.nav === 'workers' && state.route.name === 'workers') ||
      (a.dataset.nav === 'overview' && state.route.name !== 'workers');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  ui.app.replaceChildren(h('p', { class: 'loading', text: 'Loading…' }));
  window.scrollTo(0, 0);
  refresh();
}

window.addEventListener('hashchange', () => {
  if (ui.login.hidden) onRoute();
});

// ------------------------------------------------------------- refresh ---

function stopTimer() {
  clearTimeout(state.timer);
  state.timer = null;
}

function schedule() {
  stopTimer();
  if (state.auto && ui.login.hidden) state.timer = setTimeout(refresh, REFRESH_MS);
}

/** Loads the current page's data and shows it; one load at a time. */
async function refresh() {
  if (state.loading) {
    state.again = true;
    return;
  }
  state.loading = true;
  const gen = state.gen;
  try {
    const node = await pages[state.route.name](state.route);
    if (gen === state.gen && ui.login.hidden) {
      show(node);
      ui.updated.textContent = state.auto ? `Updated ${time(Date.now()).slice(11)}` : 'Refresh paused';
      if (!ui.flash.hidden && ui.flash.classList.contains('flash-stale')) ui.flash.hidden = true;
    }
  } catch (e) {
    if (gen === state.gen && ui.login.hidden) failed(e);
  } finally {
    state.loading = false;
  }
  if (state.again) {
    state.again = false;
    refresh();
  } else {
    schedule();
  }
}

function failed(e) {
  if (e.status === 404) {
    show(
      h('div', { class: 'page', 'data-key': 'missing' },
        h('h1', { text: 'Not found' }),
        h('p', { class: 'empty', testid: 'not-found', text: e.message }),
        h('p', {}, h('a', { href: '#/', text: 'Back to the queues' })),
      ),
    );
    return;
  }
  if (e.status === 401) return;
  ui.updated.textContent = 'Update failed';
  flash(`Could not load this page: ${e.message}`, 'stale');
  if (ui.app.querySelector('.loading')) {
    ui.app.replaceChildren(h('p', { class: 'empty', text: `Could not load: ${e.message}. Trying again…` }));
  }
}

// --------------------------------------------------------------- parts ---

function badge(text, kind, testid) {
  return h('span', { class: `badge badge-${kind}`, testid, text });
}

function stateBadge(s) {
  const kind = {
    succeeded: 'ok',
    running: 'info',
    queued: 'neutral',
    scheduled: 'neutral',
    retrying: 'warn',
    dead: 'bad',
    cancelled: 'muted',
  }[s] ?? 'neutral';
  return badge(s ?? '?', kind, 'job-state');
}

function button(label, action, data = {}, opts = {}) {
  const props = {
    type: 'button',
    class: `btn ${opts.kind ? `btn-${opts.kind}` : ''}`.trim(),
    'data-action': action,
    testid: opts.testid,
    title: opts.title,
    'aria-label': opts.aria,
    disabled: opts.disabled,
  };
  for (const [k, v] of Object.entries(data)) props[`data-${k}`] = v;
  return h('button', props, label);
}

function table(testid, headers, rows, opts = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: `grid ${opts.class ?? ''}`.trim(), testid },
      opts.caption ? h('caption', { class: 'sr-only', text: opts.caption }) : null,
      h('thead', {}, h('tr', {}, headers.map((x) => {
        const o = typeof x === 'object' ? x : { text: x };
        return h('th', { scope: 'col', class: o.class }, o.sr ? h('span', { class: 'sr-only', text: o.text }) : o.text);
      }))),
      h('tbody', {}, rows),
    ),
  );
}

function td(content, props = {}) {
  const cell = h('td', props);
  add(cell, [content]);
  return cell;
}

const n = (value, testid, extra = {}) => td(num(value), { class: 'num', testid, ...extra });

function card(label, value, testid, hint, wide = false) {
  return h('div', { class: wide ? 'card card-wide' : 'card', title: hint },
    h('div', { class: 'card-label', text: label }),
    h('div', { class: 'card-value', testid, text: value }),
  );
}

function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'panel', 'aria-labelledby': id },
    h('h2', { id, text: title }),
    children,
  );
}

function pager(prefix, hasPrev, next, pageNo) {
  return h('div', { class: 'pager' },
    button('← Previous', `${prefix}-prev`, {}, { disabled: !hasPrev, testid: `${prefix}-prev` }),
    h('span', { class: 'muted', testid: `${prefix}-page`, text: `Page ${pageNo}` }),
    button('Next →', `${prefix}-next`, next ? { cursor: next } : {}, { disabled: !next, testid: `${prefix}-next` }),
  );
}

function breadcrumbs(...items) {
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    h('ol', {}, items.map(([label, href]) =>
      h('li', {}, href ? h('a', { href, text: label }) : h('span', { 'aria-current': 'page', text: label })))),
  );
}

function pauseButton(q, paused, testPrefix) {
  if (!canWrite()) return null;
  return paused
    ? button('Resume', 'resume', { queue: q }, { kind: 'primary', testid: `${testPrefix}resume-button`, aria: `Resume queue ${q}` })
    : button('Pause', 'pause', { queue: q }, { testid: `${testPrefix}pause-button`, aria: `Pause queue ${q}` });
}

// --------------------------------------------------------------- chart ---

function svg(tag, props, ...children) {
  return h(`svg:${tag}`, props, ...children);
}

/** A round upper bound for an axis. */
function niceMax(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** A line chart: `series` are `{name, cls, values}` over `labels`. */
function lineChart({ testid, title, labels, series, width = 720, height = 220, unit = '' }) {
  const W = width;
  const H = height;
  const m = { l: 46, r: 14, t: 12, b: 26 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const count = labels.length;
  const top = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (i) => m.l + (count <= 1 ? iw : (i * iw) / (count - 1));
  const y = (v) => m.t + ih - (v / top) * ih;
  const fmt = (v) => (unit === '/s' && top < 10 ? v.toFixed(1) : Number.isInteger(v) ? num(v) : v.toFixed(1));
  const grid = [];
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    grid.push(svg('line', { class: 'chart-grid', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
    grid.push(svg('text', { class: 'chart-axis', x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  const ticks = [];
  const step = Math.max(1, Math.ceil(count / 6));
  labels.forEach((label, i) => {
    if (i % step === 0 || i === count - 1) {
      ticks.push(svg('text', { class: 'chart-axis', x: x(i), y: H - 6, 'text-anchor': i === count - 1 ? 'end' : i === 0 ? 'start' : 'middle' }, label));
    }
  });
  const lines = series.map((s) => {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    return svg('g', { class: `series ${s.cls}` },
      svg('polyline', { class: 'chart-line', points }),
      s.values.map((v, i) =>
        svg('circle', { class: 'chart-dot', cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: count > 40 ? 1.5 : 3 },
          svg('title', {}, `${labels[i]}: ${s.name} ${fmt(v)}${unit}`))),
    );
  });
  const last = series.map((s) => `${s.name} ${fmt(s.values.at(-1) ?? 0)}${unit}`).join(', ');
  return svg('svg', {
    class: 'chart', testid, viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `${title}${count ? `; latest: ${last}` : ': no data yet'}`,
    preserveAspectRatio: 'xMidYMid meet',
  },
  svg('title', {}, title),
  grid, ticks, lines,
  count === 0 ? svg('text', { class: 'chart-empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No data yet') : null,
  );
}

function legend(items) {
  return h('ul', { class: 'legend' }, items.map(([cls, label]) =>
    h('li', { class: cls }, h('span', { class: 'swatch', 'aria-hidden': 'true' }), label)));
}

/** Per-minute completed and failed over the last 15 minutes, summed over queues. */
function minutesChart(stats) {
  const byAt = new Map();
  for (const s of stats) {
    for (const m of s?.recent?.minutes ?? []) {
      const e = byAt.get(m.at) ?? { at: m.at, completed: 0, failed: 0, retried: 0 };
      e.completed += m.completed;
      e.failed += m.failed;
      e.retried += m.retried;
      byAt.set(m.at, e);
    }
  }
  const minutes = [...byAt.values()].sort((a, b) => a.at - b.at).slice(-15);
  return h('figure', { class: 'chart-box' },
    h('figcaption', {}, h('strong', { text: 'Jobs per minute' }), ' · last 15 minutes, all queues (the last minute is still running)'),
    lineChart({
      testid: 'rates-chart',
      title: 'Completed, retried and failed jobs per minute',
      labels: minutes.map((m) => clock(m.at)),
      series: [
        { name: 'completed', cls: 's-completed', values: minutes.map((m) => m.completed) },
        { name: 'retried', cls: 's-retried', values: minutes.map((m) => m.retried) },
        { name: 'failed', cls: 's-failed', values: minutes.map((m) => m.failed) },
      ],
    }),
    legend([['s-completed', 'completed'], ['s-retried', 'retried'], ['s-failed', 'dead-lettered']]),
  );
}

/** Samples the counters on each overview refresh: the live rate. */
function sample(stats) {
  // Per queue, so a queue whose stats failed once (or that joined the list)
  // adds no lifetime count to a delta: rates sum the queues in both samples.
  const per = new Map();
  for (const st of stats) {
    if (st && typeof st.queue === 'string') {
      per.set(st.queue, { completed: st.counters?.completed ?? 0, failed: st.counters?.dead ?? 0 });
    }
  }
  state.samples.push({ t: Date.now(), per });
  if (state.samples.length > MAX_SAMPLES) state.samples.shift();
}

/** Jobs completed and failed between two samples, over the queues in both. */
function delta(before, after) {
  let completed = 0;
  let failed = 0;
  for (const [queue, now] of after.per) {
    const then = before.per.get(queue);
    if (!then) continue;
    completed += Math.max(0, now.completed - then.completed);
    failed += Math.max(0, now.failed - then.failed);
  }
  return { completed, failed };
}

function liveChart() {
  const s = state.samples;
  const rates = [];
  for (let i = 1; i < s.length; i++) {
    const dt = (s[i].t - s[i - 1].t) / 1000;
    if (dt <= 0) continue;
    const d = delta(s[i - 1], s[i]);
    rates.push({ t: s[i].t, completed: d.completed / dt, failed: d.failed / dt });
  }
  const now = rates.at(-1)?.completed;
  return h('figure', { class: 'chart-box' },
    h('figcaption', {},
      h('strong', { text: 'Live' }), ' · completed jobs/s, sampled each refresh: ',
      h('strong', { class: 'rate-now', testid: 'rate-now', text: now === undefined ? '—' : rate(now) })),
    lineChart({
      testid: 'live-chart',
      title: 'Completed and dead-lettered jobs per second, live',
      labels: rates.map((r) => time(r.t).slice(11)),
      series: [
        { name: 'completed', cls: 's-completed', values: rates.map((r) => r.completed) },
        { name: 'failed', cls: 's-failed', values: rates.map((r) => r.failed) },
      ],
      width: 460,
      unit: '/s',
    }),
  );
}

// --------------------------------------------------------------- pages ---

const pages = { overview, queue, job, dead, letter, workers, notfound, ...batches.pages };

async function overview() {
  const queues = await get('/v1/queues');
  // Each queue's stats is one more request: the first MAX_STATS queues'.
  const stats = await Promise.all(
    queues.map((x, i) => (i < MAX_STATS ? get(`/v1/queues/${enc(x.queue)}/stats`).catch(() => null) : null)),
  );
  sample(stats);
  const rows = queues.map((x, i) => {
    const s = stats[i];
    return h('tr', { 'data-key': x.queue, 'data-queue': x.queue, testid: 'queue-row' },
      h('th', { scope: 'row' }, h('a', { href: links.queue(x.queue), testid: 'queue-link', text: x.queue })),
      PRIORITIES.map((p) => n(x.waiting[p], `queue-waiting-${p}`)),
      n(x.running, 'queue-running'),
      n(x.scheduled, 'queue-scheduled'),
      td(x.dead > 0 ? h('a', { href: links.dead(x.queue), class: 'dead-link', text: num(x.dead) }) : num(x.dead), { class: 'num', testid: 'queue-dead' }),
      n(s?.counters?.completed ?? null, 'queue-completed'),
      td(s ? rate(s.throughput_per_sec) : '—', { class: 'num', testid: 'queue-throughput' }),
      n(x.workers, 'queue-workers'),
      td(x.paused ? badge('paused', 'warn', 'queue-paused') : badge('active', 'ok', 'queue-active')),
      canWrite() ? td(pauseButton(x.queue, x.paused, 'queue-'), { class: 'actions' }) : null,
    );
  });
  const headers = [
    'Queue',
    ...PRIORITIES.map((p) => ({ text: p, class: 'num' })),
    { text: 'running', class: 'num' },
    { text: 'scheduled', class: 'num' },
    { text: 'dead', class: 'num' },
    { text: 'completed', class: 'num' },
    { text: 'jobs/s', class: 'num' },
    { text: 'workers', class: 'num' },
    'state',
  ];
  if (canWrite()) headers.push({ text: 'actions', sr: true });
  return h('div', { class: 'page', 'data-key': 'overview' },
    h('h1', { text: 'Queues' }),
    section('Waiting, running and done',
      queues.length === 0
        ? h('p', { class: 'empty', testid: 'queues-empty', text: 'No queues yet: enqueue a job or start a worker.' })
        : [
          h('p', { class: 'muted hint', text: 'Waiting jobs per priority; completed since the queue began; jobs/s over the last full minutes.' }),
          table('queues-table', headers, rows, { caption: 'Queues' }),
        ]),
    section('Rates', h('div', { class: 'charts' }, minutesChart(stats), liveChart())),
  );
}

async function queue({ queue: q, tab }) {
  const Q = enc(q);
  const cursor = state.page.cursors.at(-1);
  const jobsPath = `/v1/queues/${Q}/jobs?state=${enc(tab)}&limit=${PAGE_SIZE}${cursor ? `&cursor=${enc(cursor)}` : ''}`;
  const [stats, streams, jobs, workers, settings, schedules, concurrency, rateLimits, batchList] = await Promise.all([
    get(`/v1/queues/${Q}/stats`),
    get(`/v1/queues/${Q}/streams`).catch((e) => e),
    get(jobsPath).catch((e) => e),
    get(`/v1/queues/${Q}/workers`).catch(() => []),
    get(`/v1/queues/${Q}/settings`).catch((e) => e),
    get(`/v1/queues/${Q}/schedules`).catch((e) => e),
    get(`/v1/queues/${Q}/concurrency`).catch((e) => e),
    get(`/v1/queues/${Q}/rate_limits`).catch((e) => e),
    get(batches.panelPath(q)).catch((e) => e),
  ]);
  const r = stats.recent;
  const summary = (label, sm, key) =>
    card(`${label} p50 · p95 · p99`,
      sm && sm.count > 0 ? `${duration(sm.p50_ms)} · ${duration(sm.p95_ms)} · ${duration(sm.p99_ms)}` : '—',
      `stats-${key}`, sm ? `${num(sm.count)} jobs in the last 15 minutes; mean ${duration(sm.avg_ms)}` : null, true);
  return h('div', { class: 'page', 'data-key': `queue:${q}` },
    breadcrumbs(['Queues', '#/'], [q, null]),
    h('div', { class: 'title-row' },
      h('h1', { testid: 'queue-title', text: q }),
      stats.paused ? badge('paused', 'warn', 'paused-badge') : badge('active', 'ok', 'active-badge'),
      h('span', { class: 'spacer' }),
      h('a', { class: 'btn', href: links.dead(q), testid: 'dead-link' }, `Dead letters (${num(stats.dead)})`),
      pauseButton(q, stats.paused, ''),
    ),
    h('div', { class: 'cards' },
      card('Waiting', num(sum(stats.waiting)), 'stats-waiting', PRIORITIES.map((p) => `${p} ${stats.waiting[p]}`).join(', ')),
      card('Running', num(sum(stats.running)), 'stats-running'),
      card('Scheduled', num(stats.scheduled), 'stats-scheduled', 'Delayed, or waiting out a retry'),
      card('Dead', num(stats.dead), 'stats-dead'),
      card('Completed', num(stats.counters?.completed ?? 0), 'stats-completed', 'Since the queue began'),
      card('Throughput', rate(stats.throughput_per_sec), 'stats-throughput', 'Completed per second over the last full minutes'),
      card('Failed', pct(r.failure_rate), 'stats-failure-rate', 'Failure rate: dead-lettered / (completed + dead-lettered), last 15 minutes'),
      summary('Wait', r.wait, 'wait'),
      summary('Run', r.run, 'run'),
      rateCard(q, stats.rate_limit),
    ),
    section('Settings', settingsList(q, settings)),
    section('Limits', limitsView(q, concurrency, rateLimits, { h, td, table, num, time, duration })),
    section('Schedules', schedulesTable(q, schedules)),
    section('Streams', streamsTable(streams)),
    section('Jobs', jobTabs(q, tab), jobsTable(q, tab, jobs)),
    section('Batches', batches.panel(q, batchList)),
    section(`Workers on ${q}`, workersTable(workers, 'queue-workers-table')),
  );
}

// The queue's rate limit as it stands (server clock): held back now, and
// until when; or free, with its limit.
function rateCard(q, rl) {
  if (!rl) {
    return card('Rate limit', 'no limit', 'stats-rate-limit', `No rate limit and no hold. Set one with: ferry settings ${q} --rate-limit 50/1s`, true);
  }
  const limit = rl.limit ? `limit ${rl.limit}` : 'no limit';
  const value = rl.limited
    ? `rate limited, next slot in ${duration(rl.next_slot_in_ms)}`
    : `${limit}, not limited`;
  const hint = [
    limit,
    rl.held_until ? `held until ${time(rl.held_until)} (a handler's rate_limited)` : null,
    rl.slots_free !== null && rl.slots_free !== undefined ? `${num(rl.slots_free)} may start at once now` : null,
    rl.next_slot_at ? `next slot at ${time(rl.next_slot_at)}` : null,
  ].filter(Boolean).join('; ');
  return card('Rate limit', value, 'stats-rate-limit', hint, true);
}

// The queue's settings as the fleet reads them (P:{Q}:settings), with the
// command that changes each.
function settingsList(q, settings) {
  if (settings instanceof Error) {
    return h('p', { class: 'empty', testid: 'settings-unavailable', text: `Settings unavailable: ${settings.message}` });
  }
  const row = (label, value, testid, hint) =>
    h('tr', { testid: 'settings-row', 'data-key': testid },
      h('th', { scope: 'row', text: label }),
      td(value, { testid }),
      td(h('code', { text: hint }), { class: 'muted' }));
  const limit = (v, none) => (v === null || v === undefined ? none : num(v));
  return [
    h('p', { class: 'muted hint', text: 'What every worker and producer of this queue acts on. Change them with `ferry settings` or PATCH /v1/queues/{queue}/settings.' }),
    table('settings-table', ['setting', 'value', 'change with'], [
      row('Paused', settings.paused ? 'yes' : 'no', 'settings-paused', `ferry ${settings.paused ? 'resume' : 'pause'} ${q}`),
      row('Maximum depth', limit(settings.max_depth, 'no limit'), 'settings-max-depth', `ferry settings ${q} --max-depth N|none`),
      row('Records kept for', duration(settings.retention_ms), 'settings-retention', `ferry settings ${q} --retention-ms MS`),
      row('Records kept, at most', num(settings.retention_count), 'settings-retention-count', `ferry settings ${q} --retention-count N`),
      row('Lifecycle events', settings.events ? `on, ${num(settings.events)} kept` : 'off', 'settings-events', `ferry settings ${q} --events CAP|off`),
      row('Rate limit', settings.rate_limit ?? 'no limit', 'settings-rate-limit', `ferry settings ${q} --rate-limit N/PERIOD[:BURST]|none`),
      row('Every key’s rate limit', settings.key_rate_limit ?? 'no limit', 'settings-key-rate-limit', `ferry settings ${q} --key-rate-limit N/PERIOD[:BURST]|none`),
    ], { caption: 'Settings' }),
  ];
}

// The queue's cron and periodic schedules (P:{Q}:schedules): each fires
// one job a tick, by whichever worker gets there first.
function schedulesTable(q, list) {
  if (list instanceof Error) {
    return h('p', { class: 'empty', testid: 'schedules-unavailable', text: `Schedules unavailable: ${list.message}` });
  }
  if (list.length === 0) {
    return h('p', { class: 'empty', testid: 'schedules-empty', text: `No schedules. Add one with \`ferry schedule add ${q} NAME --cron EXPR | --every DURATION --type T\`.` });
  }
  const w = canWrite();
  const act = (s) => ({ queue: q, name: s.name });
  const rows = list.map((s) => h('tr', { 'data-key': s.name, 'data-schedule': s.name, testid: 'schedule-row' },
    h('th', { scope: 'row', testid: 'schedule-name', text: s.name }),
    td(h('code', { text: s.spec }), { testid: 'schedule-spec' }),
    td(s.missed, { testid: 'schedule-missed' }),
    td(s.paused ? '—' : time(s.next_at), { testid: 'schedule-next' }),
    td(s.last_job ? h('a', { href: links.job(q, s.last_job), testid: 'schedule-last-job' }, h('code', { text: s.last_job })) : '—'),
    td(s.last_job_state ? stateBadge(s.last_job_state) : s.last_job ? 'not kept' : '—', { testid: 'schedule-last-state' }),
    td(s.paused ? badge('paused', 'warn', 'schedule-paused') : badge('active', 'ok', 'schedule-active')),
    w ? td([
      s.paused
        ? button('Resume', 'schedule-resume', act(s), { kind: 'primary', testid: 'schedule-resume', aria: `Resume schedule ${s.name}` })
        : button('Pause', 'schedule-pause', act(s), { testid: 'schedule-pause', aria: `Pause schedule ${s.name}` }),
      button('Run now', 'schedule-trigger', act(s), { testid: 'schedule-trigger', aria: `Enqueue schedule ${s.name}'s job now` }),
    ], { class: 'actions' }) : null,
  ));
  const headers = ['name', 'spec', 'missed ticks', 'next fire', 'last job', 'its state', 'state'];
  if (w) headers.push({ text: 'actions', sr: true });
  return [
    h('p', { class: 'muted hint', text: 'Jobs enqueued on a cadence, by the Redis server’s clock; the workers fire each tick once. Change them with `ferry schedule` or /v1/queues/{queue}/schedules.' }),
    table('schedules-table', headers, rows, { caption: 'Schedules' }),
  ];
}

function ageCell(ms, testid, title) {
  const known = ms !== null && ms !== undefined;
  const cls = !known ? '' : ms >= AGE_OLD_MS ? 'age-old' : ms >= AGE_WARN_MS ? 'age-warn' : '';
  return td(known ? duration(ms) : '—', { class: `num ${cls}`.trim(), testid, title });
}

function streamsTable(streams) {
  if (streams instanceof Error) {
    return h('p', { class: 'empty', testid: 'streams-unavailable', text: `Stream details unavailable: ${streams.message}` });
  }
  const rows = streams.map((s) => {
    const noGroup = s.group === false;
    const lagKnown = s.lag !== null && s.lag !== undefined;
    return h('tr', { 'data-key': s.priority, 'data-priority': s.priority, testid: 'stream-row' },
      h('th', { scope: 'row' }, s.priority, h('div', {}, h('code', { class: 'key', text: s.key }))),
      n(s.length, 'stream-length'),
      n(s.pending, 'stream-pending'),
      td(lagKnown ? num(s.lag) : noGroup ? 'no group' : 'n/a', {
        class: 'num', testid: 'stream-lag',
        title: lagKnown
          ? 'Entries the consumer group has not been given yet'
          : noGroup ? 'No worker has read this stream yet' : 'Redis cannot tell this group’s lag (before Redis 7, or after a deletion at its read position)',
      }),
      n(s.consumers, 'stream-consumers'),
      td(s.last_delivered_id ? h('code', { text: s.last_delivered_id }) : '—', { testid: 'stream-last-delivered' }),
      td(s.oldest_pending_id ? h('code', { text: s.oldest_pending_id }) : '—', { testid: 'stream-oldest-id' }),
      ageCell(s.oldest_pending_age_ms, 'stream-oldest-age', 'Since the oldest unacknowledged entry entered the stream'),
      ageCell(s.oldest_pending_idle_ms, 'stream-oldest-idle', 'Since it was last delivered or its lease renewed'),
      ageCell(s.oldest_waiting_age_ms, 'stream-oldest-waiting', 'How long the next job a worker will claim has waited'),
    );
  });
  return [
    h('p', { class: 'muted hint', text: 'One stream per priority, read by one consumer group. Lag: entries the group has not been given yet. Pending: delivered, not yet acknowledged (running, or held by a dead worker until recovered). The oldest pending entry’s age and idle time show a stuck job or a dead worker before its lease runs out; the oldest waiting age shows how far behind the workers are.' }),
    table('streams-table', [
      'priority',
      { text: 'length', class: 'num' }, { text: 'pending', class: 'num' }, { text: 'lag', class: 'num' },
      { text: 'consumers', class: 'num' }, 'last delivered', 'oldest pending',
      { text: 'pending age', class: 'num' }, { text: 'idle', class: 'num' }, { text: 'oldest waiting', class: 'num' },
    ], rows, { caption: 'Streams' }),
  ];
}

function jobTabs(q, tab) {
  return h('nav', { class: 'tabs', 'aria-label': 'Jobs by state' },
    JOB_TABS.map((t) => h('a', {
      href: links.queue(q, t), class: 'tab', testid: `job-tab-${t}`,
      'aria-current': t === tab ? 'page' : null, text: t,
    })),
  );
}

function jobsTable(q, tab, jobs) {
  if (jobs instanceof Error) {
    return h('p', { class: 'empty', testid: 'jobs-unavailable', text: `Jobs unavailable: ${jobs.message}` });
  }
  const list = jobs.jobs ?? [];
  const rows = list.map((j) => h('tr', { 'data-key': j.id, 'data-id': j.id, testid: 'job-row' },
    td(h('a', { href: links.job(q, j.id), testid: 'job-link' }, h('code', { text: j.id }))),
    td(stateBadge(j.state)),
    td(j.type ?? '—', { testid: 'job-type' }),
    td(j.priority ?? '—'),
    td(attempts(j), { class: 'num' }),
    td(time(j.enqueued_at)),
    td(j.state === 'scheduled' || j.state === 'retrying' ? `due ${time(j.run_at)}` : time(j.finished_at ?? j.started_at)),
    td(j.worker ? h('code', { text: j.worker }) : '—'),
  ));
  const cursors = state.page.cursors;
  return [
    list.length === 0
      ? h('p', { class: 'empty', testid: 'jobs-empty', text: `No ${tab} jobs${cursors.length > 1 ? ' on this page' : ''}.` })
      : table('jobs-table', ['id', 'state', 'type', 'priority', { text: 'attempt', class: 'num' }, 'enqueued', 'started / finished / due', 'worker'], rows, { caption: `${tab} jobs` }),
    pager('jobs', cursors.length > 1, jobs.next ?? null, cursors.length),
  ];
}

function attempts(j) {
  const max = j.max_retries === null || j.max_retries === undefined ? '?' : j.max_retries + 1;
  return `${j.attempt ?? 0} of ${max}`;
}

async function job({ queue: q, id }) {
  const j = await get(`/v1/queues/${enc(q)}/jobs/${enc(id)}`);
  const waiting = ['queued', 'scheduled', 'retrying'].includes(j.state);
  const actions = [];
  if (canWrite()) {
    if (waiting || j.state === 'running') {
      actions.push(button(j.state === 'running' ? 'Ask to cancel' : 'Cancel', 'cancel', { queue: q, id: j.id }, { kind: 'danger', testid: 'job-cancel' }));
    }
    if (j.state === 'dead') actions.push(button('Retry', 'retry', { queue: q, id: j.id }, { kind: 'primary', testid: 'job-retry' }));
    if (waiting) {
      actions.push(h('span', { class: 'inline-form' },
        h('label', { for: 'reprioritise-select', text: 'Priority' }),
        h('select', { id: 'reprioritise-select', testid: 'job-priority-select' },
          PRIORITIES.map((p) => h('option', { value: p, selected: p === j.priority, text: p }))),
        button('Reprioritise', 'reprioritise', { queue: q, id: j.id }, { testid: 'job-reprioritise' })));
    }
  }
  return h('div', { class: 'page', 'data-key': `job:${q}:${id}` },
    breadcrumbs(['Queues', '#/'], [q, links.queue(q)], [id, null]),
    h('div', { class: 'title-row' },
      h('h1', {}, 'Job ', h('code', { testid: 'job-id', text: j.id })),
      stateBadge(j.state),
      h('span', { class: 'spacer' }),
      actions,
    ),
    h('div', { class: 'two-col' },
      section('Details',
        h('dl', { class: 'facts' },
          fact('State', j.state, 'job-state-text'),
          fact('Type', j.type ?? '—', 'job-type'),
          fact('Priority', j.priority ?? '—', 'job-priority'),
          fact('Attempts', attempts(j), 'job-attempts'),
          fact('Worker', j.worker ?? '—', 'job-worker'),
          fact('Deliveries', j.deliveries ?? '—', 'job-deliveries'),
          fact('Entry', j.entry_id ?? '—', 'job-entry'),
        ),
        progressView(j.progress),
      ),
      section('Timeline', timeline(j)),
    ),
    dependencies(q, j),
    dependents(q, j),
    batches.jobLinks(q, j),
    section('Payload', h('pre', { class: 'json', testid: 'job-payload', text: j.payload === null || j.payload === undefined ? 'not known (no payload in the job’s record)' : json(j.payload) })),
    j.result !== undefined && j.result !== null ? section('Result', h('pre', { class: 'json', testid: 'job-result', text: json(j.result) })) : null,
    j.last_error ? section('Error', h('pre', { class: 'json error-text', testid: 'job-error', text: j.last_error })) : null,
  );
}

/** The jobs a job waits for (`depends_on`: those left, at most 50), each
 * a link to its page; nothing when it waits for none. */
function dependencies(q, j) {
  const deps = j.depends_on ?? [];
  if (deps.length === 0) return null;
  return section('Waits for',
    j.waiting_for ? h('p', { class: 'muted hint', testid: 'job-waiting-for', text: j.waiting_for }) : null,
    h('ul', { class: 'dependencies', testid: 'job-depends-on' },
      deps.map((d) => h('li', { 'data-key': d },
        h('a', { href: links.job(q, d), testid: 'job-dependency' }, h('code', { text: d }))))),
  );
}

/** The jobs waiting for this one (`dependents`: a first page of at most
 * 50, `dependents_count` of them in all), each a link to its page. */
function dependents(q, j) {
  const list = j.dependents ?? [];
  if (list.length === 0) return null;
  const more = (j.dependents_count ?? list.length) - list.length;
  return section('Waited for by',
    h('ul', { class: 'dependencies', testid: 'job-dependents' },
      list.map((d) => h('li', { 'data-key': d },
        h('a', { href: links.job(q, d), testid: 'job-dependent' }, h('code', { text: d }))))),
    more > 0 ? h('p', { class: 'muted hint', text: `and ${more} more` }) : null,
  );
}

function fact(label, value, testid) {
  return [h('dt', { text: label }), h('dd', { testid, text: String(value) })];
}

function progressView(p) {
  if (p === null || p === undefined) return null;
  const percent = typeof p.percent === 'number' ? Math.max(0, Math.min(100, p.percent)) : null;
  return h('div', { class: 'progress-box', testid: 'job-progress' },
    h('div', { class: 'progress-head' },
      h('strong', { text: 'Progress' }),
      h('span', { testid: 'job-progress-percent', text: percent === null ? 'running' : `${percent.toFixed(0)} %` }),
      p.at ? h('span', { class: 'muted', text: `reported ${ago(p.at)}` }) : null),
    h('progress', { max: 100, value: percent ?? undefined, 'aria-label': 'Progress' }),
    p.info !== undefined && p.info !== null ? h('pre', { class: 'json small', text: json(p.info) }) : null,
  );
}

function timeline(j) {
  const base = j.enqueued_at;
  const since = (ms) => (base && ms ? ` (+${duration(ms - base)})` : '');
  const items = [['Enqueued', j.enqueued_at, true]];
  if (j.run_at) items.push([j.state === 'retrying' ? 'Retry due' : 'Scheduled to run', j.run_at, j.run_at <= Date.now()]);
  if (j.started_at) items.push(['Started', j.started_at, true]);
  else if (j.state === 'running') items.push([`Running${j.worker ? ` on ${j.worker}` : ''}`, null, true]);
  if (j.finished_at) items.push([{ succeeded: 'Succeeded', dead: 'Died', cancelled: 'Cancelled' }[j.state] ?? 'Finished', j.finished_at, true]);
  else if (!['succeeded', 'dead', 'cancelled'].includes(j.state)) items.push(['Finished', null, false]);
  return h('ol', { class: 'timeline', testid: 'job-timeline' },
    items.map(([label, ms, done]) => h('li', { class: done ? 'done' : 'todo' },
      h('span', { class: 'tl-label', text: label }),
      h('span', { class: 'tl-time', text: ms ? `${time(ms)}${since(ms)}` : done ? 'now' : 'not yet' }))),
  );
}

async function dead({ queue: q }) {
  const Q = enc(q);
  const after = state.page.cursors.at(-1);
  const filter = state.page.filter;
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (after) params.set('after', after);
  if (filter) params.set('error', filter);
  const [groups, listing] = await Promise.all([
    get(`/v1/queues/${Q}/dead/groups`),
    get(`/v1/queues/${Q}/dead?${params}`),
  ]);
  const w = canWrite();
  const groupRows = groups.groups.map((g) => h('tr', { 'data-key': g.error, 'data-error': g.error, testid: 'dead-group' },
    td(h('span', { class: 'error-text', text: g.error }), { testid: 'dead-group-error' }),
    n(g.count, 'dead-group-count'),
    td(Object.entries(g.types).map(([t, c]) => `${t} ×${num(c)}`).join(', ') + (g.other_types ? `, others ×${num(g.other_types)}` : '')),
    td(time(entryMs(g.last_entry))),
    td([
      button('List', 'dead-filter', { error: g.error }, { testid: 'dead-group-list', aria: `List dead letters with error ${g.error}` }),
      w ? button('Replay group', 'replay-group', { queue: q, error: g.error }, { kind: 'primary', testid: 'dead-group-replay', title: 'Replays every dead letter whose error contains this text' }) : null,
    ], { class: 'actions' }),
  ));
  const letterRows = listing.letters.map((l) => h('tr', { 'data-key': l.entry_id, 'data-entry': l.entry_id, 'data-job-id': l.job_id ?? '', testid: 'dead-row' },
    td(h('a', { href: links.letter(q, l.entry_id), testid: 'dead-show' }, h('code', { text: l.entry_id }))),
    td(l.job_id ? h('a', { href: links.job(q, l.job_id) }, h('code', { text: l.job_id })) : '—', { testid: 'dead-job-id' }),
    td(l.type ?? '—'),
    td(h('span', { class: 'error-text clip', title: l.error ?? '', text: l.error ?? '—' }), { testid: 'dead-error' }),
    td(time(l.failed_at)),
    td(l.attempt === null || l.attempt === undefined ? '—' : `${l.attempt} of ${l.max_retries === null || l.max_retries === undefined ? '?' : l.max_retries + 1}`, { class: 'num' }),
    w ? td(button('Replay', 'replay-one', { queue: q, id: l.entry_id }, { kind: 'primary', testid: 'dead-replay', aria: `Replay dead letter ${l.entry_id}` }), { class: 'actions' }) : null,
  ));
  const confirming = state.page.confirm === 'purge';
  const cursors = state.page.cursors;
  return h('div', { class: 'page', 'data-key': `dead:${q}` },
    breadcrumbs(['Queues', '#/'], [q, links.queue(q)], ['Dead letters', null]),
    h('div', { class: 'title-row' },
      h('h1', {}, 'Dead letters of ', h('span', { text: q })),
      badge(`${num(groups.total)} total`, groups.total ? 'bad' : 'ok', 'dead-total'),
      h('span', { class: 'spacer' }),
      w && groups.total > 0 && !confirming ? button('Purge all…', 'purge', { queue: q }, { kind: 'danger', testid: 'dead-purge' }) : null,
    ),
    confirming
      ? h('div', { class: 'confirm', role: 'alertdialog', 'aria-labelledby': 'confirm-text', testid: 'purge-confirm' },
        h('p', { id: 'confirm-text' },
          h('strong', { text: groups.total === 1 ? `Delete the dead letter of ${q}?` : `Delete all ${num(groups.total)} dead letters of ${q}?` }),
          ' Their jobs are gone for good: this cannot be undone.'),
        button('Yes, purge them', 'purge-confirm', { queue: q }, { kind: 'danger', testid: 'dead-purge-confirm' }),
        button('Cancel', 'purge-cancel', {}, { testid: 'dead-purge-cancel' }))
      : null,
    section('Grouped by error',
      groups.groups.length === 0
        ? h('p', { class: 'empty', testid: 'dead-groups-empty', text: 'No dead letters.' })
        : table('dead-groups', ['error', { text: 'count', class: 'num' }, 'types', 'newest', { text: 'actions', sr: true }], groupRows, { caption: 'Dead letters by error' }),
      groups.ungrouped ? h('p', { class: 'muted', text: `${num(groups.ungrouped)} more letters have other errors.` }) : null,
    ),
    section('Letters',
      filter
        ? h('p', { class: 'filter', testid: 'dead-filter' }, 'Errors containing ', h('q', { text: filter }), ' ', button('Show all', 'dead-clear-filter', {}, { testid: 'dead-clear-filter' }))
        : null,
      listing.letters.length === 0
        ? h('p', { class: 'empty', testid: 'dead-empty', text: cursors.length > 1 ? 'No more dead letters.' : 'No dead letters.' })
        : table('dead-table', ['entry', 'job', 'type', 'error', 'died', { text: 'attempt', class: 'num' }, w ? { text: 'actions', sr: true } : null].filter(Boolean), letterRows, { caption: 'Dead letters' }),
      pager('dead', cursors.length > 1, listing.next ?? null, cursors.length),
    ),
  );
}

async function letter({ queue: q, id }) {
  const l = await get(`/v1/queues/${enc(q)}/dead/${enc(id)}`);
  const fields = Object.entries(l.fields ?? {});
  return h('div', { class: 'page', 'data-key': `letter:${q}:${id}` },
    breadcrumbs(['Queues', '#/'], [q, links.queue(q)], ['Dead letters', links.dead(q)], [l.entry_id, null]),
    h('div', { class: 'title-row' },
      h('h1', {}, 'Dead letter ', h('code', { testid: 'letter-id', text: l.entry_id })),
      h('span', { class: 'spacer' }),
      canWrite() ? button('Replay', 'replay-one', { queue: q, id: l.entry_id, back: '1' }, { kind: 'primary', testid: 'letter-replay' }) : null,
    ),
    section('Details',
      h('dl', { class: 'facts' },
        fact('Job', l.job_id ?? '—', 'letter-job'),
        fact('Type', l.type ?? '—', 'letter-type'),
        fact('Priority', l.priority ?? '—', 'letter-priority'),
        fact('Attempt', l.attempt === null || l.attempt === undefined ? '—' : `${l.attempt} of ${(l.max_retries ?? 0) + 1}`, 'letter-attempt'),
        fact('Enqueued', time(l.enqueued_at), 'letter-enqueued'),
        fact('Died', time(l.failed_at), 'letter-died'),
      ),
      l.job_id ? h('p', {}, h('a', { href: links.job(q, l.job_id), text: 'The job’s status →' })) : null,
    ),
    section('Error', h('pre', { class: 'json error-text', testid: 'letter-error', text: l.error ?? '—' })),
    section('Payload', h('pre', { class: 'json', testid: 'letter-payload', text: json(l.payload) })),
    fields.length ? section('Other fields', h('pre', { class: 'json', testid: 'letter-fields', text: json(l.fields) })) : null,
  );
}

function workersTable(list, testid = 'workers-table') {
  if (!list.length) return h('p', { class: 'empty', testid: `${testid}-empty`, text: 'No live workers.' });
  const rows = list.map((w) => h('tr', { 'data-key': w.worker, testid: 'worker-row' },
    td(h('code', { text: w.worker }), { testid: 'worker-name' }),
    td(`${w.host} / ${w.pid}`),
    td(w.queues.map((q, i) => [i ? ', ' : '', h('a', { href: links.queue(q), text: q })])),
    n(w.running, 'worker-running'),
    n(w.concurrency, 'worker-concurrency'),
    td(time(w.started_at)),
    td(ago(w.heartbeat_at), { class: Date.now() - w.heartbeat_at > 30_000 ? 'age-warn' : '', testid: 'worker-heartbeat' }),
  ));
  return table(testid, ['worker', 'host / pid', 'queues', { text: 'running', class: 'num' }, { text: 'concurrency', class: 'num' }, 'started', 'last heartbeat'], rows, { caption: 'Workers' });
}

async function workers() {
  const list = await get('/v1/workers');
  return h('div', { class: 'page', 'data-key': 'workers' },
    h('h1', { text: 'Workers' }),
    section('Live workers', h('p', { class: 'muted hint', text: 'Workers that sent a heartbeat recently, with the jobs each was running at its last one.' }), workersTable(list)),
  );
}

async function notfound() {
  return h('div', { class: 'page', 'data-key': 'notfound' },
    h('h1', { text: 'No such page' }),
    h('p', {}, h('a', { href: '#/', text: 'Back to the queues' })),
  );
}

// ------------------------------------------------------------- actions ---

const plural = (k, one, many = `${one}s`) => `${num(k)} ${k === 1 ? one : many}`;

const actions = {
  async pause(d) {
    await post(`/v1/queues/${enc(d.queue)}/pause`);
    return `Paused ${d.queue}: workers take no new jobs from it.`;
  },
  async resume(d) {
    await post(`/v1/queues/${enc(d.queue)}/resume`);
    return `Resumed ${d.queue}.`;
  },
  async 'schedule-pause'(d) {
    await post(`/v1/queues/${enc(d.queue)}/schedules/${enc(d.name)}/pause`);
    return `Paused schedule ${d.name}: it fires no tick until resumed.`;
  },
  async 'schedule-resume'(d) {
    await post(`/v1/queues/${enc(d.queue)}/schedules/${enc(d.name)}/resume`);
    return `Resumed schedule ${d.name}.`;
  },
  async 'schedule-trigger'(d) {
    const r = await post(`/v1/queues/${enc(d.queue)}/schedules/${enc(d.name)}/trigger`);
    return `Schedule ${d.name} enqueued job ${r.id}.`;
  },
  async cancel(d) {
    const r = await post(`/v1/queues/${enc(d.queue)}/jobs/${enc(d.id)}/cancel`);
    return r.cancel_requested ? `Asked ${r.worker ?? 'its worker'} to stop ${d.id}.` : `Cancelled ${d.id}.`;
  },
  async retry(d) {
    await post(`/v1/queues/${enc(d.queue)}/jobs/${enc(d.id)}/retry`);
    return `Queued ${d.id} again.`;
  },
  async reprioritise(d) {
    const priority = document.getElementById('reprioritise-select')?.value;
    const r = await post(`/v1/queues/${enc(d.queue)}/jobs/${enc(d.id)}/reprioritise`, { priority });
    return `${d.id} is now ${r.priority}.`;
  },
  async 'replay-one'(d) {
    const r = await post(`/v1/queues/${enc(d.queue)}/dead/${enc(d.id)}/replay`);
    const job = r.replayed?.[0]?.job_id;
    if (d.back) location.hash = links.dead(d.queue);
    return `Replayed ${plural(r.count, 'dead letter')}${job ? ` (job ${job})` : ''}.`;
  },
  async 'replay-group'(d) {
    const r = await post(`/v1/queues/${enc(d.queue)}/dead/replay`, { error: d.error });
    return `Replayed ${plural(r.count, 'dead letter')}.`;
  },
  async purge() {
    state.page.confirm = 'purge';
  },
  async 'purge-cancel'() {
    state.page.confirm = null;
  },
  async 'purge-confirm'(d) {
    state.page.confirm = null;
    const r = await api('DELETE', `/v1/queues/${enc(d.queue)}/dead`);
    state.page.cursors = [null];
    return `Purged ${plural(r.purged, 'dead letter')}.`;
  },
  async 'dead-filter'(d) {
    state.page.filter = d.error;
    state.page.cursors = [null];
  },
  async 'dead-clear-filter'() {
    state.page.filter = null;
    state.page.cursors = [null];
  },
  async 'jobs-next'(d) {
    if (d.cursor) state.page.cursors.push(d.cursor);
  },
  async 'jobs-prev'() {
    if (state.page.cursors.length > 1) state.page.cursors.pop();
  },
  async 'dead-next'(d) {
    if (d.cursor) state.page.cursors.push(d.cursor);
  },
  async 'dead-prev'() {
    if (state.page.cursors.length > 1) state.page.cursors.pop();
  },
};

document.addEventListener('click', async (ev) => {
  const el = ev.target.closest?.('button[data-action]');
  if (!el || !ui.app.contains(el) || el.disabled) return;
  const act = actions[el.dataset.action];
  if (!act) return;
  ev.preventDefault();
  el.disabled = true;
  el.setAttribute('aria-busy', 'true');
  try {
    const message = await act({ ...el.dataset });
    if (message) flash(message, 'ok');
  } catch (e) {
    if (e.status !== 401) flash(`${e.message}`, 'error');
  } finally {
    el.disabled = false;
    el.removeAttribute('aria-busy');
  }
  refresh();
});

// --------------------------------------------------------- diagnostics ---

// Anything the page's CSP blocks, and any error the script did not
// expect, is counted on <html> (data-csp-violations, data-script-errors:
// the browser test checks there are none) and said in the message bar.
function count(name) {
  const root = document.documentElement;
  root.dataset[name] = String(Number(root.dataset[name] ?? 0) + 1);
}

document.addEventListener('securitypolicyviolation', (e) => {
  count('cspViolations');
  console.error('blocked by the content security policy:', e.violatedDirective, e.blockedURI);
});

window.addEventListener('error', (e) => {
  count('scriptErrors');
  flash(`The dashboard hit an error: ${e.message}`, 'error');
});

window.addEventListener('unhandledrejection', (e) => {
  count('scriptErrors');
  flash(`The dashboard hit an error: ${e.reason?.message ?? e.reason}`, 'error');
});

// --------------------------------------------------------------- start ---

async function start() {
  stopTimer();
  ui.login.hidden = true;
  ui.loginError.hidden = true;
  ui.app.hidden = false;
  ui.refreshToggle.hidden = false;
  ui.app.replaceChildren(h('p', { class: 'loading', text: 'Loading…' }));
  try {
    if (!(await loadAccess())) return;
  } catch (e) {
    ui.app.replaceChildren(h('p', { class: 'empty', text: `Could not reach the API: ${e.message}. Trying again…` }));
    state.timer = setTimeout(start, REFRESH_MS);
    return;
  }
  onRoute();
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && state.auto && ui.login.hidden && !state.loading) refresh();
});

start();
