// meshguard dashboard. Telemetry (workload names, paths, user agents,
// evidence) is attacker-controlled: it only ever reaches the page through
// textContent and setAttribute on elements built here, never innerHTML.
'use strict';

(function () {
  const TOKEN_KEY = 'meshguard.token';
  const REFRESH_MS = 5000;
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  let operator = false;
  let selected = '';      // detection id whose evidence is shown
  let detections = [];
  let timer = 0;

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  function status(msg, isError) {
    const s = $('status');
    s.textContent = msg;
    s.className = isError ? 'error' : '';
  }

  class HTTPError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  // api calls the JSON API with the bearer token; state-changing calls
  // carry the CSRF header the server requires.
  async function api(path, method) {
    const headers = { 'Accept': 'application/json' };
    const t = token();
    if (t) headers['Authorization'] = 'Bearer ' + t;
    if (method && method !== 'GET') headers['X-Meshguard-CSRF'] = '1';
    const resp = await fetch(path, { method: method || 'GET', headers, credentials: 'omit', cache: 'no-store' });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      throw new HTTPError(resp.status, (body && body.error) || resp.statusText);
    }
    return body;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function time(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d) ? String(s) : d.toLocaleTimeString();
  }

  function party(p) {
    if (!p) return '';
    if (p.workload) return (p.namespace ? p.namespace + '/' : '') + p.workload;
    if (p.service) return p.service;
    if (p.principal) return p.principal;
    return p.ip || 'unknown';
  }

  function nodeOf(p) {
    let ns = p.namespace || '';
    if (!p.workload && !ns && p.principal) {
      const m = /\/ns\/([^/]+)\//.exec(p.principal);
      if (m) ns = m[1];
    }
    return { id: party(p), ns: ns || (p.ip ? '(outside)' : '(unknown)'), label: p.workload || p.service || p.principal || p.ip || 'unknown' };
  }

  // ---- graph: one column per namespace, nodes stacked in each ----
  function renderGraph(edges) {
    const g = $('edges'), ng = $('nodes'), root = $('graph');
    clear(g); clear(ng);
    for (const old of root.querySelectorAll('.ns-label')) old.remove();
    const nodes = new Map();
    const bad = new Set();
    for (const e of edges) {
      const s = nodeOf(e.source), d = nodeOf(e.destination);
      if (!nodes.has(s.id)) nodes.set(s.id, s);
      if (!nodes.has(d.id)) nodes.set(d.id, d);
      if (e.anomalous) { bad.add(s.id); bad.add(d.id); }
    }
    const byNS = new Map();
    for (const n of nodes.values()) {
      if (!byNS.has(n.ns)) byNS.set(n.ns, []);
      byNS.get(n.ns).push(n);
    }
    const namespaces = [...byNS.keys()].sort();
    const colW = 240, rowH = 34, top = 40;
    let rows = 0;
    namespaces.forEach((ns, c) => {
      const list = byNS.get(ns).sort((a, b) => a.label.localeCompare(b.label));
      rows = Math.max(rows, list.length);
      const label = svg('text', { x: c * colW + 20, y: 20, class: 'ns-label' });
      label.textContent = ns;
      root.appendChild(label);
      list.forEach((n, r) => { n.x = c * colW + 30; n.y = top + r * rowH; });
    });
    root.setAttribute('viewBox', '0 0 ' + Math.max(namespaces.length * colW, 400) + ' ' + Math.max(top + rows * rowH, 120));
    root.setAttribute('height', String(Math.max(top + rows * rowH, 120)));
    // Quiet edges first, so that the anomalous ones are drawn on top.
    const ordered = edges.slice().sort((a, b) => (a.anomalous ? 1 : 0) - (b.anomalous ? 1 : 0));
    for (const e of ordered) {
      const s = nodes.get(nodeOf(e.source).id), d = nodes.get(nodeOf(e.destination).id);
      const line = svg('path', {
        d: 'M ' + s.x + ' ' + s.y + ' Q ' + ((s.x + d.x) / 2 + (s.y === d.y ? 0 : 30)) + ' ' + ((s.y + d.y) / 2 - (s.x === d.x ? 30 : 0)) + ' ' + d.x + ' ' + d.y,
        class: e.anomalous ? 'edge anomalous' : 'edge',
        'marker-end': e.anomalous ? 'url(#arrow-bad)' : 'url(#arrow)',
      });
      line.dataset.source = s.id;
      line.dataset.destination = d.id;
      const title = svg('title', {});
      title.textContent = s.id + ' → ' + d.id + ': ' + e.requests + ' requests, ' + e.responses_4xx + ' 4xx, ' + e.responses_5xx + ' 5xx' +
        (e.anomalous ? ' — detections: ' + (e.detections || []).join(', ') : '');
      line.appendChild(title);
      if (e.anomalous && e.detections && e.detections.length) {
        line.addEventListener('click', () => showEvidence(e.detections[0]));
      }
      g.appendChild(line);
    }
    for (const n of nodes.values()) {
      const node = svg('g', { class: bad.has(n.id) ? 'node anomalous' : 'node', transform: 'translate(' + n.x + ',' + n.y + ')' });
      node.dataset.id = n.id;
      node.appendChild(svg('circle', { r: 6 }));
      const t = svg('text', { x: 10, y: 4 });
      t.textContent = n.label.length > 32 ? n.label.slice(0, 31) + '…' : n.label;
      const title = svg('title', {});
      title.textContent = n.id;
      node.appendChild(t);
      node.appendChild(title);
      ng.appendChild(node);
    }
    $('graph-note').textContent = nodes.size + ' services, ' + edges.length + ' edges, ' + edges.filter((e) => e.anomalous).length + ' anomalous';
  }

  // ---- detections and evidence ----
  function renderDetections(list) {
    detections = list;
    const body = $('detections').tBodies[0];
    clear(body);
    for (const d of list) {
      const tr = el('tr', undefined, 'sev-' + d.severity);
      tr.dataset.id = d.detection_id;
      if (d.detection_id === selected) tr.classList.add('selected');
      for (const v of [time(d.detected_at), d.kind, d.severity, Number(d.score).toFixed(1), party(d.source), party(d.destination),
        (d.evidence && d.evidence.summary) || '']) {
        tr.appendChild(el('td', v));
      }
      tr.addEventListener('click', () => showEvidence(d.detection_id));
      body.appendChild(tr);
    }
    if (selected) showEvidence(selected);
  }

  function showEvidence(id) {
    selected = id;
    const d = detections.find((x) => x.detection_id === id);
    $('evidence-id').textContent = id;
    for (const tr of $('detections').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.id === id);
    $('evidence').textContent = d ? JSON.stringify(d.evidence, null, 2) : 'detection ' + id + ' is no longer among the recent ones';
  }

  // ---- actions ----
  function renderActions(list) {
    const body = $('actions').tBodies[0];
    clear(body);
    for (const a of list) {
      const tr = el('tr');
      for (const v of [time(a.at), a.action_id, a.kind, a.mode, a.state, a.actor, a.target, a.reason]) tr.appendChild(el('td', v));
      body.appendChild(tr);
    }
  }

  function renderCurrent(list) {
    const body = $('current').tBodies[0];
    clear(body);
    for (const a of list) {
      const tr = el('tr');
      tr.dataset.id = a.action_id;
      for (const v of [a.action_id, a.kind, a.mode, a.target, time(a.expires_at), a.detection_id]) tr.appendChild(el('td', v));
      const ops = el('td');
      if (operator) {
        if (a.mode === 'dry-run') ops.appendChild(opButton('approve', a.action_id));
        ops.appendChild(opButton('revoke', a.action_id));
        ops.appendChild(opButton('extend', a.action_id));
      }
      tr.appendChild(ops);
      body.appendChild(tr);
    }
    $('current-note').textContent = list.length ? '' : 'No action in force.';
  }

  function opButton(verb, id) {
    const b = el('button', verb === 'extend' ? 'extend 1h' : verb, 'op op-' + verb);
    b.type = 'button';
    b.addEventListener('click', async () => {
      if (verb === 'revoke' && !window.confirm('Revoke ' + id + '?')) return;
      b.disabled = true;
      try {
        const q = verb === 'extend' ? '?by=1h' : '';
        const res = await api('/api/v1/actions/' + encodeURIComponent(id) + '/' + verb + q, 'POST');
        status(verb + ' ' + id + ': ' + res.state + (res.mode ? ' (' + res.mode + ')' : ''));
      } catch (e) {
        status(verb + ' ' + id + ' failed: ' + e.message, true);
      }
      b.disabled = false;
      refresh();
    });
    return b;
  }

  // ---- loop ----
  async function refresh() {
    clearTimeout(timer);
    try {
      const [edges, dets, acts] = await Promise.all([
        api('/api/v1/edges'), api('/api/v1/detections?limit=100'), api('/api/v1/actions?limit=100'),
      ]);
      renderGraph(edges.edges || []);
      renderDetections(dets.detections || []);
      renderActions(acts.actions || []);
      try {
        renderCurrent((await api('/api/v1/actions/current')).actions || []);
      } catch (e) {
        renderCurrent([]);
        $('current-note').textContent = e.message;
      }
      status('updated ' + new Date().toLocaleTimeString());
    } catch (e) {
      if (e.status === 401) { signedOut('Sign in: ' + e.message); return; }
      status(e.message, true);
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  function signedOut(msg) {
    clearTimeout(timer);
    sessionStorage.removeItem(TOKEN_KEY);
    $('login').hidden = false;
    $('logout').hidden = true;
    $('who').textContent = '';
    status(msg, true);
  }

  async function start() {
    try {
      const me = await api('/api/v1/whoami');
      operator = !!me.operator;
      $('who').textContent = me.name + (operator ? ' (operator)' : ' (viewer)');
      $('login').hidden = true;
      $('logout').hidden = !token();
      refresh();
    } catch (e) {
      if (e.status === 401) { signedOut(token() ? 'Token refused: ' + e.message : 'Sign in with your bearer token'); return; }
      status(e.message, true);
      timer = setTimeout(start, REFRESH_MS);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      $('token').value = '';
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      start();
    });
    $('logout').addEventListener('click', () => signedOut('Signed out'));
    start();
  });
})();
