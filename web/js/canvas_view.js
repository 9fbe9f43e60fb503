// A <canvas> inside a node (a DOM widget, so it works with the classic canvas and with Nodes 2.0),
// redrawn whenever its size or content changes, plus helpers to load the pack's preview images.
import { api } from "../../../scripts/api.js";

/** URL of an image the server wrote ({filename, subfolder, type}, as ComfyUI reports outputs). */
export function viewURL({ filename, subfolder = "", type = "temp" }) {
  const q = new URLSearchParams({ filename, subfolder, type });
  return api.apiURL(`/view?${q}`);
}

/** Load image entries; resolves to HTMLImageElements in the same order. */
export function loadImages(entries = []) {
  return Promise.all(entries.map((entry) => new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`LPIP-Diff: could not load preview ${entry.filename}`));
    img.src = viewURL(entry);
  })));
}

/** The largest rectangle of an image's aspect that fits (w, h), centred. */
export function fitRect(imgW, imgH, w, h) {
  const s = Math.min(w / imgW, h / imgH);
  const dw = imgW * s, dh = imgH * s;
  return { x: (w - dw) / 2, y: (h - dh) / 2, w: dw, h: dh, scale: s };
}

/** A grey line of text in the middle of an empty view: what to do to fill it. */
export function drawHint(ctx, w, h, text) {
  ctx.fillStyle = "#888";
  ctx.font = "12px sans-serif";
  ctx.textAlign = "center";
  ctx.fillText(text, w / 2, h / 2);
}

/**
 * Add a DOM widget holding `toolbar` (optional element) above a canvas; `draw(ctx, w, h)` paints
 * it in CSS pixels. Returns {widget, canvas, redraw}. The widget is not serialized, so the node's
 * widgets_values stay those of its inputs.
 */
export function addCanvasView(node, name, draw, { toolbar = null, minHeight = 200 } = {}) {
  const root = document.createElement("div");
  root.className = "lpip-diff-view";
  Object.assign(root.style, { display: "flex", flexDirection: "column", gap: "4px", width: "100%",
                               height: "100%", boxSizing: "border-box", overflow: "hidden" });
  if (toolbar) root.append(toolbar);
  const canvas = document.createElement("canvas");
  Object.assign(canvas.style, { flex: "1 1 auto", width: "100%", minHeight: "0", display: "block" });
  root.append(canvas);

  const redraw = () => {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    draw(ctx, w, h);
  };
  new ResizeObserver(redraw).observe(canvas);
  const widget = node.addDOMWidget(name, "lpip-diff-view", root, {
    serialize: false, hideOnZoom: false, getMinHeight: () => minHeight,
  });
  widget.serialize = false;
  return { widget, canvas, redraw };
}

/** Prev / next buttons and a label for paging through a batch. */
export function pager(onPage) {
  const bar = document.createElement("div");
  Object.assign(bar.style, { display: "none", alignItems: "center", gap: "6px", fontSize: "12px" });
  const button = (text, title, step) => {
    const b = document.createElement("button");
    b.textContent = text;
    b.title = title;
    b.className = `lpip-diff-page-${step > 0 ? "next" : "prev"}`;
    Object.assign(b.style, { padding: "0 8px", cursor: "pointer" });
    b.addEventListener("click", (e) => { e.stopPropagation(); onPage(step); });
    return b;
  };
  const label = document.createElement("span");
  label.className = "lpip-diff-page-label";
  bar.append(button("‹", "previous image", -1), label, button("›", "next image", 1));
  return {
    element: bar,
    show(index, count) {
      bar.style.display = count > 1 ? "flex" : "none";
      label.textContent = `${index + 1} / ${count}`;
    },
  };
}
