"""The survey page's one script: one question at a time, answers saved as given, kiosk idle reset.

Kept as a Python string so it ships with the package; the page allows exactly this text by its
SHA-256 hash (Content-Security-Policy), so any edit here changes the hash with it.
"""

SCRIPT = """(function () {
  "use strict";
  var f = document.getElementById("survey");
  if (!f || !window.fetch || !f.querySelectorAll) return;
  var d = f.dataset;
  var qs = [].slice.call(f.querySelectorAll(".q"));
  var btn = f.querySelector("button[type=submit]");
  var back = document.getElementById("back");
  var count = document.getElementById("count");
  var bar = document.getElementById("bar");
  var done = +d.done, total = +d.total, last = d.last === "1", i = 0, pointer = 0;
  f.noValidate = true;
  document.documentElement.className += " js";

  function inputs(q) { return [].slice.call(q.querySelectorAll("input,textarea")); }
  function value(q) {
    var kind = q.dataset.kind;
    if (kind === "text") {
      var t = q.querySelector("textarea").value;
      return t.trim() ? t : null;
    }
    var on = inputs(q).filter(function (e) { return e.checked; }).map(function (e) { return e.value; });
    if (!on.length) return null;
    if (kind === "list") return on;
    if (kind === "int") return parseInt(on[0], 10);
    if (kind === "bool") return on[0] === "yes";
    return on[0];
  }
  function save(q) {
    return fetch(d.save + encodeURIComponent(q.dataset.id), {
      method: "PUT",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value: value(q) })
    }).catch(function () { /* the form post at the end of the page saves it again */ });
  }
  function error(q, on) {
    var p = q.querySelector(".error");
    q.className = q.className.replace(/ ?invalid/, "") + (on ? " invalid" : "");
    if (on && !p) {
      p = document.createElement("p");
      p.className = "error";
      p.id = "err-" + q.dataset.id;
      p.setAttribute("role", "alert");
      p.textContent = d.required;
      var head = q.querySelector("legend,label");
      head.parentNode.insertBefore(p, head.nextSibling);
    }
    if (!on && p) p.parentNode.removeChild(p);
  }
  function show(k, focus) {
    i = k;
    qs.forEach(function (q, j) { q.hidden = j !== k; });
    count.textContent = d.progress.replace("{n}", done + k + 1).replace("{total}", total);
    bar.style.width = Math.round(100 * (done + k) / total) + "%";
    bar.parentNode.setAttribute("aria-valuenow", done + k);
    btn.textContent = last && k === qs.length - 1 ? d.send : d.next;
    if (back) back.hidden = !(k > 0 || d.back);
    if (focus) {
      var target = qs[k].querySelector("input:checked") || qs[k].querySelector("input,textarea");
      if (target) target.focus();
    }
  }
  function advance(q) {
    if (q.dataset.required && value(q) === null) {
      error(q, true);
      var first = q.querySelector("input,textarea");
      if (first) first.focus();
      return false;
    }
    error(q, false);
    if (i < qs.length - 1) {
      if (q.dataset.kind === "text") save(q);
      show(i + 1, true);
      return false;
    }
    return true; // the last question on this page: the form posts and the server decides what is next
  }
  f.addEventListener("submit", function (e) {
    if (!advance(qs[i])) e.preventDefault();
  });
  f.addEventListener("pointerdown", function () { pointer = Date.now(); });
  f.addEventListener("change", function (e) {
    var q = e.target.closest(".q");
    if (!q) return;
    if (q.dataset.kind !== "text") save(q);
    // A tap on a choice answers and moves on; keyboard users move on with Enter.
    if (q.dataset.auto && Date.now() - pointer < 1500) {
      var at = i;
      setTimeout(function () {
        if (i !== at) return;
        if (at < qs.length - 1) advance(q);
        else if (!last) f.requestSubmit ? f.requestSubmit(btn) : f.submit();
      }, 250);
    }
  });
  if (back) back.addEventListener("click", function (e) {
    if (i > 0) { e.preventDefault(); show(i - 1, true); }
  });
  if (d.idle) {
    var timer = 0;
    var arm = function () {
      clearTimeout(timer);
      timer = setTimeout(function () { location.href = d.reset; }, +d.idle * 1000);
    };
    ["pointerdown", "keydown", "input"].forEach(function (ev) { document.addEventListener(ev, arm); });
    arm();
  }
  show(Math.min(+d.start || 0, qs.length - 1), false);
})();
"""
