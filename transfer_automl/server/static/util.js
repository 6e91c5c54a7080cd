// Helpers shared by the pages: DOM and SVG builders, the API client, number and time formats.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "transfer-automl-token";
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c === null || c === undefined ? "" : c);
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
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

function postJSON(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" },
                     body: JSON.stringify(body) });
}

const fmt = (x) => (x === null || x === undefined ? "-" : Number(x).toFixed(4));
const short = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) : "-");
const sci = (x) => (Math.abs(x) >= 0.01 && Math.abs(x) < 1000 ? String(+x.toPrecision(3))
                                                             : x.toExponential(1));

// A value of a configuration or a setting, short.
function show(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : sci(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  return v === null || v === undefined ? "-" : String(v);
}

// Seconds as "42s", "3m 05s" or "1h 02m".
function duration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "-";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (h) return `${h}h ${two(m)}m`;
  return m ? `${m}m ${two(sec)}s` : `${sec}s`;
}

// Seconds from an ISO time of the server to an ISO time or to now.
function secondsBetween(fromIso, toIso) {
  if (!fromIso) return null;
  const end = toIso ? Date.parse(toIso) : Date.now();
  return Math.max(0, (end - Date.parse(fromIso)) / 1000);
}

// A button that asks to be clicked again before it acts (deleting cannot be undone).
function confirmClick(button, action, prompt = "Click again to delete") {
  const label = button.textContent;
  let timer = null;
  const reset = () => { button.textContent = label; button.classList.remove("armed"); timer = null; };
  button.addEventListener("click", async () => {
    if (!timer) {
      button.textContent = prompt;
      button.classList.add("armed");
      timer = setTimeout(reset, 5000);
      return;
    }
    clearTimeout(timer);
    reset();
    await action();
  });
}
