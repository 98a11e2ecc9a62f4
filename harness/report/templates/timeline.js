(function () {
  "use strict";
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
