// kevents report: the renderer of the page `kevents report` writes.
// Reads the JSON in #kevents-data (its fields: cli/src/report/model.rs `Doc`),
// draws the summary chart, the incidents (worst first) with their timelines,
// and the patterns. Plain DOM + SVG strings, no framework, no network: the page
// must open from a file attached to a ticket. Timelines are drawn when an
// incident is opened, so a report of 1,000 incidents costs one list at load.
'use strict';
(function () {
  var dataEl = document.getElementById('kevents-data');
  var raw = dataEl.textContent;
  var D = JSON.parse(raw);
  var S = D.strings, E = D.ev, N = E.t.length, O = D.obj;
  var SEV = ['info', 'warning', 'error', 'critical'];
  var SEV_SYMBOL = ['\u25CF', '\u25B2', '\u25A0', '\u25C6'];
  var CAT_COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac', '#2f4b7c', '#a05195'];
  var PAD = 1, MARK_GAP_PX = 16;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function iso(rel) {
    var d = new Date(D.t0 + rel);
    return isNaN(d) ? String(rel) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }
  // A tick label as precise as the distance between ticks needs.
  function hm(rel, step) {
    var s = new Date(D.t0 + rel).toISOString();
    return step >= 86400000 ? s.slice(5, 16).replace('T', ' ') : step >= 60000 ? s.slice(11, 16) : s.slice(11, 19);
  }
  function dur(ms) {
    if (ms < 1000) return ms + ' ms';
    var s = Math.round(ms / 1000);
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' d';
  }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function objName(o) {
    var kind = S[O[4 * o + 1]], ns = S[O[4 * o + 2]], name = S[O[4 * o + 3]];
    return kind + ' ' + (ns ? ns + '/' : '') + name;
  }
  function sevBadge(s) {
    return '<span class="sev sev-' + s + '">' + SEV_SYMBOL[s] + ' ' + SEV[s] + '</span>';
  }
  function shape(s, x, y, r) {
    x = +x.toFixed(1); y = +y.toFixed(1); r = +r.toFixed(1);
    if (s === 0) return 'M' + (x - r) + ' ' + y + 'a' + r + ' ' + r + ' 0 1 0 ' + 2 * r + ' 0a' + r + ' ' + r + ' 0 1 0 ' + -2 * r + ' 0Z';
    if (s === 1) return 'M' + x + ' ' + (y - r) + 'L' + (x + r) + ' ' + (y + r * 0.8) + 'L' + (x - r) + ' ' + (y + r * 0.8) + 'Z';
    if (s === 2) { var q = r * 0.85; return 'M' + (x - q) + ' ' + (y - q) + 'h' + 2 * q + 'v' + 2 * q + 'h' + -2 * q + 'Z'; }
    return 'M' + x + ' ' + (y - r) + 'L' + (x + r) + ' ' + y + 'L' + x + ' ' + (y + r) + 'L' + (x - r) + ' ' + y + 'Z';
  }
  // At most 8 px: marks 16 px apart never cover each other's centre.
  function radius(occ) { return 3.5 + Math.min(4.5, 1.2 * Math.log2(Math.max(1, occ))); }

  // ---- header -------------------------------------------------------------
  var totalOcc = 0, tMax = 0;
  for (var i = 0; i < N; i++) { totalOcc += E.occ[i]; var te = E.t[i] + E.d[i]; if (te > tMax) tMax = te; }
  document.getElementById('title').textContent = D.title;
  document.getElementById('facts').innerHTML =
    '<li><strong>' + num(N) + '</strong> events</li><li><strong>' + num(totalOcc) + '</strong> occurrences</li>' +
    '<li><strong>' + num(D.inc.length) + '</strong> incidents</li><li><strong>' + num(D.pat.length) + '</strong> pattern episodes</li>' +
    '<li>' + (N ? esc(iso(0)) + ' to ' + esc(iso(tMax)) + ' (' + dur(tMax) + ')' : 'no events') + '</li>' +
    '<li>source: ' + esc(D.source) + '</li><li>embedded data: ' + (raw.length / 1048576).toFixed(2) + ' MB</li>';

  // ---- summary chart ------------------------------------------------------
  var STEPS = [1e3, 5e3, 1e4, 3e4, 6e4, 3e5, 6e5, 9e5, 18e5, 36e5, 108e5, 216e5, 432e5, 864e5, 6048e5];
  function drawSummary() {
    var metric = document.getElementById('metric').value, by = document.getElementById('groupby').value;
    var span = Math.max(tMax, 1000), step = STEPS[STEPS.length - 1];
    for (var k = 0; k < STEPS.length; k++) if (span / STEPS[k] <= 120) { step = STEPS[k]; break; }
    var nb = Math.floor(span / step) + 1, keys = [], keyIx = {}, bins = [];
    function key(i) { return by === 'severity' ? E.sev[i] : E.cat[i]; }
    for (var i = 0; i < N; i++) { var kk = key(i); if (!(kk in keyIx)) { keyIx[kk] = -1; keys.push(kk); } }
    keys.sort(function (a, b) { return by === 'severity' ? a - b : S[a] < S[b] ? -1 : 1; });
    keys.forEach(function (k, j) { keyIx[k] = j; });
    for (var b = 0; b < nb; b++) bins.push(new Float64Array(keys.length));
    for (i = 0; i < N; i++) {
      var j = keyIx[key(i)], b0 = Math.floor(E.t[i] / step);
      if (metric === 'events' || E.d[i] === 0 || E.occ[i] === 1) { bins[b0][j] += metric === 'events' ? 1 : E.occ[i]; continue; }
      // Occurrences spread over the time the event kept repeating.
      var b1 = Math.floor((E.t[i] + E.d[i]) / step), per = E.occ[i] / (b1 - b0 + 1);
      for (b = b0; b <= b1; b++) bins[b][j] += per;
    }
    var W = 1000, H = 240, L = 60, R = 10, T = 10, B = 30, max = 1;
    bins.forEach(function (v) { var s = 0; for (var q = 0; q < v.length; q++) s += v[q]; if (s > max) max = s; });
    var bw = (W - L - R) / nb, svg = [];
    for (var t = 0; t <= 4; t++) {
      var yv = max * t / 4, y = H - B - (H - B - T) * t / 4;
      svg.push('<line class="grid" x1="' + L + '" x2="' + (W - R) + '" y1="' + y + '" y2="' + y + '"/><text class="tick" x="' + (L - 6) + '" y="' + (y + 4) + '" text-anchor="end">' + num(Math.round(yv)) + '</text>');
    }
    var every = Math.max(1, Math.ceil(nb / 8));
    for (b = 0; b < nb; b++) {
      var x = L + b * bw, acc = 0, title = [];
      for (j = 0; j < keys.length; j++) {
        var v = bins[b][j]; if (!v) continue;
        var h = (H - B - T) * v / max, y0 = H - B - (H - B - T) * acc / max - h;
        acc += v;
        var cls = by === 'severity' ? 'fill-sev-' + keys[j] : '';
        var fill = by === 'severity' ? '' : ' fill="' + CAT_COLORS[j % CAT_COLORS.length] + '"';
        svg.push('<rect class="bar ' + cls + '"' + fill + ' x="' + x.toFixed(1) + '" y="' + y0.toFixed(1) + '" width="' + Math.max(1, bw - PAD).toFixed(1) + '" height="' + h.toFixed(1) + '"/>');
        title.push(num(Math.round(v)) + ' ' + (by === 'severity' ? SEV[keys[j]] : S[keys[j]]));
      }
      if (title.length) svg.push('<rect class="hit" x="' + x.toFixed(1) + '" y="' + T + '" width="' + bw.toFixed(1) + '" height="' + (H - B - T) + '"><title>' + esc(iso(b * step) + ': ' + title.join(', ') + ' ' + metric) + '</title></rect>');
      if (b % every === 0) svg.push('<text class="tick" x="' + x.toFixed(1) + '" y="' + (H - 10) + '">' + esc(hm(b * step, span > 86400000 ? 86400000 : step * every)) + '</text>');
    }
    var chart = document.getElementById('summary-chart');
    chart.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    chart.innerHTML = svg.join('');
    var label = (metric === 'events' ? 'Events' : 'Occurrences') + ' by ' + by + ' per ' + dur(step) + ', ' + nb + ' bars, highest bar ' + num(Math.round(max)) + '. The table below has every value.';
    chart.setAttribute('aria-label', label);
    document.getElementById('summary-caption').textContent = label;
    document.getElementById('summary-legend').innerHTML = keys.map(function (k, j) {
      return by === 'severity' ? '<li>' + sevBadge(k) + '</li>' : '<li><span class="swatch" style="background:' + CAT_COLORS[j % CAT_COLORS.length] + '"></span>' + esc(S[k] || '(none)') + '</li>';
    }).join('');
    var rows = ['<tr><th scope="col">from</th>' + keys.map(function (k) { return '<th scope="col">' + esc(by === 'severity' ? SEV[k] : S[k] || '(none)') + '</th>'; }).join('') + '</tr>'];
    for (b = 0; b < nb; b++) {
      var any = false; for (j = 0; j < keys.length; j++) if (bins[b][j]) any = true;
      if (any) rows.push('<tr><th scope="row">' + esc(iso(b * step)) + '</th>' + Array.prototype.map.call(bins[b], function (v) { return '<td>' + num(Math.round(v)) + '</td>'; }).join('') + '</tr>');
    }
    document.getElementById('summary-table').innerHTML = rows.join('');
  }
  document.getElementById('metric').addEventListener('change', drawSummary);
  document.getElementById('groupby').addEventListener('change', drawSummary);
  drawSummary();

  // ---- incidents ------------------------------------------------------------
  var list = document.getElementById('incident-list'), html = [];
  D.inc.forEach(function (inc, n) {
    var root = inc.root >= 0 ? S[E.rsn[inc.root]] + ' on ' + objName(E.obj[inc.root]) : '(root cause not among the events read)';
    var nl = 0; for (var q = 2; q < inc.lanes.length; q += 3) nl += inc.lanes[q];
    html.push('<section class="incident" id="inc-' + n + '" data-id="' + esc(inc.id) + '" data-n="' + n + '">' +
      '<details' + (n < 3 ? ' open' : '') + '><summary><span class="rank">#' + (n + 1) + '</span> ' + sevBadge(inc.sev) +
      ' <span class="status">' + esc(inc.status) + '</span> <span class="isum">' + esc(inc.summary || root) + '</span>' +
      '<span class="imeta">' + esc(inc.cluster) + ' · ' + num(inc.events) + ' events · ' + num(inc.occ) + ' occurrences · ' + nl + ' objects · ' +
      esc(iso(inc.t0)) + ' for ' + dur(Math.max(0, inc.t1 - inc.t0)) + '</span></summary><div class="ibody"></div></details></section>');
  });
  list.innerHTML = html.join('') || '<p>No incidents.</p>';
  if (D.inc.length > 1000) list.insertAdjacentHTML('beforebegin', '<p>' + num(D.inc.length) + ' incidents.</p>');

  function renderIncident(sec) {
    var n = +sec.dataset.n, inc = D.inc[n], body = sec.querySelector('.ibody');
    if (body.dataset.done) return;
    body.dataset.done = '1';
    var rootTxt = inc.root >= 0 ? '<strong>' + esc(S[E.rsn[inc.root]]) + '</strong> on ' + esc(objName(E.obj[inc.root])) + ': ' + esc(S[E.msg[inc.root]]) : 'not among the events read';
    body.innerHTML = '<p class="root-line"><span class="root-tag">ROOT CAUSE</span> ' + rootTxt + '</p>' +
      '<p class="small">rule ' + esc(inc.rule) + ' · id <code>' + esc(inc.id) + '</code></p>' +
      '<div class="timeline"></div><div class="detail" role="region" aria-live="polite" aria-label="Selected event">' +
      '<p class="hint">Click an event, or Tab to the timeline and use the arrow keys, to see its message.</p></div>' +
      '<details class="evtable"><summary>Events of this incident as a table (' + num(inc.ev.length) + ')</summary><div></div></details>';
    drawTimeline(inc, body.querySelector('.timeline'), body.querySelector('.detail'));
    body.querySelector('.evtable').addEventListener('toggle', function () {
      var box = this.querySelector('div'); if (box.dataset.done) return; box.dataset.done = '1';
      var rows = inc.ev.slice(0, 1000).map(function (i) {
        return '<tr' + (i === inc.root ? ' class="is-root"' : '') + '><td>' + esc(iso(E.t[i])) + '</td><td>' + esc(objName(E.obj[i])) + '</td><td>' + esc(S[E.rsn[i]]) + (i === inc.root ? ' (root cause)' : '') +
          '</td><td>' + sevBadge(E.sev[i]) + '</td><td>' + num(E.occ[i]) + '</td><td>' + esc(S[E.msg[i]]) + '</td></tr>';
      });
      box.innerHTML = '<table><tr><th scope="col">first seen</th><th scope="col">object</th><th scope="col">reason</th><th scope="col">severity</th><th scope="col">occurrences</th><th scope="col">message</th></tr>' +
        rows.join('') + '</table>' + (inc.ev.length > 1000 ? '<p>and ' + num(inc.ev.length - 1000) + ' more.</p>' : '');
    });
  }

  function eventDetail(i, inc) {
    var meta = S[E.meta[i]], isRoot = inc && i === inc.root, n = E.inc[i];
    return '<h4>' + (isRoot ? '<span class="root-tag">ROOT CAUSE</span> ' : '') + esc(S[E.rsn[i]]) + ' ' + sevBadge(E.sev[i]) + '</h4>' +
      '<p class="msg">' + esc(S[E.msg[i]]) + '</p><dl>' +
      '<dt>object</dt><dd>' + esc(objName(E.obj[i])) + '</dd><dt>type</dt><dd>' + esc(S[E.typ[i]]) + '</dd>' +
      '<dt>category</dt><dd>' + esc(S[E.cat[i]]) + '</dd><dt>occurrences</dt><dd>' + num(E.occ[i]) + '</dd>' +
      '<dt>first seen</dt><dd>' + esc(iso(E.t[i])) + '</dd><dt>last seen</dt><dd>' + esc(iso(E.t[i] + E.d[i])) + '</dd>' +
      '<dt>reported by</dt><dd>' + esc(S[E.cmp[i]] || '-') + '</dd>' + (meta ? '<dt>metadata</dt><dd>' + esc(meta) + '</dd>' : '') +
      (n >= 0 ? '<dt>incident</dt><dd><a href="#inc-' + n + '">#' + (n + 1) + ' ' + esc(D.inc[n].id) + '</a></dd>' : '') + '</dl>';
  }

  function drawTimeline(inc, box, detail) {
    var W = 1100, LBL = 300, R = 24, TOP = 28, ROW = 26;
    var lanes = [], laneOf = {};
    for (var q = 0; q < inc.lanes.length; q += 3) {
      laneOf[inc.lanes[q]] = lanes.length;
      lanes.push({ obj: inc.lanes[q], depth: inc.lanes[q + 1], has: inc.lanes[q + 2] === 1, evs: [] });
    }
    var lo = Infinity, hi = -Infinity;
    inc.ev.forEach(function (i) {
      var l = laneOf[E.obj[i]]; if (l === undefined) return;
      lanes[l].evs.push(i);
      if (E.t[i] < lo) lo = E.t[i];
      if (E.t[i] + E.d[i] > hi) hi = E.t[i] + E.d[i];
    });
    if (!isFinite(lo)) { lo = inc.t0; hi = inc.t1; }
    if (hi - lo < 60000) { var mid = (hi + lo) / 2; lo = mid - 30000; hi = mid + 30000; }
    var pad = (hi - lo) * 0.03; lo -= pad; hi += pad;
    var pw = W - LBL - R, H = TOP + ROW * lanes.length + 8;
    function X(t) { return LBL + (t - lo) / (hi - lo) * pw; }
    var svg = [], fg = [], marks = [];
    for (var k = 0; k <= 5; k++) {
      var tt = lo + (hi - lo) * k / 5, x = X(tt);
      svg.push('<line class="grid" x1="' + x.toFixed(1) + '" x2="' + x.toFixed(1) + '" y1="' + (TOP - 6) + '" y2="' + H + '"/><text class="tick" x="' + x.toFixed(1) + '" y="14" text-anchor="middle">' + esc(hm(tt, (hi - lo) / 5)) + '</text>');
    }
    var spans = [];
    lanes.forEach(function (ln, li) {
      // Below an owner the namespace is the owner's: the label leaves it out (the tooltip has it).
      var y = TOP + li * ROW + ROW / 2, name = objName(ln.obj), short = ln.depth ? S[O[4 * ln.obj + 1]] + ' ' + S[O[4 * ln.obj + 3]] : name;
      var label = short.length > 40 - 2 * ln.depth ? short.slice(0, 38 - 2 * ln.depth) + '\u2026' : short;
      svg.push('<g class="lane' + (ln.has ? '' : ' group') + '" data-lane="' + (ln.has ? 'object' : 'group') + '" data-object="' + esc(name) + '">' +
        (li % 2 ? '<rect class="stripe" x="0" y="' + (y - ROW / 2) + '" width="' + W + '" height="' + ROW + '"/>' : '') +
        '<text class="lbl" x="' + (8 + ln.depth * 16) + '" y="' + (y + 4) + '">' + (ln.depth ? '\u2514 ' : '') + esc(label) + (ln.has ? '' : ' (owner)') + '<title>' + esc(name) + '</title></text>' +
        '<line class="laneline" x1="' + LBL + '" x2="' + (W - R) + '" y1="' + y + '" y2="' + y + '"/></g>');
      // Events closer than a mark's width share one mark (it lists them all),
      // so no mark hides another; the root cause leads the mark it is in.
      var groups = [], gx = -Infinity;
      ln.evs.slice().sort(function (a, b) { return E.t[a] - E.t[b]; }).forEach(function (i) {
        var x = X(E.t[i]);
        if (x - gx >= MARK_GAP_PX || !groups.length) { groups.push([i]); gx = x; } else groups[groups.length - 1].push(i);
      });
      groups.forEach(function (g) { var k = g.indexOf(inc.root); if (k > 0) { g.splice(k, 1); g.unshift(inc.root); } });
      ln.marks = [];
      groups.forEach(function (g) {
        var sev = 0, occ = 0, root = false, t = Infinity, t1 = -Infinity;
        g.forEach(function (i) { if (E.sev[i] > sev) sev = E.sev[i]; occ += E.occ[i]; if (i === inc.root) root = true; if (E.t[i] < t) t = E.t[i]; if (E.t[i] + E.d[i] > t1) t1 = E.t[i] + E.d[i]; });
        if (root) sev = E.sev[g[0]];
        var mx = X(t), r = radius(occ), m = marks.length, agg = g.length > 1 && !root;
        var lbl = root ? 'Root cause: ' + SEV[E.sev[g[0]]] + ' ' + S[E.rsn[g[0]]] + ' on ' + name + ', ' + iso(E.t[g[0]]) + ', ' + num(E.occ[g[0]]) + ' occurrences' + (g.length > 1 ? ', with ' + (g.length - 1) + ' more events' : '') :
          (agg ? g.length + ' events, worst ' + SEV[sev] : SEV[sev] + ' ' + S[E.rsn[g[0]]]) + ' on ' + name + ', ' + iso(t) + ', ' + num(occ) + ' occurrences';
        // How long the event kept repeating: a bar behind every mark.
        if (X(t1) - mx > 2) spans.push('<line class="span fill-sev-' + sev + '" x1="' + mx.toFixed(1) + '" x2="' + X(t1).toFixed(1) + '" y1="' + y + '" y2="' + y + '"/>');
        var s = '<g class="mark sev-' + sev + (root ? ' root' : '') + (agg ? ' agg' : '') + '" tabindex="-1" role="button" data-m="' + m + '" data-ev="' + g[0] + '" aria-label="' + esc(lbl) + '">';
        if (root) s += '<circle class="ring" cx="' + mx.toFixed(1) + '" cy="' + y + '" r="' + (r + 4).toFixed(1) + '"/><text class="rootlbl" x="' + (mx + r + 6).toFixed(1) + '" y="' + (y - 5) + '">ROOT</text>';
        s += '<path class="shape fill-sev-' + sev + '" d="' + shape(sev, mx, y, r) + '"/>';
        if (g.length > 1) s += '<text class="aggn" x="' + mx.toFixed(1) + '" y="' + (y + r + 9).toFixed(1) + '" text-anchor="middle">' + g.length + '</text>';
        fg.push(s + '</g>');
        var mk = { lane: li, x: mx, evs: g };
        marks.push(mk); ln.marks.push(mk);
      });
    });
    svg = svg.concat(spans, fg);
    var nEv = inc.ev.length, nLanes = lanes.filter(function (l) { return l.has; }).length;
    box.innerHTML = '<svg class="tl" viewBox="0 0 ' + W + ' ' + H + '" role="group" aria-roledescription="timeline" aria-label="' +
      esc('Timeline: ' + nLanes + ' objects, ' + nEv + ' events from ' + iso(lo + pad) + '. Arrow keys move between events; the table below lists them all.') +
      '">' + svg.join('') + '</svg>';
    var svgEl = box.firstChild, els = svgEl.querySelectorAll('.mark');
    var start = 0; marks.forEach(function (mk, m) { if (mk.evs.indexOf(inc.root) >= 0) start = m; });
    if (els.length) els[start].setAttribute('tabindex', '0');
    var current = -1;
    function select(m, focus) {
      if (current >= 0) { els[current].classList.remove('selected'); els[current].setAttribute('tabindex', '-1'); }
      current = m; els[m].classList.add('selected'); els[m].setAttribute('tabindex', '0');
      if (focus) els[m].focus();
      var g = marks[m].evs, lead = g[0] === inc.root;
      detail.innerHTML = g.length === 1 || lead ? eventDetail(g[0], inc) + (lead && g.length > 1 ? '<h4>and ' + (g.length - 1) + ' more events at this point</h4>' + aggList(g.slice(1)) : '') :
        '<h4>' + g.length + ' events drawn as one mark</h4>' + aggList(g);
    }
    function aggList(g) {
      return '<ul class="agglist">' + g.slice(0, 50).map(function (i) {
          return '<li>' + sevBadge(E.sev[i]) + ' ' + esc(iso(E.t[i])) + ' <strong>' + esc(S[E.rsn[i]]) + '</strong> ×' + num(E.occ[i]) + ': ' + esc(S[E.msg[i]]) + '</li>';
        }).join('') + '</ul>' + (g.length > 50 ? '<p>and ' + (g.length - 50) + ' more (see the table).</p>' : '');
    }
    svgEl.addEventListener('click', function (ev) { var g = ev.target.closest('.mark'); if (g) select(+g.dataset.m, true); });
    svgEl.addEventListener('focusin', function (ev) { var g = ev.target.closest('.mark'); if (g && +g.dataset.m !== current) select(+g.dataset.m, false); });
    svgEl.addEventListener('keydown', function (ev) {
      if (current < 0) return;
      var mk = marks[current], ln = lanes[mk.lane], at = ln.marks.indexOf(mk), next = null;
      function near(li, dir) {
        for (var l = li + dir; l >= 0 && l < lanes.length; l += dir) {
          if (!lanes[l].marks || !lanes[l].marks.length) continue;
          var best = lanes[l].marks[0];
          lanes[l].marks.forEach(function (c) { if (Math.abs(c.x - mk.x) < Math.abs(best.x - mk.x)) best = c; });
          return best;
        }
        return null;
      }
      if (ev.key === 'ArrowRight') next = ln.marks[at + 1];
      else if (ev.key === 'ArrowLeft') next = ln.marks[at - 1];
      else if (ev.key === 'ArrowDown') next = near(mk.lane, 1);
      else if (ev.key === 'ArrowUp') next = near(mk.lane, -1);
      else if (ev.key === 'Home') next = ln.marks[0];
      else if (ev.key === 'End') next = ln.marks[ln.marks.length - 1];
      else if (ev.key === 'Enter' || ev.key === ' ') next = mk;
      else return;
      ev.preventDefault();
      if (next) select(marks.indexOf(next), true);
    });
  }

  list.addEventListener('toggle', function (ev) {
    var det = ev.target;
    if (det.open && det.parentNode.classList && det.parentNode.classList.contains('incident')) renderIncident(det.parentNode);
  }, true);
  Array.prototype.forEach.call(list.querySelectorAll('section.incident > details[open]'), function (d) { renderIncident(d.parentNode); });
  // A link to #inc-N opens that incident.
  function openHash() {
    var m = /^#inc-(\d+)$/.exec(location.hash), sec = m && document.getElementById('inc-' + m[1]);
    if (sec) { var d = sec.querySelector('details'); d.open = true; renderIncident(sec); }
  }
  window.addEventListener('hashchange', openHash);
  openHash();

  // ---- patterns -------------------------------------------------------------
  var pats = D.pat.map(function (p, k) { return k; }).sort(function (a, b) { return D.pat[b].count - D.pat[a].count; });
  var PMAX = 500;
  function episodeStrip(p) {
    var ts = p.prev.concat([p.t0]), lo = Math.min.apply(null, ts), hi = Math.max(p.t1, lo + 1), W = 160;
    var marks = ts.map(function (t, k) {
      var x = 6 + (t - lo) / (hi - lo) * (W - 12), cur = k === ts.length - 1;
      return '<path class="' + (cur ? 'ep-cur' : 'ep') + '" d="' + shape(cur ? 2 : 0, x, 9, cur ? 5 : 4) + '"/>';
    });
    var text = ts.length === 1 ? 'one episode' : (ts.length - 1) + ' earlier episodes: ' + p.prev.map(iso).join(', ');
    return '<svg class="eps" viewBox="0 0 ' + W + ' 18" role="img" aria-label="' + esc(text) + '"><line x1="6" x2="' + (W - 6) + '" y1="9" y2="9"/>' + marks.join('') + '</svg>';
  }
  function drawPatterns(all) {
    var rows = (all ? pats : pats.slice(0, PMAX)).map(function (k) {
      var p = D.pat[k];
      return '<tr><td>' + esc(p.reason) + '</td><td>' + esc(p.kind) + '</td><td>' + esc(p.ns) + '</td><td>' + esc(p.cluster) + '</td><td class="tpl">' + esc(p.template) +
        '</td><td>' + esc(p.status) + '</td><td>' + num(p.count) + '</td><td>' + p.per_min + '</td><td>' + (p.anomaly || '') + '</td><td>' + esc(iso(p.t0)) +
        '</td><td>' + dur(Math.max(0, p.t1 - p.t0)) + '</td><td>' + episodeStrip(p) + '</td></tr>';
    });
    document.getElementById('pattern-table').innerHTML = '<tr><th scope="col">reason</th><th scope="col">kind</th><th scope="col">namespace</th><th scope="col">cluster</th><th scope="col">message template</th>' +
      '<th scope="col">status</th><th scope="col">count</th><th scope="col">per min</th><th scope="col">anomaly</th><th scope="col">episode start</th><th scope="col">length</th><th scope="col">episodes</th></tr>' + rows.join('');
    var more = document.getElementById('pattern-more');
    more.hidden = all || pats.length <= PMAX;
    more.textContent = 'Show all ' + num(pats.length) + ' pattern episodes';
  }
  document.getElementById('pattern-more').addEventListener('click', function () { drawPatterns(true); });
  drawPatterns(false);
  if (!D.pat.length) document.getElementById('pattern-table').outerHTML = '<p>No recurring patterns.</p>';

  window.keventsReport = { readyMs: performance.now(), events: N, incidents: D.inc.length, patterns: D.pat.length, dataBytes: raw.length };
  document.body.setAttribute('data-ready', '1');
})();
