"use strict";
// The cloud demo page: choose or drop a photo; it is POSTed, as its own bytes and content type, to this API's
// /predict (same origin: no CORS), authenticated as the API's ApiAuthMode wants, and the top-k is drawn as bars.
// The Lambda serves this file inlined into the page, with a Content-Security-Policy that allows only these scripts.

const $ = (selector) => document.querySelector(selector);
const AUTH_MODE = document.body.dataset.authMode; // API_KEY | IAM (template parameter ApiAuthMode)
const REGION = document.body.dataset.region;
const CREDENTIAL_FIELDS = ["api-key", "access-key-id", "secret-access-key", "session-token"];

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, value);
  for (const child of children) el.append(child);
  return el;
}

function fill(el, ...children) {
  el.replaceChildren(...children);
}

function value(id) {
  return document.getElementById(id).value.trim();
}

// The page is GET .../demo; /predict is its sibling on the same stage.
function predictUrl(topK) {
  const url = new URL(location.href);
  url.pathname = url.pathname.replace(/\/demo\/?$/, "/predict");
  url.search = `?top_k=${encodeURIComponent(topK)}`;
  url.hash = "";
  return url.toString();
}

async function send(file, topK) {
  const body = await file.arrayBuffer();
  const headers = { "Content-Type": file.type || "application/octet-stream" };
  if (AUTH_MODE === "API_KEY") {
    return fetch(predictUrl(topK), { method: "POST", body, headers: { ...headers, "x-api-key": value("api-key") } });
  }
  // SigV4 for execute-api, signed in the page (aws4fetch: Web Crypto, no SDK). retries: 0, because a 429 or 5xx is
  // shown to the user as the API's own answer, not retried behind their back (aws4fetch retries 10 times by default).
  const client = new aws4fetch.AwsClient({
    accessKeyId: value("access-key-id"),
    secretAccessKey: value("secret-access-key"),
    sessionToken: value("session-token") || undefined,
    service: "execute-api",
    region: REGION,
    retries: 0,
  });
  return client.fetch(predictUrl(topK), { method: "POST", body, headers });
}

async function predictFile(file) {
  const out = $("#prediction");
  const preview = $("#preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  fill(out, h("p", { class: "muted" }, `POST ${file.name} (${file.type || "no type"}, ${file.size} bytes) …`));
  const started = performance.now();
  let response;
  try {
    response = await send(file, $("#top-k").value);
  } catch (error) {
    fill(out, h("div", { class: "failure", id: "predict-error" }, h("strong", {}, "Request failed"), " ", String(error)));
    return;
  }
  const elapsedMs = performance.now() - started;
  const text = await response.text();
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = { message: text.slice(0, 200) };
  }
  if (!response.ok) {
    fill(out, h("div", { class: "failure", id: "predict-error" }, h("strong", {}, `HTTP ${response.status}`), " ",
      doc.message || doc.Message || JSON.stringify(doc)));
    return;
  }
  const bars = h("ol", { class: "bars", id: "bars" });
  for (const p of doc.predictions) {
    const bar = h("span");
    bar.style.width = `${(100 * p.probability).toFixed(1)}%`; // CSSOM, allowed by the page's style-src
    bars.append(h("li", {}, h("span", { class: "label" }, p.label), h("span", { class: "bar" }, bar),
      h("span", { class: "num" }, `${(100 * p.probability).toFixed(1)} %`)));
  }
  fill(out,
    h("p", {}, "model ", h("strong", { id: "model-version" }, doc.model_version), ` · ${elapsedMs.toFixed(0)} ms round trip`),
    bars,
    h("p", { class: "muted" }, `request ${doc.request_id || ""}`));
}

function setup() {
  $("#auth-api-key").hidden = AUTH_MODE !== "API_KEY";
  $("#auth-iam").hidden = AUTH_MODE !== "IAM";
  for (const id of CREDENTIAL_FIELDS) {
    const input = document.getElementById(id);
    input.value = sessionStorage.getItem(id) || "";
    input.addEventListener("input", () => sessionStorage.setItem(id, input.value.trim()));
  }
  const drop = $("#drop");
  $("#file").addEventListener("change", (e) => e.target.files[0] && predictFile(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) predictFile(e.dataTransfer.files[0]);
  });
  document.body.dataset.ready = "true";
}

setup();
