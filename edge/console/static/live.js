/* edge console: the live view and the kiosk page (edge/console/pages/live.py).
   One WebSocket per camera; each message: 4-byte big-endian header length, JSON header,
   JPEG. The frame is drawn, then "next" is sent: the server sends one frame at a time,
   so a slow viewer gets fewer frames, never a queue. window.edgeLive holds the figures
   (frames, bytes, latency = drawn time - capture time, one clock) the benchmark reads. */
(function () {
  "use strict";
  var HOLD_MS = 4000;                 // a result stays on the kiosk this long after the person left
  var stats = window.edgeLive = { frames: 0, bytes: 0, latencies: [], opened: 0, last: null };
  var COLOURS = { tracking: "#4aa3ff", searching: "#4aa3ff", recognised: "#2fbf56", unknown: "#f0b429",
                  rejected: "#ff4d4f" };

  function div(parent, cls, text) {
    var d = document.createElement("div");
    d.className = cls; d.textContent = text; parent.appendChild(d);
  }

  function score(v) { return v === null || v === undefined ? "" : v.toFixed(1); }

  function label(t, short) {
    if (t.phase === "recognised") return "#" + t.track_id + " " + t.name + " " + score(t.score);
    if (t.phase === "unknown") return "#" + t.track_id + " unknown" + (t.score ? " (best " + score(t.score) + ")" : "");
    if (t.phase === "rejected") return "#" + t.track_id + (t.name ? " " + t.name + " " + score(t.score) + ":" : "") +
      " rejected " + t.error_code + (short ? "" : " " + t.error_msg);
    if (t.phase === "searching") {
      var s = "#" + t.track_id + " searching (" + t.searched + ")";
      if (t.name) s += ": " + t.name + " " + score(t.score) + " / " + score(t.threshold);
      return s;
    }
    return "#" + t.track_id + " tracking";
  }

  function liveness(t) {
    if (!t.liveness || t.phase === "unknown" || t.phase === "recognised") return "";
    if (t.liveness_reason === "" && t.phase === "rejected") return "liveness " + t.liveness;
    return "liveness " + t.liveness + (t.liveness_reason ? ": " + t.liveness_reason : "");
  }

  function draw(canvas, bitmap, ov, opts) {
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width; canvas.height = bitmap.height;
    }
    var g = canvas.getContext("2d");
    g.drawImage(bitmap, 0, 0);
    var k = bitmap.width / (ov.width || bitmap.width);
    var font = Math.max(14, Math.round(canvas.width / 40));
    g.lineWidth = Math.max(2, Math.round(canvas.width / 320));
    g.font = "600 " + font + "px system-ui, sans-serif";
    (ov.tracks || []).forEach(function (t) {
      var x = t.box[0] * k, y = t.box[1] * k, w = (t.box[2] - t.box[0]) * k, h = (t.box[3] - t.box[1]) * k;
      var c = COLOURS[t.phase] || "#fff";
      g.strokeStyle = c; g.strokeRect(x, y, w, h);
      var lines = opts.noLabels ? [] : [label(t, true)];
      if (t.liveness && (t.phase === "searching" || t.phase === "rejected") && !opts.noLabels) {
        lines.push("liveness " + t.liveness);
      }
      lines.forEach(function (text, i) {
        var tw = g.measureText(text).width + 8, ty = Math.max(0, y - (lines.length - i) * (font + 6));
        var tx = Math.max(0, Math.min(x, canvas.width - tw));   // inside the frame
        g.fillStyle = "rgba(0,0,0,.65)"; g.fillRect(tx, ty, tw, font + 6);
        g.fillStyle = c; g.fillText(text, tx + 4, ty + font);
      });
      if (t.prompt && !opts.noPrompt) banner(g, canvas, t.prompt, font * 1.6, 0, "#ffd166");
    });
    canvas.dataset.boxes = String((ov.tracks || []).length);
    if (ov.guidance && !opts.noGuidance) banner(g, canvas, ov.guidance, font * 1.2, canvas.height - font * 2.2, "#fff");
  }

  function banner(g, canvas, text, size, y, colour) {
    g.save();
    g.font = "700 " + Math.round(size) + "px system-ui, sans-serif";
    g.fillStyle = "rgba(0,0,0,.55)"; g.fillRect(0, y, canvas.width, size * 1.6);
    g.fillStyle = colour; g.textAlign = "center"; g.fillText(text, canvas.width / 2, y + size * 1.15);
    g.restore();
  }

  function connect(canvas, onFrame, onState, opts) {
    opts = opts || {};
    var camera = canvas.dataset.live, failures = 0;
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
              "/console/api/live/" + encodeURIComponent(camera);
    function open() {
      var ws = new WebSocket(url), got = false;
      ws.binaryType = "arraybuffer";
      ws.onopen = function () { stats.opened++; onState("waiting for frames..."); };
      ws.onmessage = function (ev) {
        got = true; failures = 0;
        var buf = ev.data, n = new DataView(buf).getUint32(0);
        var header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
        createImageBitmap(new Blob([new Uint8Array(buf, 4 + n)], { type: "image/jpeg" })).then(function (bmp) {
          draw(canvas, bmp, header.overlay, opts);
          bmp.close();
          var latency = Date.now() - header.captured * 1000;
          stats.frames++; stats.bytes += buf.byteLength; stats.last = header;
          stats.latencies.push(latency);
          if (stats.latencies.length > 2000) stats.latencies.shift();
          canvas.dataset.frames = String(stats.frames);
          onFrame(header, latency);
          ws.send("next");
        }, function () { ws.send("next"); });
      };
      ws.onclose = function () {
        failures = got ? 0 : failures + 1;
        if (failures >= 3) { location.reload(); return; }   // the session ended: the login page
        onState("reconnecting...");
        setTimeout(open, 1000);
      };
    }
    open();
  }

  // -- the live page -----------------------------------------------------------------------
  function trackItem(t, why) {
    var li = document.createElement("li");
    li.className = "phase-" + t.phase;
    var head = document.createElement("strong");
    head.textContent = label(t);
    li.appendChild(head);
    var bits = [];
    if (t.reason) bits.push(t.reason);
    if (liveness(t)) bits.push(liveness(t));
    if (t.prompt) bits.push("challenge: " + t.prompt);
    if (t.guidance) bits.push("guidance: " + t.guidance);
    if (bits.length) div(li, "muted", bits.join(" | "));
    var w = t.error_code && why[String(t.error_code)];
    if (w) div(li, "why", w.explain);
    return li;
  }

  function livePage(section) {
    var canvas = section.querySelector("canvas"), stat = section.querySelector("[data-stat]");
    var list = section.querySelector("[data-tracks]"), guide = section.querySelector("[data-guidance]");
    var times = [], bytes = 0, since = performance.now(), lat = [];
    connect(canvas, function (header, latency) {
      times.push(performance.now()); lat.push(latency);
      var ov = header.overlay;
      guide.textContent = ov.guidance || "";
      list.replaceChildren.apply(list, (ov.tracks || []).map(function (t) { return trackItem(t, header.why || {}); }));
    }, function (text) { stat.textContent = text; }, { noGuidance: true });
    setInterval(function () {
      var now = performance.now();
      times = times.filter(function (t) { return now - t < 2000; });
      if (!times.length) return;
      var sorted = lat.slice(-20).sort(function (a, b) { return a - b; });
      var kb = (stats.bytes - bytes) / ((now - since) / 1000) / 1024;
      bytes = stats.bytes; since = now;
      stat.textContent = (times.length / 2).toFixed(1) + " fps, " + Math.round(sorted[sorted.length >> 1]) +
        " ms capture to screen, " + Math.round(kb) + " kB/s";
    }, 1000);
    var form = section.querySelector("[data-enrol]");
    if (form) enrolForm(section, form);
  }

  function post(url, csrf, body) {
    return fetch(url, { method: "POST", credentials: "same-origin",
                        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
                        body: JSON.stringify(body) }).then(function (r) { return r.json(); });
  }

  function say(box, cls, text, detail) {
    box.className = "live-result " + cls;
    box.textContent = text;
    if (detail) div(box, "why", detail);
  }

  function enrolForm(section, form) {
    var camera = section.dataset.camera, csrf = section.dataset.csrf, box = section.querySelector("[data-result]");
    var base = "/console/api/live/" + encodeURIComponent(camera);
    function fields() {
      return { user_id: form.user_id.value.trim(), user_info: form.user_info.value.trim(),
               group_id: form.group_id.value.trim() };
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = fields();
      say(box, "", "Enrolling the face in view...");
      post(base + "/enrol", csrf, f).then(function (a) {
        if (a.error_code === 0) {
          say(box, "notice", "Enrolled " + a.result.group_id + "/" + a.result.user_id +
              ": watch the live view name " + (f.user_info || f.user_id) + " as the decision forms.",
              a.result.duplicates.length ? "Warning: also looks like " + a.result.duplicates.map(function (d) {
                return d.group_id + "/" + d.user_id + " (" + d.score.toFixed(1) + ")"; }).join(", ") : "");
        } else {
          say(box, "alert", "Not enrolled: " + a.error_code + " " + a.error_msg, a.explain || "");
        }
      }, function (e) { say(box, "alert", "Not enrolled: " + e); });
    });
    form.querySelector("[data-capture]").addEventListener("click", function () {
      if (!form.reportValidity()) return;
      say(box, "", "Starting the capture...");
      var buttons = form.querySelectorAll("button");
      function busy(on) { buttons.forEach(function (b) { b.disabled = on; }); }
      busy(true);
      post(base + "/capture", csrf, fields()).then(function (a) {
        if (a.error_code !== 0) {
          busy(false);
          say(box, "alert", a.error_code + " " + a.error_msg, a.explain || "");
          return;
        }
        var timer = setInterval(function () {
          fetch(base + "/capture", { credentials: "same-origin" }).then(function (r) { return r.json(); })
          .then(function (s) {
            var st = s.result || {};
            if (st.running) {
              say(box, "", ">> " + (st.hint || "...") + " (" + st.enrolled + "/" + st.frames + ")");
              return;
            }
            clearInterval(timer);
            busy(false);
            var bad = (st.outcomes || []).filter(function (o) { return o.status === "rejected"; });
            say(box, st.enrolled ? "notice" : "alert", st.enrolled + " of " + st.frames + " frames enrolled for " +
                st.group_id + "/" + st.user_id + (st.error ? ": " + st.error : ""),
                bad.map(function (o) {
                  return "rejected " + o.error_code + " " + o.error_msg + ": " + (o.explain || "");
                }).join("\n"));
          });
        }, 400);
      });
    });
  }

  // -- the kiosk page ----------------------------------------------------------------------
  function kiosk(body) {
    var canvas = body.querySelector("canvas"), banner = body.querySelector("[data-banner]");
    var text = body.querySelector("[data-banner-text]"), held = null;
    function show(cls, words) { banner.className = "kiosk-banner " + cls; text.textContent = words; }
    connect(canvas, function (header) {
      var ov = header.overlay, why = header.why || {}, now = Date.now();
      var decided = (ov.tracks || []).filter(function (t) {
        return t.phase === "recognised" || t.phase === "unknown" || t.phase === "rejected"; })[0];
      if (decided) {
        var words = decided.phase === "recognised" ? "Welcome, " + decided.name :
          decided.phase === "unknown" ? body.dataset.notRecognised :
          (why[String(decided.error_code)] || {}).kiosk || ("Not let in: " + decided.error_msg);
        held = { cls: decided.phase, words: words, until: now + HOLD_MS };
      }
      var prompt = (ov.tracks || []).map(function (t) { return t.prompt; }).filter(Boolean)[0];
      if (prompt) show("prompt", prompt);
      else if (held && now < held.until) show(held.cls, held.words);
      else show("guide", ov.guidance || "Look at the camera");
    }, function (state) { show("guide", state); }, { noGuidance: true, noPrompt: true, noLabels: true });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.classList.contains("kiosk")) { kiosk(document.body); return; }
    document.querySelectorAll(".live-camera").forEach(livePage);
  });
})();
