"""The console's only script: live updates of an open page through the browser's own EventSource. Every
page works without it; with it, a page whose ``#live`` region names a stream (``data-live``) reloads
that region when the stream says ``changed``, and says so in its status line (``aria-live``). Boxes
ticked in the region (cases chosen for a bulk action) stay ticked across a reload."""

SCRIPT = """
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!live || !live.getAttribute("data-live") || !window.EventSource || !window.fetch) return;
  var busy = false, again = false;
  function say(text) { if (status) status.textContent = text; }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        if (fresh) {
          var ticked = {};
          live.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
            ticked[box.name + "=" + box.value] = true;
          });
          live.innerHTML = fresh.innerHTML;
          live.querySelectorAll("input[type=checkbox]").forEach(function (box) {
            if (ticked[box.name + "=" + box.value]) box.checked = true;
          });
          say("Live: updated at " + new Date().toLocaleTimeString() + ".");
        }
      })
      .catch(function () { say("Live updates paused: reload the page."); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var source = new EventSource(live.getAttribute("data-live"));
  source.addEventListener("open", function () { say("Live: changes appear here by themselves."); });
  source.addEventListener("changed", refresh);
  source.addEventListener("error", function () { say("Live updates reconnecting…"); });
  document.documentElement.setAttribute("data-live-ready", "1");
})();
""".strip()
