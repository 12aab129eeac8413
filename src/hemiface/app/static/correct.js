// hemiface app, landmark editor: the photo with its landmarks and outline as draggable SVG points.
// Zoom (wheel, buttons), pan (drag the photo), undo (button, Ctrl+Z); save sends the version the edit
// started from, so a newer correction saved in another tab is never silently undone (HTTP 409).
(function () {
  "use strict";
  const editor = document.getElementById("editor");
  if (!editor) { return; }
  const NS = "http://www.w3.org/2000/svg";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const mediaId = editor.dataset.media;
  const svg = document.getElementById("canvas");
  const statusEl = document.getElementById("save-status");
  const undoButton = document.getElementById("undo");
  const movedEl = document.getElementById("moved");
  const hoverEl = document.getElementById("hover-name");
  let data = null, view = null, full = null, face = null, version = 0;
  const undo = [];
  const original = {};  // key -> [x, y] as loaded
  const nodes = {};     // key -> circle
  let polygon = null, labels = [];

  function setStatus(text, kind) { statusEl.textContent = text; statusEl.className = kind || ""; }
  function key(kind, name) { return kind + ":" + name; }
  function get(k) { const [kind, name] = k.split(/:(.*)/s); return kind === "p" ? data.points[name] : data.outline[+name]; }
  function set(k, xy) {
    const [kind, name] = k.split(/:(.*)/s);
    if (kind === "p") { data.points[name] = xy; } else { data.outline[+name] = xy; }
    const c = nodes[k];
    c.setAttribute("cx", xy[0]); c.setAttribute("cy", xy[1]);
    const o = original[k];
    c.classList.toggle("moved", Math.abs(o[0] - xy[0]) > 1e-9 || Math.abs(o[1] - xy[1]) > 1e-9);
    if (kind === "o") { drawPolygon(); }
    const lab = labels.find(function (t) { return t.dataset.key === k; });
    if (lab) { lab.setAttribute("x", xy[0] + radius()); lab.setAttribute("y", xy[1]); }
  }
  function drawPolygon() { polygon.setAttribute("points", data.outline.map(function (p) { return p[0] + "," + p[1]; }).join(" ")); }
  function radius() { return Math.max(view[2], view[3]) / 250; }
  function applyView() {
    svg.setAttribute("viewBox", view.join(" "));
    const r = radius();
    Object.keys(nodes).forEach(function (k) { nodes[k].setAttribute("r", k[0] === "p" ? r * 1.3 : r); });
    labels.forEach(function (t) { t.setAttribute("font-size", r * 3); const xy = get(t.dataset.key); t.setAttribute("x", xy[0] + r); });
  }
  function moved() {
    const n = Object.keys(original).filter(function (k) { const a = original[k], b = get(k); return a[0] !== b[0] || a[1] !== b[1]; }).length;
    movedEl.textContent = n ? n + " point" + (n === 1 ? "" : "s") + " moved" : "";
    undoButton.disabled = undo.length === 0;
  }
  function toSvg(evt) {
    const pt = svg.createSVGPoint(); pt.x = evt.clientX; pt.y = evt.clientY;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }
  function zoom(factor, cx, cy) {
    const w = view[2] * factor, h = view[3] * factor;
    if (w < full[2] / 40 || w > full[2] * 4) { return; }
    if (cx === undefined) { cx = view[0] + view[2] / 2; cy = view[1] + view[3] / 2; }
    view = [cx - (cx - view[0]) * factor, cy - (cy - view[1]) * factor, w, h];
    applyView();
  }

  function build() {
    svg.textContent = "";
    const w = data.width_px, h = data.height_px;
    full = [0, 0, w, h];
    // open on the face: the outline's bounding box with a margin (zoom out for the whole photo)
    const xs = data.outline.map(function (p) { return p[0]; }), ys = data.outline.map(function (p) { return p[1]; });
    const x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    const m = 0.35 * Math.max(x1 - x0, y1 - y0);
    face = [x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m];
    view = face.slice();
    const img = document.createElementNS(NS, "image");
    img.setAttribute("href", editor.dataset.image); img.setAttribute("width", w); img.setAttribute("height", h);
    img.setAttribute("preserveAspectRatio", "none"); img.id = "photo";
    svg.appendChild(img);
    polygon = document.createElementNS(NS, "polygon"); polygon.setAttribute("class", "outline");
    svg.appendChild(polygon); drawPolygon();
    function add(k, xy, cls, title) {
      original[k] = xy.slice();
      const c = document.createElementNS(NS, "circle");
      c.setAttribute("class", cls); c.dataset.key = k;
      const t = document.createElementNS(NS, "title"); t.textContent = title; c.appendChild(t);
      c.setAttribute("cx", xy[0]); c.setAttribute("cy", xy[1]);
      c.addEventListener("pointerenter", function () { hoverEl.textContent = title; });
      c.addEventListener("pointerleave", function () { hoverEl.textContent = ""; });
      nodes[k] = c; svg.appendChild(c);
    }
    data.outline.forEach(function (p, i) { add(key("o", i), p, "outline-point", "outline point " + i); });
    Object.keys(data.points).sort().forEach(function (name) { add(key("p", name), data.points[name], "named-point", name); });
    labels = [];
    if (document.getElementById("show-names").checked) {
      Object.keys(data.points).forEach(function (name) {
        const t = document.createElementNS(NS, "text"); t.dataset.key = key("p", name); t.textContent = name;
        t.setAttribute("y", data.points[name][1]); svg.appendChild(t); labels.push(t);
      });
    }
    applyView(); moved();
  }

  // dragging a point, or panning the photo
  let drag = null;
  svg.addEventListener("pointerdown", function (evt) {
    const k = evt.target.dataset ? evt.target.dataset.key : undefined;
    const p = toSvg(evt);
    if (k && nodes[k] === evt.target) {
      const xy = get(k);
      drag = { kind: "point", key: k, start: xy.slice(), dx: xy[0] - p.x, dy: xy[1] - p.y };
    } else {
      drag = { kind: "pan", x: evt.clientX, y: evt.clientY, view: view.slice() };
    }
    svg.setPointerCapture(evt.pointerId);
    evt.preventDefault();
  });
  svg.addEventListener("pointermove", function (evt) {
    if (!drag) { return; }
    if (drag.kind === "point") {
      const p = toSvg(evt);
      set(drag.key, [p.x + drag.dx, p.y + drag.dy]);
    } else {
      const s = drag.view[2] / svg.getBoundingClientRect().width;
      view = [drag.view[0] - (evt.clientX - drag.x) * s, drag.view[1] - (evt.clientY - drag.y) * s, drag.view[2], drag.view[3]];
      applyView();
    }
  });
  function end() {
    if (drag && drag.kind === "point") {
      const now = get(drag.key);
      if (now[0] !== drag.start[0] || now[1] !== drag.start[1]) { undo.push({ key: drag.key, xy: drag.start }); }
      moved();
    }
    drag = null;
  }
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
  svg.addEventListener("wheel", function (evt) {
    evt.preventDefault();
    const p = toSvg(evt);
    zoom(evt.deltaY > 0 ? 1.25 : 0.8, p.x, p.y);
  }, { passive: false });
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(0.8); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(1.25); });
  document.getElementById("zoom-reset").addEventListener("click", function () { view = face.slice(); applyView(); });
  function doUndo() { const last = undo.pop(); if (last) { set(last.key, last.xy); moved(); } }
  undoButton.addEventListener("click", doUndo);
  document.addEventListener("keydown", function (evt) {
    if ((evt.ctrlKey || evt.metaKey) && evt.key === "z" && evt.target.tagName !== "TEXTAREA" && evt.target.tagName !== "INPUT") {
      evt.preventDefault(); doUndo();
    }
  });
  document.getElementById("show-names").addEventListener("change", function () {
    const v = view; build(); view = v; applyView();
  });

  document.getElementById("save-form").addEventListener("submit", function (evt) {
    evt.preventDefault();
    const reason = document.getElementById("reason").value.trim();
    if (!reason) { setStatus("give the reason for the correction (it is kept in the audit table)", "error"); return; }
    const button = document.getElementById("save");
    button.disabled = true;
    setStatus("saving and analysing the photo again…");
    fetch("/api/photos/" + mediaId + "/landmarks", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ points: data.points, outline: data.outline, reason: reason,
                             user: document.getElementById("user").value, base_version: version })
    }).then(function (r) { return r.json().then(function (d) { return [r.status, d]; }); }).then(function (x) {
      button.disabled = false;
      const st = x[0], d = x[1];
      if (st === 409) { setStatus("not saved: " + d.error, "error"); return; }
      if (st >= 400 && d.error) { setStatus("not saved: " + d.error, "error"); return; }
      version = d.version;
      document.getElementById("version").textContent = String(version);
      const before = d.symmetry_ratio_before_percent, after = d.symmetry_ratio_after_percent;
      if (d.status === "ok") {
        document.getElementById("ratio").textContent = after.toFixed(2);
        setStatus("saved: symmetry ratio " + (before === null ? "–" : before.toFixed(2)) + " % → " + after.toFixed(2) +
                  " % (recorded in the audit table)", "ok");
        Object.keys(original).forEach(function (k) { original[k] = get(k).slice(); });
        undo.length = 0;
        Object.keys(nodes).forEach(function (k) { nodes[k].classList.remove("moved"); });
        moved();
      } else {
        setStatus("correction recorded, but the analysis failed: " + d.message, "error");
      }
    }).catch(function (e) { button.disabled = false; setStatus("cannot reach the server: " + e, "error"); });
  });

  fetch("/api/photos/" + mediaId + "/landmarks", { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (d) {
      if (!d.points) { setStatus("no landmarks to edit: " + (d.message || d.status), "error"); return; }
      data = { points: d.points, outline: d.outline, width_px: d.width_px, height_px: d.height_px };
      version = d.version;
      build();
      editor.dataset.ready = "1";
    }).catch(function (e) { setStatus("cannot load the landmarks: " + e, "error"); });
})();
