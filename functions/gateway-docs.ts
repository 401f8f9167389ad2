// The interactive reference at /docs, for the Node gateway and Lambda: one page rendered in the browser
// from the OpenAPI document, with its script and style served by the gateway itself, so that it works
// offline and behind a CSP that lets nothing load from elsewhere. Not in the Worker bundle (issue 13's
// size budget): there /docs answers a problem that points at /v1/openapi.json.
import { type DocsAssets, GATEWAY_VERSION, openApiDocument } from "../lib/gateway/mod.ts";

// The browser side, plain ES2020. The document is inlined in the page (a JSON script element), so the
// reference is complete once the page has loaded: nothing is fetched after.
const SCRIPT = `"use strict";
(() => {
  const doc = JSON.parse(document.getElementById("openapi").textContent);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) if (c !== undefined && c !== null) node.append(c);
    return node;
  };
  const refName = (ref) => ref.slice(ref.lastIndexOf("/") + 1);
  const schemaLink = (schema) =>
    schema && schema.$ref ? el("a", { href: "#schema-" + refName(schema.$ref) }, refName(schema.$ref)) : null;
  const pre = (value) => el("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
  const fold = (label, body, open) => el("details", open ? { open: "" } : {}, el("summary", {}, label), body);
  const media = (content) =>
    Object.entries(content || {}).map(([type, m]) =>
      el("div", { class: "media" }, el("code", {}, type), " ", schemaLink(m.schema) || "",
        m.example !== undefined ? fold("example", pre(m.example)) : null,
        m.schema && !m.schema.$ref ? fold("schema", pre(m.schema)) : null));
  const security = (op) => {
    const reqs = op.security || doc.security || [];
    if (reqs.length === 0) return "none";
    return reqs.map((r) => Object.keys(r).join(" + ") || "none (the route's own check)").join(" or ");
  };
  const ops = [];
  for (const [path, methods] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(methods)) ops.push({ path, method, op });

  const nav = el("nav", {}, el("input", { type: "search", id: "filter", placeholder: "Filter operations" }));
  const list = el("ul", {});
  const main = el("main", {},
    el("h1", {}, doc.info.title, " ", el("small", {}, doc.info.version)),
    el("p", {}, doc.info.description || ""),
    el("p", {}, "Servers: ", ...(doc.servers || []).map((s) => el("code", {}, s.url))));
  for (const { path, method, op } of ops) {
    const id = "op-" + op.operationId;
    list.append(el("li", { "data-op": id }, el("a", { href: "#" + id },
      el("span", { class: "method " + method }, method.toUpperCase()), " ", path)));
    const params = (op.parameters || []).map((p) =>
      el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, p.required ? "yes" : ""),
        el("td", {}, p.description || "", p.example !== undefined ? el("div", {}, "e.g. ", el("code", {}, String(p.example))) : null)));
    const responses = Object.entries(op.responses || {}).map(([status, r]) =>
      fold(el("span", {}, el("b", {}, status), " ", r.description || ""), el("div", {}, ...media(r.content)), false));
    main.append(el("section", { class: "operation", id },
      el("h2", {}, el("span", { class: "method " + method }, method.toUpperCase()), " ", el("code", {}, path)),
      el("p", { class: "summary" }, op.summary || ""),
      op.description ? el("p", {}, op.description) : null,
      el("p", {}, "Authentication: ", security(op)),
      params.length ? el("table", {}, el("tr", {}, ...["Parameter", "In", "Required", ""].map((h) => el("th", {}, h))), ...params) : null,
      op.requestBody ? el("div", {}, el("h3", {}, "Request body"), ...media(op.requestBody.content)) : null,
      el("h3", {}, "Responses"), ...responses));
  }
  const schemas = el("section", { id: "schemas" }, el("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries((doc.components || {}).schemas || {}))
    schemas.append(el("div", { id: "schema-" + name }, fold(name, pre(schema))));
  main.append(schemas);
  nav.append(list);
  document.body.append(nav, main);
  document.getElementById("filter").addEventListener("input", (e) => {
    const q = e.target.value.toLowerCase();
    for (const li of list.children) {
      const match = li.textContent.toLowerCase().includes(q);
      li.hidden = !match;
      document.getElementById(li.dataset.op).hidden = !match;
    }
  });
})();
`;

const STYLE = `body{margin:0;font:15px/1.5 system-ui,sans-serif;display:flex;color:#1d2330}
nav{position:sticky;top:0;height:100vh;overflow:auto;width:20rem;padding:1rem;background:#f3f5f8;box-sizing:border-box}
nav ul{list-style:none;padding:0}nav li{margin:.3rem 0}nav a{text-decoration:none;color:inherit}
#filter{width:100%;padding:.4rem;box-sizing:border-box}
main{flex:1;padding:1rem 2rem;max-width:60rem}
.operation{border-top:1px solid #d5dae3;padding:1rem 0}
.method{display:inline-block;min-width:4rem;font:600 12px monospace;text-align:center;border-radius:3px;padding:2px 4px;color:#fff;background:#5a6478}
.method.get{background:#2f7d4f}.method.post{background:#2d5fa8}.method.delete{background:#a83232}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:13px}
table{border-collapse:collapse}td,th{border:1px solid #d5dae3;padding:.3rem .5rem;text-align:left;vertical-align:top}
details{margin:.3rem 0}summary{cursor:pointer}`;

/** The page and its assets, with the document inlined (`<` escaped so no text can close the script). */
export function docsAssets(): DocsAssets {
  const json = JSON.stringify(openApiDocument(GATEWAY_VERSION)).replace(/</g, "\\u003c");
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>choria-edge gateway API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/reference.css"></head>
<body><script type="application/json" id="openapi">${json}</script>
<script src="/docs/reference.js"></script></body></html>
`;
  return {
    "/docs": { type: "text/html; charset=utf-8", body: html },
    "/docs/reference.js": { type: "text/javascript; charset=utf-8", body: SCRIPT },
    "/docs/reference.css": { type: "text/css; charset=utf-8", body: STYLE },
  };
}
