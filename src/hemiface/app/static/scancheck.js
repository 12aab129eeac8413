// hemiface app, 3D checks of a scan: paint the stable area (areas known to be unaffected, both sides), mirror
// the painting across the plane, choose the plane method or set the plane by hand, save with a reason.
// The painting travels as a bit mask over the display's vertices with the display's id (the server maps it
// back to exactly the scan's vertices); a save carries the version it started from, so a newer setting saved
// in another tab is never silently undone (HTTP 409). Text goes in with textContent only.
(function () {
  "use strict";
  const root = document.getElementById("check");
  if (!root) { return; }
  const V = window.HemifaceView3D, THREE = window.THREE;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = function (id) { return document.getElementById(id); };
  const statusEl = $("check-status"), saveStatus = $("save-status"), recomputeButton = $("recompute");
  let data = null, viewer = null, positions = null, painted = null, n = 0, version = 0;
  let plane0 = null, planeMesh = null, grid = null, edge = 1, scheduled = false, painting = false;

  function setStatus(el, text, kind) { el.textContent = text; el.className = kind || "legend"; }
  function tool() { return document.querySelector('input[name="tool"]:checked').value; }
  function method() { return document.querySelector('input[name="plane"]:checked').value; }
  function vec(a) { return new THREE.Vector3(a[0], a[1], a[2]); }
  function count() { let c = 0; for (let i = 0; i < n; i++) { c += painted[i]; } return c; }

  function unpack(b64, size) {
    const bytes = new Uint8Array(V.decode(b64, Uint8Array).buffer), out = new Uint8Array(size);
    for (let i = 0; i < size; i++) { out[i] = (bytes[i >> 3] >> (i & 7)) & 1; }
    return out;
  }
  function pack(bits) {
    const bytes = new Uint8Array((bits.length + 7) >> 3);
    for (let i = 0; i < bits.length; i++) { if (bits[i]) { bytes[i >> 3] |= 1 << (i & 7); } }
    let text = "";
    for (let i = 0; i < bytes.length; i += 8192) { text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192)); }
    return btoa(text);
  }

  function tint(i, c, k) {
    if (painted[i]) { c[k] = 0.25 * c[k]; c[k + 1] = 0.55 + 0.25 * c[k + 1]; c[k + 2] = 0.25 * c[k + 2]; }
  }
  function recolour() {
    if (scheduled) { return; }
    scheduled = true;
    window.requestAnimationFrame(function () {
      scheduled = false;
      viewer.recolour(tint);
      $("painted-count").textContent = String(count());
    });
  }

  // ---------------------------------------------------------------- the plane
  function axis(name, fallback) { return data.axes && data.axes[name] ? vec(data.axes[name]).normalize() : fallback; }
  function currentPlane() {
    const n0 = vec(plane0.normal).normalize(), p0 = vec(plane0.point);
    if (method() !== "hand") { return { normal: n0, point: p0 }; }
    const deg = Math.PI / 180;
    const q1 = new THREE.Quaternion().setFromAxisAngle(axis("superior", new THREE.Vector3(0, 1, 0)), +$("yaw").value * deg);
    const q2 = new THREE.Quaternion().setFromAxisAngle(axis("anterior", new THREE.Vector3(0, 0, 1)), +$("roll").value * deg);
    const nrm = n0.clone().applyQuaternion(q1).applyQuaternion(q2).normalize();
    return { normal: nrm, point: p0.clone().addScaledVector(n0, +$("offset").value) };
  }
  function drawPlane() {
    $("yaw-deg").textContent = (+$("yaw").value).toFixed(1);
    $("roll-deg").textContent = (+$("roll").value).toFixed(1);
    $("offset-mm").textContent = (+$("offset").value).toFixed(1);
    $("hand-plane").hidden = method() !== "hand";
    if (planeMesh) { viewer.scene.remove(planeMesh); planeMesh = null; }
    const pl = currentPlane();
    const f = function (v) { return v.toArray().map(function (c) { return c.toFixed(3); }).join(", "); };
    $("plane-now").textContent = (method() === "hand" ? "plane set by hand" : "plane of the last analysis" +
      (data.plane_method ? " (" + data.plane_method + ")" : "")) + ": normal (" + f(pl.normal) + "), through (" + f(pl.point) + ") mm";
    if ($("show-plane").checked) {
      const size = 2.2 * viewer.radius;
      planeMesh = new THREE.Mesh(new THREE.PlaneGeometry(size, size), new THREE.MeshBasicMaterial({
        color: 0xffd400, transparent: true, opacity: 0.22, side: THREE.DoubleSide, depthWrite: false }));
      planeMesh.quaternion.setFromUnitVectors(new THREE.Vector3(0, 0, 1), pl.normal);
      const c = viewer.centre.clone();
      planeMesh.position.copy(c.addScaledVector(pl.normal, -c.clone().sub(pl.point).dot(pl.normal)));
      viewer.scene.add(planeMesh);
    }
    viewer.render();
  }

  // ---------------------------------------------------------------- painting
  function brush(centre, radius, value) {
    const r2 = radius * radius, p = positions;
    for (let i = 0; i < n; i++) {
      const dx = p[3 * i] - centre.x, dy = p[3 * i + 1] - centre.y, dz = p[3 * i + 2] - centre.z;
      if (dx * dx + dy * dy + dz * dz <= r2) { painted[i] = value; }
    }
  }
  function stroke(evt) {
    const hit = viewer.pick(evt);
    if (hit) { brush(hit.point, +$("brush").value, tool() === "paint" ? 1 : 0); recolour(); }
  }
  function key(x, y, z) { return x + "," + y + "," + z; }
  function buildGrid() {
    const f = data.facesArray, p = positions;
    let sum = 0, m = Math.min(f.length / 3, 5000);
    for (let t = 0; t < m; t++) {
      const a = f[3 * t], b = f[3 * t + 1];
      sum += Math.hypot(p[3 * a] - p[3 * b], p[3 * a + 1] - p[3 * b + 1], p[3 * a + 2] - p[3 * b + 2]);
    }
    edge = Math.max(0.5, m ? sum / m : 1);
    grid = new Map();
    for (let i = 0; i < n; i++) {
      const k = key(Math.floor(p[3 * i] / edge), Math.floor(p[3 * i + 1] / edge), Math.floor(p[3 * i + 2] / edge));
      if (!grid.has(k)) { grid.set(k, []); }
      grid.get(k).push(i);
    }
  }
  function mirrorPainting() {
    if (!grid) { buildGrid(); }
    const pl = currentPlane(), p = positions, reach = 1.2 * edge, r2 = reach * reach, add = [];
    for (let i = 0; i < n; i++) {
      if (!painted[i]) { continue; }
      const q = vec([p[3 * i], p[3 * i + 1], p[3 * i + 2]]);
      q.addScaledVector(pl.normal, -2 * q.clone().sub(pl.point).dot(pl.normal));
      const cx = Math.floor(q.x / edge), cy = Math.floor(q.y / edge), cz = Math.floor(q.z / edge);
      for (let a = -1; a <= 1; a++) { for (let b = -1; b <= 1; b++) { for (let c = -1; c <= 1; c++) {
        (grid.get(key(cx + a, cy + b, cz + c)) || []).forEach(function (j) {
          const dx = p[3 * j] - q.x, dy = p[3 * j + 1] - q.y, dz = p[3 * j + 2] - q.z;
          if (dx * dx + dy * dy + dz * dz <= r2) { add.push(j); }
        });
      } } }
    }
    add.forEach(function (j) { painted[j] = 1; });
    recolour();
  }

  // ---------------------------------------------------------------- loading, saving, recomputing
  function describe(d) {
    let text = "analysis " + d.status;
    if (d.message) { text += ": " + d.message; }
    if (d.numbers) {
      text += " · plane " + (d.plane_method || "?") + " · defect " + Math.round(d.numbers.defect_volume_mm3) +
        " mm³ · discrepancy " + Math.round(d.numbers.volumetric_discrepancy_mm3) + " mm³";
    }
    text += " · settings saved so far: " + d.version;
    if (d.setting && d.setting.reason) { text += " (last by " + d.setting.user + ": " + d.setting.reason + ")"; }
    if (d.clustered) { text += " · shown with " + d.display_vertices + " of the scan's " + d.vertex_count + " vertices; painting covers every scan vertex of a painted display vertex"; }
    return text;
  }

  function init(d) {
    data = d; version = d.version;
    positions = V.decode(d.positions, Float32Array);
    data.facesArray = V.decode(d.faces, Uint32Array);
    n = positions.length / 3;
    painted = unpack(d.painted, n);
    $("vertex-count").textContent = String(n);
    if (!viewer) {
      viewer = new V.Viewer($("check-view"), { name: "depth" });
      viewer.setMesh(positions, data.facesArray, d.axes ? d.axes.anterior : null, d.axes ? d.axes.superior : null);
      viewer.renderer.domElement.addEventListener("pointerdown", function (evt) {
        if (tool() === "rotate" || evt.button !== 0) { return; }
        painting = true; stroke(evt); evt.preventDefault();
      });
      viewer.renderer.domElement.addEventListener("pointermove", function (evt) { if (painting) { stroke(evt); } });
      window.addEventListener("pointerup", function () { painting = false; });
    }
    let limit = 5;
    const depth = d.depth ? V.decode(d.depth, Float32Array) : null;
    if (depth) { depth.forEach(function (v) { if (isFinite(v)) { limit = Math.max(limit, Math.abs(v)); } }); }
    viewer.setValues(depth, Math.min(limit, 15), "depth");
    // the plane to start from: the one set by hand, else the last analysis' plane, else the face's midline
    const setPlane = d.setting && d.setting.plane;
    plane0 = (setPlane && setPlane.normal) ? setPlane : d.plane ||
      { normal: d.axes ? d.axes.left : [1, 0, 0], point: viewer.centre.toArray() };
    const choice = setPlane ? (setPlane.normal ? "hand" : setPlane) : "mirror";
    document.querySelector('input[name="plane"][value="' + choice + '"]').checked = true;
    ["yaw", "roll", "offset"].forEach(function (id) { $(id).value = 0; });
    drawPlane();
    recolour();
    setStatus(statusEl, describe(d));
    root.dataset.ready = "1";
  }

  function load() {
    return fetch(root.dataset.api, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (d) { if (!r.ok) { throw new Error(d.error || r.statusText); } return d; });
    }).then(init).catch(function (e) { setStatus(statusEl, "cannot show the scan: " + e.message, "error"); });
  }

  function save(evt) {
    evt.preventDefault();
    const m = method(), painted_n = count();
    let plane = m;
    if (m === "hand") {
      const pl = currentPlane();
      plane = { normal: pl.normal.toArray(), point: pl.point.toArray() };
    }
    const body = { plane: plane, reason: $("reason").value, user: $("user").value, base_version: version,
                   stable: m === "mirror" && painted_n ? { display_id: data.display_id, mask: pack(painted) } : null };
    let note = m !== "mirror" && painted_n ? " (the painted area is used by the mirror plane only: not saved with this plane)" : "";
    setStatus(saveStatus, "saving…");
    $("save-check").disabled = true;
    fetch(root.dataset.save, { method: "POST", credentials: "same-origin", body: JSON.stringify(body),
                               headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf } })
      .then(function (r) { return r.json().then(function (d) { return [r, d]; }); })
      .then(function (rd) {
        const r = rd[0], d = rd[1];
        if (!r.ok) { setStatus(saveStatus, "not saved: " + (d.error || r.statusText), "error"); return; }
        version = d.version;
        setStatus(saveStatus, "saved (version " + d.version + ")" + note + "; study run recomputes: " +
                  (d.redo.length ? d.redo.join(", ") : "nothing (already analysed with this setting)"), "ok");
        recomputeButton.hidden = !d.redo.length;
      })
      .catch(function (e) { setStatus(saveStatus, "not saved: " + e.message, "error"); })
      .then(function () { $("save-check").disabled = false; });
  }

  function recompute() {
    recomputeButton.disabled = true;
    setStatus(saveStatus, "recomputing…");
    fetch("/api/run", { method: "POST", credentials: "same-origin", body: "{}",
                        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf } })
      .then(function (r) { return r.json().then(function (d) { if (!r.ok) { throw new Error(d.error || r.statusText); } return d; }); })
      .then(function poll() {
        return new Promise(function (resolve) { setTimeout(resolve, 1000); })
          .then(function () { return fetch("/api/run", { credentials: "same-origin" }); })
          .then(function (r) { return r.json(); })
          .then(function (s) {
            if (s.running) { setStatus(saveStatus, "recomputing… " + s.done + " of " + s.todo); return poll(); }
            setStatus(saveStatus, "recomputed: " + (s.error || s.summary), s.error || (s.failures || []).length ? "error" : "ok");
            recomputeButton.hidden = true;
            return load();
          });
      })
      .catch(function (e) { setStatus(saveStatus, "not recomputed: " + e.message, "error"); })
      .then(function () { recomputeButton.disabled = false; });
  }

  document.querySelectorAll('input[name="tool"]').forEach(function (el) {
    el.addEventListener("change", function () {
      if (viewer) { viewer.controls.mouseButtons.LEFT = tool() === "rotate" ? THREE.MOUSE.ROTATE : -1; }
    });
  });
  document.querySelectorAll('input[name="plane"], #yaw, #roll, #offset, #show-plane').forEach(function (el) {
    el.addEventListener("input", function () { if (data) { drawPlane(); } });
    el.addEventListener("change", function () { if (data) { drawPlane(); } });
  });
  $("brush").addEventListener("input", function () { $("brush-mm").textContent = $("brush").value; });
  $("mirror-paint").addEventListener("click", function () { if (data) { mirrorPainting(); } });
  $("clear-paint").addEventListener("click", function () { if (data) { painted.fill(0); recolour(); } });
  $("check-form").addEventListener("submit", save);
  recomputeButton.addEventListener("click", recompute);
  load();
})();
