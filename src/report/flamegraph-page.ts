// The flame graph page's style and script (browser JavaScript, kept as
// text: it runs in the page, not in Node). The script reads the stacks and
// their metadata from the page's JSON, builds the tree for the chosen PMC
// (merged, or with a level per process), and hands it to d3-flame-graph;
// the controls rebuild the chart (PMC, view, icicle) or drive it (search,
// reset). Everything the tests read has an id.

export const FLAMEGRAPH_PAGE_STYLE = `
body { font-family: Verdana, sans-serif; margin: 8px 16px; background: #fff; color: #222; }
header h1 { font-size: 18px; margin: 4px 0; }
#summary { margin: 2px 0; font-size: 13px; }
#legend { margin: 2px 0 6px; font-size: 12px; }
#legend span.swatch { display: inline-block; width: 11px; height: 11px; margin: 0 4px 0 10px; vertical-align: -1px; border: 1px solid #999; }
#controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; font-size: 13px; margin-bottom: 6px; }
#controls input[type=search] { width: 18em; }
#search-share { font-weight: bold; }
#details { min-height: 1.3em; font-size: 12px; color: #444; }
.d3-flame-graph-tip { background: #fffbe6; border: 1px solid #999; padding: 4px 6px; font-size: 12px; max-width: 60em; }
`;

export const FLAMEGRAPH_PAGE_SCRIPT = String.raw`(function () {
'use strict';
var stacks = JSON.parse(document.getElementById('profile-stacks').textContent);
var meta = JSON.parse(document.getElementById('profile-meta').textContent);
var KINDS = ['user', 'kernel', 'jit', 'unknown', 'process'];
var KIND_LABELS = { user: 'user', kernel: 'kernel', jit: 'JIT / JavaScript', unknown: 'unknown (no symbol)', process: 'process' };
var state = { pmc: 0, perProcess: meta.perProcess, inverted: false, term: '' };
for (var i = 0; i < meta.profiles.length; i++) if (meta.profiles[i].samples > 0) { state.pmc = i; break; }
// The view can be given in the address, e.g. page.html#search=hot&view=process&inverted&pmc=1.
(function () {
  var h = new URLSearchParams(location.hash.slice(1));
  if (h.has('search')) state.term = h.get('search');
  if (h.has('view')) state.perProcess = h.get('view') === 'process';
  if (h.has('inverted')) state.inverted = true;
  if (h.has('pmc') && meta.profiles[Number(h.get('pmc'))]) state.pmc = Number(h.get('pmc'));
})();
var chart = null;
var total = 0;

function el(tag, attrs, text) {
  var e = document.createElement(tag);
  for (var k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function grouped(n) { return Number(n).toLocaleString('en-US'); }
function percent(n, of) { return of > 0 ? (100 * n / of).toFixed(2) + '%' : '0%'; }

// A stable hue per name within its kind's colour family, as flamegraph.pl does.
function hash(name) {
  var h = 0;
  for (var i = 0; i < name.length && i < 24; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return (h % 1000) / 1000;
}
function colour(kind, name) {
  var v = hash(name);
  switch (kind) {
    case 'kernel': return 'rgb(' + (190 + Math.round(65 * v)) + ',' + (110 + Math.round(60 * v)) + ',0)';
    case 'jit': return 'rgb(' + (60 + Math.round(50 * v)) + ',' + (180 + Math.round(60 * v)) + ',' + (60 + Math.round(50 * v)) + ')';
    case 'unknown': var g = 170 + Math.round(40 * v); return 'rgb(' + g + ',' + g + ',' + g + ')';
    case 'process': return 'rgb(' + (110 + Math.round(50 * v)) + ',' + (160 + Math.round(40 * v)) + ',230)';
    default: var r = 50 + Math.round(80 * v); return 'rgb(' + (200 + Math.round(55 * v)) + ',' + r + ',' + r + ')';
  }
}

// The tree d3-flame-graph draws: value = samples in and below a node.
function buildTree(pmc, perProcess) {
  var root = { name: 'all', value: 0, kind: 'process', image: '', children: [] };
  var index = new Map();
  function child(parent, key, make) {
    var m = index.get(parent);
    if (!m) { m = new Map(); index.set(parent, m); }
    var c = m.get(key);
    if (!c) { c = make(); m.set(key, c); parent.children.push(c); }
    return c;
  }
  var list = stacks[pmc] || [];
  for (var s = 0; s < list.length; s++) {
    var st = list[s];
    var count = st[1];
    root.value += count;
    var node = root;
    if (perProcess) {
      var p = st[0];
      node = child(node, 'p' + p, function () { return { name: meta.processes[p], value: 0, kind: 'process', image: '', children: [] }; });
      node.value += count;
    }
    for (var k = 2; k < st.length; k++) {
      var f = st[k];
      node = child(node, f, function () {
        var fr = meta.frames[f];
        return { name: fr[0], value: 0, kind: KINDS[fr[1]], image: meta.images[fr[2]], children: [] };
      });
      node.value += count;
    }
  }
  return root;
}

function tooltipHtml(d) {
  var esc = function (s) { return String(s).replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; }); };
  var n = d.data.value;
  return '<b>' + esc(d.data.name) + '</b><br>' + esc(KIND_LABELS[d.data.kind]) + (d.data.image ? ' · ' + esc(d.data.image) : '') +
    '<br>' + grouped(n) + ' samples, ' + percent(n, total) + ' of all' +
    (d.parent ? ', ' + percent(n, d.parent.data.value) + ' of its caller' : '');
}

function showSearch(sum) {
  var out = document.getElementById('search-share');
  out.textContent = state.term ? state.term + ': ' + grouped(sum) + ' of ' + grouped(total) + ' samples (' + percent(sum, total) + ')' : '';
  out.dataset.samples = state.term ? String(sum) : '';
}

function render() {
  var container = document.getElementById('chart');
  if (chart) chart.destroy();
  container.textContent = '';
  var tree = buildTree(state.pmc, state.perProcess);
  total = tree.value;
  var tip = flamegraph.tooltip.defaultFlamegraphTooltip().html(tooltipHtml);
  chart = flamegraph.default()
    .width(Math.max(400, container.clientWidth || window.innerWidth - 40))
    .cellHeight(18)
    .minFrameSize(1)
    .transitionDuration(0)
    .inverted(state.inverted)
    .tooltip(tip)
    .setDetailsElement(document.getElementById('details'))
    .setColorMapper(function (d) { return d.highlight ? '#e600e6' : colour(d.data.kind, d.data.name); })
    .setSearchMatch(function (d, term) { return !!term && d.data.kind !== 'process' && d.data.name.toLowerCase().indexOf(term.toLowerCase()) >= 0; })
    .setSearchHandler(function (results, sum) { showSearch(sum); });
  // The first drawing (and the search the address may ask for) at once; clicks animate.
  window.d3.select(container).datum(tree).call(chart);
  if (state.term) chart.search(state.term); else showSearch(0);
  chart.transitionDuration(300);
  summary();
}

function summary() {
  var p = meta.profiles[state.pmc] || { name: '(no samples)', rate: 'rate unknown', samples: 0 };
  document.getElementById('summary').textContent =
    'event ' + p.name + ' · ' + p.rate +
    ' · ' + grouped(p.samples) + ' samples · ' + grouped(meta.dropped) + ' dropped · ' + grouped(meta.lost) + ' lost' +
    ' · ' + grouped(meta.processes.length) + ' process' + (meta.processes.length === 1 ? '' : 'es');
}

function controls() {
  var nav = document.getElementById('controls');
  var label = function (text, input) { var l = el('label', {}, text + ' '); l.appendChild(input); return l; };
  var pmc = el('select', { id: 'pmc' });
  meta.profiles.forEach(function (p, i) { var o = el('option', { value: String(i) }, p.name + ' (' + grouped(p.samples) + ' samples)'); if (i === state.pmc) o.selected = true; pmc.appendChild(o); });
  pmc.addEventListener('change', function () { state.pmc = Number(pmc.value); render(); });
  nav.appendChild(label('PMC', pmc));
  var view = el('select', { id: 'view' });
  view.appendChild(el('option', { value: 'merged' }, 'merged'));
  view.appendChild(el('option', { value: 'process' }, 'per process'));
  view.value = state.perProcess ? 'process' : 'merged';
  view.addEventListener('change', function () { state.perProcess = view.value === 'process'; render(); });
  nav.appendChild(label('view', view));
  var inverted = el('input', { id: 'inverted', type: 'checkbox' });
  inverted.checked = state.inverted;
  inverted.addEventListener('change', function () { state.inverted = inverted.checked; render(); });
  nav.appendChild(label('icicle (inverted)', inverted));
  var reset = el('button', { id: 'reset', type: 'button' }, 'Reset zoom');
  reset.addEventListener('click', function () { chart.resetZoom(); });
  nav.appendChild(reset);
  var search = el('input', { id: 'search', type: 'search', placeholder: 'search functions' });
  search.value = state.term;
  search.addEventListener('input', function () { state.term = search.value.trim(); if (state.term) chart.search(state.term); else { chart.clear(); showSearch(0); } });
  nav.appendChild(label('search', search));
  nav.appendChild(el('span', { id: 'search-share' }));
  var legend = document.getElementById('legend');
  legend.appendChild(document.createTextNode('colours:'));
  KINDS.forEach(function (k) {
    var sw = el('span', { class: 'swatch' });
    sw.style.background = colour(k, 'sample');
    legend.appendChild(sw);
    legend.appendChild(document.createTextNode(KIND_LABELS[k]));
  });
}

controls();
render();
window.tspmcFlamegraph = { chart: function () { return chart; }, state: state };
})();
`;
