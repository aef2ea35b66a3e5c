// The state machine drawn from its ASL: dagre lays the graph out, this file only turns the layout into SVG.
// A Parallel or Map state is one node in its parent's graph; its branches are drawn as their own graph below.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

// Every state an ASL state can go to, with why (Next, Default, a Choice rule, a Catch).
function aslTargets(state) {
  const out = [];
  if (state.Next) out.push({ to: state.Next, kind: "next" });
  (state.Choices || []).forEach((c) => c.Next && out.push({ to: c.Next, kind: "choice" }));
  if (state.Default) out.push({ to: state.Default, kind: "default" });
  (state.Catch || []).forEach((c) => c.Next && out.push({ to: c.Next, kind: "catch" }));
  return out;
}

// Sub-graphs of a Parallel (Branches) or a Map (ItemProcessor / Iterator).
function aslBranches(state) {
  if (state.Branches) return state.Branches;
  if (state.ItemProcessor) return [state.ItemProcessor];
  if (state.Iterator) return [state.Iterator];
  return [];
}

function countStates(states) {
  return Object.values(states).reduce((n, s) => n + 1 + aslBranches(s).reduce((m, b) => m + countStates(b.States), 0), 0);
}

// With `hidePass`, a Pass state that only moves data (it has a Next) is drawn as the arrow through it.
function passThrough(states, hidePass) {
  const hidden = (n) => hidePass && states[n] && states[n].Type === "Pass" && !!states[n].Next;
  const resolve = (n) => {
    const seen = new Set();
    while (hidden(n) && !seen.has(n)) { seen.add(n); n = states[n].Next; }
    return n;
  };
  return { hidden, resolve };
}

// Lay out one level of the ASL (StartAt + States) with dagre; returns the dagre graph (nodes and edge points).
function layoutLevel(machine, hidePass) {
  const { hidden, resolve } = passThrough(machine.States, hidePass);
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 34, edgesep: 8, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  g.setNode("__start", { label: "Start", type: "Terminal", width: 60, height: 26 });
  const ends = [];
  for (const [name, state] of Object.entries(machine.States)) {
    if (hidden(name)) continue;
    const branches = aslBranches(state);
    const sub = branches.length ? ` (${branches.length} branch, ${branches.reduce((n, b) => n + countStates(b.States), 0)} states)` : "";
    const label = name + sub;
    g.setNode(name, { label, type: state.Type, width: Math.max(110, 7.2 * label.length + 24), height: 30 });
    if (state.End || state.Type === "Succeed") ends.push(name);
  }
  g.setEdge("__start", resolve(machine.StartAt), { kind: "next" }, `__start\u0000${resolve(machine.StartAt)}`);
  const seen = new Set();
  for (const [name, state] of Object.entries(machine.States)) {
    if (hidden(name)) continue;
    for (const t of aslTargets(state)) {
      const to = resolve(t.to);
      const key = `${name}\u0000${to}`;
      if (seen.has(key) || !g.hasNode(to)) continue; // a Choice with several rules to one state: one arrow
      seen.add(key);
      g.setEdge(name, to, { kind: t.kind }, key);
    }
  }
  if (ends.length) {
    g.setNode("__end", { label: "End", type: "Terminal", width: 60, height: 26 });
    ends.forEach((name) => g.setEdge(name, "__end", { kind: "next" }, `${name}\u0000__end`));
  }
  dagre.layout(g);
  return g;
}

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// The arrows an execution took at this level: consecutive entered states that are nodes here (a Parallel's inner
// states belong to its branch's graph, hidden Pass states to the arrow through them).
function takenEdges(g, entered, succeeded) {
  const here = entered.filter((n) => g.hasNode(n));
  const seq = here.length ? ["__start", ...here, ...(succeeded ? ["__end"] : [])] : [];
  const taken = new Set();
  for (let i = 1; i < seq.length; i++) taken.add(`${seq[i - 1]}\u0000${seq[i]}`);
  return { visited: new Set(seq), taken };
}

// Draw one level into `container`. `path` = {entered: [...], status, current, failed_state}.
function drawLevel(container, machine, path, scale, onSelect, hidePass) {
  const g = layoutLevel(machine, hidePass);
  const { visited: entered, taken } = takenEdges(g, path ? path.entered : [], path && path.status === "SUCCEEDED");
  const { width, height } = g.graph();
  container.textContent = "";
  const svg = el("svg", { width: width * scale, height: height * scale, viewBox: `0 0 ${width} ${height}`, role: "img" }, container);
  el("title", {}, svg).textContent = `${machine.Comment || "state machine"}: ${g.nodeCount()} nodes`;
  const defs = el("defs", {}, svg);
  for (const id of ["arrow", "arrow-taken"]) {
    const m = el("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerUnits: "userSpaceOnUse", markerWidth: 9, markerHeight: 9, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", class: id }, m);
  }
  const edges = el("g", { class: "edges" }, svg);
  for (const e of g.edges()) {
    const data = g.edge(e);
    const on = taken.has(e.name);
    const d = data.points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    el("path", { d, class: `edge ${data.kind}${on ? " taken" : ""}`, "marker-end": `url(#${on ? "arrow-taken" : "arrow"})` }, edges);
  }
  const nodes = el("g", { class: "nodes" }, svg);
  for (const id of g.nodes()) {
    const n = g.node(id);
    const classes = ["node", n.type.toLowerCase()];
    if (entered.has(id)) classes.push("visited");
    if (path && id === path.current && path.status === "RUNNING") classes.push("current");
    if (path && id === path.failed_state) classes.push("failedstate");
    const group = el("g", { class: classes.join(" "), transform: `translate(${n.x - n.width / 2},${n.y - n.height / 2})`, "data-state": id }, nodes);
    el("rect", { width: n.width, height: n.height, rx: n.type === "Choice" ? 14 : 4 }, group);
    const text = el("text", { x: n.width / 2, y: n.height / 2 + 4, "text-anchor": "middle" }, group);
    text.textContent = n.label;
    el("title", {}, group).textContent = `${id} · ${n.type}`;
    if (onSelect && !id.startsWith("__")) group.addEventListener("click", () => onSelect(id));
  }
  return svg;
}

window.AslGraph = { drawLevel, aslBranches, layoutLevel };
