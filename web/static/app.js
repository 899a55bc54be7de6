// vmha console: follow the cluster live. The server sends the version of
// what the pages show whenever it changes; the page then fetches its own
// main part again and swaps it in place, without a reload. Nothing else
// runs here: every action is a plain form, confirmed on its own page.
(function () {
  "use strict";
  var body = document.body;
  if (!body || body.dataset.live !== "1" || !window.EventSource) return;
  var indicator = document.getElementById("live");
  var current = body.dataset.version;
  var busy = false, again = false;

  function mark(on, text) {
    if (!indicator) return;
    indicator.textContent = text;
    indicator.className = on ? "live" : "live off";
  }

  // editing: the user is typing in a form of the main part; swapping now
  // would take their input away, so wait for the next change.
  function editing() {
    var a = document.activeElement;
    var main = document.getElementById("main");
    return a && main && main.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName);
  }

  function refresh() {
    if (busy) { again = true; return; }
    if (editing()) return;
    busy = true;
    fetch(location.href, { headers: { "X-Vmha-Partial": "1" }, credentials: "same-origin", redirect: "manual" })
      .then(function (r) {
        if (r.status === 401 || r.type === "opaqueredirect") { location.reload(); return null; }
        if (!r.ok) return null;
        var v = r.headers.get("X-Vmha-Version");
        return r.text().then(function (html) {
          var main = document.getElementById("main");
          if (main && !editing()) {
            main.innerHTML = html;
            if (v) { current = v; body.dataset.version = v; }
            body.dataset.swaps = String(Number(body.dataset.swaps || "0") + 1);
          }
        });
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
        poll();
      });
  }

  // A page whose content changes without the cluster's state changing
  // (a migration's progress) asks to be fetched again every so often.
  var timer = null;
  function poll() {
    var el = document.querySelector("#main [data-refresh]");
    if (timer || !el) return;
    timer = setTimeout(function () { timer = null; refresh(); }, Number(el.dataset.refresh) || 1000);
  }
  poll();

  var es = new EventSource("/live");
  es.addEventListener("version", function (e) {
    mark(true, "live");
    if (e.data !== current) refresh();
  });
  es.addEventListener("logout", function () { es.close(); location.reload(); });
  es.onopen = function () { mark(true, "live"); };
  es.onerror = function () { mark(false, "reconnecting…"); };
})();
