// hostctl dashboard: the active alerts, the program table (health, memory
// against its limit, why a program is down, an hour of memory and
// restarts), start/stop/restart, a live log view, the checks of services
// hostctl does not run and the proxy status, over the admin API of the
// same origin.
'use strict';

const TOKEN_KEY = 'hostctl-token';
let token = sessionStorage.getItem(TOKEN_KEY) || '';

// A link that carries the token in its fragment, as `make run` prints it
// (http://127.0.0.1:9001/#token=...; Jupyter's way), signs in: a browser
// never sends the fragment, so the token reaches no server or proxy log.
// It is kept like a typed one (this tab's sessionStorage) and dropped from
// the address bar and the history at once.
(function tokenFromFragment() {
  const t = new URLSearchParams(location.hash.slice(1)).get('token');
  if (t === null) return;
  token = t.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  window.history.replaceState(null, '', location.pathname + location.search); // window's: this file has a history of its own
})();
let refreshTimer = null;
let logAbort = null;
let logProgram = '';
const busy = new Set();

const $ = (sel) => document.querySelector(sel);

class Unauthorized extends Error {}

// healthText is the Health column, as `hostctl status` says it: "healthy",
// "healthy (1 failed check: ...)" below the threshold, "unhealthy (3
// failures: ...)" at it; "" without a health check.
function healthText(h) {
  if (!h) return '';
  if (!h.failures) return 'healthy';
  if (h.healthy) return 'healthy (' + h.failures + ' failed check' + (h.failures === 1 ? '' : 's') + ': ' + h.last_error + ')';
  return 'unhealthy (' + h.failures + ' failure' + (h.failures === 1 ? '' : 's') + ': ' + h.last_error + ')';
}

// untilText is the time left until an RFC 3339 time: "4m12s", "now".
function untilText(t) {
  const s = Math.floor((Date.parse(t) - Date.now()) / 1000);
  if (!(s > 0)) return 'now';
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
  return (h ? h + 'h' : '') + (h || m ? m + 'm' : '') + (h ? '' : sec + 's');
}

// agoText is how long ago an RFC 3339 time was: "40s ago", "12m ago",
// "3h05m ago", "2d4h ago".
function agoText(t) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(t)) / 1000));
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm ago';
  return Math.floor(s / 86400) + 'd' + Math.floor(s % 86400 / 3600) + 'h ago';
}

// addNotes adds the program's notes (advice for the person on call) under
// the Info cell's text.
function addNotes(td, p) {
  if (!p.notes) return;
  const n = document.createElement('div');
  n.className = 'notes';
  n.textContent = p.notes;
  td.append(n);
}

// fillInfo fills the Info cell: for a program that is down or about to
// retry, why (with the last line it wrote to stderr) and when it is tried
// again; else its reason or description.
function fillInfo(td, p) {
  const down = p.state === 'FATAL' || p.state === 'BACKOFF';
  const why = p.spawn_error || p.info;
  if (!down) { td.textContent = why || p.description || ''; addNotes(td, p); return; }
  if (why) td.append(why);
  if (p.last_stderr) {
    const c = document.createElement('code');
    c.className = 'stderr';
    c.textContent = p.last_stderr;
    td.append(td.childNodes.length ? '; stderr: ' : 'stderr: ', c);
  }
  if (p.next_start) {
    const n = document.createElement('span');
    n.className = 'next';
    n.textContent = 'next try in ' + untilText(p.next_start);
    td.append(td.childNodes.length ? '; ' : '', n);
  }
  addNotes(td, p);
}

async function api(method, path, body) {
  const headers = {};
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const init = { method, headers, credentials: 'omit', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 401) throw new Unauthorized();
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

function showLogin() {
  clearTimeout(refreshTimer);
  $('#main').hidden = true;
  $('#logout').hidden = true;
  $('#login').hidden = false;
  $('#token').focus();
}

function showMain() {
  $('#login').hidden = true;
  $('#main').hidden = false;
  $('#logout').hidden = !token;
}

function setError(msg) { $('#error').textContent = msg || ''; }

function fmtDuration(s) {
  if (!s) return '';
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
  const hms = [h, m, sec].map((v) => String(v).padStart(2, '0')).join(':');
  return d ? d + 'd ' + hms : hms;
}

function fmtBytes(n) {
  if (!n) return '';
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + units[i];
}

// fmtDecimal is n bytes in decimal units, the ones memory_limit is
// written in ("512MB" is 512,000,000 bytes): "410M", "1.5G".
function fmtDecimal(n) {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? String(+n.toFixed(1)) : String(n)) + units[i];
}

// fillMemory fills the Memory cell: the RSS, and against memory_limit
// when there is one ("410M/512M" over a bar).
function fillMemory(td, p) {
  if (!(p.memory_limit > 0)) { td.textContent = fmtBytes(p.rss_bytes); return; }
  const used = p.pid ? p.rss_bytes : 0;
  const text = document.createElement('span');
  text.className = 'mem-text';
  text.textContent = (p.pid ? fmtDecimal(used) : '-') + '/' + fmtDecimal(p.memory_limit);
  const bar = document.createElement('meter');
  bar.min = 0;
  bar.max = p.memory_limit;
  bar.low = p.memory_limit * 0.75;
  bar.high = p.memory_limit * 0.9;
  bar.optimum = 0;
  bar.value = Math.min(used, p.memory_limit);
  bar.title = Math.round(100 * used / p.memory_limit) + '% of memory_limit';
  td.append(text, bar);
}

const SVG = 'http://www.w3.org/2000/svg';
const SPARK_W = 120, SPARK_H = 24;

// sparkline draws a program's memory over the last hour, newest at the
// right edge (one step per sample, so that an hour fills the width),
// scaled to its peak or memory_limit, with a red mark where it restarted
// and a dashed line at the limit.
function sparkline(points, p, hist) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', SPARK_W);
  svg.setAttribute('height', SPARK_H);
  svg.setAttribute('viewBox', '0 0 ' + SPARK_W + ' ' + SPARK_H);
  points = points || [];
  svg.dataset.points = points.length;
  if (!points.length) return svg;
  const slots = Math.max(2, Math.min(720, Math.floor(3600 / hist.interval_seconds)));
  const step = SPARK_W / (slots - 1);
  const limit = p.memory_limit > 0 ? p.memory_limit : 0;
  const top = Math.max(limit, ...points.map((q) => q.rss_bytes), 1);
  const x = (i) => SPARK_W - (points.length - 1 - i) * step;
  const y = (v) => SPARK_H - 1 - (SPARK_H - 2) * v / top;
  if (limit) {
    const l = document.createElementNS(SVG, 'line');
    l.setAttribute('class', 'limit');
    l.setAttribute('x1', 0); l.setAttribute('x2', SPARK_W);
    l.setAttribute('y1', y(limit)); l.setAttribute('y2', y(limit));
    svg.appendChild(l);
  }
  let restarts = 0;
  points.forEach((q, i) => {
    if (i && q.restarts > points[i - 1].restarts) {
      restarts += q.restarts - points[i - 1].restarts;
      const m = document.createElementNS(SVG, 'line');
      m.setAttribute('class', 'restart');
      m.setAttribute('x1', x(i)); m.setAttribute('x2', x(i));
      m.setAttribute('y1', 0); m.setAttribute('y2', SPARK_H);
      svg.appendChild(m);
    }
  });
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', points.map((q, i) => x(i).toFixed(1) + ',' + y(q.rss_bytes).toFixed(1)).join(' '));
  svg.appendChild(line);
  const peak = Math.max(...points.map((q) => q.rss_bytes));
  const title = document.createElementNS(SVG, 'title');
  const mins = Math.round(points.length * hist.interval_seconds / 60);
  title.textContent = 'memory over the last ' + (mins < 60 ? mins + ' min' : 'hour') + ': peak ' + (fmtBytes(peak) || '0') +
    (limit ? ' of ' + fmtDecimal(limit) : '') + '; ' + restarts + ' restart' + (restarts === 1 ? '' : 's');
  svg.appendChild(title);
  return svg;
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function render(programs, hist) {
  const tbody = $('#programs tbody');
  const rows = [];
  const counts = {};
  for (const p of programs) {
    counts[p.state] = (counts[p.state] || 0) + 1;
    const tr = document.createElement('tr');
    tr.dataset.name = p.name;
    tr.dataset.state = p.state;
    tr.dataset.pid = p.pid || 0;
    cell(tr, p.name);
    cell(tr, p.state, 'state ' + p.state);
    cell(tr, p.pid ? String(p.pid) : '', 'num pid');
    cell(tr, fmtDuration(p.uptime_seconds), 'num');
    cell(tr, String(p.restarts), 'num');
    fillMemory(cell(tr, '', 'num mem'), p);
    cell(tr, '', 'hist').appendChild(sparkline(hist.programs[p.name], p, hist));
    cell(tr, p.pid ? p.cpu_seconds.toFixed(1) + 's' : '', 'num');
    const h = cell(tr, healthText(p.health), 'health');
    if (p.health) h.dataset.healthy = p.health.healthy;
    fillInfo(cell(tr, '', 'info'), p);
    const td = cell(tr, '');
    for (const action of ['start', 'stop', 'restart']) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = action;
      b.dataset.action = action;
      b.disabled = busy.has(p.name);
      b.addEventListener('click', () => act(action, p.name));
      td.appendChild(b);
    }
    const lb = document.createElement('button');
    lb.type = 'button';
    lb.textContent = 'log';
    lb.dataset.action = 'log';
    lb.addEventListener('click', () => followLog(p.name));
    td.appendChild(lb);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
  const parts = Object.entries(counts).map(([s, n]) => n + ' ' + s.toLowerCase());
  if (alertCount) parts.push(alertCount + ' alert' + (alertCount === 1 ? '' : 's'));
  $('#summary').textContent = parts.join(', ');
}

// renderAlerts shows the active alerts above everything, most severe
// first (the API's order), and the sinks that have trouble.
function renderAlerts(a) {
  const items = a.alerts.map((al) => {
    const li = document.createElement('li');
    li.className = 'alert sev-' + al.severity;
    li.dataset.key = al.key;
    const sev = document.createElement('span');
    sev.className = 'sev';
    sev.textContent = al.severity;
    const sum = document.createElement('span');
    sum.className = 'summary';
    sum.textContent = al.summary;
    const since = document.createElement('span');
    since.className = 'since';
    since.textContent = 'since ' + agoText(al.since);
    li.append(sev, sum, since);
    if (al.command) {
      const c = document.createElement('code');
      c.className = 'command';
      c.textContent = al.command;
      li.append(c);
    }
    return li;
  });
  $('#alert-list').replaceChildren(...items);
  const troubled = a.sinks.filter((s) => s.last_error || s.failed || s.queued);
  $('#sinks').textContent = troubled.map((s) => 'sink ' + s.name + ' (' + s.type + '): ' + s.sent + ' sent, ' + s.failed + ' failed, ' +
    s.queued + ' queued' + (s.last_error ? ', last error: ' + s.last_error : '')).join('; ');
  $('#alerts').hidden = !items.length && !troubled.length;
  alertCount = items.length;
}

// renderChecks shows the [check.NAME]s (services hostctl does not run),
// as hostctl status does, each with its notes; hidden without any.
function renderChecks(c) {
  const rows = c.checks.map((ck) => {
    const tr = document.createElement('tr');
    tr.dataset.check = ck.name;
    tr.dataset.state = ck.state;
    cell(tr, ck.name);
    cell(tr, ck.state, 'state check-' + ck.state);
    cell(tr, ck.since ? agoText(ck.since) : '');
    cell(tr, ck.last_check ? (ck.last_duration_seconds * 1000).toFixed(0) + ' ms' : '', 'num');
    cell(tr, ck.target);
    let err = '';
    if (ck.last_error) {
      err = ck.failing ? ck.last_error + ' (' + ck.failing + ' of ' + ck.failures + ' failed in a row)' : agoText(ck.last_error_at) + ': ' + ck.last_error;
    }
    addNotes(cell(tr, err, 'info'), ck);
    return tr;
  });
  $('#check-table tbody').replaceChildren(...rows);
  $('#checks').hidden = !rows.length;
}

// renderDeploys shows the live release of [deploy] and the last
// deploys (result, when, how long, and why a failed one failed), as
// hostctl releases does; hidden without [deploy].
function renderDeploys(r) {
  $('#deploys').hidden = !r.configured;
  if (!r.configured) return;
  const live = r.live;
  const head = $('#live-release');
  head.dataset.release = live ? live.id : '';
  head.textContent = live
    ? live.id + (live.sha ? ' (' + live.sha.slice(0, 12) + (live.slot ? ', slot ' + live.slot : '') + ')' : live.slot ? ' (slot ' + live.slot + ')' : '') +
      ' live since ' + agoText(live.live_since)
    : 'none live yet';
  const rows = r.deploys.map((d) => {
    const tr = document.createElement('tr');
    tr.dataset.release = d.release || '';
    tr.dataset.result = d.result;
    cell(tr, agoText(d.started), 'since').title = d.started;
    cell(tr, d.release || '-');
    cell(tr, d.result, 'state result-' + d.result);
    cell(tr, fmtDuration(d.seconds), 'num took');
    cell(tr, d.step || '');
    const td = cell(tr, d.reason || '', 'info reason');
    if (d.last_lines && d.last_lines.length) td.title = d.last_lines.join('\n');
    return tr;
  });
  $('#deploy-table tbody').replaceChildren(...rows);
}

function renderProxy(p) {
  const box = $('#proxy-body');
  if (!p.configured) { box.textContent = 'not configured'; return; }
  const st = p.status || {};
  const parts = [];
  parts.push(st.running ? 'running' : 'not running');
  if (st.listen && st.listen.length) parts.push('listening on ' + st.listen.join(' '));
  const ups = st.upstreams || [];
  if (ups.length) {
    parts.push('upstreams: ' + ups.map((u) => u.address + (!u.healthy ? ' DOWN' : u.draining ? ' draining' : ' healthy') + ' (' + u.requests + ' in flight)').join(', '));
  }
  for (const c of st.certificates || []) {
    parts.push('certificate ' + c.names.join(' ') + ' by ' + c.issuer + ' until ' + c.not_after);
  }
  box.textContent = parts.join('; ');
  renderDrain(st.drain);
}

// renderDrain shows the drain state and its button (with health_path only).
function renderDrain(d) {
  $('#drain').hidden = !d;
  if (!d) return;
  $('#drain-state').textContent = d.draining
    ? 'DRAINING since ' + agoText(d.since) + ': ' + d.health_path + ' answers 503; ' + d.in_flight + ' in flight'
    : 'in rotation: ' + d.health_path + ' answers as the programs are';
  const b = $('#drain-button');
  b.textContent = d.draining ? 'Undrain' : 'Drain';
  b.dataset.action = d.draining ? 'undrain' : 'drain';
  if (!busy.has('drain')) b.disabled = false;
}

async function toggleDrain() {
  const b = $('#drain-button');
  const action = b.dataset.action;
  busy.add('drain');
  b.disabled = true;
  setError(action + '…');
  try {
    await api('POST', '/v1/' + action, {});
    setError('');
  } catch (e) {
    if (e instanceof Unauthorized) { showLogin(); return; }
    setError(action + ' failed: ' + e.message);
  } finally {
    busy.delete('drain');
  }
  refresh();
}

// alertCount is the number of active alerts, for the header.
let alertCount = 0;

// history is the last GET /v1/history, fetched again once a new sample
// is due.
let history = { interval_seconds: 30, programs: {} };
let historyAt = 0;

async function refresh() {
  clearTimeout(refreshTimer);
  try {
    const histDue = Date.now() - historyAt >= history.interval_seconds * 1000;
    const [programs, proxy, alerts, checks, releases, hist] = await Promise.all([api('GET', '/v1/programs'), api('GET', '/v1/proxy'),
      api('GET', '/v1/alerts'), api('GET', '/v1/checks'), api('GET', '/v1/releases'), histDue ? api('GET', '/v1/history') : null]);
    if (hist) { history = hist; historyAt = Date.now(); }
    showMain();
    renderAlerts(alerts);
    render(programs, history);
    renderChecks(checks);
    renderDeploys(releases);
    renderProxy(proxy);
    if (!busy.size) setError('');
  } catch (e) {
    if (e instanceof Unauthorized) { showLogin(); return; }
    setError('cannot reach hostctl: ' + e.message);
  }
  refreshTimer = setTimeout(refresh, 2000);
}

async function act(action, name) {
  busy.add(name);
  setError(action + ' ' + name + '…');
  document.querySelectorAll('tr[data-name="' + CSS.escape(name) + '"] button[data-action]').forEach((b) => {
    if (b.dataset.action !== 'log') b.disabled = true;
  });
  try {
    const r = await api('POST', '/v1/' + action, { names: [name], wait_seconds: 60 });
    const bad = r.results.filter((x) => !x.ok);
    setError(bad.map((x) => x.name + ': ' + x.error).join('; '));
  } catch (e) {
    if (e instanceof Unauthorized) { showLogin(); return; }
    setError(action + ' ' + name + ' failed: ' + e.message);
  } finally {
    busy.delete(name);
  }
  refresh();
}

async function followLog(name) {
  if (logAbort) logAbort.abort();
  logProgram = name;
  const stream = $('#log-stream').value;
  const ctl = new AbortController();
  logAbort = ctl;
  const pre = $('#log-lines');
  pre.textContent = '';
  $('#log-title').textContent = name + ' (' + stream + ')';
  $('#log-stop').disabled = false;
  const headers = token ? { Authorization: 'Bearer ' + token } : {};
  try {
    const r = await fetch('/v1/programs/' + encodeURIComponent(name) + '/log?follow=true&lines=200&stream=' + stream,
      { headers, credentials: 'omit', cache: 'no-store', signal: ctl.signal });
    if (r.status === 401) { showLogin(); return; }
    if (!r.ok) { pre.textContent = (await r.json()).error; return; }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, i)).line;
        buf = buf.slice(i + 1);
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(line + '\n');
        if (pre.childNodes.length > 5000) pre.removeChild(pre.firstChild);
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') pre.append('[' + e.message + ']\n');
  } finally {
    if (logAbort === ctl) { $('#log-stop').disabled = true; logAbort = null; }
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('#token').value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $('#token').value = '';
    refresh();
  });
  $('#logout').addEventListener('click', () => {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    if (logAbort) logAbort.abort();
    showLogin();
  });
  $('#log-stop').addEventListener('click', () => { if (logAbort) logAbort.abort(); });
  $('#drain-button').addEventListener('click', toggleDrain);
  $('#log-stream').addEventListener('change', () => { if (logProgram) followLog(logProgram); });
  refresh();
});
