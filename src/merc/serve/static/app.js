// merc serve page: parse a pasted or uploaded conversation, POST /predict, render the rows.
// No external assets; everything the page needs is served by merc itself.
"use strict";

const $ = (id) => document.getElementById(id);
let MODEL = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// --- parsing -------------------------------------------------------------------------------
function parseCSV(text) {
  // RFC 4180: quoted fields, doubled quotes, commas and newlines inside quotes
  const rows = []; let row = []; let field = ""; let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); field = "";
      if (row.some((f) => f !== "")) rows.push(row);
      row = [];
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f !== "")) rows.push(row);
  if (rows.length < 2) throw new Error("the CSV needs a header row and at least one utterance");
  const header = rows[0].map((h) => h.trim().toLowerCase());
  if (!header.includes("speaker")) throw new Error("the CSV header needs a 'speaker' column (and text, dialogue_id)");
  return rows.slice(1).map((r) => Object.fromEntries(header.map((h, j) => [h, r[j] ?? ""])));
}

function parseJSONL(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) return JSON.parse(trimmed);
  if (trimmed.startsWith("{") && trimmed.includes('"utterances"')) {
    const obj = JSON.parse(trimmed);
    return obj.utterances.map((u) => ({ dialogue_id: obj.dialogue_id, ...u }));
  }
  return trimmed.split(/\r?\n/).filter((l) => l.trim()).map((l, i) => {
    try { return JSON.parse(l); } catch (e) { throw new Error(`line ${i + 1} is not JSON: ${e.message}`); }
  });
}

function parseLines(text) {
  const out = []; let dialogue = 1;
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (!line.trim()) { if (out.length && out[out.length - 1].dialogue_id === `d${dialogue}`) dialogue++; return; }
    const m = line.match(/^\s*([^:]{1,200}?)\s*:\s*(.*)$/);
    if (!m) throw new Error(`line ${i + 1}: write it as "Speaker: text"`);
    out.push({ dialogue_id: `d${dialogue}`, speaker: m[1], text: m[2] });
  });
  return out;
}

function parseConversation(text, filename = "") {
  const t = text.trim();
  if (!t) throw new Error("paste a conversation first");
  const name = filename.toLowerCase();
  if (name.endsWith(".csv")) return parseCSV(text);
  if (name.endsWith(".jsonl") || name.endsWith(".json") || t.startsWith("{") || t.startsWith("[")) return parseJSONL(text);
  const first = t.split(/\r?\n/)[0].toLowerCase();
  if (first.includes(",") && first.includes("speaker")) return parseCSV(text);
  return parseLines(text);
}

function toRequest(rows) {
  const keep = ["dialogue_id", "utterance_id", "speaker", "text"];
  return {
    utterances: rows.map((r, i) => {
      if (!r || typeof r !== "object") throw new Error(`row ${i + 1} is not an object`);
      const u = {};
      for (const k of keep) if (r[k] !== undefined && r[k] !== null && r[k] !== "") u[k] = String(r[k]);
      if (!u.speaker) throw new Error(`row ${i + 1} has no speaker`);
      if (u.text === undefined) u.text = "";
      return u;
    }),
  };
}

// --- rendering -----------------------------------------------------------------------------
function fmt(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(4);
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.map(fmt).join(", ");
  return String(v);
}

function explanationTable(obj) {
  // generic: whatever keys the model's method returns are shown; a nested dict on one line
  const table = el("table");
  for (const [k, v] of Object.entries(obj)) {
    let value;
    if (v && typeof v === "object" && !Array.isArray(v)) {
      value = el("span", { class: "parts" });
      for (const [name, x] of Object.entries(v)) value.append(el("span", { class: "part" }, el("b", {}, name), " ", fmt(x)));
    } else value = fmt(v);
    table.append(el("tr", {}, el("td", { class: "k" }, k), el("td", {}, value)));
  }
  return table;
}

function renderUtterance(row, labels) {
  const probs = el("div", { class: "probs" });
  for (const c of labels) {
    const p = row.probabilities[c] ?? 0;
    probs.append(el("div", { class: "prob" + (c === row.label ? " top" : ""), "data-class": c },
      el("span", {}, c),
      el("span", { class: "track" }, el("span", { class: "fill", style: `width:${(100 * p).toFixed(1)}%;display:block` })),
      el("span", { class: "v" }, (100 * p).toFixed(1) + "%")));
  }
  const explanation = el("div", { class: "explanation" }, el("div", { class: "muted" }, "explanation"),
    explanationTable(row.explanation || {}));
  return el("div", { class: "utterance", "data-utterance": row.utterance_id },
    el("div", { class: "who" }, row.speaker,
      el("span", { class: "label", "data-testid": "label" }, row.label)),
    el("div", { class: "muted" }, `confidence ${(100 * row.confidence).toFixed(1)}%`),
    el("div", { class: "text" }, row.text),
    probs, explanation);
}

function render(response) {
  const results = $("results");
  results.replaceChildren();
  let current = null;
  for (const row of response.utterances) {
    if (row.dialogue_id !== current) {
      current = row.dialogue_id;
      results.append(el("h2", {}, `dialogue ${current}`));
    }
    results.append(renderUtterance(row, response.labels));
  }
}

// --- actions -------------------------------------------------------------------------------
function showError(message) {
  const box = $("error");
  box.textContent = message; box.hidden = !message;
}

async function predict(text, filename = "") {
  showError("");
  let body;
  try { body = toRequest(parseConversation(text, filename)); } catch (e) { showError(e.message); return; }
  $("predict").disabled = true;
  $("status").textContent = `labelling ${body.utterances.length} utterance(s)…`;
  try {
    const res = await fetch("/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error ? data.error.message : `HTTP ${res.status}`);
    render(data);
    $("status").textContent = `${data.utterances.length} utterance(s) labelled by ${data.model}`;
  } catch (e) {
    showError(e.message); $("status").textContent = "";
  } finally {
    $("predict").disabled = false;
  }
}

async function loadModel() {
  try {
    MODEL = await (await fetch("/model")).json();
    $("model-info").textContent = `model ${MODEL.name} · ${MODEL.method || "?"} over ${MODEL.backbone || "?"} · `
      + `modalities ${MODEL.modalities.join("")} · classes: ${MODEL.labels.join(", ")}`;
  } catch (e) {
    $("model-info").textContent = "could not read /model";
  }
}

$("predict").addEventListener("click", () => predict($("conversation").value));
$("file").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  const text = await file.text();
  $("conversation").value = text;
  await predict(text, file.name);
});
loadModel();
