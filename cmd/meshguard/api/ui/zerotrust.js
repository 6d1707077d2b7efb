// meshguard dashboard: the zero-trust views, Posture (GET /api/v1/posture)
// and Suggested policies (GET /api/v1/policies/suggestions). Workload
// names, principals and request ids are telemetry: they reach the page
// through textContent only (meshguard.el), never innerHTML. The views
// read; applying a policy stays a person's step on the CLI or in git.
'use strict';

(function () {
  const mg = window.meshguard;
  const { api, el, clear, pct } = mg;
  const $ = (id) => document.getElementById(id);
  const RELOAD_MS = 60000; // a view left open reloads this often
  const MAX_ROWS = 200;     // rows of one list drawn; the rest are counted

  function when(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d) ? String(s) : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  }

  function count(n) { return Number(n || 0).toLocaleString(); }
  function requests(n) { return count(n) + (n === 1 ? ' request' : ' requests'); }

  // party is posture.Party.Name: namespace/workload, else the principal,
  // else the IP.
  function party(p) {
    if (!p) return '(unknown)';
    if (p.workload) return (p.namespace || '') + '/' + p.workload;
    return p.principal || p.ip || '(unknown)';
  }

  function row(cells, cls) {
    const tr = el('tr', undefined, cls);
    for (const c of cells) tr.appendChild(c instanceof Node ? wrapCell(c) : el('td', c));
    return tr;
  }

  function wrapCell(node) {
    if (node.tagName === 'TD' || node.tagName === 'TH') return node;
    const td = el('td');
    td.appendChild(node);
    return td;
  }

  function modeTag(m) {
    if (!m) { const s = el('span', '—', 'muted'); s.title = 'cluster not read'; return s; }
    const s = el('span', m.mode + (m.uncertain ? '?' : ''), 'mode mode-' + m.mode);
    s.title = m.level + (m.policy ? ' · ' + m.policy : '') + (m.uncertain ? ' · pod labels unknown: a workload policy may apply' : '');
    return s;
  }

  // shareBar draws mTLS, plaintext and unknown shares as one bar.
  function shareBar(sh) {
    const bar = el('div', undefined, 'sharebar');
    bar.title = 'mTLS ' + pct(sh.mtls_share) + ' · plaintext ' + pct(sh.plaintext_share) + ' · unknown ' + pct(sh.unknown_share);
    for (const [cls, x] of [['s-mtls', sh.mtls_share], ['s-plain', sh.plaintext_share], ['s-unknown', sh.unknown_share]]) {
      const s = el('span', undefined, cls);
      s.style.width = (100 * (x || 0)).toFixed(2) + '%';
      bar.appendChild(s);
    }
    return bar;
  }

  // more says how many rows of a list were not drawn.
  function more(list, shown, tag) {
    return list.length > shown ? el(tag || 'p', '… and ' + count(list.length - shown) + ' more', 'muted') : null;
  }

  // view is one zero-trust view: load fetches and renders it, showing a
  // store without the endpoint as "not available" rather than an error.
  function view(name, opts) {
    let loadedAt = 0, loadedKey = '', seq = 0;
    const root = () => $('view-' + name);
    async function load() {
      const key = opts.query();
      const mine = ++seq;
      loadedAt = Date.now();
      loadedKey = key;
      let body, err;
      try { body = await api(key); } catch (e) { err = e; }
      if (mine !== seq) return; // a newer load is under way
      const off = $(opts.unavailable);
      off.hidden = true;
      if (err && err.status === 401) { mg.signedOut('Sign in: ' + err.message); return; }
      if (err && err.status === 503) {
        off.hidden = false;
        off.textContent = opts.title + ' is not available on this store: ' + err.message;
        $(opts.body).hidden = true;
        $(opts.note).textContent = '';
        root().dataset.state = 'unavailable';
      } else if (err) {
        mg.status(opts.title + ': ' + err.message, true);
        root().dataset.state = 'error';
      } else {
        $(opts.body).hidden = false;
        opts.render(body);
        mg.status('updated ' + new Date().toLocaleTimeString());
        root().dataset.state = 'loaded';
      }
      root().dataset.loads = String(Number(root().dataset.loads || 0) + 1);
    }
    const v = {
      show: load,
      tick() { if (opts.query() !== loadedKey || Date.now() - loadedAt > RELOAD_MS) load(); },
    };
    mg.views[name] = v;
    document.addEventListener('DOMContentLoaded', () => $(opts.since).addEventListener('change', load));
    return v;
  }

  // ---- posture ----
  function renderPosture(p) {
    $('posture-note').textContent = when(p.from) + ' – ' + when(p.to) + ' · ' + count(p.edge_count) + ' edges · ' +
      (p.cluster_read ? 'modes and coverage read from the cluster' + (p.root_namespace ? ' (root ' + p.root_namespace + ')' : '')
        : 'no cluster read: modes, STRICT gap and ALLOW coverage need kubernetes');
    const t = p.total;
    const total = $('p-total');
    clear(total);
    total.appendChild(el('span', 'all namespaces: ' + count(t.requests) + ' requests · mTLS ' + pct(t.mtls_share) +
      ' · plaintext ' + pct(t.plaintext_share) + ' · unknown ' + pct(t.unknown_share)));
    total.appendChild(shareBar(t));

    const nsBody = $('p-namespaces').tBodies[0];
    clear(nsBody);
    for (const n of p.namespaces) {
      const tr = row([n.name || '(outside the mesh)', count(n.workloads), count(n.requests), shareBar(n),
        pct(n.mtls_share), pct(n.plaintext_share), pct(n.unknown_share), modeTag(n.mode)]);
      tr.dataset.ns = n.name;
      tr.children[3].className = 'bar-col';
      if (n.plaintext > 0) tr.children[5].className = 'plain';
      nsBody.appendChild(tr);
    }
    if (!p.namespaces.length) nsBody.appendChild(row(['no request received in the span']));

    const plain = $('p-plain').tBodies[0];
    clear(plain);
    $('p-plain-note').textContent = p.plaintext_edges.length ? count(p.plaintext_edges.length) + ' edges carried requests without mTLS' : 'none: every request seen was mTLS or unknown';
    for (const e of p.plaintext_edges.slice(0, MAX_ROWS)) {
      const tr = row([party(e.source), party(e.destination), String(e.port), count(e.plaintext), count(e.requests),
        when(e.plaintext_first_seen || e.first_seen), when(e.plaintext_last_seen || e.last_seen), samples(e.sample_request_ids || [])]);
      tr.children[3].className = 'plain';
      tr.children[7].className = 'mono';
      tr.children[7].title = (e.sample_request_ids || []).join('\n');
      plain.appendChild(tr);
    }
    const extra = more(p.plaintext_edges, MAX_ROWS);
    if (extra) plain.appendChild(row([extra]));

    renderGaps(p);
    renderParties($('p-uncovered-list'), p.uncovered, p.cluster_read ? 'every workload seen has an enforced ALLOW policy' : 'needs the cluster (kubernetes) to say');
    renderParties($('p-noid-list'), p.no_identity, 'every workload seen showed a mesh identity or no plaintext');
  }

  // samples shows the first request ids (the cell's title has them all).
  function samples(ids) { return ids.slice(0, 1).join(' ') + (ids.length > 1 ? ' +' + (ids.length - 1) : ''); }

  function renderGaps(p) {
    const box = $('p-gap-list');
    clear(box);
    if (!p.cluster_read) { box.appendChild(el('p', 'needs the cluster (kubernetes): the modes in force decide what STRICT would change', 'muted')); return; }
    if (!p.strict_gaps.length) { box.appendChild(el('p', 'none: every observed caller of every namespace is mTLS', 'muted')); return; }
    const modes = new Map(p.namespaces.map((n) => [n.name, n.mode]));
    for (const g of p.strict_gaps) {
      const div = el('div', undefined, 'gap');
      div.dataset.ns = g.namespace;
      const head = el('div', undefined, 'gap-head');
      head.appendChild(el('strong', g.namespace));
      head.appendChild(el('span', 'now '));
      head.lastChild.appendChild(modeTag(modes.get(g.namespace)));
      const kinds = [['breaks', g.breaks || [], 'would be refused (plaintext seen)'], ['unverified', g.unverified || [], 'no TLS evidence: may break'],
        ['exempt', g.exempt || [], 'plaintext kept by a workload or port policy']];
      for (const [k, es, why] of kinds) {
        const tag = el('span', count(es.length) + ' ' + k, 'tag tag-' + k);
        tag.title = why;
        head.appendChild(tag);
      }
      div.appendChild(head);
      const ul = el('ul', undefined, 'gap-edges');
      for (const [k, es] of kinds) {
        for (const e of es.slice(0, 12)) {
          const li = el('li');
          li.dataset.kind = k;
          li.appendChild(el('span', k, 'tag tag-' + k));
          li.appendChild(el('span', ' ' + party(e.source) + ' → ' + party(e.destination) + ':' + e.port + ' · ' +
            count(e.plaintext) + ' plaintext, ' + count(e.unknown) + ' unknown of ' + count(e.requests)));
          ul.appendChild(li);
        }
        const m = more(es, 12, 'li');
        if (m) ul.appendChild(m);
      }
      div.appendChild(ul);
      box.appendChild(div);
    }
  }

  function renderParties(ul, list, none) {
    clear(ul);
    for (const x of list.slice(0, MAX_ROWS)) ul.appendChild(el('li', party(x)));
    const m = more(list, MAX_ROWS, 'li');
    if (m) ul.appendChild(m);
    if (!list.length) ul.appendChild(el('li', none, 'muted'));
  }

  view('posture', {
    title: 'Posture', since: 'p-since', body: 'posture-body', note: 'posture-note', unavailable: 'posture-unavailable',
    query: () => '/api/v1/posture?' + new URLSearchParams({ since: $('p-since').value }),
    render: renderPosture,
  });

  // ---- suggested policies ----
  function renderSuggestions(body) {
    const ss = body.suggestions || [];
    const written = ss.filter((s) => !s.skipped).length;
    $('policies-note').textContent = ss.length ? written + ' policies for ' + ss.length + ' destination workloads' +
      (ss[0] ? ' · ' + when(ss[0].from) + ' – ' + when(ss[0].to) : '') : '';
    const box = $('suggestions');
    clear(box);
    if (!ss.length) box.appendChild(el('p', 'No destination workload received traffic in the period.', 'muted'));
    for (const s of ss.slice(0, MAX_ROWS)) box.appendChild(suggestion(s));
    const m = more(ss, MAX_ROWS);
    if (m) box.appendChild(m);
  }

  function suggestion(s) {
    const art = el('article', undefined, 'suggestion' + (s.skipped ? ' skipped' : ''));
    art.dataset.ns = s.namespace;
    art.dataset.workload = s.workload;
    const head = el('div', undefined, 'sg-head');
    head.appendChild(el('strong', s.namespace + '/' + s.workload));
    head.appendChild(el('span', s.name, 'mono muted'));
    const sel = Object.entries(s.selector || {}).map(([k, v]) => k + '=' + v).join(', ');
    if (sel) head.appendChild(el('span', 'selects ' + sel, 'mono'));
    art.appendChild(head);
    if (s.skipped) {
      art.appendChild(el('p', 'not written: ' + s.skipped + ' · ' + requests(s.requests) + ' in the period', 'skip-why'));
    } else {
      art.appendChild(blastRadius(s));
    }
    if ((s.rules || []).length) art.appendChild(rulesTable(s));
    else if (!s.skipped) art.appendChild(el('p', 'no caller admitted: the policy would deny every request', 'muted'));
    const out = s.not_admitted || [];
    if (out.length) art.appendChild(notAdmitted(out));
    return art;
  }

  // blastRadius: the requests of the period the suggested rules would
  // have denied.
  function blastRadius(s) {
    const blast = el('div', undefined, 'sg-blast');
    const share = s.requests ? s.blast_requests / s.requests : 0;
    const bar = el('span', undefined, 'blastbar');
    const fill = el('span');
    fill.style.width = (100 * share).toFixed(2) + '%';
    bar.appendChild(fill);
    blast.appendChild(el('span', 'blast radius', 'a-kind'));
    blast.appendChild(bar);
    blast.appendChild(el('span', 'would have denied ' + count(s.blast_requests) + ' of ' + count(s.requests) + ' requests (' +
      pct(share) + ') from ' + count(s.blast_callers) + ' caller' + (s.blast_callers === 1 ? '' : 's'), 'blast-text'));
    return blast;
  }

  function rulesTable(s) {
    const rules = el('table', undefined, 'rules');
    rules.appendChild(row(['admits principal', 'to', 'requests', 'first seen', 'last seen', 'confidence'].map((h) => el('th', h))));
    for (const r of s.rules || []) {
      const conf = el('span');
      const cb = el('span', undefined, 'confbar');
      const cf = el('span');
      cf.style.width = (100 * r.confidence).toFixed(0) + '%';
      cb.appendChild(cf);
      conf.appendChild(cb);
      conf.appendChild(el('span', pct(r.confidence)));
      conf.title = 'grows with the requests seen (saturating past a few hundred) and with how much of the period the caller spans';
      const tr = row([el('td', r.principal, 'principal'), operations(r), count(r.requests), when(r.first_seen), when(r.last_seen), conf]);
      tr.dataset.principal = r.principal;
      rules.appendChild(tr);
    }
    return rules;
  }

  // detections names a caller's detections by their ids' first
  // characters (the title has them whole).
  function detections(ids) {
    const td = el('td', ids.map((id) => id.length > 12 ? id.slice(0, 12) + '…' : id).join(', '), 'mono');
    td.title = ids.join('\n');
    return td;
  }

  // notAdmitted lists the callers the policy would deny, and why.
  function notAdmitted(out) {
    const box = el('div');
    box.appendChild(el('h4', 'not admitted (' + out.length + ')'));
    const t = el('table', undefined, 'not-admitted');
    for (const c of out.slice(0, 20)) {
      const tr = row([el('td', c.caller, 'principal'), el('span', c.reason, 'reason'), requests(c.requests),
        'last ' + when(c.last_seen), detections(c.detections || [])]);
      tr.dataset.caller = c.caller;
      t.appendChild(tr);
    }
    const m = more(out, 20);
    if (m) t.appendChild(row([m]));
    box.appendChild(t);
    return box;
  }

  // operations prints a rule's methods, paths and ports, or "any
  // operation"; the title says which dimensions are left open, and why.
  function operations(r) {
    const ops = (r.operations || []).map((o) => [(o.methods || []).join('|'), (o.paths || []).join(' '), (o.ports || []).length ? ':' + o.ports.join(',') : '']
      .filter(Boolean).join(' ')).filter(Boolean);
    const td = el('td', ops.length ? ops.join('; ') : 'any operation', 'mono');
    if ((r.open || []).length) td.title = 'open: ' + r.open.join('; ');
    return td;
  }

  view('policies', {
    title: 'Suggested policies', since: 's-since', body: 'suggestions', note: 'policies-note', unavailable: 'policies-unavailable',
    query: () => '/api/v1/policies/suggestions?' + new URLSearchParams({ since: $('s-since').value }),
    render: renderSuggestions,
  });
})();
