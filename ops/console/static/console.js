// The console page: four views over the backend's JSON (/api/...), refreshed every few seconds while visible.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { tab: "pipeline", pipeline: null, execution: null, executionArn: null, job: null, scale: 0.8, charts: [] };
const POLL_MS = 3000;

async function api(path, options) {
  const response = await fetch(path, options);
  let doc;
  try {
    doc = await response.json();
  } catch (e) {
    doc = { message: `HTTP ${response.status} (not JSON)` };
  }
  return { ok: response.ok, status: response.status, doc };
}

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

const when = (t) => (t ? new Date(t * 1000).toLocaleTimeString() : "—");
const badge = (status) => h("span", { class: `badge ${String(status).toLowerCase()}` }, status);
const pre = (value) => h("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));

// Element.replaceChildren writes null as the text "null": drop absent children first.
function fill(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function showError(container, message) {
  container.replaceChildren(h("p", { class: "error" }, message));
}

// ------------------------------------------------------------------------------------------------------ pipeline
async function loadPipeline() {
  const { ok, doc } = await api("/api/pipeline");
  if (!ok) return showError($("#graph"), doc.message);
  const first = !state.pipeline;
  state.pipeline = doc;
  $("#machine-name").textContent = doc.name;
  fill($("#executions"), 
    ...doc.executions.map((e) =>
      h("li", { class: e.executionArn === state.executionArn ? "selected" : "", "data-arn": e.executionArn, onclick: () => selectExecution(e.executionArn) },
        badge(e.status), h("span", { class: "name" }, e.name), h("small", {}, when(e.startDate))))
  );
  if (!state.executionArn && doc.executions.length) return selectExecution(doc.executions[0].executionArn);
  // An ended execution does not change: redraw only while it runs (open <details> stay open).
  const loaded = state.execution && state.execution.executionArn === state.executionArn;
  if (state.executionArn && (!loaded || state.execution.status === "RUNNING")) return loadExecution();
  if (first) { drawPipeline(); focusGraph(); }
}

async function selectExecution(arn) {
  state.executionArn = arn;
  document.querySelectorAll("#executions li").forEach((li) => li.classList.toggle("selected", li.dataset.arn === arn));
  await loadExecution(true);
}

async function loadExecution(scroll) {
  const { ok, doc } = await api(`/api/execution?arn=${encodeURIComponent(state.executionArn)}`);
  if (!ok) return showError($("#execution"), doc.message);
  state.execution = doc;
  drawPipeline();
  const box = $("#execution");
  fill(box, 
    h("h2", {}, doc.name), h("p", {}, badge(doc.status), " ", when(doc.startDate), " → ", when(doc.stopDate)),
    doc.current && doc.status === "RUNNING" ? h("p", {}, "current state: ", h("strong", { id: "current-state" }, doc.current)) : null,
    doc.error ? h("div", { class: "failure" }, h("strong", {}, doc.error), doc.failed_state ? ` in ${doc.failed_state}` : "", pre(doc.cause || "")) : null,
    h("p", { class: "muted" }, `${doc.entered.length} states entered`),
    h("details", {}, h("summary", {}, "input"), pre(doc.input)),
    doc.output !== null ? h("details", { open: "" }, h("summary", {}, "output"), pre(doc.output)) : null,
    h("details", {}, h("summary", {}, "path"), h("ol", { id: "path" }, ...doc.entered.map((n) => h("li", {}, n))))
  );
  if (scroll) focusGraph();
}

// Bring the interesting node into view: where it failed, where it is, else the start.
function focusGraph() {
  const doc = state.execution;
  const focus = (doc && (doc.failed_state || (doc.status === "RUNNING" ? doc.current : null))) || "__start";
  centerOn($("#graph"), focus);
}

function centerOn(pane, id) {
  const node = pane.querySelector(`[data-state="${CSS.escape(id)}"]`);
  const focus = id;
  if (!node) return;
  const box = node.getBoundingClientRect();
  const frame = pane.getBoundingClientRect();
  pane.scrollLeft += box.left + box.width / 2 - (frame.left + frame.width / 2);
  pane.scrollTop += id === "__start" ? box.top - frame.top - 8 : box.top + box.height / 2 - (frame.top + frame.height / 2);
}

function drawPipeline() {
  if (!state.pipeline) return;
  const definition = state.pipeline.definition;
  const path = state.execution ? { ...state.execution } : null;
  AslGraph.drawLevel($("#graph"), definition, path, state.scale, showBranch, $("#hide-pass").checked);
  const parallel = Object.entries(definition.States).find(([, s]) => AslGraph.aslBranches(s).length);
  if (parallel && !state.branch) state.branch = parallel[0];
  if (state.branch) showBranch(state.branch);
}

function showBranch(name) {
  const s = state.pipeline.definition.States[name];
  const branches = s ? AslGraph.aslBranches(s) : [];
  if (!branches.length) return;
  state.branch = name;
  $("#branch-title").hidden = $("#branch").hidden = false;
  $("#branch-title").textContent = `${name} · ${s.Type} branch`;
  const path = state.execution ? { ...state.execution } : null;
  if (path) path.status = path.entered.includes(name) ? path.status : "NOT_ENTERED";
  AslGraph.drawLevel($("#branch"), branches[0], path, state.scale * 0.9, null, $("#hide-pass").checked);
  centerOn($("#branch"), "__start");
}

// ------------------------------------------------------------------------------------------------------ training
async function loadTraining() {
  const { ok, doc } = await api("/api/training-jobs");
  if (!ok) return showError($("#job"), doc.message);
  fill($("#jobs"), 
    ...doc.map((j) =>
      h("li", { class: j.name === state.job ? "selected" : "", "data-name": j.name, onclick: () => { state.job = j.name; state.jobDoc = null; loadTraining(); } },
        badge(j.status), h("span", { class: "name" }, j.name), h("small", {}, `${j.secondaryStatus || ""} · ${when(j.created)}`)))
  );
  if (!state.job && doc.length) state.job = doc[0].name;
  const shown = state.jobDoc && state.jobDoc.name === state.job;
  if (state.job && (!shown || state.jobDoc.status === "InProgress" || state.tabChanged)) await loadJob();
  state.tabChanged = false;
}

function lineChart(title, series, xLabel, width, dots) {
  // series: [{label, xs, ys}] (each may have its own x values): uPlot wants one x array, so join them.
  const xs = [...new Set(series.flatMap((s) => s.xs))].sort((a, b) => a - b);
  const data = [xs, ...series.map((s) => xs.map((x) => { const i = s.xs.indexOf(x); return i < 0 ? null : s.ys[i]; }))];
  const colors = ["#2563eb", "#ea580c", "#16a34a", "#9333ea"];
  const box = h("div", { class: "chart" });
  const chart = new uPlot({
    title, width: width || 420, height: 220,
    // A few seconds of samples would get uPlot's default range (years for one sample): show at least a minute.
    scales: { x: xLabel === "time" ? { time: true, range: (u, min, max) => (max - min < 60 ? [max - 60, max + 2] : [min, max]) } : { time: false } },
    axes: [xLabel === "epoch" ? { label: "epoch", incrs: [1, 2, 5, 10, 20, 50] } : {}, {}],
    series: [{ label: xLabel }, ...series.map((s, i) => ({
      label: s.label, stroke: colors[i % 4], width: 2, spanGaps: true, points: { show: true, size: dots ? 7 : 5, fill: dots ? colors[i % 4] : undefined },
      paths: dots ? () => null : undefined,
    }))],
  }, data, box);
  state.charts.push(chart);
  return box;
}

function clearCharts() {
  state.charts.forEach((c) => c.destroy());
  state.charts = [];
}

async function loadJob() {
  const { ok, doc } = await api(`/api/training-jobs/${encodeURIComponent(state.job)}`);
  const box = $("#job");
  if (!ok) return showError(box, doc.message);
  state.jobDoc = doc;
  clearCharts();
  const hosts = Object.entries(doc.hosts).map(([host, curves]) => {
    const splits = ["train", "valid"].filter((s) => curves[s] && curves[s].length);
    if (!splits.length) return h("div", { class: "host" }, h("h4", { title: host }, host.replace(/-\d+$/, "")), h("p", { class: "muted" }, "no METRIC lines from this host (train.py reports from rank 0)"));
    const of = (key) => splits.map((s) => ({ label: s, xs: curves[s].map((p) => p.epoch), ys: curves[s].map((p) => p[key]) }));
    return h("div", { class: "host" }, h("h4", { title: host }, host.replace(/-\d+$/, "")),
      h("div", { class: "charts" }, lineChart("loss", of("loss"), "epoch"), lineChart("top-1 accuracy", of("top1"), "epoch")));
  });
  const metrics = Object.entries(doc.finalMetrics);
  const logsOpen = box.querySelector("details.logs[open]") !== null;
  fill(box,
    h("h2", {}, doc.name),
    h("p", {}, badge(doc.status), " ", doc.secondaryStatus || "", ` · ${doc.instanceCount} × ${doc.instanceType}`),
    doc.failureReason ? h("p", { class: "error" }, doc.failureReason) : null,
    h("h3", {}, "Curves per host (the METRIC lines of each host's log stream)"), ...hosts,
    h("div", { class: "row" },
      h("div", {}, h("h3", {}, "Final metrics (FinalMetricDataList)"), metrics.length
        ? h("table", { id: "final-metrics" }, ...metrics.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, v.toFixed(4)))))
        : h("p", { class: "muted" }, "none yet")),
      doc.hasOutput ? h("div", {}, h("h3", {}, "Confusion matrix (test split)"),
        h("img", { id: "confusion", src: `/api/training-jobs/${encodeURIComponent(doc.name)}/confusion-matrix.png`, alt: "confusion matrix" })) : null),
    h("details", {}, h("summary", {}, "hyperparameters"),
      h("table", {}, ...Object.entries(doc.hyperParameters).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))))),
    h("details", logsOpen ? { class: "logs", open: "" } : { class: "logs" }, h("summary", {}, `logs (last ${doc.logTail.length} lines)`), pre(doc.logTail.join("\n")))
  );
}

// ------------------------------------------------------------------------------------------------------ endpoints
async function loadEndpoints() {
  const { ok, doc } = await api("/api/endpoints");
  const box = $("#endpoint-list");
  if (!ok) return showError(box, doc.message);
  clearCharts();
  const inv = doc.invocations;
  const cards = doc.endpoints.map((e) => {
    const cw = Object.entries(e.metrics || {}).filter(([k, v]) => Array.isArray(v) && v.length);
    return h("div", { class: "card" },
      h("h2", {}, e.name, " ", badge(e.status)),
      h("p", { class: "muted" }, `config ${e.config} · created ${when(e.created)} · modified ${when(e.modified)}`),
      e.failureReason ? h("p", { class: "error" }, e.failureReason) : null,
      h("table", {}, h("tr", {}, h("th", {}, "variant"), h("th", {}, "instances (current/desired)"), h("th", {}, "weight")),
        ...e.variants.map((v) => h("tr", {}, h("td", {}, v.name), h("td", { class: "num" }, `${v.currentInstanceCount ?? "—"} / ${v.desiredInstanceCount ?? "—"}`), h("td", { class: "num" }, v.currentWeight ?? "—")))),
      h("div", { class: "charts" },
        lineChart("instances (DescribeEndpoint, sampled)", [{ label: "instances", xs: e.instanceSamples.map((s) => s[0]), ys: e.instanceSamples.map((s) => s[1]) }], "time"),
        ...cw.map(([label, points]) => lineChart(`${label} (CloudWatch)`, [{ label, xs: points.map((p) => p[0]), ys: points.map((p) => p[1]) }], "time"))),
      cw.length ? null : h("p", { class: "muted" }, "CloudWatch has no AWS/SageMaker datapoints for this endpoint in the last hour."),
      h("h3", {}, "Scaling activities (Application Auto Scaling)"),
      e.scaling.length
        ? h("table", {}, ...e.scaling.map((a) => h("tr", {}, h("td", {}, when(a.start)), h("td", {}, a.variant), h("td", {}, a.status), h("td", {}, a.description))))
        : h("p", { class: "muted" }, "none recorded"));
  });
  fill(box, 
    ...(cards.length ? cards : [h("p", { class: "muted" }, "No endpoints.")]),
    h("div", { class: "card" }, h("h2", {}, "Recent invocations (last 15 minutes, from the inference function's EMF metrics)"),
      inv.length ? lineChart("EndpointLatency ms", [{ label: "ms", xs: inv.map((i) => i.timestamp), ys: inv.map((i) => i.latencyMs) }], "time", 860, true) : null,
      h("table", { id: "invocations" }, h("tr", {}, h("th", {}, "time"), h("th", {}, "result"), h("th", {}, "latency ms")),
        ...inv.slice(-12).reverse().map((i) => h("tr", {}, h("td", {}, when(i.timestamp)), h("td", {}, i.outcome), h("td", { class: "num" }, i.latencyMs == null ? "—" : i.latencyMs.toFixed(1))))))
  );
}

// ------------------------------------------------------------------------------------------------------ predict
async function predictFile(file) {
  const out = $("#prediction");
  const preview = $("#preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  fill(out, h("p", { class: "muted" }, `POST ${file.name} (${file.type || "no type"}, ${file.size} bytes) …`));
  const { ok, status, doc } = await api(`/api/predict?top_k=${$("#top-k").value}`, {
    method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" },
  });
  if (!ok) {
    fill(out, h("div", { class: "failure", id: "predict-error" }, h("strong", {}, `HTTP ${status}`), " ", doc.message || JSON.stringify(doc)));
    return;
  }
  const predictions = Array.isArray(doc.predictions[0]) ? doc.predictions[0] : doc.predictions;
  fill(out, 
    h("p", {}, "model ", h("strong", { id: "model-version" }, doc.model_version), ` · ${doc.latencyMs.toFixed(0)} ms round trip`),
    h("ol", { class: "bars", id: "bars" }, ...predictions.map((p) =>
      h("li", {}, h("span", { class: "label" }, p.label),
        h("span", { class: "bar" }, h("span", { style: `width:${(100 * p.probability).toFixed(1)}%` })),
        h("span", { class: "num" }, `${(100 * p.probability).toFixed(1)} %`)))),
    h("p", { class: "muted" }, `request ${doc.request_id || ""}`)
  );
}

function setupPredict() {
  const drop = $("#drop");
  $("#file").addEventListener("change", (e) => e.target.files[0] && predictFile(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) predictFile(e.dataTransfer.files[0]);
  });
}

// ------------------------------------------------------------------------------------------------------ shell
const loaders = { pipeline: loadPipeline, training: loadTraining, endpoints: loadEndpoints, predict: async () => {} };
let busy = false;

async function refresh() {
  if (busy || document.hidden) return;
  busy = true;
  try {
    await loaders[state.tab]();
    $("#refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = state.tab;
  } catch (e) {
    $("#refreshed").textContent = `refresh failed: ${e}`;
  } finally {
    busy = false;
  }
}

function showTab() {
  state.tab = (location.hash || "#pipeline").slice(1);
  if (!loaders[state.tab]) state.tab = "pipeline";
  document.querySelectorAll(".tab").forEach((t) => (t.hidden = t.id !== `tab-${state.tab}`));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === state.tab));
  delete document.body.dataset.loaded;
  state.tabChanged = true;
  refresh();
}

$("#zoom-in").addEventListener("click", () => { state.scale *= 1.25; drawPipeline(); });
$("#zoom-out").addEventListener("click", () => { state.scale /= 1.25; drawPipeline(); });
$("#hide-pass").addEventListener("change", () => { drawPipeline(); focusGraph(); });
window.addEventListener("hashchange", showTab);
setupPredict();
showTab();
setInterval(refresh, POLL_MS);
