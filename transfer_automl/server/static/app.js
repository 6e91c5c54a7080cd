// The transfer-automl page: token, upload, jobs and a live job view. No framework, no build.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "transfer-automl-token";
let live = null; // AbortController of the job page's event stream

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c === null || c === undefined ? "" : c);
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}

const fmt = (x) => (x === null || x === undefined ? "-" : Number(x).toFixed(4));
const short = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) : "-");

// ---- token -------------------------------------------------------------------------------
async function checkToken() {
  if (!token()) { $("user").textContent = "no token saved"; return false; }
  try {
    const me = await (await api("/api/me")).json();
    $("user").textContent = "signed in as " + me.user;
    showError("");
    return true;
  } catch (e) {
    $("user").textContent = "";
    showError("Token refused (" + e.message + "); paste a token from 'transfer-automl token create USER'.");
    return false;
  }
}

$("token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  localStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  if (await checkToken()) refreshHome();
});

// ---- upload ------------------------------------------------------------------------------
function upload(form) {
  $("upload-progress").hidden = false;
  $("upload-progress").value = 0;
  $("upload-status").textContent = "uploading…";
  $("report").hidden = true;
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/datasets");
    xhr.setRequestHeader("Authorization", "Bearer " + token());
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) $("upload-progress").value = e.loaded / e.total;
      if (e.loaded === e.total) $("upload-status").textContent = "validating…";
    };
    xhr.onload = async () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = { detail: xhr.statusText }; }
      if (xhr.status === 201) {
        showError("");
        showReport(body);
        try { await refreshDatasets(body.id); } catch (e) { showError(e.message); }
        $("upload-status").textContent = "uploaded: " + body.name; // and selected for a search
      } else {
        $("upload-status").textContent = "upload failed";
        showError(`Upload refused (${xhr.status}): ${body.detail}`);
      }
      resolve();
    };
    xhr.onerror = () => { showError("Upload failed: connection error"); resolve(); };
    xhr.send(form);
  });
}

function uploadFiles(entries) { // entries: [{file, path}]
  const form = new FormData();
  const name = $("dataset-name").value.trim();
  if (name) form.append("name", name);
  if (entries.length === 1 && /\.zip$/i.test(entries[0].file.name)) {
    form.append("archive", entries[0].file, entries[0].file.name);
  } else {
    for (const { file, path } of entries) form.append("files", file, path);
  }
  return upload(form);
}

function showReport(d) {
  const r = d.report;
  const box = $("report");
  box.replaceChildren(
    el("strong", {}, `${d.name}: `), r.summary,
    el("br"), `classes: ${r.class_names.join(", ")}; train/val/test: ` +
      `${r.splits.train}/${r.splits.val}/${r.splits.test}`);
  if (r.skipped.length) {
    const list = el("ul");
    for (const s of r.skipped.slice(0, 20)) list.append(el("li", {}, `${s.path}: ${s.reason}`));
    box.append(el("div", {}, `${r.skipped.length} skipped files:`), list);
  }
  box.hidden = false;
}

$("folder-input").addEventListener("change", (ev) => {
  const files = Array.from(ev.target.files);
  uploadFiles(files.map((f) => ({ file: f, path: f.webkitRelativePath || f.name })));
  ev.target.value = "";
});
$("zip-input").addEventListener("change", (ev) => {
  const files = Array.from(ev.target.files);
  if (files.length) uploadFiles([{ file: files[0], path: files[0].name }]);
  ev.target.value = "";
});

function readEntry(entry, prefix, out) { // walk a dropped folder
  return new Promise((resolve) => {
    if (entry.isFile) {
      entry.file((f) => { out.push({ file: f, path: prefix + f.name }); resolve(); }, () => resolve());
      return;
    }
    const reader = entry.createReader();
    const all = [];
    const next = () => reader.readEntries(async (batch) => {
      if (!batch.length) {
        for (const child of all) await readEntry(child, prefix + entry.name + "/", out);
        resolve();
      } else { all.push(...batch); next(); }
    }, () => resolve());
    next();
  });
}

const drop = $("drop");
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  const entries = [];
  const items = Array.from(ev.dataTransfer.items || []).map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry());
  if (items.length && items.every(Boolean)) {
    for (const entry of items) await readEntry(entry, "", entries);
  } else {
    for (const f of ev.dataTransfer.files) entries.push({ file: f, path: f.name });
  }
  if (entries.length) uploadFiles(entries);
});

// ---- datasets and jobs -------------------------------------------------------------------
let datasetNames = {};

async function refreshDatasets(select) {
  const list = await (await api("/api/datasets")).json();
  datasetNames = Object.fromEntries(list.map((d) => [d.id, d.name]));
  const box = $("dataset-select");
  box.replaceChildren(...list.map((d) => el("option", { value: d.id },
    `${d.name} (${d.report.n_images} images, ${d.report.n_classes} classes, ${d.id})`)));
  if (select) box.value = select;
}

async function refreshJobs() {
  const jobs = await (await api("/api/jobs")).json();
  const body = $("jobs-body");
  if (!jobs.length) return;
  body.replaceChildren(...jobs.map((j) => {
    const p = j.progress || {};
    const row = el("tr", { class: "link", "data-job-id": j.id },
      el("td", {}, el("a", { href: "#/jobs/" + j.id }, j.id)),
      el("td", {}, datasetNames[j.dataset_id] || j.dataset_id),
      el("td", {}, el("span", { class: "status st-" + j.status }, j.status)),
      el("td", {}, `${p.n_finished || 0}/${j.params.max_trials}`),
      el("td", {}, fmt(j.result ? j.result.best_score : p.best_score)),
      el("td", {}, short(j.created)));
    row.addEventListener("click", () => { location.hash = "#/jobs/" + j.id; });
    return row;
  }));
}

async function refreshHome() {
  try { await refreshDatasets(); await refreshJobs(); } catch (e) { showError(e.message); }
}

$("job-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { dataset_id: $("dataset-select").value };
  if ($("max-trials").value) body.max_trials = Number($("max-trials").value);
  if ($("time-budget").value) body.time_budget_s = Number($("time-budget").value);
  if ($("space").value) body.space = $("space").value;
  try {
    const job = await (await api("/api/jobs", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    })).json();
    location.hash = "#/jobs/" + job.id;
  } catch (e) { showError("Could not start the job: " + e.message); }
});

// ---- job page ----------------------------------------------------------------------------
function drawChart(curve) {
  const svg = $("chart");
  const W = 600, H = 240, L = 44, R = 12, T = 12, B = 30;
  const n = Math.max(curve.length, 1);
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i - 1) * (W - L - R) / (n - 1));
  const y = (v) => T + (1 - v) * (H - T - B);
  const ns = "http://www.w3.org/2000/svg";
  const mk = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const parts = [];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(mk("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    parts.push(mk("text", { x: 4, y: y(v) + 4 }, v.toFixed(2)));
  }
  parts.push(mk("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  parts.push(mk("text", { x: W / 2 - 30, y: H - 6 }, "finished trials"));
  curve.forEach((p) => parts.push(mk("text", { x: x(p.n) - 3, y: H - B + 13 }, String(p.n))));
  const best = curve.filter((p) => p.best !== null);
  if (best.length) {
    parts.push(mk("polyline", { class: "best", points: best.map((p) => `${x(p.n)},${y(p.best)}`).join(" ") }));
  }
  for (const p of curve) {
    if (p.score !== null) parts.push(mk("circle", { class: "dot", cx: x(p.n), cy: y(p.score), r: 4 }, undefined));
  }
  svg.replaceChildren(...parts);
  svg.setAttribute("data-points", String(curve.length));
}

function renderJob(job) {
  const p = job.progress || {};
  $("job-id").textContent = job.id;
  $("job-status").textContent = job.status;
  $("job-status").className = "status st-" + job.status;
  const best = job.result ? job.result.best_score : p.best_score;
  let summary = `${p.n_finished || 0} of ${job.params.max_trials} trials finished, ` +
    `${p.n_running || 0} running; best validation accuracy ${fmt(best)}`;
  if (job.result && job.result.test_score !== null) summary += `; test accuracy ${fmt(job.result.test_score)}`;
  if (job.attempts > 1) summary += `; resumed (attempt ${job.attempts})`;
  $("job-summary").textContent = summary;
  $("job-message").textContent = job.error ? "Error: " + job.error : (p.message || "");
  $("job-explanation").textContent = job.result ? job.result.explanation : "";
  $("download-btn").disabled = job.status !== "complete";
  $("cancel-btn").disabled = !["queued", "running"].includes(job.status);
  drawChart(p.curve || []);
  const rows = (job.result ? job.result.leaderboard : p.trials) || [];
  $("trials-body").replaceChildren(...rows.map((r, i) => el("tr", { "data-trial": r.trial },
    el("td", {}, String(i + 1)), el("td", {}, r.trial),
    el("td", {}, el("span", { class: "status st-" + r.status }, r.status)),
    el("td", {}, fmt(r.score)), el("td", {}, String(r.epochs_run)),
    el("td", {}, r.cost_s === null ? "-" : Number(r.cost_s).toFixed(1)),
    el("td", {}, r.fidelity), el("td", {}, r.origin),
    el("td", {}, [r.diagnosis, r.reason].filter(Boolean).join(" — ")))));
}

async function followJob(id) {
  if (live) live.abort();
  live = new AbortController();
  const signal = live.signal;
  try {
    renderJob(await (await api("/api/jobs/" + id)).json());
    const response = await api(`/api/jobs/${id}/events`, { signal });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const message = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const kind = (message.match(/^event: (.*)$/m) || [])[1];
        const data = (message.match(/^data: (.*)$/m) || [])[1];
        if (kind === "job" && data) renderJob(JSON.parse(data));
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  }
}

$("download-btn").addEventListener("click", async () => {
  const id = $("job-id").textContent;
  try {
    const blob = await (await api(`/api/jobs/${id}/model`)).blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: `model-${id}.zip` });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) { showError("Download failed: " + e.message); }
});

$("cancel-btn").addEventListener("click", async () => {
  const id = $("job-id").textContent;
  try { renderJob(await (await api(`/api/jobs/${id}/cancel`, { method: "POST" })).json()); }
  catch (e) { showError("Cancel failed: " + e.message); }
});

// ---- routing -----------------------------------------------------------------------------
function route() {
  const match = location.hash.match(/^#\/jobs\/([A-Za-z0-9]+)$/);
  $("home").hidden = Boolean(match);
  $("job").hidden = !match;
  if (match) { followJob(match[1]); return; }
  if (live) { live.abort(); live = null; }
  refreshHome();
}

window.addEventListener("hashchange", route);
checkToken().then((ok) => { if (ok) route(); });
// The job list keeps itself current while the home page is shown.
setInterval(() => { if (!$("home").hidden && token()) refreshJobs().catch(() => {}); }, 3000);
