// hemiface app, overview page: sorting, filtering and `study run` with progress. Text only via textContent.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const table = document.getElementById("patients");
  const body = table.tBodies[0];
  const text = document.getElementById("filter-text");
  const state = document.getElementById("filter-state");
  const shown = document.getElementById("shown-count");

  function cellValue(row, i, kind) {
    const cell = row.cells[i];
    const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    if (kind === "number") { const v = parseFloat(raw); return isNaN(v) ? -Infinity : v; }
    return raw.toLowerCase();
  }
  Array.from(table.tHead.rows[0].cells).forEach(function (th, i) {
    th.addEventListener("click", function () {
      const desc = th.classList.contains("sorted-asc");
      Array.from(table.tHead.rows[0].cells).forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(desc ? "sorted-desc" : "sorted-asc");
      const kind = th.dataset.sort || "text";
      const rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        const x = cellValue(a, i, kind), y = cellValue(b, i, kind);
        const c = x < y ? -1 : x > y ? 1 : 0;
        return desc ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  function filter() {
    const words = text.value.toLowerCase().split(/\s+/).filter(Boolean);
    let n = 0;
    Array.from(body.rows).forEach(function (row) {
      const hay = row.textContent.toLowerCase();
      const ok = (!state.value || row.dataset.state === state.value) && words.every(function (w) { return hay.includes(w); });
      row.hidden = !ok;
      if (ok) n += 1;
    });
    shown.textContent = n + " shown";
  }
  text.addEventListener("input", filter);
  state.addEventListener("change", filter);
  filter();

  // `study run` in the server's background thread; progress by polling /api/run
  const button = document.getElementById("run-button");
  const status = document.getElementById("run-status");
  const bar = document.getElementById("run-progress");
  const failures = document.getElementById("run-failures");
  let wasRunning = false;
  function show(s) {
    failures.textContent = "";
    if (s.running) {
      wasRunning = true;
      button.disabled = true;
      bar.hidden = false; bar.max = Math.max(s.todo, 1); bar.value = s.done;
      status.textContent = "running: " + s.done + " of " + s.todo + " analyses done";
      setTimeout(poll, 1500);
      return;
    }
    button.disabled = false;
    bar.hidden = true;
    if (s.error) { status.textContent = "run failed: " + s.error; }
    else if (s.summary) { status.textContent = "last run: " + s.summary; }
    (s.failures || []).forEach(function (f) {
      const li = document.createElement("li");
      li.textContent = f.patient_id + " " + f.visit_date + " " + f.analysis + ": " + f.message;
      failures.appendChild(li);
    });
    if (wasRunning) { wasRunning = false; status.textContent += " (reload the page to see the new results)"; }
  }
  function poll() {
    fetch("/api/run", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(show)
      .catch(function (e) { status.textContent = "cannot reach the server: " + e; });
  }
  function runRequest() {  // "as study.toml says" sends no jobs: the study's [run] settings (jobs or scheduler) apply
    var body = { retry_failed: document.getElementById("retry-failed").checked };
    var jobs = parseInt(document.getElementById("run-jobs").value, 10);
    if (jobs) { body.jobs = jobs; }
    return body;
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    status.textContent = "starting…";
    fetch("/api/run", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(runRequest())
    }).then(function (r) { return r.json().then(function (d) { return [r.status, d]; }); }).then(function (x) {
      if (x[0] >= 400) { status.textContent = x[1].error; button.disabled = false; return; }
      show(x[1]);
    }).catch(function (e) { status.textContent = "cannot reach the server: " + e; button.disabled = false; });
  });
  poll();
})();
