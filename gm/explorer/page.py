"""The explorer's page: one self-contained HTML file (its script and data inline, nothing
fetched), which opens from ``file://``.

Size: the per-token numbers are JSON (losses rounded to 3 decimals, each mode's top-5 as
token ids and probabilities in percent); one layer's activations are int8 (−1…1 to −127…127,
what tanh-bounded h needs for colour), base64-encoded: about
1.4 bytes per unit per token (a 10,000-character page of a 128-unit layer: 3.4 MB in all).
"""

from __future__ import annotations

import base64
import html
import json
import math
from typing import Any

import numpy as np

from gm.explorer.features import Match
from gm.explorer.trace import Trace
from gm.modes import BY_NAME

BITS = 1 / math.log(2)


def _rounded(values: np.ndarray, digits: int = 3) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), digits) for v in values]


def page_data(
    trace: Trace,
    vocabulary: list[str],
    layer: int | None,
    best: dict[str, list[Match]],
    baseline: np.ndarray | None = None,
    name: str = "",
    gates: list[dict[str, dict[str, list[float]]]] | None = None,
    figure: str | None = None,
) -> dict[str, Any]:
    """What the page's script reads: the text, each token's span and losses (bits), the
    top predictions, one layer's quantised activations and the units found per feature."""
    modes = list(trace.nll)
    data: dict[str, Any] = {
        "name": name,
        "text": trace.text,
        "spans": trace.spans,
        "modes": [{"name": m, "label": BY_NAME[m].label if m in BY_NAME else m} for m in modes],
        "bits": {m: _rounded(trace.nll[m] * BITS) for m in modes},
        "top": {
            m: [
                [
                    [int(i), round(float(p) * 100, 1)]
                    for i, p in zip(ids, probs, strict=True)
                    if i >= 0
                ]
                for ids, probs in zip(trace.top_ids[m], trace.top_probs[m], strict=True)
            ]
            for m in modes
        },
        "vocabulary": vocabulary,
        "baseline": None if baseline is None else _rounded(baseline * BITS),
        "layer": None,
        "best": {
            feature: [
                {
                    "unit": m.unit,
                    "score": round(m.score, 3),
                    "metric": m.metric,
                    "sign": m.sign,
                    "found": m.found,
                }
                for m in matches
            ]
            for feature, matches in best.items()
        },
    }
    if layer is not None and trace.layers:
        states = trace.layers[layer]
        h = states["h"]
        data["layer"] = {"index": layer, "units": int(h.shape[1]), "tokens": int(h.shape[0])}
        # h is tanh-bounded; the LSTM's cell state is shown as tanh(c), what h is made of.
        for name, values in (("h", h), ("c", np.tanh(states["c"]) if "c" in states else None)):
            if values is not None:
                quantised = np.round(np.clip(values, -1, 1) * 127).astype(np.int8)
                data["layer"][name] = base64.b64encode(quantised.tobytes()).decode("ascii")
    data["gates"] = [
        {
            gate: {
                "left": round(float(np.mean(f["left"])), 3),
                "right": round(float(np.mean(f["right"])), 3),
                "mostly_open": int(np.sum(np.array(f["right"]) > 0.5)),
                "mostly_closed": int(np.sum(np.array(f["left"]) > 0.5)),
                "units": len(f["left"]),
            }
            for gate, f in per_layer.items()
        }
        for per_layer in gates or []
    ]
    data["figure"] = figure
    return data


def render(data: dict[str, Any]) -> str:
    """The page: ``data`` inline as JSON, read by the inline script."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    payload = payload.replace("</", "<\\/")  # a text holding "</script>" stays data
    title = html.escape(f"gm explorer: {data['name']}" if data["name"] else "gm explorer")
    return _TEMPLATE.replace("__TITLE__", title).replace("__DATA__", payload)


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
#text { font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.5;
        border: 1px solid #ccc; padding: .8em; max-width: 60em; }
#text span { cursor: default; }
#tip { position: fixed; display: none; background: #fff; border: 1px solid #888;
       padding: .4em .6em; font: 12px ui-monospace, monospace; pointer-events: none; }
#tip table { border-collapse: collapse; } #tip td { padding: 0 .4em; }
.controls { margin: .6em 0; } .controls label { margin-right: 1em; }
#units li { cursor: pointer; } #units li.found { font-weight: bold; }
.legend { font-size: 12px; color: #555; }
</style></head><body>
<h1>__TITLE__</h1>
<p class="legend">Each character is coloured by the layer chosen below. Surprisal: bits the
model needed for the token (white 0, red 8 or more). Difference: stateless minus stateful
(blue: carried state helped). A unit: its activation after reading the token (blue −1, red +1).
Hover a character for the five likeliest next tokens in each mode.</p>
<div class="controls" id="layers"></div>
<div class="controls">unit <input id="unit" type="number" min="0" value="0" style="width:5em">
 <span id="unitinfo"></span></div>
<div id="text"></div>
<h2>Units that track features of the text</h2>
<p class="legend">Score once the current character is accounted for: AUC for a property (0.5 is
chance), |r| for a count; bold when at or above the threshold. Click a unit to show it.</p>
<ul id="units"></ul>
<h2>Gates</h2>
<p class="legend">Per layer and gate: the mean fraction of steps a gate unit is below 0.1
(closed) and above 0.9 (open), and how many units are so more than half the time.</p>
<table id="gates"></table>
<div id="tip"></div>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const textBox = document.getElementById("text"), tip = document.getElementById("tip");
function decode(b64) {
  const raw = atob(b64), out = new Int8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i) << 24 >> 24;
  return out;
}
const H = D.layer ? decode(D.layer.h) : null, C = D.layer && D.layer.c ? decode(D.layer.c) : null;
const spans = D.spans.map(([a, b], i) => {
  const s = document.createElement("span"); s.textContent = D.text.slice(a, b);
  s.dataset.i = i; textBox.appendChild(s); return s;
});
function heat(v, max) { // 0..max: white to red
  if (v === null || v === undefined) return "";
  const t = Math.max(0, Math.min(1, v / max)); const g = Math.round(255 * (1 - t));
  return `rgb(255,${g},${g})`;
}
function diverge(v, max) { // -max..max: red to white to blue
  if (v === null || v === undefined) return "";
  const t = Math.max(-1, Math.min(1, v / max)); const c = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? `rgb(${c},${c},255)` : `rgb(255,${c},${c})`;
}
const views = [];
for (const m of D.modes) views.push({key: "bits:" + m.name, label: "surprisal, " + m.label,
  colour: i => heat(D.bits[m.name][i], 8)});
const gain = i => D.bits.stateless[i] - D.bits.stateful[i];
if (D.bits.stateless && D.bits.stateful) views.push({key: "gain", label: "stateless − stateful",
  colour: i => D.bits.stateful[i] === null ? "" : diverge(gain(i), 4)});
if (D.baseline) {
  views.push({key: "baseline", label: "surprisal, n-gram", colour: i => heat(D.baseline[i], 8)});
  views.push({key: "vs", label: "n-gram − stateful", colour: i => D.bits.stateful[i] === null ? "" :
    diverge(D.baseline[i] - D.bits.stateful[i], 4)});
}
const act = (A, i) => i < D.layer.tokens ? diverge(-A[i * D.layer.units + unit()] / 127, 1) : "";
const named = "unit h (layer " + (D.layer ? D.layer.index : "") + ")";
if (H) views.push({key: "unit", label: named, colour: i => act(H, i)});
if (C) views.push({key: "cell", label: "unit tanh(c)", colour: i => act(C, i)});
let view = views[0].key;
const box = document.getElementById("layers");
for (const v of views) {
  const l = document.createElement("label"); const r = document.createElement("input");
  r.type = "radio"; r.name = "view"; r.value = v.key; r.checked = v.key === view;
  r.onchange = () => { view = v.key; draw(); }; l.append(r, " " + v.label); box.appendChild(l);
}
const unitBox = document.getElementById("unit");
if (H) unitBox.max = D.layer.units - 1; else unitBox.disabled = true;
function unit() { return Math.max(0, Math.min(H ? D.layer.units - 1 : 0, +unitBox.value || 0)); }
unitBox.oninput = () => { pick(unit()); };
function pick(u) {
  unitBox.value = u; if (view !== "cell") view = "unit";
  for (const r of box.querySelectorAll("input")) r.checked = r.value === view;
  const info = H ? `of ${D.layer.units} in layer ${D.layer.index}` : "";
  document.getElementById("unitinfo").textContent = info;
  draw();
}
function draw() {
  const v = views.find(x => x.key === view);
  spans.forEach((s, i) => { s.style.background = v.colour(i); });
  document.body.dataset.view = view; document.body.dataset.unit = unit();
}
const list = document.getElementById("units");
for (const [feature, matches] of Object.entries(D.best)) {
  for (const m of matches) {
    const li = document.createElement("li"); li.className = m.found ? "found" : "";
    const metric = m.metric === "auc" ? "AUC" : "|r|";
    li.textContent = `${feature}: unit ${m.unit}, ${metric} ${m.score}` +
      (m.sign < 0 ? " (lower where it holds)" : "");
    li.dataset.unit = m.unit; li.onclick = () => pick(m.unit); list.appendChild(li);
  }
}
if (!list.children.length) list.innerHTML = "<li>no hidden units in this model family</li>";
const gateBox = document.getElementById("gates");
let gateRows = "<tr><th>layer</th><th>gate</th><th>below 0.1</th><th>above 0.9</th>" +
  "<th>mostly closed</th><th>mostly open</th></tr>";
D.gates.forEach((layer, l) => { for (const [g, s] of Object.entries(layer)) {
  gateRows += `<tr><td>${l}</td><td>${g}</td><td>${s.left}</td><td>${s.right}</td>` +
    `<td>${s.mostly_closed} of ${s.units}</td><td>${s.mostly_open} of ${s.units}</td></tr>`;
} });
gateBox.innerHTML = D.gates.some(l => Object.keys(l).length) ? gateRows :
  "<tr><td>no gates in this model family</td></tr>";
if (D.figure) {
  const img = document.createElement("img"); img.src = D.figure; img.alt = "gate saturation";
  img.style.maxWidth = "60em"; gateBox.after(img);
}
function esc(t) {
  const codes = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"};
  return t.replace(/[&<>"]/g, c => codes[c]);
}
function shown(id) { return esc(JSON.stringify(D.vocabulary[id]).slice(1, -1)); }
textBox.addEventListener("mousemove", e => {
  const i = e.target.dataset ? e.target.dataset.i : undefined;
  if (i === undefined) { tip.style.display = "none"; return; }
  let rows = `<tr><td colspan="2"><b>${esc(JSON.stringify(e.target.textContent))}</b></td></tr>`;
  for (const m of D.modes) {
    const b = D.bits[m.name][i];
    rows += `<tr><td>${m.label}</td><td>${b === null ? "context" : b.toFixed(2) + " bits"}` +
      ` · ${D.top[m.name][i].map(([t, p]) => shown(t) + " " + p + "%").join("  ")}</td></tr>`;
  }
  tip.innerHTML = `<table>${rows}</table>`; tip.style.display = "block";
  tip.style.left = (e.clientX + 12) + "px"; tip.style.top = (e.clientY + 12) + "px";
  tip.dataset.i = i;
});
textBox.addEventListener("mouseleave", () => { tip.style.display = "none"; });
draw();
</script></body></html>
"""
