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

  // A voice call's timeline: a click on it plays the call's recording (a WAV file beside the
  // run, linked by a relative path) from that moment; the playhead follows the audio.
  Array.prototype.forEach.call(document.querySelectorAll(".tl"), function (tl) {
    var audio = tl.querySelector("audio.tl-audio");
    var rows = tl.querySelector(".tl-rows");
    if (!audio || !rows) { return; }
    var total = Number(tl.getAttribute("data-duration-ms")) / 1000;
    var heads = tl.querySelectorAll(".tl-playhead");
    function playFrom(at) {
      audio.currentTime = at;
      tl.setAttribute("data-seek", at.toFixed(2));
      var played = audio.play();
      if (played && played.then) {
        played.then(function () { tl.setAttribute("data-playing", "1"); },
                    function () { tl.setAttribute("data-play-error", "1"); });
      }
    }
    rows.addEventListener("click", function (ev) {
      var track = tl.querySelector(".tl-track");
      var box = track.getBoundingClientRect();
      playFrom(Math.min(Math.max((ev.clientX - box.left) / box.width, 0), 1) * total);
    });
    // a link to a moment of a call: report.html#tl-3@2.5 opens case 3 and plays from 2.5 s
    var m = /^#(tl-\d+)@(\d+(?:\.\d+)?)$/.exec(window.location.hash);
    if (m && m[1] === tl.id) {
      var card = tl.closest("details");
      if (card) { card.open = true; }
      playFrom(Number(m[2]));
    }
    audio.addEventListener("timeupdate", function () {
      var pct = Math.min(audio.currentTime / total, 1) * 100 + "%";
      Array.prototype.forEach.call(heads, function (h) { h.hidden = false; h.style.left = pct; });
    });
    audio.addEventListener("loadedmetadata", function () { tl.setAttribute("data-audio-s", audio.duration.toFixed(2)); });
  });
})();
