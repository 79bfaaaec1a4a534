// Events page: the live stream (Server-Sent Events). The browser reconnects by itself and sends
// Last-Event-ID, so the server replays what was missed; a "gap" event says some are only in the history.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  const rows = document.getElementById("live-rows");
  const state = document.getElementById("live-state");
  const empty = document.getElementById("live-empty");
  const gap = document.getElementById("live-gap");
  const wrap = document.getElementById("live-wrap");
  const MAX_ROWS = 200;   // the page keeps the newest; the history has the rest
  const BADGE = { recognised: "ok", unknown: "warn", rejected: "bad" };

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function show(ev) {
    if (rows.querySelector('tr[data-event="' + ev.event_id + '"]')) return;   // a replay already shown
    const tr = document.createElement("tr");
    tr.className = "ev ev-" + ev.kind + " fresh";
    tr.dataset.event = ev.event_id;
    cell(tr, ev.time, "mono nowrap");
    cell(tr, ev.camera);
    const person = cell(tr, "");
    if (ev.user_id) {
      const id = document.createElement("span");
      id.className = "mono";
      id.textContent = ev.user_id;
      person.appendChild(id);
      if (ev.user_info) {
        const info = document.createElement("span");
        info.className = "muted";
        info.textContent = " " + ev.user_info;
        person.appendChild(info);
      }
    } else {
      person.textContent = "-";
      person.className = "muted";
    }
    const kind = cell(tr, "");
    const badge = document.createElement("span");
    badge.className = "badge " + (BADGE[ev.kind] || "");
    badge.textContent = ev.kind;
    kind.appendChild(badge);
    cell(tr, String(ev.error_code || ""), "code");
    cell(tr, ev.reason || "");
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > MAX_ROWS) rows.removeChild(rows.lastChild);
    if (empty) empty.hidden = true;
    wrap.hidden = false;
  }

  function connected(ok, text) {
    state.textContent = text;
    state.className = "badge " + (ok ? "ok" : "warn");
  }

  const source = new EventSource(live.dataset.stream + "?after=" + encodeURIComponent(live.dataset.after));
  source.onopen = function () { connected(true, "live"); };
  source.onerror = function () { connected(false, source.readyState === 2 ? "stopped: reload the page" : "reconnecting"); };
  source.onmessage = function (msg) { show(JSON.parse(msg.data)); };
  source.addEventListener("gap", function (msg) {
    gap.textContent = JSON.parse(msg.data).message;
    gap.hidden = false;
  });
})();
