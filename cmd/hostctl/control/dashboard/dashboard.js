// hostctl dashboard: the program table, start/stop/restart, a live log
// view and the proxy status, over the admin API of the same origin.
'use strict';

const TOKEN_KEY = 'hostctl-token';
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let refreshTimer = null;
let logAbort = null;
let logProgram = '';
const busy = new Set();

const $ = (sel) => document.querySelector(sel);

class Unauthorized extends Error {}

// infoText is the program's reason column: why it is in its state (with
// the last line it wrote to stderr, and failed health checks), else its
// description.
function infoText(p) {
  const parts = [p.spawn_error || p.info];
  if (p.health && p.health.failures) {
    parts.push((p.health.healthy ? 'healthy' : 'unhealthy') + ' (' + p.health.failures + ' failed: ' + p.health.last_error + ')');
  }
  if (p.last_stderr) parts.push('stderr: ' + p.last_stderr);
  return parts.filter(Boolean).join('; ') || p.description || '';
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

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function render(programs) {
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
    cell(tr, fmtBytes(p.rss_bytes), 'num');
    cell(tr, p.pid ? p.cpu_seconds.toFixed(1) + 's' : '', 'num');
    cell(tr, infoText(p), 'info');
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
  $('#summary').textContent = Object.entries(counts).map(([s, n]) => n + ' ' + s.toLowerCase()).join(', ');
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
    parts.push('upstreams: ' + ups.map((u) => u.address + (u.healthy ? ' healthy' : ' DOWN') + ' (' + u.requests + ' in flight)').join(', '));
  }
  for (const c of st.certificates || []) {
    parts.push('certificate ' + c.names.join(' ') + ' by ' + c.issuer + ' until ' + c.not_after);
  }
  box.textContent = parts.join('; ');
}

async function refresh() {
  clearTimeout(refreshTimer);
  try {
    const [programs, proxy] = await Promise.all([api('GET', '/v1/programs'), api('GET', '/v1/proxy')]);
    showMain();
    render(programs);
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
  $('#log-stream').addEventListener('change', () => { if (logProgram) followLog(logProgram); });
  refresh();
});
