// meshguard dashboard. Telemetry (workload names, paths, user agents,
// evidence) is attacker-controlled: it only ever reaches the page through
// textContent and setAttribute on elements built here, never innerHTML,
// and through Cytoscape's canvas labels (drawn as text).
'use strict';

(function () {
  const TOKEN_KEY = 'meshguard.token';
  const REFRESH_MS = 5000;
  const GRAPH_EVERY = 3; // graph refreshes every third round
  const TIMELINE_HOURS = 6;
  const MAX_LANES = 8;
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  let operator = false;
  let timer = 0;
  let round = 0;
  let selected = '';        // incident id shown expanded
  let incidents = [];
  let current = new Map();  // action id -> action in force
  let latest = new Map();   // action id -> newest audit group
  let cy = null;
  let graphShape = '';      // node and edge ids of the graph laid out
  let renders = 0;          // graphs rendered, in #graph's data-rendered
  let sideEdge = null;      // [source, destination] of the edge in the side panel
  let signedIn = false;

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  function status(msg, isError) {
    const s = $('status');
    s.textContent = msg;
    s.className = isError ? 'error' : '';
  }

  // What an operator's approve, extend or revoke answered stays on the
  // status line for a while: the refresh that follows it would otherwise
  // replace it with "updated ..." within milliseconds.
  const OP_STATUS_MS = 10e3;
  let opStatusUntil = 0;
  function opStatus(msg, isError) {
    status(msg, isError);
    opStatusUntil = Date.now() + OP_STATUS_MS;
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
    return isNaN(d) ? String(s) : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function ago(s) {
    const ms = Date.now() - new Date(s).getTime();
    if (isNaN(ms)) return '';
    if (ms < 90e3) return Math.max(0, Math.round(ms / 1e3)) + ' s ago';
    if (ms < 90 * 60e3) return Math.round(ms / 60e3) + ' min ago';
    return (ms / 3600e3).toFixed(1) + ' h ago';
  }

  function span(a, b) {
    const m = Math.round((new Date(b) - new Date(a)) / 60e3);
    return m < 60 ? m + ' min' : (m / 60).toFixed(1) + ' h';
  }

  function pct(x) { return (100 * x).toFixed(x > 0 && x < 0.01 ? 2 : 1) + '%'; }
  function rate(x) { return x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2); }

  function party(p) {
    if (!p) return '';
    if (p.workload) return (p.namespace ? p.namespace + '/' : '') + p.workload;
    if (p.service) return p.service;
    if (p.principal) return p.principal;
    return p.ip || '';
  }

  function evidenceOf(d) { return (d && d.evidence && typeof d.evidence === 'object') ? d.evidence : {}; }

  // ---- incidents ----
  function actionsOf(inc) {
    const ids = new Set(inc.detections.map((d) => d.detection_id));
    const out = new Map();
    for (const g of latest.values()) if (ids.has(g.detection_id)) out.set(g.action_id, g);
    for (const a of current.values()) if (ids.has(a.detection_id) && !out.has(a.action_id)) out.set(a.action_id, a);
    return [...out.values()];
  }

  function renderIncidents(list) {
    incidents = list;
    const ol = $('incidents');
    clear(ol);
    for (const inc of list) ol.appendChild(incidentItem(inc));
    const open = list.filter((i) => Date.now() - new Date(i.last_seen) < 15 * 60e3).length;
    $('incidents-note').textContent = list.length + ' in the recent detections, ' + open + ' active in the last 15 min';
    if (!list.length) ol.appendChild(el('li', 'No incident: nothing detected recently.', 'empty'));
    renderTimeline(list);
  }

  function incidentItem(inc) {
    const h = inc.head;
    const ev = evidenceOf(h);
    const li = el('li', undefined, 'incident sev-' + inc.severity + (inc.incident_id === selected ? ' selected' : ''));
    li.dataset.id = inc.incident_id;
    const top = el('div', undefined, 'inc-top');
    top.appendChild(el('span', inc.severity, 'sev sev-' + inc.severity));
    top.appendChild(el('strong', h.kind, 'inc-kind'));
    const who = el('span', undefined, 'inc-who');
    who.appendChild(el('span', party(h.source) || 'unknown source', 'src'));
    who.appendChild(el('span', ' → '));
    who.appendChild(el('span', party(h.destination) || (ev.destinations ? ev.destinations.length + ' destinations' : 'many'), 'dst'));
    top.appendChild(who);
    top.appendChild(el('span', time(inc.first_seen) + ', ' + span(inc.first_seen, inc.last_seen) + ' · last ' + ago(inc.last_seen), 'inc-when'));
    li.appendChild(top);
    li.appendChild(el('div', ev.summary || '', 'inc-summary'));
    const parts = el('div', undefined, 'inc-parts');
    parts.appendChild(el('span', 'parts: '));
    for (const k of Object.keys(inc.kinds).sort()) parts.appendChild(el('span', k + (inc.kinds[k] > 1 ? ' ×' + inc.kinds[k] : ''), 'part'));
    li.appendChild(parts);
    const acts = actionsOf(inc);
    const box = el('div', undefined, 'inc-actions');
    if (!acts.length) box.appendChild(el('span', 'no action taken', 'muted'));
    for (const a of acts) box.appendChild(actionLine(a));
    li.appendChild(box);
    if (inc.incident_id === selected) li.appendChild(incidentDetails(inc));
    li.addEventListener('click', (ev) => {
      if (ev.target.closest('button')) return;
      selected = selected === inc.incident_id ? '' : inc.incident_id;
      renderIncidents(incidents);
      highlightIncident();
    });
    return li;
  }

  function actionLine(a) {
    const live = current.get(a.action_id);
    const row = el('div', undefined, 'action-line');
    row.dataset.id = a.action_id;
    row.appendChild(el('span', a.kind, 'a-kind'));
    const mode = (live ? live.mode : a.mode) || '';
    if (mode && mode !== a.kind) row.appendChild(el('span', mode, 'a-mode mode-' + mode));
    row.appendChild(el('span', a.state, 'a-state state-' + a.state));
    row.appendChild(el('span', a.target || '', 'a-target'));
    const exp = (live && live.expires_at) || a.expires_at;
    if (exp && !String(exp).startsWith('0001')) row.appendChild(el('span', 'expires ' + time(exp), 'muted'));
    if (operator && live) {
      if (live.mode === 'dry-run') row.appendChild(opButton('approve', a.action_id));
      row.appendChild(opButton('revoke', a.action_id));
      row.appendChild(opButton('extend', a.action_id));
    }
    return row;
  }

  function incidentDetails(inc) {
    const box = el('div', undefined, 'inc-details');
    for (const d of inc.detections) {
      const ev = evidenceOf(d);
      const sec = el('div', undefined, 'det');
      sec.dataset.id = d.detection_id;
      sec.appendChild(el('div', d.kind + ' · ' + d.severity + ' · score ' + Number(d.score).toFixed(1) + ' · ' +
        party(d.source) + ' → ' + (party(d.destination) || '*') + ' · ' + time(d.window_start) + '–' + time(d.window_end), 'det-head'));
      if (ev.features && ev.features.length) {
        const t = el('table', undefined, 'features');
        const hr = el('tr');
        for (const c of ['feature', 'expected', 'observed', 'score']) hr.appendChild(el('th', c));
        t.appendChild(hr);
        for (const f of ev.features) {
          const tr = el('tr');
          for (const v of [f.feature, Number(f.expected).toFixed(2), Number(f.observed).toFixed(2), Number(f.score).toFixed(1)]) tr.appendChild(el('td', v));
          t.appendChild(tr);
        }
        sec.appendChild(t);
      }
      const lists = [['paths', ev.top_paths], ['codes', ev.top_codes]];
      for (const [name, xs] of lists) {
        if (xs && xs.length) sec.appendChild(el('div', name + ': ' + xs.slice(0, 6).map((x) => x.value + ' ×' + x.count).join(', '), 'evidence-text'));
      }
      if (ev.destinations && ev.destinations.length) sec.appendChild(el('div', 'destinations: ' + ev.destinations.slice(0, 12).join(', '), 'evidence-text'));
      if (ev.parts && ev.parts.length) sec.appendChild(el('div', 'parts: ' + ev.parts.map((p) => p.kind + (p.destination ? ' → ' + p.destination : '')).join(', '), 'evidence-text'));
      box.appendChild(sec);
    }
    return box;
  }

  // ---- timeline: each incident a bar over the last hours ----
  function renderTimeline(list) {
    const root = $('timeline');
    clear(root);
    const W = Math.max(root.clientWidth || 560, 300), top = 16, lane = 9;
    // The last hours, from the oldest incident within TIMELINE_HOURS (at
    // least one hour), so that a recent attack is not a sliver.
    const end = Date.now();
    const oldest = Math.min(...list.map((i) => new Date(i.first_seen).getTime()).filter((t) => t > end - TIMELINE_HOURS * 3600e3), end - 3600e3);
    const hours = Math.min(Math.ceil((end - oldest) / 3600e3), TIMELINE_HOURS);
    const start = end - hours * 3600e3;
    const x = (t) => (Math.min(Math.max(t, start), end) - start) / (end - start) * (W - 2) + 1;
    const lanes = [];
    const bars = [];
    for (const inc of list.slice().reverse()) {
      const a = new Date(inc.first_seen).getTime(), b = Math.max(new Date(inc.last_seen).getTime(), a + 60e3);
      if (b < start) continue;
      let l = lanes.findIndex((until) => until < x(a) - 2);
      if (l < 0 && lanes.length < MAX_LANES) { l = lanes.length; lanes.push(0); }
      if (l < 0) l = bars.length % MAX_LANES; // crowded: bars share lanes
      lanes[l] = x(b);
      bars.push({ inc, l, a, b });
    }
    const H = top + Math.max(lanes.length, 1) * lane + 4;
    root.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    root.setAttribute('height', String(H));
    const step = hours <= 1 ? 10 * 60e3 : hours <= 3 ? 30 * 60e3 : 3600e3;
    for (let t = end; t >= start - 1; t -= step) {
      root.appendChild(svg('line', { x1: x(t), x2: x(t), y1: 12, y2: H, class: 'tick' }));
      const label = svg('text', { x: Math.max(Math.min(x(t) - 14, W - 30), 0), y: 10, class: 'tick-label' });
      label.textContent = t === end ? 'now' : '−' + Math.round((end - t) / 60e3) + ' min';
      root.appendChild(label);
    }
    for (const { inc, l, a, b } of bars) {
      const r = svg('rect', { x: x(a), y: top + l * lane, width: Math.max(x(b) - x(a), 3), height: lane - 2,
        class: 'bar sev-' + inc.severity + (inc.incident_id === selected ? ' selected' : '') });
      r.dataset.id = inc.incident_id;
      const title = svg('title', {});
      title.textContent = inc.head.kind + ' ' + party(inc.head.source) + ' ' + time(inc.first_seen) + '–' + time(inc.last_seen);
      r.appendChild(title);
      r.addEventListener('click', () => { selected = inc.incident_id; renderIncidents(incidents); highlightIncident(); });
      root.appendChild(r);
    }
  }

  // ---- actions ----
  function renderCurrent(list) {
    current = new Map(list.map((a) => [a.action_id, a]));
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
        opStatus(verb + ' ' + id + ': ' + res.state + (res.mode ? ' (' + res.mode + ')' : ''));
      } catch (e) {
        opStatus(verb + ' ' + id + ' failed: ' + e.message, true);
      }
      b.disabled = false;
      refresh();
    });
    return b;
  }

  // ---- audit log ----
  function auditQuery() {
    const q = new URLSearchParams({ limit: '500' });
    const actor = $('a-actor').value.trim(), action = $('a-action').value.trim();
    if (actor) q.set('actor', actor);
    if (action) q.set('action', action);
    return '/api/v1/audit?' + q;
  }

  function renderAudit(groups) {
    const body = $('audit').tBodies[0];
    clear(body);
    for (const g of groups) {
      const tr = el('tr', undefined, g.count > 1 ? 'repeated' : '');
      tr.dataset.id = g.action_id;
      for (const v of [time(g.last), g.count > 1 ? time(g.first) : '', g.count, g.action_id, g.kind, g.mode, g.state, g.actor, g.target, g.reason]) {
        tr.appendChild(el('td', v));
      }
      body.appendChild(tr);
    }
  }

  function learnStates(groups) {
    latest = new Map();
    for (const g of groups) if (!latest.has(g.action_id)) latest.set(g.action_id, g); // newest first
  }

  // ---- ingest lag ----
  function renderIngest(s) {
    const box = $('ingest');
    clear(box);
    if (!s.running) { box.textContent = 'ingest: not on this replica'; box.className = 'muted'; return; }
    box.className = s.stalled ? 'error' : s.lag_total > 10000 ? 'warn' : '';
    box.textContent = 'ingest lag ' + s.lag_total.toLocaleString() + ' msgs · ' + s.assigned_partitions + ' partitions' +
      (s.last_fetch ? ' · fetched ' + ago(s.last_fetch) : ' · nothing fetched yet') +
      (s.batches ? ' · batch p99 ≤ ' + s.batch_latency_p99_seconds + ' s' : '') + (s.stalled ? ' · STALLED' : '');
    box.title = s.partitions.map((p) => p.topic + '/' + p.partition + ': ' + p.lag).join('\n') || 'no partition assigned';
  }

  // ---- graph ----
  const graphStyle = [
    { selector: 'node', style: {
      'label': 'data(label)', 'font-size': 13, 'text-valign': 'bottom', 'text-margin-y': 3, 'width': 16, 'height': 16,
      'background-color': '#0969da', 'color': '#1b1f24', 'text-wrap': 'ellipsis', 'text-max-width': 130, 'min-zoomed-font-size': 5,
      'text-background-color': '#ffffff', 'text-background-opacity': 0.7, 'text-background-padding': 1 } },
    { selector: 'node.service', style: { 'shape': 'round-rectangle', 'background-color': '#8250df' } },
    { selector: 'node.principal, node.ip, node.unknown', style: { 'shape': 'diamond', 'background-color': '#6e7781' } },
    { selector: 'node.anomalous', style: { 'background-color': '#cf222e', 'border-width': 3, 'border-color': '#ffb3b3' } },
    { selector: 'node.ns', style: {
      'label': 'data(label)', 'text-valign': 'top', 'text-halign': 'center', 'font-size': 15, 'font-weight': 'bold', 'color': '#57606a',
      'background-color': '#f6f8fa', 'background-opacity': 0.6, 'border-width': 1, 'border-color': '#afb8c1', 'shape': 'round-rectangle',
      'padding': 10, 'text-margin-y': -2 } },
    { selector: 'node.ns.anomalous', style: { 'border-color': '#cf222e', 'border-width': 2, 'background-color': '#fff5f5' } },
    { selector: 'edge', style: {
      'width': 'mapData(weight, 0, 4, 1, 5)', 'line-color': '#8c959f', 'target-arrow-color': '#8c959f', 'target-arrow-shape': 'triangle',
      'arrow-scale': 0.8, 'curve-style': 'bezier', 'opacity': 0.75, 'label': 'data(label)', 'font-size': 10, 'color': '#57606a',
      'text-rotation': 'autorotate', 'min-zoomed-font-size': 8, 'text-background-color': '#fff', 'text-background-opacity': 0.8 } },
    { selector: 'edge.mtls', style: { 'line-color': '#2da44e', 'target-arrow-color': '#2da44e' } },
    { selector: 'edge.plaintext', style: { 'line-color': '#d4a72c', 'target-arrow-color': '#d4a72c', 'line-style': 'dashed' } },
    { selector: 'edge.anomalous', style: { 'line-color': '#cf222e', 'target-arrow-color': '#cf222e', 'opacity': 1, 'z-index': 10, 'color': '#cf222e' } },
    { selector: 'edge.fanout', style: { 'width': 1, 'line-style': 'dotted', 'opacity': 0.6, 'label': '' } },
    { selector: '.faded', style: { 'opacity': 0.12 } },
    { selector: ':selected', style: { 'overlay-color': '#0969da', 'overlay-opacity': 0.2, 'overlay-padding': 4 } },
  ];

  function graphQuery() {
    const q = new URLSearchParams({ since: $('f-since').value });
    if ($('f-namespace').value) q.set('namespace', $('f-namespace').value);
    if ($('f-kind').value) q.set('kind', $('f-kind').value);
    return '/api/v1/graph?' + q;
  }

  function fillSelect(sel, values) {
    const keep = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    for (const v of values) {
      const o = el('option', v || '(outside the mesh)');
      o.value = v;
      sel.appendChild(o);
    }
    if (keep && values.includes(keep)) sel.value = keep;
  }

  const OUTSIDE = '(outside the mesh)';

  function elementsOf(g) {
    const els = [];
    const nsBad = new Set(g.nodes.filter((n) => n.anomalous).map((n) => n.namespace));
    for (const ns of new Set(g.nodes.map((n) => n.namespace))) {
      els.push({ group: 'nodes', data: { id: 'ns:' + ns, label: ns || OUTSIDE }, classes: 'ns' + (nsBad.has(ns) ? ' anomalous' : '') });
    }
    for (const n of g.nodes) {
      els.push({ group: 'nodes', data: { id: n.id, label: n.label, parent: 'ns:' + n.namespace, node: n },
        classes: n.kind + (n.anomalous ? ' anomalous' : '') });
    }
    for (const e of g.edges) {
      els.push({ group: 'edges', data: {
        id: e.id, source: e.source, target: e.destination, edge: e,
        weight: Math.log10(1 + e.rps * 10),
        label: rate(e.rps) + '/s' + (e.error_rate >= 0.005 ? ' · ' + pct(e.error_rate) + ' err' : ''),
      }, classes: e.tls + (e.anomalous ? ' anomalous' : '') + (e.fanout ? ' fanout' : '') });
    }
    return els;
  }

  function renderGraph(g) {
    fillSelect($('f-namespace'), g.namespaces);
    fillSelect($('f-kind'), g.kinds);
    const els = elementsOf(g);
    const shape = els.map((e) => e.data.id).sort().join('\n');
    const bad = g.edges.filter((e) => e.anomalous).length;
    $('graph-note').textContent = g.nodes.length + ' workloads and callers, ' + g.edges.length + ' edges, ' + bad + ' anomalous · ' +
      time(g.data_from || g.from) + '–' + time(g.to) + (g.data_from && new Date(g.data_from) - new Date(g.from) > 60e3 ? ' (no older flows stored)' : '');
    if (typeof cytoscape !== 'function') { status('graph library failed to load', true); return; }
    if (!cy) {
      cy = cytoscape({ container: $('graph'), style: graphStyle, wheelSensitivity: 0.3, minZoom: 0.1, maxZoom: 4 });
      $('graph').cy = cy; // for the UI test
      cy.on('tap', 'node', (ev) => { if (!ev.target.hasClass('ns')) showNode(ev.target.data('node')); });
      cy.on('tap', 'edge', (ev) => showEdge(ev.target.data('edge')));
      cy.on('tap', (ev) => { if (ev.target === cy) hideSide(); });
    }
    renders++;
    if (shape === graphShape) {
      // Same nodes and edges: new numbers and classes, no new layout.
      cy.batch(() => {
        for (const e of els) {
          const c = cy.getElementById(e.data.id);
          c.data(e.data);
          c.classes(e.classes);
        }
      });
      $('graph').dataset.rendered = String(renders);
      highlightIncident();
      return;
    }
    graphShape = shape;
    cy.elements().remove();
    cy.add(els);
    const began = performance.now();
    layoutGraph();
    $('graph').dataset.layoutMs = String(Math.round(performance.now() - began));
    $('graph').dataset.rendered = String(renders);
    highlightIncident();
  }

  // layoutGraph lays out each namespace's nodes by fcose (force-directed,
  // labels counted in the nodes' size), then packs the namespace boxes in
  // rows filling the panel's shape, so that boxes never overlap however
  // many edges cross between them.
  function layoutGraph() {
    const PAD = 14, TITLE = 18, GAP = 28;
    const boxes = [];
    cy.nodes('.ns').forEach((ns) => {
      const kids = ns.children();
      if (kids.length > 1) {
        kids.union(kids.edgesWith(kids)).layout({
          name: typeof cytoscapeFcose === 'function' ? 'fcose' : 'cose', quality: 'proof', randomize: true, animate: false, fit: false,
          nodeDimensionsIncludeLabels: true, packComponents: true, nodeRepulsion: () => 6000, idealEdgeLength: () => 60,
          edgeElasticity: () => 0.4, gravity: 0.8, numIter: 2500, tile: true, padding: 0,
        }).run();
      } else {
        kids.position({ x: 0, y: 0 });
      }
      const bb = kids.boundingBox({ includeLabels: true, includeEdges: false });
      boxes.push({ kids, bb, w: bb.w + 2 * PAD, h: bb.h + 2 * PAD + TITLE, bad: ns.hasClass('anomalous') });
    });
    // Boxes with anomalies first, then the tallest: a shelf packing.
    boxes.sort((a, b) => (b.bad - a.bad) || (b.h - a.h));
    const aspect = Math.max($('graph').clientWidth, 1) / Math.max($('graph').clientHeight, 1);
    const area = boxes.reduce((s, b) => s + (b.w + GAP) * (b.h + GAP), 0);
    const rowW = Math.max(Math.sqrt(area * aspect), ...boxes.map((b) => b.w));
    let x = 0, y = 0, rowH = 0;
    cy.batch(() => {
      for (const b of boxes) {
        if (x > 0 && x + b.w > rowW) { x = 0; y += rowH + GAP; rowH = 0; }
        const dx = x + PAD - b.bb.x1, dy = y + PAD + TITLE - b.bb.y1;
        b.kids.positions((n) => ({ x: n.position('x') + dx, y: n.position('y') + dy }));
        x += b.w + GAP;
        rowH = Math.max(rowH, b.h);
      }
    });
    cy.fit(undefined, 16);
  }

  function highlightIncident() {
    if (!cy) return;
    cy.elements().removeClass('faded');
    if (!selected) return;
    const ids = new Set();
    cy.edges().forEach((e) => { if ((e.data('edge').incidents || []).includes(selected)) { ids.add(e.id()); ids.add(e.source().id()); ids.add(e.target().id()); } });
    cy.nodes().forEach((n) => { const d = n.data('node'); if (d && (d.incidents || []).includes(selected)) ids.add(n.id()); });
    if (!ids.size) return;
    cy.elements().forEach((x) => { if (!x.hasClass('ns') && !ids.has(x.id())) x.addClass('faded'); });
  }

  // ---- side panel: the selected node or edge ----
  function hideSide() { $('side').hidden = true; sideEdge = null; }

  function showNode(n) {
    sideEdge = null;
    $('side').hidden = false;
    $('side-title').textContent = n.label;
    const body = $('side-body');
    clear(body);
    const dl = el('dl');
    const add = (k, v) => { if (v === undefined || v === '') return; dl.appendChild(el('dt', k)); dl.appendChild(el('dd', v)); };
    add('namespace', n.namespace || OUTSIDE);
    add('kind', n.kind);
    add('id', n.id);
    if (n.services && n.services.length) add('services', n.services.join(', '));
    if (n.incidents && n.incidents.length) add('incidents', n.incidents.join(', '));
    body.appendChild(dl);
    const node = cy.getElementById(n.id);
    for (const [title, edges, end] of [['calls', node.outgoers('edge'), 'target'], ['called by', node.incomers('edge'), 'source']]) {
      if (!edges.length) continue;
      body.appendChild(el('h4', title + ' (' + edges.length + ')'));
      const t = el('table', undefined, 'side-edges');
      edges.sort((a, b) => b.data('edge').rps - a.data('edge').rps).slice(0, 12).forEach((e) => {
        const d = e.data('edge');
        const tr = el('tr', undefined, d.anomalous ? 'bad' : '');
        for (const v of [e[end]().data('label'), rate(d.rps) + '/s', pct(d.error_rate), d.tls]) tr.appendChild(el('td', v));
        tr.addEventListener('click', () => showEdge(d));
        t.appendChild(tr);
      });
      body.appendChild(t);
    }
  }

  async function showEdge(e) {
    sideEdge = [e.source, e.destination];
    $('side').hidden = false;
    $('side-title').textContent = labelOf(e.source) + ' → ' + labelOf(e.destination);
    const body = $('side-body');
    clear(body);
    body.appendChild(el('p', 'loading…', 'muted'));
    let v;
    try {
      const q = new URLSearchParams({ source: e.source, destination: e.destination, since: $('f-since').value });
      v = await api('/api/v1/graph/edge?' + q);
    } catch (err) {
      clear(body);
      body.appendChild(el('p', err.message, 'error'));
      return;
    }
    if (!sideEdge || sideEdge[0] !== e.source || sideEdge[1] !== e.destination) return;
    clear(body);
    const t = el('table', undefined, 'compare');
    const head = el('tr');
    for (const c of ['', 'now', 'baseline']) head.appendChild(el('th', c));
    t.appendChild(head);
    const now = v.edge, base = v.baseline;
    const share = (x) => x && (x.mtls_requests + x.plaintext_requests) ? pct(x.mtls_requests / (x.mtls_requests + x.plaintext_requests)) : 'unknown';
    const rows = [
      ['requests/s', (x) => rate(x.rps)],
      ['5xx rate', (x) => pct(x.error_rate)],
      ['4xx rate', (x) => pct(x.requests ? x.errors_4xx / x.requests : 0)],
      ['requests', (x) => x.requests.toLocaleString()],
      ['TLS', (x) => x.tls],
      ['mTLS share', share],
      ['seen by', (x) => x.reporter],
      ['last seen', (x) => time(x.last_seen)],
    ];
    for (const [name, f] of rows) {
      const tr = el('tr');
      tr.appendChild(el('th', name));
      tr.appendChild(el('td', now ? f(now) : 'no traffic'));
      tr.appendChild(el('td', base ? f(base) : 'no traffic'));
      t.appendChild(tr);
    }
    body.appendChild(t);
    body.appendChild(el('p', 'baseline: ' + time(v.baseline_from) + '–' + time(v.baseline_to) + ' (before the span shown)', 'muted'));
    for (const d of v.detections) {
      body.appendChild(el('h4', d.kind + ' · ' + d.severity + ' · incident ' + d.incident_id));
      const ev = evidenceOf(d);
      if (ev.summary) body.appendChild(el('p', ev.summary, 'evidence-text'));
      if (ev.features && ev.features.length) {
        const ft = el('table', undefined, 'features');
        const hr = el('tr');
        for (const c of ['feature', 'expected', 'observed']) hr.appendChild(el('th', c));
        ft.appendChild(hr);
        for (const f of ev.features) {
          const tr = el('tr');
          for (const x of [f.feature, Number(f.expected).toFixed(2), Number(f.observed).toFixed(2)]) tr.appendChild(el('td', x));
          ft.appendChild(tr);
        }
        body.appendChild(ft);
      }
    }
  }

  function labelOf(id) {
    const n = cy && cy.getElementById(id);
    return n && n.length ? n.data('label') : id;
  }

  // ---- views: the overview here; posture and policies in zerotrust.js ----
  const views = {}; // name -> { show(), tick() }, registered by other files

  function currentView() {
    const v = location.hash.slice(1);
    return views[v] ? v : 'overview';
  }

  // showView shows the view the location's hash names and loads it.
  function showView() {
    const v = currentView();
    for (const m of document.querySelectorAll('main.view')) m.hidden = m.id !== 'view-' + v;
    for (const a of document.querySelectorAll('#views a')) a.classList.toggle('active', a.getAttribute('href') === '#' + v);
    if (v !== 'overview') { views[v].show(); return; }
    // The graph was laid out in a box that was hidden meanwhile.
    if (cy) { cy.resize(); cy.fit(undefined, 16); }
    round = 0; // and it is read again now
    refresh();
  }

  // ---- loop ----
  async function refresh() {
    clearTimeout(timer);
    const v = currentView();
    if (v !== 'overview') {
      views[v].tick();
      timer = setTimeout(refresh, REFRESH_MS);
      return;
    }
    try {
      const withGraph = round % GRAPH_EVERY === 0 || !cy;
      round++;
      const [inc, audit, ingest, graph] = await Promise.all([
        api('/api/v1/incidents?limit=1000'), api(auditQuery()), api('/api/v1/ingest'), withGraph ? api(graphQuery()) : null,
      ]);
      try {
        renderCurrent((await api('/api/v1/actions/current')).actions || []);
      } catch (e) {
        renderCurrent([]);
        $('current-note').textContent = e.message;
      }
      learnStates(audit.groups || []);
      renderAudit(audit.groups || []);
      renderIngest(ingest);
      renderIncidents(inc.incidents || []);
      if (graph) renderGraph(graph);
      if (Date.now() >= opStatusUntil) status('updated ' + new Date().toLocaleTimeString());
    } catch (e) {
      if (e.status === 401) { signedOut('Sign in: ' + e.message); return; }
      status(e.message, true);
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  function regraph() { hideSide(); round = 0; refresh(); }

  function signedOut(msg) {
    clearTimeout(timer);
    signedIn = false;
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
      signedIn = true;
      showView();
    } catch (e) {
      if (e.status === 401) { signedOut(token() ? 'Token refused: ' + e.message : 'Sign in with your bearer token'); return; }
      status(e.message, true);
      timer = setTimeout(start, REFRESH_MS);
    }
  }

  // What zerotrust.js builds its views with.
  window.meshguard = Object.freeze({ api, el, clear, pct, status, signedOut, views });

  document.addEventListener('DOMContentLoaded', () => {
    if (typeof cytoscape === 'function' && typeof cytoscapeFcose === 'function') cytoscape.use(cytoscapeFcose);
    $('login').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      $('token').value = '';
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      start();
    });
    $('logout').addEventListener('click', () => signedOut('Signed out'));
    $('side-close').addEventListener('click', hideSide);
    for (const id of ['f-namespace', 'f-kind', 'f-since']) $(id).addEventListener('change', regraph);
    $('audit-filter').addEventListener('submit', (ev) => { ev.preventDefault(); refresh(); });
    window.addEventListener('hashchange', () => { if (signedIn) showView(); });
    start();
  });
})();
