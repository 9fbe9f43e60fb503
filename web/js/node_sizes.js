// Default widths of the pack's nodes: wide enough that every widget shows its whole label and its
// longest value (the front end otherwise cuts labels such as "model_name" at the default width).
import { app } from "../../../scripts/app.js";

const MARGIN = 15, GAP = 5, LEFT = 5, RIGHT = 20; // the front end's widget paddings (BaseWidget)

function longestValue(widget) {
  const values = widget.options?.values;
  const candidates = Array.isArray(values) ? values : [widget.value];
  return candidates.map((v) => (typeof v === "number" ? v.toFixed(widget.options?.precision ?? 3) : String(v ?? "")))
    .reduce((a, b) => (b.length > a.length ? b : a), "");
}

/** The width a node needs so that no widget's "label ... value" line is truncated. */
export function neededWidth(node, ctx) {
  ctx.font = app.canvas?.inner_text_font ?? "normal 12px Arial";
  let width = 0;
  for (const widget of node.widgets ?? []) {
    if (widget.element || widget.serialize === false) continue; // DOM widgets size themselves
    const margin = widget.constructor?.margin ?? MARGIN, gap = widget.constructor?.labelValueGap ?? GAP;
    const label = ctx.measureText(widget.label ?? widget.name).width;
    const value = ctx.measureText(longestValue(widget)).width;
    width = Math.max(width, margin * 4 + LEFT + RIGHT + label + gap + value + 16);
  }
  return Math.ceil(width);
}

app.registerExtension({
  name: "LPIPDiff.NodeSizes",
  nodeCreated(node) {
    if (!node.constructor?.nodeData?.category?.startsWith("LPIP-Diff")) return;
    const ctx = document.createElement("canvas").getContext("2d");
    const width = neededWidth(node, ctx);
    if (width > node.size[0]) node.setSize([width, node.size[1]]);
  },
});
