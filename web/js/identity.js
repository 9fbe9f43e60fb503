// Face Identity Score: per face, ID Sim (dlib) and dlib's same-person verdict, shown on the node.
import { app } from "../../../scripts/app.js";

const NODE = "LPIPFaceIdentityScore";

function render(table, result) {
  const rows = result.faces.map((face, i) => {
    const same = face.verdict === "same person";
    return `<tr class="lpip-diff-identity-face"><td>${i + 1}</td><td class="lpip-diff-id-sim">${face.id_sim.toFixed(3)}</td>` +
      `<td>${face.distance.toFixed(3)}</td><td style="color:${same ? "#5c5" : "#e55"};font-weight:bold">` +
      `${same ? "✓" : "✗"} ${face.verdict}</td></tr>`;
  }).join("");
  table.innerHTML =
    `<div class="lpip-diff-identity-mean" style="margin-bottom:4px">mean ID Sim (dlib): <b>${result.mean_id_sim.toFixed(3)}</b></div>` +
    `<table style="border-collapse:collapse;width:100%"><tr style="opacity:.7"><th align="left">face</th>` +
    `<th align="left">ID Sim</th><th align="left">distance</th><th align="left">verdict</th></tr>${rows}</table>` +
    `<div style="opacity:.6;margin-top:4px">same person: dlib distance below ${result.threshold} (dlib's published threshold)</div>`;
}

app.registerExtension({
  name: "LPIPDiff.IdentityScore",
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const box = document.createElement("div");
      box.className = "lpip-diff-identity";
      Object.assign(box.style, { fontSize: "12px", overflowY: "auto", width: "100%", height: "100%",
                                 boxSizing: "border-box" });
      box.textContent = "Run the workflow to score the faces.";
      const widget = this.addDOMWidget("identity", "lpip-diff-identity", box,
                                       { serialize: false, hideOnZoom: false, getMinHeight: () => 90 });
      widget.serialize = false;
      this.lpipIdentity = box;
      this.setSize([Math.max(this.size[0], 340), Math.max(this.size[1], 180)]);
      return result;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      if (this.lpipIdentity && message?.lpip_identity) render(this.lpipIdentity, message.lpip_identity[0]);
    };
  },
});
