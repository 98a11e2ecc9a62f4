(function () {
  "use strict";
  // Filters and expand/collapse. Reads only data- attributes and element text; nothing in
  // the page is evaluated or inserted as HTML.
  var byId = function (id) { return document.getElementById(id); };
  var fStatus = byId("f-status"), fTopic = byId("f-topic"), fTag = byId("f-tag"), fText = byId("f-text");
  var shownEl = byId("shown"), noMatch = byId("no-match");
  if (!fStatus) { return; }
  var cases = Array.prototype.map.call(document.querySelectorAll("details.case"), function (el) {
    var tags = [];
    try { tags = JSON.parse(el.getAttribute("data-tags") || "[]"); } catch (e) { tags = []; }
    var head = el.querySelector("summary");
    return {
      el: el,
      status: el.getAttribute("data-status"),
      topic: el.getAttribute("data-topic"),
      tags: tags,
      text: head ? head.textContent.toLowerCase() : ""
    };
  });

  function apply() {
    var s = fStatus.value, t = fTopic.value, g = fTag.value, q = fText.value.trim().toLowerCase();
    var shown = 0;
    for (var i = 0; i < cases.length; i++) {
      var c = cases[i];
      var ok = (!s || c.status === s) && (!t || c.topic === t) &&
        (!g || c.tags.indexOf(g) !== -1) && (!q || c.text.indexOf(q) !== -1);
      if (c.el.hidden === ok) { c.el.hidden = !ok; }
      if (ok) { shown++; }
    }
    shownEl.textContent = shown + " of " + cases.length + " cases";
    if (noMatch) { noMatch.hidden = shown !== 0 || cases.length === 0; }
  }

  [fStatus, fTopic, fTag].forEach(function (el) { el.addEventListener("change", apply); });
  var timer = null;
  fText.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(apply, 120);
  });
  byId("expand-all").addEventListener("click", function () {
    cases.forEach(function (c) { if (!c.el.hidden) { c.el.open = true; } });
  });
  byId("collapse-all").addEventListener("click", function () {
    cases.forEach(function (c) { c.el.open = false; });
  });
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest ? ev.target.closest("[data-filter-topic]") : null;
    if (!btn) { return; }
    fTopic.value = btn.getAttribute("data-filter-topic");
    apply();
    byId("cases").scrollIntoView({ behavior: "smooth" });
  });
  apply();

})();
