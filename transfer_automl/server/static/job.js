// The job page: summary, time, charts, trials with their configuration, the exported model's
// test report and ensemble, settings; followed live over the job's event stream.
"use strict";

let live = null; // AbortController of the job page's event stream
let shown = null; // the job on the page, for the clock and the buttons

const SETTINGS = [["max_trials", "max trials", show], ["time_budget_s", "time budget", duration],
  ["space", "search space", show], ["executor", "executor", show], ["spark_master", "Spark master", show],
  ["n_parallel", "parallel trials", show], ["cv_folds", "cross-validation folds", show],
  ["seed", "seed", show], ["use_kb", "knowledge base", show]];
const RERUN = ["max_trials", "time_budget_s", "executor", "seed", "n_parallel", "space", "cv_folds", "use_kb"];

// One line of the settings that matter most; the full configuration goes on hover / expand.
function configSummary(c) {
  if (!c || !Object.keys(c).length) return "";
  const parts = [];
  if (c.backbone) parts.push(String(c.backbone).replace(/^efficientnet_/, "") + (c.resolution ? ` @${c.resolution}px` : ""));
  if (c.n_dense !== undefined) {
    parts.push(c.n_dense ? "MLP " + [1, 2].slice(0, c.n_dense).map((i) => c["units_" + i]).join("-") : "linear");
  }
  if (c.optimizer) parts.push(c.optimizer + (c.learning_rate !== undefined ? " lr " + sci(c.learning_rate) : ""));
  if (c.unfrozen_blocks !== undefined) parts.push(c.unfrozen_blocks ? `${c.unfrozen_blocks} blocks tuned` : "frozen");
  if (c.epochs !== undefined && c.optimizer !== "lbfgs") parts.push(`${c.epochs} ep`);
  if (c.augment) parts.push(`aug ${c.augment}`);
  if (!parts.length) return Object.entries(c).slice(0, 4).map(([k, v]) => `${k}=${show(v)}`).join(" ");
  return parts.join(" · ");
}

function configCell(row) {
  if (row.members) {
    const text = Object.entries(row.members).map(([t, w]) => `${t} ×${w.toFixed(2)}`).join(", ");
    return el("td", { class: "config" }, "ensemble: " + text);
  }
  const full = Object.entries(row.config || {}).map(([k, v]) => `${k}: ${show(v)}`).join("\n");
  if (!full) return el("td", { class: "config" }, "-");
  return el("td", { class: "config", title: full },
    el("details", {}, el("summary", {}, configSummary(row.config)), el("pre", {}, full)));
}

// The diagnosis and the reason a trial stopped, each said once: a pruner that stopped a trial
// for its curve gives the diagnosis's verdict as its reason.
function note(r) {
  if (r.detail) return r.detail;
  const reason = r.reason || "", diagnosis = r.diagnosis || "";
  if (!reason || !diagnosis) return reason || diagnosis;
  const verdict = diagnosis.split(":")[0];
  if (reason.includes(diagnosis) || reason.startsWith(verdict)) return reason;
  return `${diagnosis} — ${reason}`;
}

// The live monitor: a traffic light per trial, and for a running trial that has nothing
// more to gain, the suggestion to stop it with a button that accepts it.
function diagnosisCell(r) {
  const light = el("span", { class: "light light-" + (r.light || "grey"), title: r.diagnosis || "" });
  if (r.status !== "running" || !r.suggest_stop) return el("td", {}, light, " ", note(r));
  return el("td", {}, light, " ", note(r), el("div", { class: "suggest" }, "Suggested: " + r.suggest_stop + " ",
    el("button", { type: "button", class: "accept-stop", "data-trial": r.trial }, "Stop it")));
}

function renderTrials(rows) {
  const open = new Set([...document.querySelectorAll("#trials-body details[open]")]
    .map((d) => d.closest("tr").getAttribute("data-trial")));
  $("trials-body").replaceChildren(...rows.map((r, i) => el("tr", { "data-trial": r.trial },
    el("td", {}, String(i + 1)), el("td", {}, r.trial),
    el("td", {}, el("span", { class: "status st-" + r.status }, r.status)),
    el("td", {}, fmt(r.score)), el("td", {}, String(r.epochs_run)),
    el("td", {}, r.cost_s === null || r.cost_s === undefined ? "-" : Number(r.cost_s).toFixed(1)),
    el("td", {}, r.fidelity), el("td", {}, r.origin), configCell(r), diagnosisCell(r))));
  for (const d of document.querySelectorAll("#trials-body details")) { // kept open across updates
    if (open.has(d.closest("tr").getAttribute("data-trial"))) d.open = true;
  }
}

// The live-change control lists the running trials; a choice survives updates while it runs.
function renderTune(running) {
  const select = $("tune-trial"), chosen = select.value;
  $("tune-form").hidden = running.length === 0;
  select.replaceChildren(...running.map((r) => el("option", { value: r.trial }, r.trial)));
  if (running.some((r) => r.trial === chosen)) select.value = chosen;
}

async function sendTune(body) {
  const trial = $("tune-trial").value;
  if (!shown || !trial) return;
  $("tune-answer").textContent = "sending…";
  try {
    const answer = await (await postJSON(`/api/jobs/${shown.id}/trials/${trial}/tune`, body)).json();
    $("tune-answer").textContent = `${trial}: ${answer.status}: ${answer.detail}`;
  } catch (e) { $("tune-answer").textContent = "Live change failed: " + e.message; }
}

function renderTime(job) {
  const p = job.progress || {}, r = job.result || {};
  let text;
  if (job.status === "queued") text = `queued since ${short(job.created)}`;
  else if (job.status === "running") {
    const since = p.at ? Math.max(0, Date.now() / 1000 - p.at) : 0;
    const left = p.budget_left_s === null || p.budget_left_s === undefined ? null : Math.max(0, p.budget_left_s - since);
    const eta = p.eta_s === null || p.eta_s === undefined ? null : Math.max(0, p.eta_s - since);
    text = `elapsed ${duration(secondsBetween(job.started))}`;
    if (left !== null) text += ` · search budget left ${duration(left)} of ${duration(p.time_budget_s)}`;
    text += eta !== null ? ` · ETA of the search ~${duration(eta)} (then refit and export)`
      : (left !== null ? ` · ETA after the first trial (at most ${duration(left)})` : "");
  } else {
    text = `took ${duration(secondsBetween(job.started, job.finished))}`;
    const parts = Object.entries(r.timings || {}).map(([k, v]) => `${k.replace(/_s$/, "")} ${duration(v)}`);
    if (parts.length) text += ` (${parts.join(", ")})`;
  }
  $("job-time").textContent = text;
}

function renderResult(result, rows) {
  const t = result && result.test_report, ens = result && result.ensemble;
  $("result-box").hidden = !(t || ens);
  if (t) {
    const [lo, hi] = t.interval;
    $("test-summary").textContent = `Test accuracy ${fmt(t.accuracy)} on ${t.n} test images ` +
      `(95% interval ${lo.toFixed(3)}–${hi.toFixed(3)})` + (t.n < 30 ? "; few test images: a rough figure." : ".");
    const names = result.class_names || Object.keys(t.per_class);
    $("per-class").replaceChildren(el("tr", {}, el("th", {}, "class"), el("th", {}, "accuracy"), el("th", {}, "images")),
      ...names.map((c) => { const pc = t.per_class[c] || {}; return el("tr", {}, el("td", {}, c), el("td", {}, fmt(pc.accuracy)), el("td", {}, String(pc.n))); }));
    const head = el("tr", {}, el("th", {}, "true \\ predicted"), ...names.map((c) => el("th", {}, c)));
    $("confusion").replaceChildren(head, ...t.confusion.map((counts, i) => {
      const total = counts.reduce((a, b) => a + b, 0) || 1;
      return el("tr", {}, el("th", {}, names[i]), ...counts.map((n, j) => {
        const cell = el("td", { class: "cell" + (i === j ? " diag" : ""), title: `${names[i]} as ${names[j]}: ${n}` }, String(n));
        cell.style.backgroundColor = `rgba(${i === j ? "42,140,90" : "200,60,60"},${(n / total) * 0.6})`;
        return cell;
      }));
    }));
  } else $("test-summary").textContent = result ? "No test split: no test report." : "";
  $("ensemble").hidden = !ens;
  if (ens) {
    const byTrial = Object.fromEntries(rows.map((r) => [r.trial, r]));
    $("ensemble-summary").textContent = `The exported model is an ensemble of ${Object.keys(ens.weights).length} trials: ` +
      `held-out accuracy ${fmt(ens.accuracy)} against ${fmt(ens.single_accuracy)} for the best single trial on the same ` +
      `${ens.n_images} images, ${ens.passes} backbone pass${ens.passes > 1 ? "es" : ""} per image.`;
    $("ensemble-body").replaceChildren(...Object.entries(ens.weights).map(([trial, w]) => el("tr", { "data-member": trial },
      el("td", {}, trial), el("td", {}, w.toFixed(3)), el("td", {}, fmt((byTrial[trial] || {}).score)),
      configCell(byTrial[trial] || { config: {} }))));
  }
}

function renderJob(job) {
  shown = job;
  $("job").setAttribute("data-job-id", job.id); // the job the page shows (its buttons act on it)
  const p = job.progress || {}, result = job.result;
  $("job-id").textContent = job.id;
  $("job-status").textContent = job.status;
  $("job-status").className = "status st-" + job.status;
  const best = result ? result.best_score : p.best_score;
  let summary = `${p.n_finished || 0} of ${job.params.max_trials} trials finished, ` +
    `${p.n_running || 0} running; best validation accuracy ${fmt(best)}`;
  if (result && result.test_score !== null) summary += `; test accuracy ${fmt(result.test_score)}`;
  if (job.attempts > 1) summary += `; resumed (attempt ${job.attempts})`;
  $("job-summary").textContent = summary;
  renderTime(job);
  // The explanation begins with the knowledge base's sentence: once it is there, say it once.
  $("job-message").textContent = job.error ? "Error: " + job.error : (result ? "" : p.message || "");
  $("job-explanation").textContent = result ? result.explanation : "";
  $("download-btn").disabled = job.status !== "complete";
  $("cancel-btn").disabled = !["queued", "running"].includes(job.status);
  const rows = (result ? result.leaderboard : p.trials) || [];
  const trials = rows.filter((r) => r.trial !== "ensemble");
  renderTune(job.status === "running" ? (p.trials || []).filter((r) => r.status === "running") : []);
  drawBest($("chart"), p.curve || [], (p.trials || []).filter((r) => r.status === "running"));
  drawCurves($("curves"), p.epoch_curves || [], p.best_trial);
  renderTrials(rows);
  drawSlices($("slices"), trials, p.importance);
  const drawn = drawImportance($("importance"), p.importance);
  $("importance").hidden = !drawn;
  $("importance-note").textContent = drawn
    ? `Random-forest importance over ${p.importance.n_trials} finished trials: how much of the score's variation each parameter explains (rough with few trials).`
    : "Parameter importance appears once 8 trials have finished.";
  renderResult(result, trials);
  $("settings-body").replaceChildren(...SETTINGS.filter(([k]) => job.params[k] !== undefined && job.params[k] !== null)
    .map(([k, label, f]) => el("tr", { "data-setting": k }, el("th", {}, label), el("td", {}, f(job.params[k])))),
    el("tr", {}, el("th", {}, "dataset"), el("td", {}, job.dataset_id)));
}

async function followJob(id) {
  stopFollowing();
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

function stopFollowing() {
  if (live) { live.abort(); live = null; }
  shown = null;
  $("job").removeAttribute("data-job-id");
}

$("download-btn").addEventListener("click", async () => {
  if (!shown) return; // the job is still loading
  const id = shown.id;
  try {
    const blob = await (await api(`/api/jobs/${id}/model`)).blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: `model-${id}.zip` });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) { showError("Download failed: " + e.message); }
});

$("tune-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const body = {};
  if ($("tune-lr").value) body.learning_rate = Number($("tune-lr").value);
  if ($("tune-epochs").value) body.epochs_left = Number($("tune-epochs").value);
  if (Object.keys(body).length === 0) { $("tune-answer").textContent = "Give a learning rate or epochs left."; return; }
  sendTune(body);
});
$("tune-stop-btn").addEventListener("click", () => sendTune({ stop: true }));
$("trials-body").addEventListener("click", (ev) => { // accepting a stop suggestion
  const button = ev.target.closest("button.accept-stop");
  if (!button) return;
  $("tune-trial").value = button.getAttribute("data-trial");
  sendTune({ stop: true });
});

$("cancel-btn").addEventListener("click", async () => {
  if (!shown) return; // the job is still loading
  try { renderJob(await (await api(`/api/jobs/${shown.id}/cancel`, { method: "POST" })).json()); }
  catch (e) { showError("Cancel failed: " + e.message); }
});

$("rerun-btn").addEventListener("click", async () => {
  if (!shown) return; // the job is still loading
  const body = { dataset_id: shown.dataset_id };
  for (const k of RERUN) if (shown.params[k] !== undefined && shown.params[k] !== null) body[k] = shown.params[k];
  try { location.hash = "#/jobs/" + (await (await postJSON("/api/jobs", body)).json()).id; }
  catch (e) { showError("Could not re-run the job: " + e.message); }
});

confirmClick($("delete-btn"), async () => {
  if (!shown) return;
  const id = shown.id;
  try {
    stopFollowing();
    await api(`/api/jobs/${id}`, { method: "DELETE" });
    showError("");
    location.hash = "#/";
  } catch (e) { showError("Delete failed: " + e.message); followJob(id); }
});

// The clock of a running job ticks between events.
setInterval(() => { if (shown && !$("job").hidden && shown.status === "running") renderTime(shown); }, 1000);
