// The API reference, drawn from the server's OpenAPI spec (nothing is fetched from elsewhere).
"use strict";

function schemaOf(spec, schema) {
  const ref = schema && schema.$ref;
  return ref ? spec.components.schemas[ref.split("/").pop()] : schema || {};
}

function typeOf(spec, s) {
  if (!s) return "";
  if (s.$ref) return s.$ref.split("/").pop();
  if (s.anyOf) return s.anyOf.map((x) => typeOf(spec, x)).filter((t) => t !== "null").join(" | ");
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.type === "array") return typeOf(spec, s.items) + "[]";
  return s.format === "binary" ? "file" : s.type || "";
}

function properties(spec, schema) {
  const s = schemaOf(spec, schema), required = new Set(s.required || []);
  const rows = Object.entries(s.properties || {}).map(([name, p]) => el("tr", {},
    el("td", {}, el("code", {}, name), required.has(name) ? " (required)" : ""),
    el("td", {}, typeOf(spec, p)),
    el("td", {}, [p.description || "", p.default !== undefined && p.default !== null ? ` default ${JSON.stringify(p.default)}` : ""].join(""))));
  return rows.length ? el("table", { class: "compact" }, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "description")), ...rows) : "";
}

function operation(spec, path, method, op) {
  const id = `${method}-${path}`.replace(/[^A-Za-z0-9-]/g, "_");
  const box = el("section", { class: "endpoint", id, "data-path": path, "data-method": method },
    el("h3", {}, el("span", { class: "method m-" + method }, method.toUpperCase()), " ", el("code", {}, path),
      " ", el("span", { class: "muted" }, op.summary || "")));
  if (op.description) box.append(el("p", {}, op.description));
  const params = op.parameters || [];
  if (params.length) {
    box.append(el("ul", {}, ...params.map((p) => el("li", {}, el("code", {}, p.name), ` (${p.in}${p.required ? ", required" : ""}) `,
      typeOf(spec, p.schema), p.description ? ": " + p.description : ""))));
  }
  const body = op.requestBody && op.requestBody.content;
  if (body) {
    for (const [type, content] of Object.entries(body)) {
      box.append(el("p", {}, "Request body: ", el("code", {}, type)), properties(spec, content.schema));
    }
  }
  const codes = Object.entries(op.responses || {}).map(([code, r]) => `${code} ${r.description || ""}`.trim());
  if (codes.length) box.append(el("p", { class: "muted" }, "Responses: " + codes.join("; ")));
  return box;
}

(async () => {
  try {
    const spec = await (await fetch("/api/openapi.json")).json();
    $("api-title").textContent = `${spec.info.title} API ${spec.info.version}`;
    $("api-description").textContent = spec.info.description || "";
    const ops = [];
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) ops.push(operation(spec, path, method, op));
    }
    $("api-index").replaceChildren(el("ul", {}, ...ops.map((o) => el("li", {},
      el("a", { href: "#" + o.id }, `${o.dataset.method.toUpperCase()} ${o.dataset.path}`)))));
    $("endpoints").replaceChildren(...ops);
    document.body.setAttribute("data-endpoints", String(ops.length));
  } catch (e) { showError("Could not read the API spec: " + e.message); }
})();
