// The transfer-automl page: token, upload, the search form and the jobs; the job view is in
// job.js, the charts in charts.js, helpers in util.js. No framework, no build.
"use strict";

let me = null; // the user, the server's limits, job defaults and caps (GET /api/me)

// ---- token -------------------------------------------------------------------------------
async function checkToken() {
  if (!token()) { $("user").textContent = "no token saved"; return false; }
  try {
    me = await (await api("/api/me")).json();
    $("user").textContent = "signed in as " + me.user;
    showDefaults(me);
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
  if (!jobs.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "8", class: "muted" }, "no jobs yet")));
    return;
  }
  body.replaceChildren(...jobs.map((j) => {
    const p = j.progress || {}, r = j.result || {};
    const took = j.started ? secondsBetween(j.started, j.finished) : null;
    const row = el("tr", { class: "link", "data-job-id": j.id },
      el("td", {}, el("a", { href: "#/jobs/" + j.id }, j.id)),
      el("td", {}, datasetNames[j.dataset_id] || j.dataset_id),
      el("td", {}, el("span", { class: "status st-" + j.status }, j.status)),
      el("td", {}, `${p.n_finished || 0}/${j.params.max_trials}`),
      el("td", {}, fmt(j.result ? r.best_score : p.best_score)),
      el("td", { class: "test-acc" }, fmt(r.test_score)),
      el("td", { class: "duration" }, took === null ? "-" : duration(took) + (j.finished ? "" : " so far")),
      el("td", {}, short(j.created)));
    row.addEventListener("click", () => { location.hash = "#/jobs/" + j.id; });
    return row;
  }));
}

// The search form says what a left-out value becomes, and the most a job may ask for.
function showDefaults(info) {
  const d = info.defaults, c = info.caps;
  $("max-trials").placeholder = `default ${d.max_trials}`;
  $("max-trials").max = c.max_trials;
  $("time-budget").placeholder = `default ${d.time_budget_s}`;
  $("time-budget").max = c.max_time_budget_s;
  $("space").options[0].textContent = `server default (${d.space})`;
  $("defaults").textContent = `Server defaults: ${d.max_trials} trials, ${duration(d.time_budget_s)} budget, ` +
    `space ${d.space}, ${d.executor} executor, ${d.cv_folds} CV folds, seed ${d.seed}. ` +
    `At most ${c.max_trials} trials, ${duration(c.max_time_budget_s)}, ${c.max_parallel} parallel trial(s) a job; ` +
    `up to ${info.quotas.max_active_jobs} of your jobs queued or running at once.`;
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
    location.hash = "#/jobs/" + (await (await postJSON("/api/jobs", body)).json()).id;
  } catch (e) { showError("Could not start the job: " + e.message); }
});

confirmClick($("delete-dataset-btn"), async () => {
  const id = $("dataset-select").value;
  if (!id) return;
  try {
    await api("/api/datasets/" + id, { method: "DELETE" });
    showError("");
    await refreshHome();
  } catch (e) { showError("Could not delete the dataset: " + e.message); }
});

// ---- routing -----------------------------------------------------------------------------
function route() {
  const match = location.hash.match(/^#\/jobs\/([A-Za-z0-9]+)$/);
  $("home").hidden = Boolean(match);
  $("job").hidden = !match;
  if (match) { followJob(match[1]); return; }
  stopFollowing();
  refreshHome();
}

window.addEventListener("hashchange", route);
checkToken().then((ok) => { if (ok) route(); });
// The job list keeps itself current while the home page is shown.
setInterval(() => { if (!$("home").hidden && token()) refreshJobs().catch(() => {}); }, 3000);
