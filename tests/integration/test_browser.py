"""The pack's front end in a real headless Chromium (Debian's package, driven by Playwright without a
browser download) against a real ComfyUI 0.28.2 with its front-end package (tools/browser.py).

One page goes through what a person does: open each example workflow from the Templates dialog,
press Run, wait for the result; drag the compare slider, tick the patch grid, read the identity
score; open the help pages. Any console error, page error or failed request that comes from this
pack fails the test. Screenshots of the compare slider, the grid overlay and the identity score go
to $LPIP_SCREENSHOTS (docs/screenshots/, shown in docs/nodes.md, when regenerated) or the test's tmp dir.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lpip_core.method.restoration import RECOMMENDED_END_PERCENT
from lpip_core.method.schedule import steps_until_end
from tools.browser import ComfyPage, chromium
from tools.comfyui import LATEST_VERSION, REPO_ROOT

TEMPLATES = {  # file name (the dialog's title) -> what the test looks at after the run
    "Restore the faces in a photo": "compare",
    "Degrade, restore and score a face": "identity",
    "Upscale first, then restore in place": "grid",
    "Restore Faces in one node (drop-in)": "compare",
}
INPUTS = ["examples/photos/solvay_1927_tiny.jpg", "examples/photos/solvay_1927.jpg", "examples/photos/grace_hopper.jpg", "examples/lq/hopper_16.png"]
# The templates run as they are (25 DDIM steps). A development aid for a machine busy with other
# work: LPIP_BROWSER_STEPS=N sets the steps of every sampler before Run.
STEPS = int(os.environ.get("LPIP_BROWSER_STEPS", "25"))


@pytest.fixture(scope="module")
def ui(comfy_server, tmp_path_factory):
    """One browser tab on the 0.28.2 server, opened once for the module."""
    if comfy_server.version != LATEST_VERSION:
        pytest.skip(f"the browser tests run against ComfyUI {LATEST_VERSION} (today's front end)")
    for path in INPUTS:  # the files the templates load
        comfy_server.upload_image(REPO_ROOT / path)
    with chromium() as browser:
        page = ComfyPage(browser, comfy_server.url).open()
        page.shots = Path(os.environ.get("LPIP_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
        try:
            yield page
        finally:
            page.close()


def shot(page: ComfyPage, box: dict, name: str) -> None:
    """A small JPEG screenshot for docs/nodes.md."""
    png = page.screenshot(box)
    page.shots.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").save(page.shots / f"{name}.jpg", quality=80, optimize=True)


def canvas_pixels(page: ComfyPage, node_id: int, widget: str) -> np.ndarray:
    """The pixels of a node's view canvas, as the page holds them (RGBA)."""
    data = page.js("""([id, name]) => {
        const w = window.app.graph.getNodeById(id).widgets.find(w => w.name === name);
        const c = w.element.querySelector('canvas');
        return {w: c.width, h: c.height, px: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)};
    }""", [node_id, widget])
    return np.array(data["px"], np.uint8).reshape(data["h"], data["w"], 4)


def test_the_page_loads_without_errors_from_the_pack(ui):
    assert ui.js("() => window.app.extensions.filter(e => e.name.startsWith('LPIPDiff.')).map(e => e.name).sort()") == \
        ["LPIPDiff.Compare", "LPIPDiff.IdentityScore", "LPIPDiff.NodeSizes", "LPIPDiff.PatchGrid"]
    assert ui.pack_errors() == []


def test_templates_dialog_lists_the_examples_by_title(ui):
    titles = ui.template_titles()
    for title in TEMPLATES:
        assert any(t.startswith(title) for t in titles), (title, titles)


def test_new_nodes_show_every_label(ui):
    """At their default width, no widget of the pack's nodes is cut by the front end's truncation
    rule (label + gap + value must fit the width less the paddings), in fresh nodes and in every
    template."""
    cut = ui.js("""() => {
        const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = window.app.canvas.inner_text_font;
        const cutWidgets = (n) => (n.widgets ?? []).filter(w => !w.element && w.serialize !== false).filter(w => {
            const margin = w.constructor.margin, gap = w.constructor.labelValueGap;
            const values = Array.isArray(w.options?.values) ? w.options.values.map(String)
                                                            : [String(w._displayValue ?? w.value)];
            const value = Math.max(...values.map(v => ctx.measureText(v).width));
            return ctx.measureText(w.label ?? w.name).width + gap + value > n.size[0] - margin * 4 - 5 - 20;
        }).map(w => `${n.type}.${w.name}`);
        const types = Object.keys(window.LiteGraph.registered_node_types)
            .filter(t => window.LiteGraph.registered_node_types[t].nodeData?.category === 'LPIP-Diff');
        return types.flatMap(t => cutWidgets(window.LiteGraph.createNode(t)));
    }""")
    assert cut == []


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("title", list(TEMPLATES))
def test_template_runs_from_the_run_button(ui, comfy_server, title):
    ui.open_template(title)
    types = ui.js("() => window.app.graph.nodes.map(n => n.type)")
    expected = json.loads((REPO_ROOT / "example_workflows" / f"{title}.json").read_text())
    assert sorted(types) == sorted(n["type"] for n in expected["nodes"])
    ui.js("(steps) => window.app.graph.nodes.forEach(n => n.widgets?.filter(w => w.name === 'steps')"
          ".forEach(w => { w.value = steps; }))", STEPS)
    entry = ui.run(timeout=1200)
    assert entry["status"]["status_str"] == "success"
    assert comfy_server.output_images(entry), "the template saved no image"
    check = {"compare": check_compare, "grid": check_grid, "identity": check_identity}[TEMPLATES[title]]
    check(ui, entry, title)
    assert ui.pack_errors() == []


@pytest.mark.timeout(600)
def test_sampler_line_names_the_mean_of_samples(ui, comfy_server):
    """With the sampler's samples widget at 2 (and 4 steps, ending at the default 0.6: 2 run), the line
    counts a UNet call per step run and sample and says the result is the mean of 2 samples."""
    workflow = json.loads((REPO_ROOT / "example_workflows" / "Upscale first, then restore in place.json").read_text())
    ui.close_dialogs()
    ui.js("(graph) => window.app.loadGraphData(graph)", workflow)  # as when a saved workflow is dropped
    ui.page.wait_for_function("() => window.app.graph.nodes.some(n => n.type === 'LPIPPatchFusedSampler')")
    node, = ui.node_ids("LPIPPatchFusedSampler")
    ui.js("""(id) => { const n = window.app.graph.getNodeById(id);
              n.widgets.find(w => w.name === 'steps').value = 4;
              n.widgets.find(w => w.name === 'samples').value = 2; }""", node)
    entry = ui.run(timeout=300)
    assert entry["status"]["status_str"] == "success"
    ui.show_node(node)
    ui.page.wait_for_function("(id) => window.app.graph.getNodeById(id).lpipGrid.images.length", arg=node)
    info = ui.js("(id) => window.app.graph.getNodeById(id).lpipGrid.info.textContent", node)
    assert info == "patch 16 px, stride 8 px: 49 patches per step, 4 UNet calls, 2 steps, mean of 2 samples"
    assert ui.pack_errors() == []


def check_compare(ui: ComfyPage, entry: dict, title: str) -> None:
    """Dragging the slider moves the split and changes the pixels of the compare view."""
    node, = ui.node_ids("LPIPCompare")
    ui.show_node(node)
    ui.page.wait_for_function("(id) => window.app.graph.getNodeById(id).lpipCompare.before.length", arg=node)
    box = ui.widget_box(node, "compare")
    before = canvas_pixels(ui, node, "compare")
    y = box["y"] + box["height"] / 2
    ui.page.mouse.move(box["x"] + box["width"] * 0.5, y)
    ui.page.mouse.down()
    ui.page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=5)
    ui.page.mouse.move(box["x"] + box["width"] * 0.85, y, steps=5)
    ui.page.mouse.up()
    split = ui.js("(id) => window.app.graph.getNodeById(id).lpipCompare.split", node)
    after = canvas_pixels(ui, node, "compare")
    assert 0.7 < split < 0.95
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=-1) > 8
    assert changed.mean() > 0.01, "dragging the slider did not change the picture"
    name = "face" if "Upscale" in title else "photo" if "photo" in title else "drop_in"
    shot(ui, ui.node_box(node), f"compare_{name}")


def check_grid(ui: ComfyPage, entry: dict, title: str) -> None:
    """The sampler's line gives the plan of the run (lpip_x4_64: 64 px, patch 16, stride 8: 7 x 7
    patches, one UNet call per step run: the default ends at 0.6 of the steps), and the toggle draws
    the grid over the result."""
    node, = ui.node_ids("LPIPPatchFusedSampler")
    ui.show_node(node)
    ui.page.wait_for_function("(id) => window.app.graph.getNodeById(id).lpipGrid.images.length", arg=node)
    info = ui.js("(id) => window.app.graph.getNodeById(id).lpipGrid.info.textContent", node)
    run = steps_until_end(STEPS, RECOMMENDED_END_PERCENT)
    assert info == f"patch 16 px, stride 8 px: 49 patches per step, {run} UNet calls, {run} steps"
    plain = canvas_pixels(ui, node, "patch_grid")
    ui.page.locator(".lpip-diff-grid-toggle").first.check()
    ui.page.wait_for_timeout(300)
    gridded = canvas_pixels(ui, node, "patch_grid")
    changed = np.abs(gridded.astype(int) - plain.astype(int)).max(axis=-1) > 30
    assert changed.mean() > 0.02, "the grid toggle drew nothing"
    assert ui.js("(id) => window.app.graph.getNodeById(id).properties.lpip_show_grid", node) is True
    shot(ui, ui.node_box(node), "patch_grid")
    check_compare(ui, entry, title)
    check_identity(ui, entry, title)


def check_identity(ui: ComfyPage, entry: dict, title: str) -> None:
    """The node shows the server's ID Sim and the verdict against dlib's threshold."""
    node, = ui.node_ids("LPIPFaceIdentityScore")
    ui.show_node(node)
    result = entry["outputs"][str(node)]["lpip_identity"][0]
    face = result["faces"][0]
    assert 0.5 < face["id_sim"] <= 1 and result["threshold"] == 0.6
    assert face["verdict"] == ("same person" if face["distance"] < 0.6 else "different person")
    text = ui.js("(id) => window.app.graph.getNodeById(id).lpipIdentity.innerText", node)
    assert f"{face['id_sim']:.3f}" in text and face["verdict"] in text and "0.6" in text
    shot(ui, ui.node_box(node), "identity_" + ("upscale" if "Upscale" in title else "degraded"))


def test_help_pages_open_without_errors(ui, comfy_server):
    """Each node's help page, opened as a person does (the Node Library's help panel): the page the
    front end fetches first (docs/<node id>/en.md) is there, so no 404 reaches the console, and it
    shows the node's documentation."""
    info = comfy_server.object_info()
    for node_id in sorted(n for n, d in info.items() if d["category"] == "LPIP-Diff"):
        text = ui.open_help(node_id)
        assert text.startswith(info[node_id]["display_name"]) and "Inputs" in text, (node_id, text[:200])
    assert ui.pack_errors() == []
