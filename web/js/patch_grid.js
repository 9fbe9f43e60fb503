// The Patch-Fused Sampler's result with its sampling grid: a toggle draws the overlapping patches
// (patch and stride as the run used them) over the restored image, and a line gives patches per
// step, UNet calls and steps.
import { app } from "../../../scripts/app.js";
import { addCanvasView, drawHint, fitRect, loadImages, pager } from "./canvas_view.js";

const NODE = "LPIPPatchFusedSampler";
const COLOURS = ["rgba(255, 214, 0, 0.9)", "rgba(0, 220, 255, 0.9)"];

function drawGrid(state, ctx, w, h) {
  const img = state.images[state.index];
  const grid = state.grid;
  if (!img || !grid) {
    drawHint(ctx, w, h, "Run the workflow to see the result and its patch grid");
    return;
  }
  const r = fitRect(img.naturalWidth, img.naturalHeight, w, h);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, r.x, r.y, r.w, r.h);
  if (!state.show) return;
  const sx = r.w / grid.width, sy = r.h / grid.height;
  const [ph, pw] = grid.patch;
  ctx.save();
  ctx.beginPath();
  ctx.rect(r.x, r.y, r.w, r.h); // patches reaching into the padding are cut at the image edge
  ctx.clip();
  ctx.fillStyle = "rgba(255, 214, 0, 0.18)"; // one patch filled, to show its size
  ctx.fillRect(r.x + grid.xs[0] * sx, r.y + grid.ys[0] * sy, pw * sx, ph * sy);
  ctx.lineWidth = Math.max(1, Math.min(2, sx / 2));
  grid.ys.forEach((y, i) => grid.xs.forEach((x, j) => {
    ctx.strokeStyle = COLOURS[(i + j) % 2];
    const inset = ((i + j) % 2) * ctx.lineWidth; // neighbours overlap: offset them to see both
    ctx.strokeRect(r.x + x * sx + inset, r.y + y * sy + inset, pw * sx - 2 * inset, ph * sy - 2 * inset);
  }));
  ctx.restore();
}

function summary(grid) {
  const [ph, pw] = grid.patch, [sh, sw] = grid.stride;
  const size = ph === pw ? `${pw}` : `${pw}x${ph}`;
  const stride = sh === sw ? `${sw}` : `${sw}x${sh}`;
  const images = grid.images > 1 ? ` for ${grid.images} images` : "";
  return `patch ${size} px, stride ${stride} px: ${grid.patches_per_step} patches per step, ` +
         `${grid.unet_calls} UNet calls${images}, ${grid.steps} steps` +
         (grid.samples > 1 ? `, mean of ${grid.samples} samples` : "");
}

app.registerExtension({
  name: "LPIPDiff.PatchGrid",
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const state = { images: [], grid: null, index: 0, show: !!this.properties?.lpip_show_grid };
      this.lpipGrid = state;

      const toolbar = document.createElement("div");
      Object.assign(toolbar.style, { display: "flex", flexDirection: "column", gap: "2px", fontSize: "12px" });
      const row = document.createElement("label");
      Object.assign(row.style, { display: "flex", alignItems: "center", gap: "6px", cursor: "pointer" });
      const toggle = document.createElement("input");
      toggle.type = "checkbox";
      toggle.className = "lpip-diff-grid-toggle";
      toggle.checked = state.show;
      row.append(toggle, "show patch grid");
      const info = document.createElement("div");
      info.className = "lpip-diff-grid-info";
      Object.assign(info.style, { opacity: "0.85", lineHeight: "1.3" });
      const pages = pager((step) => {
        state.index = (state.index + step + state.images.length) % state.images.length;
        pages.show(state.index, state.images.length);
        view.redraw();
      });
      toolbar.append(row, info, pages.element);

      const view = addCanvasView(this, "patch_grid", (ctx, w, h) => drawGrid(state, ctx, w, h),
                                 { toolbar, minHeight: 220 });
      toggle.addEventListener("change", () => {
        state.show = toggle.checked;
        this.properties.lpip_show_grid = state.show;
        view.redraw();
      });
      Object.assign(state, { redraw: view.redraw, info, pages, toggle });
      this.setSize([Math.max(this.size[0], 340), this.size[1]]);

      // While it runs the node shows ComfyUI's own preview of each step; once the result is here,
      // this view shows it, so the last step's preview is not drawn a second time.
      const onDrawBackground = this.onDrawBackground;
      this.onDrawBackground = function () {
        if (!state.images.length) return onDrawBackground?.apply(this, arguments);
      };
      return result;
    };

    const onExecutionStart = nodeType.prototype.onExecutionStart;
    nodeType.prototype.onExecutionStart = function () {
      onExecutionStart?.apply(this, arguments);
      const state = this.lpipGrid;
      if (!state) return;
      Object.assign(state, { images: [], grid: null, index: 0 });
      state.info.textContent = "";
      state.pages.show(0, 0);
      state.redraw();
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const state = this.lpipGrid;
      if (!state || !message?.lpip_grid) return;
      state.grid = message.lpip_grid[0];
      state.info.textContent = summary(state.grid);
      loadImages(message.lpip_preview).then((images) => {
        Object.assign(state, { images, index: 0 });
        const native = this.widgets?.findIndex((w) => w.name === "$$canvas-image-preview") ?? -1;
        if (native >= 0) this.widgets.splice(native, 1)[0].onRemove?.();
        this.imgs = undefined;
        state.pages.show(0, images.length);
        state.redraw();
      }).catch((error) => console.warn(error.message));
    };
  },
});
