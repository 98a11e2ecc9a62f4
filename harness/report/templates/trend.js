(function () {
  "use strict";
  // Draws the trend charts from the JSON block and wires the filters. Everything read from
  // the page is data: text goes in with textContent and attributes with setAttribute; no
  // string is ever parsed as HTML or evaluated.

  // Any script error is written into the page (and flagged on <body>), so a reader sees it
  // and the headless test can fail on it.
  function reportError(message) {
    document.body.setAttribute("data-js-error", "1");
    var box = document.getElementById("js-errors");
    if (!box) { return; }
    box.hidden = false;
    var li = document.createElement("li");
    li.textContent = String(message);
    box.querySelector("ul").appendChild(li);
  }
  window.addEventListener("error", function (e) {
    reportError((e.message || "script error") + (e.lineno ? " (line " + e.lineno + ")" : ""));
  });
  window.addEventListener("unhandledrejection", function (e) { reportError("unhandled promise rejection: " + e.reason); });

  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = ["#2457c5", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0b7285", "#f08c00", "#5c940d",
    "#364fc7", "#a61e4d", "#087f5b", "#495057"];
  var W = 460, H = 200, M = { l: 54, r: 14, t: 14, b: 26 };
  var byId = function (id) { return document.getElementById(id); };

  var dataEl = byId("trend-data");
  var data = dataEl ? JSON.parse(dataEl.textContent) : { points: [], dims: {}, metrics: [] };
  var points = data.points || [];
  var state = { dim: "topic", hidden: {}, topic: "", tag: "", status: "" };
  if (!data.dims || !data.dims[state.dim]) { state.dim = "overall"; }
  var tip = byId("tip");

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) { node.setAttribute(k, attrs[k]); } }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function h(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function fmt(unit, v, axis) {
    if (v === null || v === undefined || isNaN(v)) { return "—"; }
    if (unit === "pct" || unit === "budget") { return (v * 100).toFixed(axis ? 0 : 1) + "%"; }
    if (unit === "ms") { return v >= 10000 ? (v / 1000).toFixed(1) + " s" : Math.round(v).toLocaleString("en-US") + " ms"; }
    if (unit === "usd") { return "$" + (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(axis ? 2 : 4)); }
    if (unit === "score") { return v.toFixed(2); }
    if (v >= 10000) { return (v / 1000).toFixed(axis ? 0 : 1) + "k"; }
    return axis ? String(Math.round(v)) : v.toFixed(1).replace(/\.0$/, "");
  }

  function niceTicks(lo, hi, count) {
    if (lo === hi) {  // one value: pad around it, but a count or cost of 0 keeps its axis at 0
      var pad = Math.abs(lo) * 0.1 || 1;
      hi += pad;
      lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;
    }
    var raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10)), norm = raw / mag;
    var step = (norm >= 5 ? 10 : norm >= 2 ? 5 : norm >= 1 ? 2 : 1) * mag;
    if (norm < 1.5) { step = mag; }
    var start = Math.floor(lo / step) * step, ticks = [];
    for (var v = start; v <= hi + step * 0.5 && ticks.length < 12; v += step) { ticks.push(Math.round(v / step) * step); }
    return ticks;
  }

  function visibleKeys(dimData) {
    var keys = dimData.keys || [];
    var only = state.dim === "topic" ? state.topic : state.dim === "tag" ? state.tag : "";
    return keys.filter(function (k) { return (!only || k === only) && !state.hidden[k]; });
  }
  function colorOf(dimData, key) {
    var i = (dimData.keys || []).indexOf(key);
    return COLORS[(i < 0 ? 0 : i) % COLORS.length];
  }

  function drawChart(metric, dimData, keys) {
    var fig = h("figure", "chart");
    var cap = h("figcaption");
    cap.appendChild(h("span", null, metric.label));
    var last = h("span", "last");
    cap.appendChild(last);
    fig.appendChild(cap);
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": metric.label + " over time" }, fig);
    var series = (dimData.metrics || {})[metric.id] || {};
    var vals = [];
    keys.forEach(function (k) { (series[k] || []).forEach(function (v) { if (v !== null) { vals.push(v); } }); });
    var pw = W - M.l - M.r, ph = H - M.t - M.b;
    if (!vals.length || !points.length) {
      var t = el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "class": "nodata" }, svg);
      t.textContent = "no data";
      return fig;
    }
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    if (metric.unit === "pct") { lo = Math.max(0, lo - 0.02); hi = Math.min(1, hi + 0.02); }
    else if (metric.unit !== "score") { lo = Math.min(lo, 0); }
    var ticks = niceTicks(lo, hi, 4);
    lo = Math.min(lo, ticks[0]); hi = Math.max(hi, ticks[ticks.length - 1]);
    var x0 = points[0].x, x1 = points[points.length - 1].x;
    var X = function (i) { return M.l + (x1 === x0 ? pw / 2 : (points[i].x - x0) / (x1 - x0) * pw); };
    var Y = function (v) { return M.t + (hi === lo ? ph / 2 : (1 - (v - lo) / (hi - lo)) * ph); };
    ticks.forEach(function (v) {
      if (v < lo - 1e-9 || v > hi + 1e-9) { return; }
      el("line", { x1: M.l, x2: W - M.r, y1: Y(v), y2: Y(v), "class": "grid" }, svg);
      var t = el("text", { x: M.l - 6, y: Y(v) + 3.5, "text-anchor": "end", "class": "axis" }, svg);
      t.textContent = fmt(metric.unit, v, true);
    });
    var nx = Math.min(points.length, 5);
    var seen = {};
    for (var j = 0; j < nx; j++) {
      var i = nx === 1 ? 0 : Math.round(j * (points.length - 1) / (nx - 1));
      var label = String(points[i].label || "").slice(5, 10);
      if (seen[label]) { continue; }
      seen[label] = true;
      var tx = el("text", { x: X(i), y: H - 8, "text-anchor": j === 0 ? "start" : j === nx - 1 ? "end" : "middle", "class": "axis" }, svg);
      tx.textContent = label;
    }
    points.forEach(function (p, i) {
      if (!p.cls) { return; }
      var cls = ["regression", "drift", "infra"].indexOf(p.cls) >= 0 ? p.cls : "other";
      var m = el("rect", { x: X(i) - 2, y: M.t - 9, width: 4, height: 6, rx: 1, "class": "mark-" + cls }, svg);
      el("title", {}, m).textContent = p.label + " · " + p.cls;
    });
    points.forEach(function (p, i) {
      if (data.focusX !== null && data.focusX !== undefined && p.x === data.focusX) {
        el("line", { x1: X(i), x2: X(i), y1: M.t, y2: M.t + ph, "class": "focus" }, svg);
      }
    });
    var dots = points.length <= 60;
    var lastVals = [];
    keys.forEach(function (k) {
      var ys = series[k] || [], d = "", pen = false, color = colorOf(dimData, k);
      for (var i = 0; i < points.length; i++) {
        var v = ys[i];
        if (v === null || v === undefined) { pen = false; continue; }
        d += (pen ? "L" : "M") + X(i).toFixed(1) + " " + Y(v).toFixed(1);
        pen = true;
      }
      if (d) { el("path", { d: d, stroke: color, "class": "line" }, svg); }
      ys.forEach(function (v, i) {
        if (v === null || v === undefined) { return; }
        var isolated = (i === 0 || ys[i - 1] === null) && (i === ys.length - 1 || ys[i + 1] === null);
        if (dots || isolated) { el("circle", { cx: X(i), cy: Y(v), r: 2.4, fill: color, "class": "dot" }, svg); }
      });
      for (var back = ys.length - 1; back >= 0; back--) { if (ys[back] !== null && ys[back] !== undefined) { lastVals.push(ys[back]); break; } }
    });
    if (keys.length === 1 && lastVals.length) { last.textContent = "latest " + fmt(metric.unit, lastVals[0]); }
    var guide = el("line", { x1: 0, x2: 0, y1: M.t, y2: M.t + ph, "class": "guide", visibility: "hidden" }, svg);
    var hit = el("rect", { x: M.l, y: M.t, width: pw, height: ph, fill: "transparent" }, svg);
    hit.addEventListener("mousemove", function (ev) {
      var box = svg.getBoundingClientRect();
      var sx = (ev.clientX - box.left) * W / box.width;
      var best = 0, bestD = Infinity;
      for (var i = 0; i < points.length; i++) { var dd = Math.abs(X(i) - sx); if (dd < bestD) { bestD = dd; best = i; } }
      guide.setAttribute("x1", X(best)); guide.setAttribute("x2", X(best)); guide.setAttribute("visibility", "visible");
      showTip(ev, metric, dimData, keys, series, best);
    });
    hit.addEventListener("mouseleave", function () { guide.setAttribute("visibility", "hidden"); tip.hidden = true; });
    return fig;
  }

  function showTip(ev, metric, dimData, keys, series, i) {
    while (tip.firstChild) { tip.removeChild(tip.firstChild); }
    var p = points[i];
    tip.appendChild(h("div", "t-head", metric.label + " · " + p.label + (p.runs > 1 ? " (" + p.runs + " runs)" : "")));
    if (p.run_id) { tip.appendChild(h("div", "muted", p.run_id + (p.cls ? " · " + p.cls : ""))); }
    keys.forEach(function (k) {
      var row = h("div", "t-row"), sw = h("span", "sw");
      sw.style.background = colorOf(dimData, k);
      row.appendChild(sw);
      row.appendChild(h("span", null, k));
      row.appendChild(h("span", null, fmt(metric.unit, (series[k] || [])[i])));
      tip.appendChild(row);
    });
    tip.hidden = false;
    var x = ev.clientX + 14, y = ev.clientY + 14, r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) { x = ev.clientX - r.width - 14; }
    if (y + r.height > window.innerHeight - 8) { y = ev.clientY - r.height - 14; }
    tip.style.left = Math.max(4, x) + "px";
    tip.style.top = Math.max(4, y) + "px";
  }

  function drawLegend(dimData) {
    var legend = byId("legend");
    if (!legend) { return; }
    while (legend.firstChild) { legend.removeChild(legend.firstChild); }
    var only = state.dim === "topic" ? state.topic : state.dim === "tag" ? state.tag : "";
    (dimData.keys || []).forEach(function (k) {
      if (only && k !== only) { return; }
      var b = h("button", state.hidden[k] ? "off" : "");
      b.type = "button";
      b.setAttribute("aria-pressed", state.hidden[k] ? "false" : "true");
      var sw = h("span", "sw");
      sw.style.background = colorOf(dimData, k);
      b.appendChild(sw);
      b.appendChild(document.createTextNode(k));
      b.addEventListener("click", function () { state.hidden[k] = !state.hidden[k]; drawCharts(); });
      legend.appendChild(b);
    });
    var cut = dimData.hidden_count || 0;
    if (cut) {
      legend.appendChild(h("span", "more", "+" + cut + " smaller not drawn: " + (dimData.hidden || []).slice(0, 8).join(", ") + (cut > 8 ? ", …" : "")));
    }
  }

  function drawCharts() {
    var box = byId("charts");
    if (!box || !points.length) { return; }
    var dimData = data.dims[state.dim] || { keys: [], metrics: {} };
    drawLegend(dimData);
    while (box.firstChild) { box.removeChild(box.firstChild); }
    var keys = visibleKeys(dimData);
    (data.metrics || []).forEach(function (m) { box.appendChild(drawChart(m, dimData, keys)); });
    Array.prototype.forEach.call(document.querySelectorAll(".tab[data-dim]"), function (t) {
      t.setAttribute("aria-selected", t.getAttribute("data-dim") === state.dim ? "true" : "false");
    });
  }

  // One burn-down chart per objective: its error budget left after each run (below 0: overspent).
  function drawBudgets() {
    var box = byId("budget-charts"), b = data.budgets;
    if (!box || !b || !points.length) { return; }
    (b.keys || []).forEach(function (k) {
      var label = "Budget left · " + k + ((b.labels || {})[k] ? " · " + b.labels[k] : "");
      box.appendChild(drawChart({ id: "budget_left", label: label, unit: "budget" }, b, [k]));
    });
  }
  drawBudgets();

  // ---- filters over the lists (changed cases, flaky cases, transcripts)
  var items = Array.prototype.map.call(document.querySelectorAll(".f-item"), function (node) {
    var tags = [];
    try { tags = JSON.parse(node.getAttribute("data-tags") || "[]"); } catch (e) { tags = []; }
    return { el: node, topic: node.getAttribute("data-topic"), status: node.getAttribute("data-status"), tags: tags };
  });

  function applyFilters() {
    var counts = {};
    items.forEach(function (it) {
      var ok = (!state.topic || it.topic === state.topic) && (!state.tag || it.tags.indexOf(state.tag) !== -1) &&
        (!state.status || it.status === state.status);
      if (it.el.hidden === ok) { it.el.hidden = !ok; }
      var list = it.el.closest(".f-list");
      if (list) {
        var c = counts[list.id] || (counts[list.id] = { shown: 0, all: 0 });
        c.all++; if (ok) { c.shown++; }
      }
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-shown-for]"), function (span) {
      var c = counts[span.getAttribute("data-shown-for")];
      span.textContent = c ? c.shown + " of " + c.all + " shown" : "";
    });
    Array.prototype.forEach.call(document.querySelectorAll("tr.f-row"), function (row) {
      row.hidden = !!state.topic && row.getAttribute("data-topic") !== state.topic;
    });
    ["f-topic", "f-tag", "f-status"].forEach(function (id) {
      var s = byId(id); if (s) { s.classList.toggle("active", !!s.value); }
    });
    drawCharts();
  }

  [["f-topic", "topic"], ["f-tag", "tag"], ["f-status", "status"]].forEach(function (pair) {
    var s = byId(pair[0]);
    if (!s) { return; }
    s.addEventListener("change", function () {
      state[pair[1]] = s.value;
      // a topic or tag filter is most useful on the lines of that dimension
      if (pair[1] === "topic" && s.value && data.dims.topic) { state.dim = "topic"; }
      if (pair[1] === "tag" && s.value && data.dims.tag) { state.dim = "tag"; }
      applyFilters();
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll(".tab[data-dim]"), function (t) {
    t.addEventListener("click", function () { state.dim = t.getAttribute("data-dim"); drawCharts(); });
  });

  var runFilter = byId("f-run-verdict");
  if (runFilter) {
    runFilter.addEventListener("change", function () {
      var v = runFilter.value;
      Array.prototype.forEach.call(document.querySelectorAll("tr.run-row"), function (row) {
        row.hidden = !!v && row.getAttribute("data-cls") !== v;
      });
    });
  }

  var expand = byId("expand-all"), collapse = byId("collapse-all");
  var caseEls = Array.prototype.slice.call(document.querySelectorAll("details.case"));
  if (expand) { expand.addEventListener("click", function () { caseEls.forEach(function (d) { if (!d.hidden) { d.open = true; } }); }); }
  if (collapse) { collapse.addEventListener("click", function () { caseEls.forEach(function (d) { d.open = false; }); }); }
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest("[data-open-case]") : null;
    if (!a) { return; }
    var want = a.getAttribute("data-open-case");
    for (var i = 0; i < caseEls.length; i++) {
      if (caseEls[i].getAttribute("data-case") === want) {
        ev.preventDefault();
        caseEls[i].hidden = false;
        caseEls[i].open = true;
        caseEls[i].scrollIntoView({ block: "start" });
        return;
      }
    }
  });

  applyFilters();
  document.body.setAttribute("data-ready", "1");
})();
