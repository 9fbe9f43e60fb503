// LPIP-Diff Compare: the two inputs under a draggable before/after slider, batches page through.
import { app } from "../../../scripts/app.js";
import { addCanvasView, drawHint, fitRect, loadImages, pager } from "./canvas_view.js";

const NODE = "LPIPCompare";

function drawCompare(state, ctx, w, h) {
  const before = state.before[Math.min(state.index, state.before.length - 1)];
  const after = state.after[Math.min(state.index, state.after.length - 1)];
  if (!before || !after) {
    drawHint(ctx, w, h, "Run the workflow to compare before and after");
    return;
  }
  const r = fitRect(before.naturalWidth, before.naturalHeight, w, h);
  state.rect = r;
  ctx.imageSmoothingEnabled = false; // show the pixels each image really has
  ctx.drawImage(after, r.x, r.y, r.w, r.h);
  const split = r.x + r.w * state.split;
  ctx.save();
  ctx.beginPath();
  ctx.rect(r.x, r.y, split - r.x, r.h);
  ctx.clip();
  ctx.drawImage(before, r.x, r.y, r.w, r.h);
  ctx.restore();
  ctx.fillStyle = "#fff";
  ctx.fillRect(split - 1, r.y, 2, r.h);
  ctx.beginPath();
  ctx.arc(split, r.y + r.h / 2, 9, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = "#222";
  ctx.font = "bold 11px sans-serif";
  ctx.textAlign = "center";
  ctx.fillText("‹›", split, r.y + r.h / 2 + 4);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "rgba(0,0,0,0.55)";
  ctx.fillRect(r.x, r.y, 48, 16);
  ctx.fillRect(r.x + r.w - 40, r.y, 40, 16);
  ctx.fillStyle = "#fff";
  ctx.textAlign = "left";
  ctx.fillText("before", r.x + 4, r.y + 12);
  ctx.textAlign = "right";
  ctx.fillText("after", r.x + r.w - 4, r.y + 12);
}

app.registerExtension({
  name: "LPIPDiff.Compare",
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const state = { before: [], after: [], index: 0, split: this.properties?.lpip_split ?? 0.5, rect: null };
      this.lpipCompare = state;
      const pages = pager((step) => {
        const count = Math.max(state.before.length, state.after.length);
        state.index = (state.index + step + count) % count;
        pages.show(state.index, count);
        view.redraw();
      });
      const view = addCanvasView(this, "compare", (ctx, w, h) => drawCompare(state, ctx, w, h),
                                 { toolbar: pages.element, minHeight: 240 });
      state.redraw = view.redraw;
      const canvas = view.canvas;
      canvas.style.cursor = "ew-resize";
      const moveTo = (event) => {
        const r = state.rect;
        if (!r) return;
        const x = event.clientX - canvas.getBoundingClientRect().left;
        // the canvas may be scaled by the graph's zoom: map client px to the canvas's CSS px
        const scale = canvas.clientWidth / canvas.getBoundingClientRect().width;
        state.split = Math.min(1, Math.max(0, (x * scale - r.x) / r.w));
        this.properties.lpip_split = state.split;
        view.redraw();
      };
      canvas.addEventListener("pointerdown", (e) => {
        e.stopPropagation();
        e.preventDefault();
        canvas.setPointerCapture(e.pointerId);
        moveTo(e);
      });
      canvas.addEventListener("pointermove", (e) => {
        if (canvas.hasPointerCapture(e.pointerId)) moveTo(e);
      });
      canvas.addEventListener("pointerup", (e) => canvas.releasePointerCapture(e.pointerId));
      this.lpipPages = pages;
      this.setSize([Math.max(this.size[0], 320), Math.max(this.size[1], 360)]);
      return result;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const state = this.lpipCompare;
      if (!state || !message?.lpip_before) return;
      Promise.all([loadImages(message.lpip_before), loadImages(message.lpip_after)]).then(([before, after]) => {
        Object.assign(state, { before, after, index: 0 });
        this.lpipPages.show(0, Math.max(before.length, after.length));
        state.redraw();
      }).catch((error) => console.warn(error.message));
    };
  },
});
