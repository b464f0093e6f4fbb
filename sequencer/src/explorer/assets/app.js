// The rollup node's block explorer: vanilla JavaScript, no framework, no build step.
//
// Hash routes: #/ (overview), #/blocks, #/batches, #/block/N, #/batch/N, #/tx/0x.., #/account/N.
// Data comes from this node only (the Content-Security-Policy allows nothing else). Memory stays
// bounded while the page is open: lists are replaced, not appended to, and the live bridge feed
// keeps its last MAX_EVENTS events.
'use strict';

const MAX_EVENTS = 50; // bridge events kept (and shown)
const HOME_ROWS = 20; // blocks on the overview
const POLL_MS = 1000; // overview refresh
const DETAIL_POLL_MS = 2000; // refresh of a page whose finality can still move

const view = document.getElementById('view');
const conn = document.getElementById('conn');

// ---------------------------------------------------------------------------------------------
// DOM helpers (text only: nothing from the network is ever parsed as HTML)

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const link = (href, text, attrs) => el('a', Object.assign({ href }, attrs || {}), text);
const short = (h) => (typeof h === 'string' && h.length > 20 ? h.slice(0, 10) + '…' + h.slice(-6) : String(h));
const num = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n ?? '–'));
const badge = (status, attrs) => el('span', Object.assign({ class: 'badge st-' + status, text: status }, attrs || {}));

function ago(unixSecs) {
  if (unixSecs == null) return '–';
  const d = Math.max(0, Math.round(Date.now() / 1000 - unixSecs));
  if (d < 60) return d + ' s ago';
  if (d < 3600) return Math.floor(d / 60) + ' min ago';
  return new Date(unixSecs * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

const utc = (unixSecs) => new Date(unixSecs * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

function table(headers, rows) {
  return el('table', {},
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { text: h })))),
    el('tbody', {}, rows));
}

function kv(pairs) {
  const dl = el('dl', { class: 'kv' });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    dl.append(el('dt', { text: k }), el('dd', {}, v === null ? el('span', { class: 'muted', text: '–' }) : v));
  }
  return dl;
}

// ---------------------------------------------------------------------------------------------
// Fetching: one view at a time; leaving a view aborts its requests and timers.

let viewGen = 0; // bumped on every route change
let viewAbort = new AbortController();
let viewTimer = null;
let l1TxUrl = null; // from the summary: an L1 block explorer's URL template with {tx}, or null

class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || 'HTTP ' + status);
    this.status = status;
    this.body = body;
  }
}

async function api(path) {
  const r = await fetch(path, { signal: viewAbort.signal, headers: { accept: 'application/json' } });
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new Problem(r.status, body);
  setConn(true);
  return body;
}

function setConn(ok, why) {
  conn.classList.toggle('down', !ok);
  if (!ok) conn.textContent = 'node unreachable: ' + (why || '') + ' (retrying)';
  else if (conn.classList.contains('down') || conn.textContent.startsWith('node unreachable')) conn.textContent = '';
}

/// Runs `fn` now and again `ms` after each run completes (until it returns false), while the
/// view is the current one. An answer of the node (a problem body) ends the polling with its
/// page; an unreachable node is retried.
function poll(gen, ms, fn, what) {
  const tick = async () => {
    if (gen !== viewGen) return;
    let again = true;
    if (!document.hidden) {
      try { again = (await fn()) !== false; } catch (e) {
        if (e.name === 'AbortError' || gen !== viewGen) return;
        if (e instanceof Problem && e.status < 500) { problemPage(e, what); return; }
        setConn(false, e.message);
      }
    }
    if (again && gen === viewGen) viewTimer = setTimeout(tick, ms);
  };
  return tick();
}

function show(...nodes) {
  view.replaceChildren(...nodes);
}

function problemPage(e, what) {
  if (e instanceof Problem && (e.status === 404 || e.status === 400)) {
    const title = e.status === 404 ? what + ' not found' : 'Bad request';
    show(el('div', { class: 'notfound', 'data-problem': (e.body && e.body.title) || String(e.status) },
      el('h1', { text: title }),
      el('p', {}, el('code', { text: (e.body && e.body.title) || String(e.status) }), ' ', (e.body && e.body.detail) || ''),
      el('p', {}, link('#/', '← back to the overview'))));
    return;
  }
  if (e.name === 'AbortError') return;
  show(el('div', { class: 'notfound' }, el('h1', { text: 'Could not load ' + what }), el('p', { text: e.message })));
}

// ---------------------------------------------------------------------------------------------
// Pieces

function l1Link(hash, block) {
  if (!hash) return null;
  const label = short(hash) + (block != null ? ' (L1 block ' + block + ')' : '');
  if (l1TxUrl) {
    return el('a', { href: l1TxUrl.replace('{tx}', hash), target: '_blank', rel: 'noopener noreferrer', title: hash, class: 'mono' }, label);
  }
  return el('span', { class: 'mono', title: hash }, label);
}

function txSummary(t) {
  const b = t.tx || {};
  const acct = (i) => (i == null ? '–' : link('#/account/' + i, '#' + i));
  switch (b.kind) {
    case 'transfer': return [acct(b.from), ' → ', acct(b.to), ' ', num(b.amount), b.fee ? ' (fee ' + num(b.fee) + ')' : ''];
    case 'deposit': return ['L1 → ', acct(b.to), ' ', num(b.amount)];
    case 'withdraw':
    case 'forced_withdraw': return [acct(b.from), ' → L1 ', short(b.to_l1), ' ', num(b.amount)];
    case 'register': return ['registers ', acct(t.account_index)];
    default: return ['?'];
  }
}

function txRows(txs) {
  return txs.map((t) => el('tr', { 'data-tx-id': t.tx_id },
    el('td', {}, link('#/tx/' + t.tx_id, short(t.tx_id), { class: 'mono', title: t.tx_id })),
    el('td', { text: (t.tx && t.tx.kind) || '?' }),
    el('td', {}, txSummary(t)),
    el('td', {}, link('#/block/' + t.block_number, num(t.block_number))),
    el('td', {}, badge(t.finality))));
}

const TX_HEAD = ['tx id', 'kind', 'what', 'block', 'finality'];

function blockRows(blocks) {
  return blocks.map((b) => el('tr', { 'data-block': b.number },
    el('td', {}, link('#/block/' + b.number, num(b.number))),
    el('td', { text: ago(b.block_time) }),
    el('td', { text: num(b.tx_count) }),
    el('td', { class: 'mono', text: short(b.state_root), title: b.state_root })));
}

const BLOCK_HEAD = ['block', 'time', 'txs', 'state root'];

function batchRows(batches) {
  return batches.map((b) => el('tr', { 'data-batch': b.number, 'data-status': b.status },
    el('td', {}, link('#/batch/' + b.number, num(b.number))),
    el('td', {}, badge(b.status, { 'data-batch-status': b.number })),
    el('td', {}, link('#/block/' + b.first_block, num(b.first_block)), '–', link('#/block/' + b.last_block, num(b.last_block))),
    el('td', { text: num(b.tx_count) }),
    el('td', {}, l1Link(b.commit_tx, null) || el('span', { class: 'muted', text: '–' })),
    el('td', {}, l1Link(b.finalize_tx, null) || el('span', { class: 'muted', text: '–' }))));
}

const BATCH_HEAD = ['batch', 'status', 'blocks', 'txs', 'L1 commit', 'L1 finalize'];

// ---------------------------------------------------------------------------------------------
// The live bridge feed (SSE), opened once and kept for the page's life: the overview shows it.

const events = []; // newest first, at most MAX_EVENTS
let eventsList = null; // the <ul> of the overview, when it is shown
let feed = null;

function eventItem(ev, fresh) {
  const p = ev.payload || {};
  const bits = [];
  if (p.batch != null) bits.push(link('#/batch/' + p.batch, 'batch ' + p.batch));
  if (p.account != null) bits.push(link('#/account/' + p.account, 'account ' + p.account));
  if (p.to != null && typeof p.to === 'number') bits.push(link('#/account/' + p.to, 'account ' + p.to));
  if (p.amount != null) bits.push('amount ' + num(p.amount));
  if (p.l2_tx_id) bits.push(link('#/tx/' + p.l2_tx_id, 'tx ' + short(p.l2_tx_id)));
  if (p.outcome) bits.push(String(p.outcome));
  return el('li', { class: fresh ? 'new' : '', 'data-event': ev.id, 'data-kind': ev.kind },
    el('span', { class: 'muted', text: '#' + ev.id }),
    el('span', { class: 'kind', text: ev.kind }),
    badge(ev.finality || 'accepted'),
    bits.flatMap((b, i) => (i ? [' · ', b] : [b])),
    ev.l1_tx_hash ? l1Link(ev.l1_tx_hash, ev.l1_block) : null,
    el('span', { class: 'muted', text: ago(Math.floor(ev.created_at_ms / 1000)) }));
}

function onEvent(ev) {
  if (events.length && ev.id <= events[0].id) return; // a reconnect replays from Last-Event-ID
  events.unshift(ev);
  if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
  if (eventsList && eventsList.isConnected) {
    eventsList.prepend(eventItem(ev, true));
    while (eventsList.childElementCount > MAX_EVENTS) eventsList.lastElementChild.remove();
    const empty = eventsList.querySelector('.empty');
    if (empty) empty.remove();
  }
  // Batch finality moved: refresh the overview now rather than at the next tick.
  if (ev.kind.startsWith('batch_') && refreshHome) refreshHome();
}

function openFeed(summary) {
  if (feed) return;
  const from = Math.max(0, (summary.last_event_id || 0) - MAX_EVENTS);
  feed = new EventSource('/v1/bridge/events?cursor=' + from);
  const handler = (m) => { try { onEvent(JSON.parse(m.data)); } catch (_) { /* keep-alive or bad line */ } };
  for (const k of summary.event_kinds || []) feed.addEventListener(k, handler);
  feed.onerror = () => setConn(feed.readyState !== EventSource.CLOSED, 'event stream');
}

// ---------------------------------------------------------------------------------------------
// Views

let refreshHome = null;
let firstRenderMs = null;

function card(label, id) {
  return el('div', { class: 'card' }, el('div', { class: 'label', text: label }), el('div', { class: 'value', id, text: '…' }));
}

async function homeView(gen) {
  const cards = el('div', { class: 'cards' },
    card('head block', 'head-block'), card('throughput (tx/s, last minute)', 'tps'),
    card('accepted transactions', 'accepted'), card('accounts', 'accounts'),
    card('batches sealed', 'b-sealed'), card('proven', 'b-proven'),
    card('committed on L1', 'b-committed'), card('finalized on L1', 'b-finalized'));
  const blocksBody = el('tbody', { id: 'home-blocks' });
  const batchesBody = el('tbody', { id: 'home-batches' });
  eventsList = el('ul', { class: 'events', id: 'events' });
  if (events.length) for (const ev of events) eventsList.append(eventItem(ev, false));
  else eventsList.append(el('li', { class: 'empty muted', text: 'waiting for bridge events…' }));
  show(
    el('h1', { text: 'Overview' }), cards,
    el('div', { class: 'grid2' },
      el('div', { class: 'panel' }, el('h2', {}, 'Latest blocks ', link('#/blocks', 'all')),
        el('table', {}, el('thead', {}, el('tr', {}, BLOCK_HEAD.map((h) => el('th', { text: h })))), blocksBody)),
      el('div', {},
        el('div', { class: 'panel' }, el('h2', {}, 'Latest batches ', link('#/batches', 'all')),
          el('table', {}, el('thead', {}, el('tr', {}, BATCH_HEAD.map((h) => el('th', { text: h })))), batchesBody)),
        el('div', { class: 'panel' }, el('h2', { text: 'Bridge events (live)' }), eventsList))));
  const set = (id, v) => { const e = document.getElementById(id); if (e) e.textContent = v; };
  const load = async () => {
    const s = await api('/v1/explorer/summary?limit=' + HOME_ROWS);
    if (gen !== viewGen) return false;
    l1TxUrl = s.l1_tx_url || null;
    set('head-block', num(s.head_block));
    set('tps', s.tps.toFixed(2));
    set('accepted', num(s.accepted_txs));
    set('accounts', num(s.num_accounts));
    const p = s.batches_progress || {};
    set('b-sealed', num(p.sealed)); set('b-proven', num(p.proven));
    set('b-committed', num(p.committed)); set('b-finalized', num(p.finalized));
    blocksBody.replaceChildren(...blockRows(s.blocks));
    batchesBody.replaceChildren(...batchRows(s.batches.slice(0, 10)));
    openFeed(s);
    if (firstRenderMs === null) {
      firstRenderMs = performance.now();
      document.body.dataset.firstRenderMs = String(Math.round(firstRenderMs));
    }
    document.body.dataset.ready = '1';
    return true;
  };
  let pending = false;
  refreshHome = () => {
    if (pending || gen !== viewGen) return;
    pending = true;
    load().catch(() => {}).finally(() => { pending = false; });
  };
  await poll(gen, POLL_MS, load, 'Overview');
}

async function listView(gen, kind, before) {
  const isBlocks = kind === 'blocks';
  const q = '?limit=50' + (before != null ? '&before=' + encodeURIComponent(before) : '');
  const body = await api('/v1/explorer/' + kind + q);
  if (gen !== viewGen) return;
  const rows = isBlocks ? blockRows(body.blocks) : batchRows(body.batches);
  const pager = el('div', { class: 'pager' },
    before != null ? link('#/' + kind, 'newest') : null,
    body.next_before != null ? link('#/' + kind + '/before/' + body.next_before, 'older →') : null);
  show(el('h1', { text: isBlocks ? 'Blocks' : 'Batches' }),
    el('div', { class: 'panel' }, table(isBlocks ? BLOCK_HEAD : BATCH_HEAD, rows), pager));
}

async function blockView(gen, n, offset) {
  const b = await api('/v1/explorer/blocks/' + encodeURIComponent(n) + '?limit=100&offset=' + (offset || 0));
  if (gen !== viewGen) return;
  show(el('h1', { text: 'Block ' + num(b.number) }),
    el('div', { class: 'panel' }, kv([
      ['time', ago(b.block_time) + ' (' + b.block_time + ')'],
      ['transactions', num(b.tx_count)],
      ['first seq', num(b.first_seq)],
      ['state root', el('span', { class: 'mono', text: b.state_root })],
      ['batch', b.batch != null ? link('#/batch/' + b.batch, 'batch ' + b.batch) : 'not in a batch yet'],
      ['navigate', el('span', {}, b.number > 1 ? link('#/block/' + (b.number - 1), '← ' + (b.number - 1)) : '', ' ', link('#/block/' + (b.number + 1), (b.number + 1) + ' →'))],
    ])),
    el('div', { class: 'panel' }, el('h2', { text: 'Transactions' }),
      b.txs.length ? table(TX_HEAD, txRows(b.txs)) : el('p', { class: 'muted', text: 'no transactions' }),
      el('div', { class: 'pager' },
        b.offset > 0 ? link('#/block/' + b.number + '/' + Math.max(0, b.offset - 100), '← previous') : null,
        b.next_offset != null ? link('#/block/' + b.number + '/' + b.next_offset, 'next →') : null)));
}

const STEPS = ['sealed', 'proving', 'proven', 'committed', 'finalized'];

async function batchView(gen, n) {
  await poll(gen, DETAIL_POLL_MS, async () => {
    const b = await api('/v1/explorer/batches/' + encodeURIComponent(n));
    if (gen !== viewGen) return false;
    show(el('h1', {}, 'Batch ' + num(b.number) + ' ', badge(b.status, { id: 'batch-status', 'data-batch-status': b.number })),
      el('div', { class: 'panel' }, kv([
        ['status', el('span', { class: 'steps' }, STEPS.flatMap((st, i) => [i ? ' → ' : '',
          el('span', { class: st === b.status ? 'current' : 'muted', text: st })]),
          b.status === 'rejected' ? el('span', { class: 'st-rejected', text: ' rejected by the prover' }) : null)],
        ['blocks', el('span', {}, link('#/block/' + b.first_block, num(b.first_block)), ' – ', link('#/block/' + b.last_block, num(b.last_block)))],
        ['transactions', num(b.tx_count) + (b.tx_count ? ' (seq ' + b.first_seq + ' – ' + b.last_seq + ')' : '')],
        ['sealed', utc(b.sealed_at_ms / 1000)],
        ['new state root', el('span', { class: 'mono', text: b.new_root })],
        ['L1 commit', l1Link(b.commit_tx, b.commit_block)],
        ['L1 finalize', l1Link(b.finalize_tx, b.finalize_block)],
      ])));
    return b.status !== 'finalized';
  }, 'Batch');
}

async function txView(gen, id) {
  await poll(gen, DETAIL_POLL_MS, async () => {
    const t = await api('/v1/explorer/txs/' + encodeURIComponent(id));
    if (gen !== viewGen) return false;
    const body = t.tx || {};
    const fields = Object.entries(body).filter(([k]) => k !== 'kind').map(([k, v]) => {
      if ((k === 'from' || k === 'to') && typeof v === 'number') return [k, link('#/account/' + v, 'account ' + v)];
      if ((k === 'valid_until' || k === 'requested_at') && typeof v === 'number') return [k, utc(v) + ' (' + v + ')'];
      return [k, el('span', { class: typeof v === 'string' ? 'mono' : '', text: typeof v === 'number' ? num(v) : String(v) })];
    });
    const b = t.batch;
    show(el('h1', {}, 'Transaction ', el('span', { class: 'mono', text: short(t.tx_id) })),
      el('div', { class: 'panel', id: 'tx', 'data-tx-id': t.tx_id }, kv([
        ['id', el('span', { class: 'mono', text: t.tx_id })],
        ['kind', body.kind || '?'],
        ['finality', badge(t.finality, { id: 'tx-finality' })],
        ...fields,
        ['registered account', t.account_index != null ? link('#/account/' + t.account_index, 'account ' + t.account_index) : undefined],
        ['block', el('span', {}, link('#/block/' + t.block_number, num(t.block_number)), ' position ' + t.position + ', seq ' + t.seq)],
        ['time', ago(t.block_time)],
        ['batch', b ? el('span', {}, link('#/batch/' + b.number, 'batch ' + b.number), ' ', badge(b.status)) : 'not in a batch yet'],
        ['L1 commit', b ? l1Link(b.commit_tx, b.commit_block) : null],
        ['L1 finalize', b ? l1Link(b.finalize_tx, b.finalize_block) : null],
        ['raw', el('span', { class: 'mono', text: t.raw })],
      ])));
    return t.finality !== 'finalized';
  }, 'Transaction');
}

async function accountView(gen, n, before) {
  const first = before == null;
  await poll(gen, DETAIL_POLL_MS, async () => {
    const a = first
      ? await api('/v1/explorer/accounts/' + encodeURIComponent(n) + '?limit=50')
      : Object.assign(await api('/v1/explorer/accounts/' + encodeURIComponent(n)),
        await api('/v1/explorer/accounts/' + encodeURIComponent(n) + '/txs?limit=50&before=' + encodeURIComponent(before)));
    if (gen !== viewGen) return false;
    show(el('h1', { text: 'Account ' + a.index }),
      el('div', { class: 'panel', id: 'account', 'data-account': a.index }, kv([
        ['balance', el('span', { id: 'balance', text: num(a.balance) })],
        ['next nonce', num(a.nonce)],
        ['public key', el('span', { class: 'mono', text: a.public_key })],
      ])),
      el('div', { class: 'panel' }, el('h2', { text: 'History (newest first)' }),
        a.txs.length ? table(TX_HEAD, txRows(a.txs)) : el('p', { class: 'muted', text: 'no transactions' }),
        el('div', { class: 'pager' },
          first ? null : link('#/account/' + a.index, 'newest'),
          a.next_before != null ? link('#/account/' + a.index + '/before/' + a.next_before, 'older →') : null)));
    return first; // older pages do not change
  }, 'Account');
}

function notFoundView(hash) {
  problemPage(new Problem(404, { title: 'UNKNOWN_PAGE', detail: 'no page at ' + hash }), 'Page');
}

// ---------------------------------------------------------------------------------------------
// Router

const ROUTES = [
  [/^#?\/?$/, (g) => homeView(g), 'Overview'],
  [/^#\/blocks$/, (g) => listView(g, 'blocks', null), 'Blocks'],
  [/^#\/blocks\/before\/([^/]+)$/, (g, m) => listView(g, 'blocks', m[1]), 'Blocks'],
  [/^#\/batches$/, (g) => listView(g, 'batches', null), 'Batches'],
  [/^#\/batches\/before\/([^/]+)$/, (g, m) => listView(g, 'batches', m[1]), 'Batches'],
  [/^#\/block\/([^/]+)(?:\/(\d+))?$/, (g, m) => blockView(g, m[1], m[2]), 'Block'],
  [/^#\/batch\/([^/]+)$/, (g, m) => batchView(g, m[1]), 'Batch'],
  [/^#\/tx\/([^/]+)$/, (g, m) => txView(g, m[1]), 'Transaction'],
  [/^#\/account\/([^/]+)$/, (g, m) => accountView(g, m[1], null), 'Account'],
  [/^#\/account\/([^/]+)\/before\/([^/]+)$/, (g, m) => accountView(g, m[1], m[2]), 'Account'],
];

async function route() {
  viewGen += 1;
  const gen = viewGen;
  viewAbort.abort();
  viewAbort = new AbortController();
  clearTimeout(viewTimer);
  refreshHome = null;
  eventsList = null;
  const hash = decodeURIComponent(location.hash || '#/');
  for (const [re, fn, what] of ROUTES) {
    const m = hash.match(re);
    if (!m) continue;
    document.title = what + ' · agent-rollup explorer';
    try { await fn(gen, m); } catch (e) { if (gen === viewGen) problemPage(e, what); }
    return;
  }
  notFoundView(hash);
}

document.getElementById('search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = document.getElementById('search-input');
  const q = input.value.trim().toLowerCase();
  let m;
  if (/^(0x)?[0-9a-f]{64}$/.test(q)) location.hash = '#/tx/' + (q.startsWith('0x') ? q : '0x' + q);
  else if ((m = q.match(/^(?:account|acct|a)\s*#?\s*(\d+)$/))) location.hash = '#/account/' + m[1];
  else if ((m = q.match(/^batch\s*#?\s*(\d+)$/))) location.hash = '#/batch/' + m[1];
  else if ((m = q.match(/^(?:block\s*)?#?\s*(\d+)$/))) location.hash = '#/block/' + m[1];
  else if (q) location.hash = '#/tx/' + q; // the node answers a clear 400 for a malformed id
  input.value = '';
});

window.addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => { if (!document.hidden && refreshHome) refreshHome(); });
route();
