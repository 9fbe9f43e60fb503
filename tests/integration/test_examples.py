"""The example workflows in a real ComfyUI server, 0.3.75 and 0.28.2
(the fixtures: tests/integration/conftest.py): listed as
templates, UI and API copies in sync, examples (a) and (b) run, and the headless demo command.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.integration.helpers import NODE_IDS, read_images, save
from tools.comfyui import PACK_NAME, REPO_ROOT, apply_sets, ui_to_api

WORKFLOWS = REPO_ROOT / "example_workflows"
EXAMPLES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))


def test_example_workflows_are_listed_as_templates(comfy_server):
    assert EXAMPLES == ["Degrade, restore and score a face", "Restore Faces in one node (drop-in)",
                        "Restore the faces in a photo", "Upscale first, then restore in place"]
    templates = comfy_server._get("/workflow_templates").json()
    assert sorted(templates[PACK_NAME]) == EXAMPLES
    for name in EXAMPLES:  # the frontend fetches the file and its thumbnail from here
        for suffix in (".json", ".jpg"):
            r = comfy_server.session.get(f"{comfy_server.url}/api/workflow_templates/{PACK_NAME}/{name}{suffix}")
            assert r.status_code == 200, (name, suffix)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_workflow_ui_and_api_copies_are_in_sync(comfy_server, name):
    """example_workflows/NAME.json (UI format, what the template browser opens) must convert to
    exactly example_workflows/api/NAME.json (what the tests and `make demo` run). After editing a UI
    workflow: python -m tools.comfyui convert "example_workflows/N.json" --out "example_workflows/api/N.json"."""
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    api = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    assert ui_to_api(ui, comfy_server.object_info()) == api
    for node in ui["nodes"]:  # nodes of this pack carry its registry id, for ComfyUI-Manager
        if node["type"] in NODE_IDS:
            assert node["properties"]["cnr_id"] == "comfyui-lpip-diff"


def _example(name: str, *sets: str, extra: dict | None = None) -> dict:
    prompt = apply_sets(json.loads((WORKFLOWS / "api" / f"{name}.json").read_text()), sets)
    prompt.update(extra or {})
    return prompt


def _demo_faces() -> tuple[list, list[int], list[int]]:
    """The faces example (a) finds in the bundled demo photo, as its own settings find them
    (tools.demo: the core's detection and size limit): (alignments in the x4 photo, restored, left alone)."""
    from tools.demo import PHOTO, WORKFLOW, faces_of

    alignments, keep, skip, *_ = faces_of(PHOTO, json.loads(WORKFLOW.read_text()))
    return alignments, keep, skip


@pytest.mark.timeout(300)
def test_example_a_restores_the_faces_in_a_photo(comfy_server, tiny_checkpoint, face_photos):
    """The demo photo (faces about 10 px wide) upscaled x4: the faces within the size limit are restored
    and pasted back, those bigger are left alone bit-for-bit, and so is everything far from a face."""
    prompt = _example("Restore the faces in a photo", f"LoadImage.image={face_photos['solvay_tiny']}",
                      f"LoadLPIPModel.model_name={tiny_checkpoint}", "LPIPPatchFusedSampler.steps=2",
                      extra={"99": save(["2", 0], "example_a/reference")})
    entry = comfy_server.run(prompt, timeout=240)
    photo, = read_images(comfy_server, entry, "7")
    faces = read_images(comfy_server, entry, "8")
    reference, = read_images(comfy_server, entry, "99")
    with Image.open(REPO_ROOT / "examples" / "photos" / "solvay_1927_tiny.jpg") as im:
        w, h = im.size
    assert photo.shape == reference.shape == (4 * h, 4 * w, 3)  # the photo, upscaled x4
    alignments, keep, skip = _demo_faces()
    assert len(alignments) >= 25 and len(keep) >= 15 and skip  # most faces restored, the biggest left alone
    assert len(faces) == len(keep) and {f.shape for f in faces} == {(64, 64, 3)}  # 16 -> 64 px
    diff = np.abs(photo.astype(int) - reference.astype(int)).max(axis=-1)
    yy, xx = np.mgrid[:diff.shape[0], :diff.shape[1]]
    far = np.ones(diff.shape, bool)
    for i, al in enumerate(alignments):
        x0, y0, x1, y1 = al.box
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
        inner = diff[int(cy - 0.2 * side):int(cy + 0.2 * side), int(cx - 0.2 * side):int(cx + 0.2 * side)]
        if i in keep:
            assert inner.mean() > 5
        far &= (np.abs(xx - cx) > 1.3 * side) | (np.abs(yy - cy) > 1.3 * side)
    for i in skip:  # left alone: its whole crop region as it was, unless a restored neighbour overlaps it
        x0, y0, x1, y1 = (int(v) for v in alignments[i].box)
        assert (diff[y0:y1, x0:x1] == 0).mean() > 0.5
    assert far.mean() > 0.2 and diff[far].max() == 0  # untouched pixels stay bit-for-bit


@pytest.mark.timeout(300)
def test_example_b_degrades_restores_and_saves_side_by_side(comfy_server, tiny_checkpoint, face_photos):
    prompt = _example("Degrade, restore and score a face", f"LoadImage.image={face_photos['hopper']}",
                      f"LoadLPIPModel.model_name={tiny_checkpoint}", "LPIPPatchFusedSampler.steps=2",
                      extra={"98": save(["3", 0], "example_b/clean"), "99": save(["4", 1], "example_b/lq_up")})
    entry = comfy_server.run(prompt, timeout=240)
    strip, = read_images(comfy_server, entry, "8")
    clean, = read_images(comfy_server, entry, "98")
    lq_up, = read_images(comfy_server, entry, "99")
    assert clean.shape == lq_up.shape == (64, 64, 3)
    assert strip.shape == (64, 64 * 3 + 2 * 2, 3)  # degraded | restored | original, 2 px apart
    assert np.abs(strip[:, :64].astype(int) - lq_up).max() <= 2
    assert np.abs(strip[:, -64:].astype(int) - clean).max() <= 2
    assert np.abs(lq_up.astype(int) - clean).mean() > 2  # it was degraded


@pytest.mark.timeout(600)
def test_demo_command_runs_example_a_headless(comfy_dir, tmp_path):
    """The run `make demo` starts with (tools.demo runs example (a)'s API copy through tools.comfyui on the
    bundled demo photo; its side-by-side half is tests/core/test_photo.py's), with a tiny model from a folder
    named in an extra_model_paths.yaml instead of the shipped x4 model, and one sampling step."""
    import lpip_core

    models = tmp_path / "models"
    models.mkdir()
    torch.manual_seed(0)
    config = lpip_core.ModelConfig(unet=lpip_core.PRESETS["tiny"], scale=4, hq_size=64, patch=16, stride=8)
    lpip_core.save_model(lpip_core.LPIPModel(config), models / "tiny_demo.safetensors")
    (tmp_path / "extra.yaml").write_text(f"test:\n  lpip_diff: {models}\n")
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.comfyui", "run", "example_workflows/api/Restore the faces in a photo.json",
         "--out", str(out), "--comfy-dir", str(comfy_dir),
         "--set", "LoadImage.image=@examples/photos/solvay_1927_tiny.jpg",
         "--set", "LoadLPIPModel.model_name=tiny_demo.safetensors", "--set", "LPIPPatchFusedSampler.steps=1",
         "--extra-model-paths", str(tmp_path / "extra.yaml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, keep, _ = _demo_faces()
    paths = sorted(Path(p).name for p in proc.stdout.split())
    assert paths == [f"restored_faces_{i:05d}_.png" for i in range(1, len(keep) + 1)] + ["restored_photo_00001_.png"]
    with Image.open(REPO_ROOT / "examples" / "photos" / "solvay_1927_tiny.jpg") as im:
        size = (4 * im.width, 4 * im.height)
    with Image.open(out / "restored_photo_00001_.png") as im:
        assert im.size == size
