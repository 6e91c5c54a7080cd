// The job page's charts as inline SVG: best so far against trials, learning curves, parameter
// slices and parameter importance. Every chart names its axes and fits its y range to its data.
"use strict";

const PALETTE = ["#1f77b4", "#d62728", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

function niceStep(span, count) {
  const raw = span / count, mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
}

function ticks(lo, hi, count) {
  const step = niceStep(hi - lo || 1, count), out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
  return { values: out, digits: Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) };
}

// The y range of accuracies: the data with a 10% margin (at least 0.02 wide), within [0, 1].
function fitRange(values) {
  const v = values.filter(Number.isFinite);
  if (!v.length) return [0, 1];
  let lo = Math.min(...v), hi = Math.max(...v);
  const span = Math.max(hi - lo, 0.02), mid = (lo + hi) / 2;
  lo = mid - span * 0.6; hi = mid + span * 0.6;
  if (lo < 0) { hi -= lo; lo = 0; }
  if (hi > 1) { lo = Math.max(0, lo - (hi - 1)); hi = 1; }
  return [lo, hi];
}

// Axes, grid, ticks and axis titles; returns the scales. o: {x: [a, b], y: [lo, hi], xTitle,
// yTitle, W, H, integer (x ticks whole numbers), logX, categories (x labels at 0, 1, ...)}.
function frame(svg, o) {
  const W = o.W || 600, H = o.H || 260, L = o.L || 58, R = 14, T = 12, B = 42;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const [x0, x1] = o.x, [y0, y1] = o.y;
  const tx = o.logX ? Math.log10 : (v) => v;
  const sx = (v) => (x1 === x0 ? (L + W - R) / 2 : L + (tx(v) - tx(x0)) / (tx(x1) - tx(x0)) * (W - L - R));
  const sy = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  const parts = [];
  const yt = ticks(y0, y1, o.H && o.H < 200 ? 3 : 5);
  for (const v of yt.values) {
    parts.push(svgEl("line", { class: "grid", x1: L, x2: W - R, y1: sy(v), y2: sy(v) }));
    parts.push(svgEl("text", { class: "tick", x: L - 5, y: sy(v) + 4, "text-anchor": "end" }, v.toFixed(yt.digits)));
  }
  let xt;
  if (o.categories) xt = o.categories.map((c, i) => [i, c]);
  else if (o.logX) {
    xt = [];
    for (let e = Math.ceil(Math.log10(x0) - 1e-9); e <= Math.log10(x1) + 1e-9; e++) xt.push([10 ** e, `1e${e}`]);
    if (xt.length < 2) xt = [[x0, sci(x0)], [x1, sci(x1)]];
  } else {
    const t = ticks(x0, x1, o.W && o.W < 400 ? 3 : 8);
    xt = t.values.filter((v) => !o.integer || Number.isInteger(v)).map((v) => [v, v.toFixed(o.integer ? 0 : t.digits)]);
  }
  for (const [v, label] of xt) {
    parts.push(svgEl("text", { class: "tick", x: sx(v), y: H - B + 14, "text-anchor": "middle" }, label));
  }
  parts.push(svgEl("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  parts.push(svgEl("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  parts.push(svgEl("text", { class: "axis-title x-title", x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, o.xTitle));
  parts.push(svgEl("text", { class: "axis-title y-title", x: 0, y: 0, "text-anchor": "middle",
                             transform: `translate(13 ${(T + H - B) / 2}) rotate(-90)` }, o.yTitle));
  svg.replaceChildren(...parts);
  svg.setAttribute("data-y-min", y0.toFixed(4));
  svg.setAttribute("data-y-max", y1.toFixed(4));
  return { sx, sy };
}

function empty(svg, text) {
  svg.setAttribute("viewBox", "0 0 600 80");
  svg.replaceChildren(svgEl("text", { class: "note", x: 300, y: 44, "text-anchor": "middle" }, text));
}

// Best validation accuracy so far (line) and each trial's score (dots) against finished trials;
// running trials' best epoch so far are hollow dots one step ahead.
function drawBest(svg, curve, running) {
  svg.setAttribute("data-points", String(curve.length));
  const scores = curve.flatMap((p) => [p.score, p.best]).concat(running.map((r) => r.score));
  if (!curve.length && !running.length) { empty(svg, "no trial has finished yet"); return; }
  const n = curve.length + (running.length ? 1 : 0);
  const { sx, sy } = frame(svg, { x: [1, Math.max(n, 1)], y: fitRange(scores), integer: true,
                                  xTitle: "finished trials", yTitle: "validation accuracy" });
  const best = curve.filter((p) => p.best !== null);
  if (best.length) {
    svg.append(svgEl("polyline", { class: "best", points: best.map((p) => `${sx(p.n)},${sy(p.best)}`).join(" ") }));
  }
  for (const p of curve) {
    if (p.score === null) continue;
    const dot = svgEl("circle", { class: "dot", cx: sx(p.n), cy: sy(p.score), r: 4 });
    dot.append(svgEl("title", {}, `${p.trial}: ${fmt(p.score)} (best so far ${fmt(p.best)})`));
    svg.append(dot);
  }
  for (const r of running) {
    if (r.score === null || r.score === undefined) continue;
    const dot = svgEl("circle", { class: "dot running-dot", cx: sx(n), cy: sy(r.score), r: 4 });
    dot.append(svgEl("title", {}, `${r.trial} (running): ${fmt(r.score)} so far`));
    svg.append(dot);
  }
}

// Validation accuracy per epoch of each trial: running trials in colour, finished ones grey.
function drawCurves(svg, curves, bestTrial) {
  const points = curves.flatMap((c) => c.points);
  svg.setAttribute("data-curves", String(curves.length));
  svg.setAttribute("data-points", String(points.length));
  if (!points.length) { empty(svg, "learning curves appear with the first epoch"); return; }
  const maxEpoch = Math.max(2, ...points.map((p) => p[0]));
  const { sx, sy } = frame(svg, { x: [1, maxEpoch], y: fitRange(points.map((p) => p[1])), integer: true,
                                  xTitle: "epoch", yTitle: "validation accuracy" });
  let colour = 0;
  const ordered = [...curves].sort((a, b) => (a.status === "running") - (b.status === "running"));
  for (const c of ordered) {
    const live = c.status === "running";
    const stroke = live ? PALETTE[colour++ % PALETTE.length] : (c.trial === bestTrial ? "#2a6" : "#bbb");
    const cls = "curve" + (live ? " live" : "") + (c.trial === bestTrial ? " best-curve" : "");
    const line = svgEl("polyline", { class: cls, stroke, "data-trial": c.trial,
                                     points: c.points.map((p) => `${sx(p[0])},${sy(p[1])}`).join(" ") });
    const last = c.points[c.points.length - 1];
    line.append(svgEl("title", {}, `${c.trial} (${c.status}): ${fmt(last[1])} at epoch ${last[0]}`));
    svg.append(line);
    const x = sx(last[0]), y = sy(last[1]);
    svg.append(svgEl("rect", { class: "curve-end", x: x - 2.5, y: y - 2.5, width: 5, height: 5, fill: stroke })); // one-epoch trials too
    if (live || c.trial === bestTrial) { // the label stays inside the frame
      const right = x > 540;
      svg.append(svgEl("text", { class: "curve-label", x: right ? x - 5 : x + 5, y: y < 24 ? y + 14 : y - 5, fill: stroke,
                                 "text-anchor": right ? "end" : "start" }, c.trial));
    }
  }
}

// Scored trials' parameter values against their score, one small chart per parameter that
// varies (most important first when the importance is known).
function drawSlices(box, rows, importance) {
  const scored = rows.filter((r) => r.score !== null && r.score !== undefined && r.config && Object.keys(r.config).length);
  box.replaceChildren();
  box.setAttribute("data-params", "0");
  if (scored.length < 2) {
    box.append(el("p", { class: "muted" }, "Parameters against score appear once two trials have a score."));
    return;
  }
  const weights = (importance && importance.weights) || {};
  const names = [...new Set(scored.flatMap((r) => Object.keys(r.config)))]
    .filter((k) => new Set(scored.map((r) => JSON.stringify(r.config[k]))).size > 1)
    .sort((a, b) => (weights[b] || 0) - (weights[a] || 0) || a.localeCompare(b))
    .slice(0, 9);
  const yRange = fitRange(scored.map((r) => r.score));
  for (const name of names) {
    const have = scored.filter((r) => r.config[name] !== undefined);
    const values = have.map((r) => r.config[name]);
    const numeric = values.every((v) => typeof v === "number");
    const svg = svgEl("svg", { class: "slice-chart", "data-param": name, role: "img",
                               "aria-label": `validation accuracy against ${name}` });
    let x, scale;
    if (numeric && new Set(values).size > 4) {
      const lo = Math.min(...values), hi = Math.max(...values);
      const logX = lo > 0 && hi / lo >= 50;
      scale = frame(svg, { W: 300, H: 180, L: 50, x: logX ? [lo / 1.3, hi * 1.3] : [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05],
                           y: yRange, logX, xTitle: name, yTitle: "val acc" });
      x = (v) => scale.sx(v);
    } else {
      const cats = [...new Set(values.map(show))].sort((a, b) => (numeric ? Number(a) - Number(b) : a.localeCompare(b)));
      scale = frame(svg, { W: 300, H: 180, L: 50, x: [-0.5, cats.length - 0.5], y: yRange, categories: cats,
                           xTitle: name, yTitle: "val acc" });
      x = (v, i) => scale.sx(cats.indexOf(show(v))) + ((i % 5) - 2) * 3; // a little jitter
    }
    have.forEach((r, i) => {
      const dot = svgEl("circle", { class: "dot slice-dot", cx: x(r.config[name], i), cy: scale.sy(r.score), r: 3.5 });
      dot.append(svgEl("title", {}, `${r.trial}: ${name} = ${show(r.config[name])}, ${fmt(r.score)}`));
      svg.append(dot);
    });
    const share = weights[name] !== undefined ? ` (importance ${(weights[name] * 100).toFixed(0)}%)` : "";
    box.append(el("figure", { class: "slice" }, svg, el("figcaption", {}, name + share)));
  }
  box.setAttribute("data-params", String(names.length));
}

// Horizontal bars: each parameter's share of the explained score variation.
function drawImportance(svg, importance) {
  const entries = Object.entries((importance && importance.weights) || {}).slice(0, 12);
  svg.setAttribute("data-params", String(entries.length));
  if (!entries.length) return false;
  const W = 600, row = 22, L = 150, R = 60, T = 8, H = T + row * entries.length + 34;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const max = Math.max(...entries.map(([, w]) => w));
  const parts = [];
  entries.forEach(([name, w], i) => {
    const y = T + i * row;
    parts.push(svgEl("text", { class: "tick", x: L - 6, y: y + 15, "text-anchor": "end" }, name));
    parts.push(svgEl("rect", { class: "bar", x: L, y: y + 3, height: row - 7, width: Math.max(1, (w / max) * (W - L - R)) }));
    parts.push(svgEl("text", { class: "tick", x: L + (w / max) * (W - L - R) + 5, y: y + 15 }, `${(w * 100).toFixed(1)}%`));
  });
  parts.push(svgEl("line", { class: "axis", x1: L, x2: L, y1: T, y2: T + row * entries.length }));
  parts.push(svgEl("text", { class: "axis-title x-title", x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle" },
                   "share of explained score variation"));
  svg.replaceChildren(...parts);
  return true;
}
