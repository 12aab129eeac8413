// hemiface app, 3D view (three.js r111, shipped in static/vendor/three): a mesh coloured by a per-vertex value
// in mm on a diverging scale symmetric about 0 (as in the PNG figures), with its legend, outlines drawn on the
// surface, and the value under the cursor. Rotate: drag; zoom: wheel; pan: right drag.
// Used by the patient page (depth and gain maps) and the 3D checks page (scancheck.js). Text goes in with
// textContent only.
(function () {
  "use strict";
  const THREE = window.THREE;

  function decode(b64, Type) {
    const bin = atob(b64 || "");
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return new Type(bytes.buffer);
  }

  // ColorBrewer RdBu reversed (matplotlib's RdBu_r): blue below 0, white at 0, red above
  const STOPS = [[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [247, 247, 247],
                 [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31]];
  const GREY = [0.72, 0.72, 0.72];

  function colourOf(value, limit, out, k) {
    if (!isFinite(value)) { out[k] = GREY[0]; out[k + 1] = GREY[1]; out[k + 2] = GREY[2]; return; }
    let t = 0.5 + 0.5 * value / limit;
    t = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(t)), f = t - i, a = STOPS[i], b = STOPS[i + 1];
    for (let c = 0; c < 3; c++) { out[k + c] = (a[c] + f * (b[c] - a[c])) / 255; }
  }

  function Viewer(container, options) {
    this.options = options || {};
    this.container = container;
    const box = document.createElement("div"); box.className = "view3d-canvas";
    container.appendChild(box);
    this.box = box;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.setClearColor(0x20242c);
    box.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(30, 1, 1, 5000);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x444444, 0.55));
    const light = new THREE.DirectionalLight(0xffffff, 0.6);
    light.position.set(0, 0, 1);
    this.camera.add(light);
    this.scene.add(this.camera);
    this.controls = new THREE.OrbitControls(this.camera, this.renderer.domElement);
    this.controls.addEventListener("change", this.render.bind(this));
    this.readout = document.createElement("div"); this.readout.className = "view3d-readout"; this.readout.textContent = " ";
    container.appendChild(this.readout);
    if (this.options.legend !== false) {
      this.legend = document.createElement("canvas"); this.legend.className = "view3d-legend";
      this.legend.width = 260; this.legend.height = 46;
      container.appendChild(this.legend);
    }
    this.raycaster = new THREE.Raycaster();
    this.values = null; this.limit = 1; this.name = this.options.name || "value";
    this.overlays = [];
    const self = this;
    this.renderer.domElement.addEventListener("pointermove", function (evt) { self.hover(evt); });
    this.renderer.domElement.addEventListener("pointerleave", function () { self.readout.textContent = " "; });
    window.addEventListener("resize", function () { self.resize(); });
  }

  Viewer.prototype.resize = function () {
    const w = this.box.clientWidth || 600, h = this.box.clientHeight || 480;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h; this.camera.updateProjectionMatrix();
    this.render();
  };

  Viewer.prototype.render = function () {
    if (this.pending) { return; }
    this.pending = true;
    const self = this;
    window.requestAnimationFrame(function () { self.pending = false; self.renderer.render(self.scene, self.camera); });
  };

  // positions (Float32Array, mm), faces (Uint32Array); front / up: the face's anterior and superior directions
  Viewer.prototype.setMesh = function (positions, faces, front, up) {
    const g = new THREE.BufferGeometry();
    g.setAttribute("position", new THREE.BufferAttribute(positions, 3));
    g.setIndex(new THREE.BufferAttribute(faces, 1));
    g.computeVertexNormals();
    this.colours = new Float32Array(positions.length);
    g.setAttribute("color", new THREE.BufferAttribute(this.colours, 3));
    g.computeBoundingSphere();
    const material = new THREE.MeshLambertMaterial({ vertexColors: THREE.VertexColors, side: THREE.DoubleSide,
      polygonOffset: true, polygonOffsetFactor: 1, polygonOffsetUnits: 1 });
    this.mesh = new THREE.Mesh(g, material);
    this.scene.add(this.mesh);
    this.positions = positions; this.faces = faces;
    const s = g.boundingSphere;
    this.centre = s.center.clone(); this.radius = s.radius;
    const f = new THREE.Vector3().fromArray(front || [0, 0, 1]).normalize();
    this.camera.up.fromArray(up || [0, 1, 0]).normalize();
    this.camera.position.copy(s.center).addScaledVector(f, s.radius * 3.6);
    this.camera.near = s.radius / 20; this.camera.far = s.radius * 20;
    this.controls.target.copy(s.center);
    this.controls.update();
    this.resize();
  };

  Viewer.prototype.setValues = function (values, limit, name) {
    this.values = values; this.limit = limit > 0 ? limit : 1; this.name = name || this.name;
    this.recolour();
    this.drawLegend();
  };

  // colours of every vertex from the values; tint(i, rgb) may change a vertex's colour (the painted area)
  Viewer.prototype.recolour = function (tint) {
    const n = this.positions.length / 3, c = this.colours;
    for (let i = 0; i < n; i++) {
      colourOf(this.values ? this.values[i] : NaN, this.limit, c, 3 * i);
      if (tint) { tint(i, c, 3 * i); }
    }
    this.mesh.geometry.attributes.color.needsUpdate = true;
    this.render();
  };

  Viewer.prototype.drawLegend = function () {
    if (!this.legend) { return; }
    const ctx = this.legend.getContext("2d"), w = this.legend.width, rgb = [0, 0, 0];
    ctx.clearRect(0, 0, w, this.legend.height);
    for (let x = 0; x < w - 20; x++) {
      colourOf(((x / (w - 21)) * 2 - 1) * this.limit, this.limit, rgb, 0);
      ctx.fillStyle = "rgb(" + Math.round(rgb[0] * 255) + "," + Math.round(rgb[1] * 255) + "," + Math.round(rgb[2] * 255) + ")";
      ctx.fillRect(10 + x, 4, 1, 16);
    }
    ctx.fillStyle = "#1d2430"; ctx.font = "11px sans-serif"; ctx.textAlign = "center";
    [-1, -0.5, 0, 0.5, 1].forEach(function (t) {
      const x = 10 + (t + 1) / 2 * (w - 21);
      ctx.fillRect(x, 20, 1, 4);
      ctx.fillText((t * this.limit).toFixed(1), x, 35);
    }, this);
    ctx.textAlign = "left"; ctx.fillText(this.name + " (mm)", 10, 45);
  };

  // segments: Float32Array of (x0, y0, z0, x1, y1, z1) per segment
  Viewer.prototype.addSegments = function (segments, colour, dashed) {
    if (!segments || !segments.length) { return null; }
    const g = new THREE.BufferGeometry();
    g.setAttribute("position", new THREE.BufferAttribute(segments, 3));
    const material = dashed ? new THREE.LineDashedMaterial({ color: colour, dashSize: 1.5, gapSize: 1.2 })
      : new THREE.LineBasicMaterial({ color: colour });
    const lines = new THREE.LineSegments(g, material);
    if (dashed) { lines.computeLineDistances(); }
    this.scene.add(lines); this.overlays.push(lines); this.render();
    return lines;
  };

  // the surface point under a pointer event: {point, index (nearest vertex), value} or null
  Viewer.prototype.pick = function (evt) {
    if (!this.mesh) { return null; }
    const r = this.renderer.domElement.getBoundingClientRect();
    const ndc = new THREE.Vector2(((evt.clientX - r.left) / r.width) * 2 - 1, -((evt.clientY - r.top) / r.height) * 2 + 1);
    this.raycaster.setFromCamera(ndc, this.camera);
    const hit = this.raycaster.intersectObject(this.mesh)[0];
    if (!hit) { return null; }
    const p = this.positions, idx = [hit.face.a, hit.face.b, hit.face.c];
    const tri = idx.map(function (i) { return new THREE.Vector3(p[3 * i], p[3 * i + 1], p[3 * i + 2]); });
    const bary = THREE.Triangle.getBarycoord(hit.point, tri[0], tri[1], tri[2], new THREE.Vector3());
    let value = NaN;
    if (this.values) {
      const v = [this.values[idx[0]], this.values[idx[1]], this.values[idx[2]]];
      value = bary.x * v[0] + bary.y * v[1] + bary.z * v[2];
    }
    const weights = [bary.x, bary.y, bary.z];
    const nearest = idx[weights.indexOf(Math.max.apply(null, weights))];
    return { point: hit.point, index: nearest, value: value };
  };

  Viewer.prototype.hover = function (evt) {
    const hit = this.pick(evt);
    if (!hit) { this.readout.textContent = " "; return; }
    this.readout.textContent = isFinite(hit.value) ? this.name + " here: " + hit.value.toFixed(2) + " mm"
      : "off the map";
    if (this.onHover) { this.onHover(hit); }
  };

  window.HemifaceView3D = { Viewer: Viewer, decode: decode };

  // the patient page: a "3D view" button on each depth or gain map opens it
  function openMap(holder) {
    holder.querySelector("button.open3d").disabled = true;
    const status = holder.querySelector(".view3d-status");
    status.textContent = "loading the map…";
    fetch(holder.dataset.mesh, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (d) { if (!r.ok) { throw new Error(d.error || r.statusText); } return d; });
    }).then(function (d) {
      const viewer = new Viewer(holder, { name: d.value_name === "gain_mm" ? "gain" : "depth" });
      viewer.setMesh(decode(d.positions, Float32Array), decode(d.faces, Uint32Array),
                     d.axes ? d.axes.anterior : null, d.axes ? d.axes.superior : null);
      viewer.setValues(decode(d.values, Float32Array), d.colour_limit_mm);
      viewer.addSegments(decode(d.outline, Float32Array), 0x000000, false);
      viewer.addSegments(decode(d.deep_outline, Float32Array), 0x000000, true);
      let text = d.sign + ". Outline: " + d.outline_label + (d.deep_outline_label ? "; dashed: " + d.deep_outline_label : "") +
        ". Range " + d.value_range_mm[0].toFixed(2) + " to " + d.value_range_mm[1].toFixed(2) + " mm.";
      if (d.clustered) { text += " Shown with " + d.display_vertices + " of its " + d.vertex_count + " vertices (values averaged for display; measured on all)."; }
      status.textContent = text;
      holder.dataset.ready = "1";
      holder.viewer = viewer;
    }).catch(function (e) { status.textContent = "cannot show the map: " + e.message; });
  }
  document.querySelectorAll(".view3d[data-mesh]").forEach(function (holder) {
    holder.querySelector("button.open3d").addEventListener("click", function () { openMap(holder); });
  });
})();
