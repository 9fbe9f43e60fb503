"""The pack's nodes in a real ComfyUI server, 0.3.75 and 0.28.2 (one per version, see conftest.py).

Every run uses a tiny untrained checkpoint written by the tests (never the shipped models), a
few sampling steps and small images: the point is the plumbing (inputs, outputs, sizes, errors,
progress, interruption), not the restoration quality.
"""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lpip_core.method.restoration import RECOMMENDED_DENOISE, RECOMMENDED_END_PERCENT
from tools.comfyui import PACK_NAME, REPO_ROOT, ExecutionFailed, Interrupted, PromptRejected, apply_sets, ui_to_api

NODE_IDS = ["LoadLPIPModel", "LPIPPatchFusedSampler", "LPIPRestoreFaces", "LPIPDegradeFace", "LPIPFaceCropAlign",
            "LPIPFacePasteBack", "LPIPCompare", "LPIPFaceIdentityScore"]


# ------------------------------------------------------------------------------------------ helpers

def load_model(name: str, dtype: str = "auto", device: str = "auto") -> dict:
    return {"class_type": "LoadLPIPModel", "inputs": {"model_name": name, "dtype": dtype, "device": device}}


def sampler(model, image, **overrides) -> dict:
    inputs = {"model": model, "image": image, "seed": 0, "steps": 2, "eta": 0.0, "patch_size": 0, "stride": 0,
              "fusion": "mean", "max_patch_batch": 64, "input_is": "low_resolution"}
    return {"class_type": "LPIPPatchFusedSampler", "inputs": {**inputs, **overrides}}


def crop_align(image, **overrides) -> dict:
    inputs = {"image": image, "face_size": 16, "select": "largest", "index": 0, "padding": 0.0, "upsample": 0,
              "if_no_face": "error", "max_face_px": -1}  # these tests restore big faces: no size limit
    return {"class_type": "LPIPFaceCropAlign", "inputs": {**inputs, **overrides}}


def paste_back(image, faces, face_align, color_match: str = "none", strength: float = 1.0) -> dict:
    return {"class_type": "LPIPFacePasteBack", "inputs": {
        "image": image, "faces": faces, "face_align": face_align, "feather": 0.1, "color_match": color_match,
        "strength": strength}}


def save(images, prefix: str) -> dict:
    return {"class_type": "SaveImage", "inputs": {"images": images, "filename_prefix": prefix}}


def read_images(server, entry: dict, node_id: str | None = None) -> list[np.ndarray]:
    """The images an output node saved, as uint8 RGB arrays [H, W, 3], in order."""
    out = []
    for path in server.output_images(entry, node_id):
        with Image.open(path) as im:
            out.append(np.asarray(im.convert("RGB")))
    return out


def face_boxes(rgb: np.ndarray, upsample: int = 1) -> list[tuple[float, float, float, float]]:
    from lpip_core.faces.detect import detect_faces

    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)
    return [d.box for d in detect_faces(x, upsample=upsample)]


# ------------------------------------------------------------------------------------------ discovery

def test_pack_imports_fast_and_lists_its_nodes(comfy_server):
    log = comfy_server.log_path.read_text(errors="replace")
    times = re.findall(r"([\d.]+) seconds(?: \(IMPORT FAILED\))?: (.*)$", log, re.M)  # 0.28.2 prefixes [INFO]
    ours = [float(t) for t, path in times if path.strip().endswith(PACK_NAME)]
    assert ours and ours[0] < 1.0, f"pack import time {ours}: {log[-2000:]}"
    assert comfy_server.custom_node_status()[PACK_NAME] is True
    info = comfy_server.object_info()
    for node_id in NODE_IDS:
        assert node_id in info, node_id
        assert info[node_id]["python_module"] == f"custom_nodes.{PACK_NAME}"
        assert info[node_id]["category"] == "LPIP-Diff"


def test_junk_in_the_model_folder_never_takes_the_pack_down(comfy_server, hostile_models, tiny_checkpoint):
    """The server started with the hostile corpus (bad configs, nesting 100k deep, pickles, NaN, ...)
    in models/lpip_diff: the pack loaded, all five nodes are there, the good models are listed, every
    file with a bad config is skipped and logged once, and what is listed but broken fails cleanly."""
    assert comfy_server.custom_node_status()[PACK_NAME] is True
    for _ in range(2):  # every /object_info lists the folder again
        info = comfy_server.object_info()
    assert all(node_id in info for node_id in NODE_IDS)
    options = info["LoadLPIPModel"]["input"]["required"]["model_name"][1]["options"]
    assert tiny_checkpoint in options and "lpip_x4_64.safetensors" in options
    names = [n for n in hostile_models if n != "base_dir"]
    skipped = [n for n in names if n not in options]
    assert len(skipped) >= 40 and "norm_groups_zero.safetensors" in skipped and "nested_100k.safetensors" in skipped
    log = comfy_server.log_path.read_text(errors="replace")
    for name in skipped:
        assert log.count(f"skipping {comfy_server.models_dir / 'lpip_diff' / name}:") == 1, name
    assert "other .safetensors file(s) skipped" in info["LoadLPIPModel"]["description"]
    for name in sorted(set(names) - set(skipped)):  # a valid config, broken tensors: a clear error at load
        prompt = {"1": load_model(name),
                  "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
                  "3": sampler(["1", 0], ["2", 0], steps=1), "4": save(["3", 0], "errors/never")}
        _expect_error(comfy_server, prompt, name, hostile_models[name], node="1")


def test_object_info_inputs_tooltips_and_defaults(comfy_server, tiny_checkpoint):
    info = comfy_server.object_info()
    for node_id in NODE_IDS:
        node = info[node_id]
        assert node["display_name"] and len(node["description"]) > 80, node_id
        for name, spec in {**node["input"]["required"], **node["input"].get("optional", {})}.items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert len(node["output_tooltips"]) == len(node["output"]) and all(node["output_tooltips"]), node_id

    def inputs(node_id):
        return info[node_id]["input"]["required"]

    loader = inputs("LoadLPIPModel")
    assert tiny_checkpoint in loader["model_name"][1]["options"]
    assert loader["dtype"][1]["options"] == ["auto", "fp32", "fp16", "bf16"] and loader["dtype"][1]["default"] == "auto"
    assert loader["device"][1]["options"] == ["auto", "cpu"]
    compile_input = info["LoadLPIPModel"]["input"]["optional"]["compile"]  # optional: older workflows load as before
    assert compile_input[0] == "BOOLEAN" and compile_input[1]["default"] is False
    assert info["LoadLPIPModel"]["output"] == ["LPIP_MODEL", "INT"]
    # the description shows each checkpoint's metadata: scale, LQ -> HQ face size, training patch
    assert f"{tiny_checkpoint}: x4, 16 -> 64 px faces, training patch 16" in info["LoadLPIPModel"]["description"]

    s = inputs("LPIPPatchFusedSampler")
    assert list(s) == ["model", "image", "seed", "steps", "eta", "patch_size", "stride", "fusion",
                       "max_patch_batch", "input_is"]
    assert s["model"][0] == "LPIP_MODEL" and s["image"][0] == "IMAGE"
    assert (s["steps"][1]["default"], s["steps"][1]["min"], s["steps"][1]["max"]) == (25, 1, 1000)
    assert s["eta"][1]["default"] == 0.0 and s["patch_size"][1]["default"] == 0 and s["stride"][1]["default"] == 0
    assert s["fusion"][1]["options"] == ["mean", "median", "gaussian"] and s["fusion"][1]["default"] == "mean"
    assert s["max_patch_batch"][1]["default"] == 512
    end = info["LPIPPatchFusedSampler"]["input"]["optional"]["end_percent"][1]
    assert (end["default"], end["min"], end["max"]) == (RECOMMENDED_END_PERCENT, 0.01, 1.0)
    assert s["input_is"][1]["options"] == ["low_resolution", "already_upscaled"]
    # the rarely touched inputs are folded away where ComfyUI knows advanced inputs (0.28.2, not 0.3.75)
    advanced = {name: s[name][1].get("advanced") for name in ("eta", "patch_size", "stride", "fusion", "max_patch_batch")}
    assert advanced == dict.fromkeys(advanced, None if comfy_server.version == "0.3.75" else True), advanced
    assert all(s[name][1].get("advanced") is None for name in ("seed", "steps", "input_is"))
    assert s["seed"][1]["control_after_generate"] is True

    d = inputs("LPIPDegradeFace")
    assert list(d) == ["image", "mode", "seed", "blur_sigma", "downscale", "noise_sigma", "jpeg_quality"]
    assert d["mode"][1]["options"] == ["random", "manual"]
    assert info["LPIPDegradeFace"]["output_name"] == ["lq", "lq_upscaled"]

    c = inputs("LPIPFaceCropAlign")
    assert list(c) == ["image", "face_size", "select", "index", "padding", "upsample", "if_no_face"]
    assert c["select"][1]["options"] == ["largest", "all", "index"]
    assert c["if_no_face"][1]["options"] == ["error", "pass_through"]
    assert info["LPIPFaceCropAlign"]["output"] == ["IMAGE", "FACE_ALIGN", "INT", "MASK"]
    assert list(info["LPIPFaceCropAlign"]["input"]["optional"]) == ["mask", "min_score", "max_face_px",
                                                                     "upscaled_by"]

    p = inputs("LPIPFacePasteBack")
    assert list(p) == ["image", "faces", "face_align", "feather", "color_match"]
    assert p["face_align"][0] == "FACE_ALIGN" and p["color_match"][1]["options"] == ["none", "mean_std"]
    assert info["LPIPFacePasteBack"]["output"] == ["IMAGE", "MASK"]

    r = inputs("LPIPRestoreFaces")
    assert list(r) == ["model", "image", "seed", "steps", "denoise", "input_is", "select", "upsample", "feather",
                       "color_match", "strength"]
    assert list(info["LPIPRestoreFaces"]["input"]["optional"]) == ["mask", "samples", "end_percent", "min_score",
                                                                    "max_face_px", "upscaled_by"]
    assert info["LPIPRestoreFaces"]["output"] == ["IMAGE", "IMAGE", "MASK"]
    assert info["LPIPCompare"]["output_node"] is True and info["LPIPCompare"]["output"] == []
    assert info["LPIPFaceIdentityScore"]["output"] == ["FLOAT"] and info["LPIPFaceIdentityScore"]["output_node"]


def test_every_seed_has_the_same_range(comfy_server, tiny_checkpoint):
    """One seed range across the pack (KSampler's), and the largest seed runs on a batch (image i
    uses seed + i, wrapped)."""
    info = comfy_server.object_info()
    seeds = {node_id: info[node_id]["input"]["required"]["seed"][1] for node_id in NODE_IDS
             if "seed" in info[node_id]["input"]["required"]}
    assert set(seeds) == {"LPIPPatchFusedSampler", "LPIPRestoreFaces", "LPIPDegradeFace"}
    largest = info["KSampler"]["input"]["required"]["seed"][1]["max"]
    assert {(s["min"], s["max"]) for s in seeds.values()} == {(0, largest)}
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "EmptyImage",
                    "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": 0x806040}},
              "3": {"class_type": "LPIPDegradeFace", "inputs": {"image": ["2", 0], "mode": "random", "seed": largest,
                    "blur_sigma": 1.0, "downscale": 4.0, "noise_sigma": 5.0, "jpeg_quality": 80}},
              "4": sampler(["1", 0], ["3", 0], seed=largest, steps=1),
              "5": save(["4", 0], "seeds/largest")}
    assert [f.shape for f in read_images(comfy_server, comfy_server.run(prompt, timeout=120), "5")] == [(64, 64, 3)] * 2


def test_model_folder_lists_safetensors_only_and_new_files(comfy_server, tiny_checkpoint):
    folder = comfy_server.models_dir / "lpip_diff"
    name = f"late-{uuid.uuid4().hex[:6]}"
    (folder / f"{name}.ckpt").write_bytes(b"\x80\x04not a real pickle")
    (folder / f"{name}.safetensors").write_bytes((folder / tiny_checkpoint).read_bytes())
    listed = comfy_server._get("/models/lpip_diff").json()
    assert f"{name}.safetensors" in listed and f"{name}.ckpt" not in listed
    options = comfy_server.object_info("LoadLPIPModel")["LoadLPIPModel"]["input"]["required"]["model_name"][1]
    assert f"{name}.safetensors" in options["options"]


# ------------------------------------------------------------------------------------------ sampling

def test_restore_batch_in_one_pass_seeds_and_sizes(comfy_server, tiny_checkpoint, lq_faces):
    """A batch is restored in one pass with seed + i: frame 1 of a batch at seed 5 equals the same
    image alone at seed 6 to float rounding (its patches share UNet calls with frame 0's: at most
    one 8-bit level), and the output is the input times the model's scale."""
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "LoadImage", "inputs": {"image": lq_faces["a"]}},
              "3": {"class_type": "LoadImage", "inputs": {"image": lq_faces["b"]}},
              "4": {"class_type": "ImageBatch", "inputs": {"image1": ["2", 0], "image2": ["3", 0]}},
              "5": sampler(["1", 0], ["4", 0], seed=5, steps=3),
              "6": save(["5", 0], "sampler/frames"),
              "7": sampler(["1", 0], ["3", 0], seed=6, steps=3),
              "8": save(["7", 0], "sampler/single"),
              "9": sampler(["1", 0], ["4", 0], seed=5, steps=3, max_patch_batch=5),
              "10": save(["9", 0], "sampler/chunked")}
    entry = comfy_server.run(prompt, timeout=120)
    frames = read_images(comfy_server, entry, "6")
    single = read_images(comfy_server, entry, "8")
    chunked = read_images(comfy_server, entry, "10")
    assert [f.shape for f in frames] == [(64, 64, 3), (64, 64, 3)]
    assert np.abs(frames[1].astype(int) - single[0].astype(int)).max() <= 1  # frame i uses seed + i
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).max() > 10
    # the patch batch bounds memory, it does not change the result (beyond float rounding)
    assert max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(frames, chunked)) <= 1


def test_denoise_in_the_server(comfy_server, tiny_checkpoint, lq_faces):
    """denoise 0 returns the bicubic upscale (the same pixels as ImageScale's bicubic, to 8-bit
    rounding), 1 is the default path, 0.5 lies between them; 1.5 is a clear error. samples=2 is
    the mean of the restorations at seed and seed + 1000, and what samples left at 0 gives with a
    checkpoint whose config asks for 2 (as lpip_x8_128's does). end_percent=0.5 of 4 steps is the core's
    result (step 2's clean estimate) and the node's line counts two steps; without end_percent the
    node ends at RECOMMENDED_END_PERCENT, with 1 it runs every step (the paper); 0 is a clear error."""
    import lpip_core

    two = lpip_core.load_model(comfy_server.models_dir / "lpip_diff" / tiny_checkpoint)
    two.config = replace(two.config, samples=2)
    lpip_core.save_model(two, comfy_server.models_dir / "lpip_diff" / "tiny_two_samples.safetensors")
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "LoadImage", "inputs": {"image": lq_faces["a"]}},
              "3": sampler(["1", 0], ["2", 0], denoise=0.0), "4": save(["3", 0], "denoise/zero"),
              "5": sampler(["1", 0], ["2", 0], denoise=0.5), "6": save(["5", 0], "denoise/half"),
              "7": sampler(["1", 0], ["2", 0], denoise=1.0), "8": save(["7", 0], "denoise/one"),
              "9": sampler(["1", 0], ["2", 0]), "10": save(["9", 0], "denoise/default"),
              "11": sampler(["1", 0], ["2", 0], seed=1000), "12": save(["11", 0], "denoise/seed1000"),
              "13": sampler(["1", 0], ["2", 0], samples=2), "14": save(["13", 0], "denoise/samples2"),
              "15": sampler(["1", 0], ["2", 0], steps=4, end_percent=0.5), "16": save(["15", 0], "denoise/end2"),
              "17": sampler(["1", 0], ["2", 0], steps=4, end_percent=1.0), "18": save(["17", 0], "denoise/paper"),
              "19": sampler(["1", 0], ["2", 0], steps=4), "20": save(["19", 0], "denoise/end_default"),
              "21": load_model("tiny_two_samples.safetensors"),
              "22": sampler(["21", 0], ["2", 0]), "23": save(["22", 0], "denoise/model_default2"),
              "24": sampler(["21", 0], ["2", 0], samples=1), "25": save(["24", 0], "denoise/model_samples1")}
    entry = comfy_server.run(prompt, timeout=120)
    zero, half, one, default, other, mean2, model2, model1 = (
        read_images(comfy_server, entry, n)[0].astype(int) for n in ("4", "6", "8", "10", "12", "14", "23", "25"))
    assert np.abs(mean2 - (one + other) / 2).max() <= 1  # samples=2: the mean of seeds 0 and 1000, to 8-bit rounding
    assert entry["outputs"]["13"]["lpip_grid"][0]["samples"] == 2
    assert entry["outputs"]["9"]["lpip_grid"][0]["samples"] == 1  # samples 0: this model's default, 1
    assert np.array_equal(model2, mean2) and entry["outputs"]["22"]["lpip_grid"][0]["samples"] == 2
    assert np.array_equal(model1, default) and entry["outputs"]["24"]["lpip_grid"][0]["samples"] == 1
    from lpip_core import load_model as load_core_model, restore
    from lpip_core.files import read_image
    from lpip_core.resize import resize

    lq = read_image(comfy_server.input_dir / lq_faces["a"])
    core = load_core_model(comfy_server.models_dir / "lpip_diff" / tiny_checkpoint)
    for node, end in (("16", 0.5), ("18", 1.0), ("20", RECOMMENDED_END_PERCENT)):
        ended = (restore(core, lq, steps=4, end_percent=end)[0].permute(1, 2, 0).numpy() * 255).round().astype(int)
        assert np.abs(read_images(comfy_server, entry, node)[0].astype(int) - ended).max() <= 1, node
    assert [entry["outputs"][n]["lpip_grid"][0]["steps"] for n in ("15", "17", "19")] == [2, 4, 2]
    bicubic = (resize(lq, (64, 64))[0].permute(1, 2, 0).numpy() * 255).round().astype(int)
    assert np.abs(zero - bicubic).max() <= 1
    assert np.abs(half - zero).mean() < np.abs(one - zero).mean()
    if RECOMMENDED_DENOISE == 1.0:
        assert np.array_equal(default, one)
    bad = {"1": load_model(tiny_checkpoint), "2": {"class_type": "LoadImage", "inputs": {"image": lq_faces["a"]}},
           "3": sampler(["1", 0], ["2", 0], denoise=1.5), "4": save(["3", 0], "denoise/bad")}
    with pytest.raises(PromptRejected, match="denoise"):  # ComfyUI checks the input's range at queue time
        comfy_server.queue(bad)
    bad["3"] = sampler(["1", 0], ["2", 0], end_percent=0)
    with pytest.raises(PromptRejected, match="end_percent"):
        comfy_server.queue(bad)


def test_already_upscaled_input_keeps_its_size(comfy_server, tiny_checkpoint):
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "EmptyImage", "inputs": {"width": 48, "height": 40, "batch_size": 1,
                                                          "color": 0x807060}},
              "3": sampler(["1", 0], ["2", 0], steps=2, input_is="already_upscaled", patch_size=16, stride=16),
              "4": save(["3", 0], "sampler/upscaled")}
    out = read_images(comfy_server, comfy_server.run(prompt, timeout=60))
    assert out[0].shape == (40, 48, 3)


def test_progress_and_preview_for_every_step(comfy_server, comfy_ws, tiny_checkpoint):
    steps, frames = 4, 2
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": frames,
                                                          "color": 0x405060}},
              "3": sampler(["1", 0], ["2", 0], steps=steps, seed=int(time.time()) % 1000, end_percent=1.0),
              "4": save(["3", 0], "sampler/progress")}
    pid = comfy_server.queue(prompt, client_id=comfy_ws.client_id)
    comfy_server.wait(pid, timeout=60)
    comfy_ws.wait_for(lambda m: m["type"] == "executing" and m["data"]["node"] is None
                      and m["data"].get("prompt_id") == pid, timeout=10)
    progress = [m["data"] for m in comfy_ws.of_type("progress", pid) if m["data"]["node"] == "3"]
    # both frames in one pass: one progress message per step
    assert [(p["value"], p["max"]) for p in progress] == [(i, steps) for i in range(1, steps + 1)]
    # one preview per step, of the whole batch side by side, between the first and last progress messages
    msgs = comfy_ws.messages
    first = next(i for i, m in enumerate(msgs) if m["type"] == "progress" and m["data"].get("prompt_id") == pid)
    done = next(i for i, m in enumerate(msgs) if m["type"] == "executed" and m["data"].get("prompt_id") == pid)
    previews = [m for m in msgs[first:done] if m["type"] == "preview"]
    assert len(previews) == steps
    assert all(p["format"] == "JPEG" and p["image"][:2] == b"\xff\xd8" for p in previews)
    with Image.open(io.BytesIO(previews[-1]["image"])) as im:
        assert im.size == (2 * 64, 64)


@pytest.mark.timeout(180)
def test_interrupt_stops_sampling_within_two_seconds(comfy_server, comfy_ws, tiny_checkpoint):
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "EmptyImage", "inputs": {"width": 48, "height": 48, "batch_size": 1,
                                                          "color": 0x102030}},
              "3": sampler(["1", 0], ["2", 0], steps=1000, seed=int(time.time()) % 1000),
              "4": save(["3", 0], "sampler/interrupted")}
    pid = comfy_server.queue(prompt, client_id=comfy_ws.client_id)
    comfy_ws.wait_for(lambda m: m["type"] == "progress" and m["data"].get("prompt_id") == pid
                      and m["data"]["node"] == "3" and m["data"]["value"] >= 2, timeout=60)
    t0 = time.monotonic()
    comfy_server.interrupt(pid)
    comfy_ws.wait_for(lambda m: m["type"] == "execution_interrupted" and m["data"]["prompt_id"] == pid, timeout=10)
    stopped_after = time.monotonic() - t0
    assert stopped_after < 2.0, stopped_after
    with pytest.raises(Interrupted) as ei:
        comfy_server.wait(pid, timeout=10)
    assert ei.value.node_id == "3"
    last = max(m["data"]["value"] for m in comfy_ws.of_type("progress", pid) if m["data"]["node"] == "3")
    assert last < 1000
    # the next prompt runs normally
    prompt["3"] = sampler(["1", 0], ["2", 0], steps=2, seed=1)
    prompt["4"] = save(["3", 0], "sampler/after-interrupt")
    out = read_images(comfy_server, comfy_server.run(prompt, timeout=60))
    assert out[0].shape == (192, 192, 3)


# ------------------------------------------------------------------------------------------ faces

def test_degrade_face_sizes_and_modes(comfy_server, face_photos):
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["aligned"]}},
              "2": {"class_type": "LPIPDegradeFace", "inputs": {
                  "image": ["1", 0], "mode": "manual", "seed": 3, "blur_sigma": 1.5, "downscale": 4.0,
                  "noise_sigma": 5.0, "jpeg_quality": 70}},
              "3": save(["2", 0], "degrade/lq"), "4": save(["2", 1], "degrade/lq_up"),
              "5": {"class_type": "LPIPDegradeFace", "inputs": {
                  "image": ["1", 0], "mode": "random", "seed": 3, "blur_sigma": 0.0, "downscale": 8.0,
                  "noise_sigma": 0.0, "jpeg_quality": 0}},
              "6": save(["5", 0], "degrade/random")}
    entry = comfy_server.run(prompt, timeout=60)
    lq, up, rnd = (read_images(comfy_server, entry, n)[0] for n in ("3", "4", "6"))
    assert lq.shape == (32, 32, 3) and up.shape == (128, 128, 3) and rnd.shape == (16, 16, 3)
    clean = np.asarray(Image.open(REPO_ROOT / "tests/fixtures/hopper_aligned_128.png").convert("RGB")).astype(int)
    err = np.abs(up.astype(int) - clean).mean()
    assert 2 < err < 40  # degraded, but still the same face


def test_crop_restore_paste_changes_only_the_faces(comfy_server, tiny_checkpoint, face_photos):
    """The chain of example workflow (a) on a two-person photo, select = all: two faces, each face
    region changed by the paste, pixels far from the faces unchanged (to 8-bit rounding)."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "2": load_model(tiny_checkpoint),
              "3": crop_align(["1", 0], face_size=["2", 1], select="all", upsample=1),
              "4": sampler(["2", 0], ["3", 0], steps=2),
              "5": paste_back(["1", 0], ["4", 0], ["3", 1]),
              "6": save(["5", 0], "faces/pasted"), "7": save(["3", 0], "faces/crops"),
              "8": save(["4", 0], "faces/restored"), "9": save(["1", 0], "faces/original")}
    entry = comfy_server.run(prompt, timeout=120)
    pasted, = read_images(comfy_server, entry, "6")
    crops = read_images(comfy_server, entry, "7")
    restored = read_images(comfy_server, entry, "8")
    original, = read_images(comfy_server, entry, "9")
    assert len(crops) == 2 and {c.shape for c in crops} == {(16, 16, 3)}
    assert {r.shape for r in restored} == {(64, 64, 3)}
    assert pasted.shape == original.shape
    diff = np.abs(pasted.astype(int) - original.astype(int)).max(axis=-1)
    boxes = face_boxes(original)
    assert len(boxes) == 2
    far = np.ones(diff.shape, bool)
    h, w = diff.shape
    yy, xx = np.mgrid[:h, :w]
    for x0, y0, x1, y1 in boxes:
        inner = diff[int(y0 + 0.3 * (y1 - y0)):int(y1 - 0.2 * (y1 - y0)), int(x0 + 0.2 * (x1 - x0)):int(x1 - 0.2 * (x1 - x0))]
        assert inner.mean() > 10, "the pasted (restored) face must change the face region"
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
        far &= (np.abs(xx - cx) > 1.3 * side) | (np.abs(yy - cy) > 1.3 * side)
    assert far.mean() > 0.3 and diff[far].max() <= 1


def test_paste_back_strength_blends(comfy_server, tiny_checkpoint, face_photos):
    """strength 0 leaves the photo as it was; 0.5 lands halfway between it and the full paste."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "2": load_model(tiny_checkpoint),
              "3": crop_align(["1", 0], face_size=["2", 1], select="all", upsample=1),
              "4": sampler(["2", 0], ["3", 0], steps=2)}
    for n, s in ((5, 1.0), (6, 0.5), (7, 0.0)):
        prompt[str(n)] = paste_back(["1", 0], ["4", 0], ["3", 1], strength=s)
        prompt[str(n + 10)] = save([str(n), 0], f"strength/{s}")
    prompt["20"] = save(["1", 0], "strength/original")
    entry = comfy_server.run(prompt, timeout=120)
    full, half, none, original = (read_images(comfy_server, entry, n)[0].astype(int) for n in ("15", "16", "17", "20"))
    assert np.abs(none - original).max() <= 1 and np.abs(full - original).max() > 20
    assert np.abs(half - (full + original) / 2).max() <= 1.5


def test_several_faces_per_image_and_per_batch(comfy_server, tiny_checkpoint, face_photos):
    """A batch of two photos with two faces each: four crops, each pasted back into its own frame."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "2": {"class_type": "ImageFlip", "inputs": {"image": ["1", 0], "flip_method": "y-axis: horizontally"}},
              "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
              "4": load_model(tiny_checkpoint),
              "5": crop_align(["3", 0], select="all", upsample=1),
              "6": sampler(["4", 0], ["5", 0], steps=1),
              "7": paste_back(["3", 0], ["6", 0], ["5", 1], "mean_std"),
              "8": save(["7", 0], "faces/batch"), "9": save(["3", 0], "faces/batch-original"),
              "10": save(["5", 0], "faces/batch-crops")}
    entry = comfy_server.run(prompt, timeout=120)
    pasted, originals, crops = (read_images(comfy_server, entry, n) for n in ("8", "9", "10"))
    assert len(crops) == 4 and len(pasted) == len(originals) == 2
    for out, orig in zip(pasted, originals):
        diff = np.abs(out.astype(int) - orig.astype(int)).max(axis=-1)
        for x0, y0, x1, y1 in face_boxes(orig):  # both faces of each frame were replaced
            cx, cy, r = int((x0 + x1) / 2), int((y0 + y1) / 2), int(0.15 * (x1 - x0))
            assert diff[cy - r:cy + r, cx - r:cx + r].mean() > 5


def test_paste_back_has_no_seam_on_a_flat_region(comfy_server, face_photos):
    """Paste a flat 64 px 'face' into a flat canvas with the alignment of a real face: the
    feathered edge must ramp smoothly (no step bigger than a few 8-bit levels)."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["portrait"]}},
              "2": crop_align(["1", 0], upsample=1),
              "3": {"class_type": "EmptyImage", "inputs": {"width": 320, "height": 320, "batch_size": 1,
                                                          "color": 0x808080}},
              "4": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1,
                                                          "color": 0x909090}},
              "5": paste_back(["3", 0], ["4", 0], ["2", 1]),
              "6": save(["5", 0], "faces/seam")}
    out, = read_images(comfy_server, comfy_server.run(prompt, timeout=60))
    g = out[..., 0].astype(int)
    assert g.max() == 0x90 and g.min() == 0x80  # the face went in at full strength, the rest as it was
    step = max(np.abs(np.diff(g, axis=0)).max(), np.abs(np.diff(g, axis=1)).max())
    assert step <= 2, f"a visible seam: a step of {step} levels"


def test_no_face_pass_through_skips_sampling(comfy_server, tiny_checkpoint):
    """No face: the sampler (here 1000 steps, minutes if it ran on anything) and the nodes fed by faces
    are skipped, and the photo comes back unchanged."""
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 120, "height": 90, "batch_size": 1,
                                                          "color": 0x336699}},
              "2": load_model(tiny_checkpoint),
              "3": crop_align(["1", 0], if_no_face="pass_through"),
              "4": sampler(["2", 0], ["3", 0], steps=1000),
              "5": paste_back(["1", 0], ["4", 0], ["3", 1]),
              "6": save(["5", 0], "faces/pass-through"), "7": save(["4", 0], "faces/none")}
    t0 = time.monotonic()
    entry = comfy_server.run(prompt, timeout=60)
    assert time.monotonic() - t0 < 20
    out, = read_images(comfy_server, entry, "6")
    assert out.shape == (90, 120, 3) and (out == (0x33, 0x66, 0x99)).all()
    assert read_images(comfy_server, entry, "7") == []  # no face, nothing restored or saved
    assert "4" not in entry.get("outputs", {}) and "7" not in entry.get("outputs", {})


# ------------------------------------------------------------------------------------------ errors

def test_a_restoration_too_large_for_memory_is_one_line(comfy_server):
    """A 4096 px image into an x16 model: a 65536 px result (terabytes of working memory) is refused
    by restore's memory guard before anything is allocated, and the server stays up."""
    import lpip_core

    config = lpip_core.ModelConfig(unet=lpip_core.PRESETS["tiny"], scale=16, hq_size=256, patch=16, stride=8)
    lpip_core.save_model(lpip_core.LPIPModel(config), comfy_server.models_dir / "lpip_diff" / "tiny_x16.safetensors")
    prompt = {"1": load_model("tiny_x16.safetensors"),
              "2": {"class_type": "EmptyImage", "inputs": {"width": 4096, "height": 4096, "batch_size": 1,
                                                          "color": 0}},
              "3": sampler(["1", 0], ["2", 0], steps=1), "4": save(["3", 0], "errors/never")}
    _expect_error(comfy_server, prompt, "not enough memory", "65536x65536 px", "a smaller image", node="3")


def _expect_error(server, prompt, *needles, node=None):
    """The prompt fails with a ValueError naming ``needles``. ComfyUI 0.28.2 checks combo values
    itself when the prompt is queued: then the 400 answer must name the node's value that is not in
    the list, and the list of accepted values."""
    try:
        pid = server.queue(prompt)
    except PromptRejected as rejected:
        assert server.version != "0.3.75", rejected  # 0.3.75 does not validate V3 combos
        errors = rejected.node_errors[node]["errors"] if node is not None else \
            [e for info in rejected.node_errors.values() for e in info["errors"]]
        text = " ".join(f"{e['message']}: {e['details']}" for e in errors)
        assert "Value not in list" in text and "[" in text, text
        assert server.alive()
        return rejected
    with pytest.raises(ExecutionFailed) as ei:
        server.wait(pid, timeout=60)
    err = ei.value
    assert not isinstance(err, Interrupted)
    assert err.exception_type == "ValueError", (err.exception_type, err.message)
    for needle in needles:
        assert needle in err.message, f"{needle!r} not in {err.message!r}"
    assert "Traceback" not in err.message
    if node is not None:
        assert err.node_id == node
    assert server.alive()
    return err


def test_bad_model_names_are_clear_execution_errors(comfy_server, tiny_checkpoint):
    folder = comfy_server.models_dir / "lpip_diff"
    (folder / "pickled.ckpt").write_bytes(b"\x80\x04\x95not really a pickle")
    (folder / "corrupt.safetensors").write_bytes(b"PK\x03\x04 a zip, not safetensors" * 4)

    def prompt(name):
        return {"1": load_model(name),
                "2": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0}},
                "3": sampler(["1", 0], ["2", 0], steps=1), "4": save(["3", 0], "errors/never")}

    err = _expect_error(comfy_server, prompt("missing.safetensors"), "missing.safetensors", "not found",
                        tiny_checkpoint, node="1")
    assert "available" in str(err) or tiny_checkpoint in str(err)  # 0.28.2: its list of files
    _expect_error(comfy_server, prompt(f"../{tiny_checkpoint}"), "'..'", node="1")
    _expect_error(comfy_server, prompt("/etc/passwd.safetensors"), "absolute path", node="1")
    _expect_error(comfy_server, prompt("pickled.ckpt"), "pickles", ".safetensors", node="1")
    _expect_error(comfy_server, prompt("corrupt.safetensors"), "corrupt.safetensors", "not a safetensors", node="1")


def test_patch_larger_than_the_image_is_a_clear_error(comfy_server, tiny_checkpoint):
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 12, "batch_size": 1, "color": 0}},
              "3": sampler(["1", 0], ["2", 0], steps=1, patch_size=128),
              "4": save(["3", 0], "errors/never")}
    _expect_error(comfy_server, prompt, "patch_size 128", "larger than the output image (64x48 px)",
                  "multiple of 2 from 2 to 48", node="3")
    prompt["3"] = sampler(["1", 0], ["2", 0], steps=1, patch_size=16, stride=17)
    _expect_error(comfy_server, prompt, "stride must be an integer in 1..16, got 17", node="3")
    prompt["3"] = sampler(["1", 0], ["2", 0], steps=1, fusion="mode")
    _expect_error(comfy_server, prompt, "fusion", "mean, median, gaussian", node="3")


def test_photo_without_a_face_is_a_clear_error(comfy_server):
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 200, "height": 150, "batch_size": 1,
                                                          "color": 0x777777}},
              "2": crop_align(["1", 0]),
              "3": save(["2", 0], "errors/never")}
    _expect_error(comfy_server, prompt, "no face found", "200x150", "pass_through", node="2")


def test_ten_queued_prompts_good_and_bad_all_finish(comfy_server, tiny_checkpoint):
    def good(i):
        return {"1": load_model(tiny_checkpoint),
                "2": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 8 + 4 * (i % 3),
                                                            "batch_size": 1, "color": 0x010203 * (i + 1)}},
                "3": sampler(["1", 0], ["2", 0], steps=2, seed=100 + i),
                "4": save(["3", 0], f"queue/good{i}")}

    bad = {
        1: lambda p: p["1"]["inputs"].update(model_name="nope.safetensors"),
        4: lambda p: p["3"]["inputs"].update(patch_size=512),
        6: lambda p: p.update({"5": crop_align(["2", 0], select="all"), "4": save(["5", 0], "queue/noface")}),
        8: lambda p: p["1"]["inputs"].update(model_name="../../secrets.safetensors"),
    }
    # Rejected before they run (HTTP 400): steps below the minimum; on 0.28.2 also a model name that
    # is not in the list (0.3.75 does not check V3 combos and fails them when they run).
    rejected = {9} | ({1, 8} if comfy_server.version != "0.3.75" else set())
    pids = {}
    for i in range(10):
        p = good(i)
        if i in bad:
            bad[i](p)
        if i == 9:
            p["3"]["inputs"]["steps"] = 0
        if i in rejected:
            with pytest.raises(PromptRejected):
                comfy_server.queue(p)
            continue
        pids[i] = comfy_server.queue(p)
    for i, pid in pids.items():
        entry = comfy_server.wait(pid, timeout=180, raise_on_error=False)
        status = entry["status"]["status_str"]
        if i in bad:
            assert status == "error", i
            errors = [d for e, d in entry["status"]["messages"] if e == "execution_error"]
            assert errors and errors[0]["exception_type"] == "ValueError", errors
        else:
            assert status == "success", (i, entry["status"])
            out, = read_images(comfy_server, entry)
            h = 8 + 4 * (i % 3)
            assert out.shape == (4 * h, 64, 3), (i, out.shape)
    assert comfy_server.alive()


# ------------------------------------------------------------------------------------------ example workflows

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
    bundled demo photo; its side-by-side half is tests/test_photo.py's), with a tiny model from a folder
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


# ------------------------------------------------------------------------------------------ front-end nodes

def test_sampler_reports_its_patch_grid(comfy_server, tiny_checkpoint, lq_faces):
    """The sampler's UI output: the result as temporary previews and the plan of the run: 64 px out,
    patch 16, stride 8 -> 7 x 7 = 49 patches per step; max_patch_batch 5 -> 10 UNet calls per step."""
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "LoadImage", "inputs": {"image": lq_faces["a"]}},
              "3": sampler(["1", 0], ["2", 0], steps=2, max_patch_batch=5, end_percent=1.0),
              "4": save(["3", 0], "sampler/grid")}
    out = comfy_server.run(prompt, timeout=120)["outputs"]["3"]
    grid, = out["lpip_grid"]
    assert grid == {"width": 64, "height": 64, "patch": [16, 16], "stride": [8, 8], "ys": list(range(0, 49, 8)),
                    "xs": list(range(0, 49, 8)), "patches_per_step": 49, "max_patch_batch": 5, "steps": 2, "unet_calls": 20,
                    "images": 1, "samples": 1}
    preview, = out["lpip_preview"]
    assert preview["type"] == "temp" and (comfy_server.temp_dir / preview["subfolder"] / preview["filename"]).is_file()


def test_compare_shows_both_inputs_and_saves_nothing(comfy_server, lq_faces):
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": lq_faces["a"]}},
              "2": {"class_type": "LoadImage", "inputs": {"image": lq_faces["b"]}},
              "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
              "4": {"class_type": "LPIPCompare", "inputs": {"before": ["3", 0], "after": ["2", 0]}}}
    outputs_before = sorted(comfy_server.output_dir.rglob("*"))
    out = comfy_server.run(prompt, timeout=60)["outputs"]["4"]
    assert len(out["lpip_before"]) == 2 and len(out["lpip_after"]) == 1
    for entry in out["lpip_before"] + out["lpip_after"]:
        path = comfy_server.temp_dir / entry["subfolder"] / entry["filename"]
        assert entry["type"] == "temp" and path.is_file()
    with Image.open(comfy_server.temp_dir / out["lpip_after"][0]["subfolder"] / out["lpip_after"][0]["filename"]) as im:
        with Image.open(comfy_server.input_dir / lq_faces["b"]) as src:
            assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(src.convert("RGB")))
    assert sorted(comfy_server.output_dir.rglob("*")) == outputs_before


def test_identity_score_tells_same_from_different_people(comfy_server, fixtures_uploaded):
    """hopper against a 64 px copy of itself: the same person by dlib's threshold; against Obama:
    a different person. One reference for a batch is broadcast."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": fixtures_uploaded["hopper"]}},
              "2": {"class_type": "LoadImage", "inputs": {"image": fixtures_uploaded["hopper_64"]}},
              "3": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "bicubic",
                    "width": 128, "height": 128, "crop": "disabled"}},
              "4": {"class_type": "LoadImage", "inputs": {"image": fixtures_uploaded["obama"]}},
              "5": {"class_type": "ImageBatch", "inputs": {"image1": ["3", 0], "image2": ["4", 0]}},
              "6": {"class_type": "LPIPFaceIdentityScore", "inputs": {"reference": ["1", 0], "restored": ["5", 0],
                                                                     "landmarks": "from_reference"}}}
    result, = comfy_server.run(prompt, timeout=120)["outputs"]["6"]["lpip_identity"]
    same, other = result["faces"]
    assert same["verdict"] == "same person" and same["distance"] < 0.6 and same["id_sim"] > 0.95
    assert other["verdict"] == "different person" and other["distance"] >= 0.6 and other["id_sim"] < same["id_sim"]
    assert result["threshold"] == 0.6
    assert result["mean_id_sim"] == pytest.approx((same["id_sim"] + other["id_sim"]) / 2, abs=2e-4)


def test_restore_faces_in_one_node(comfy_server, tiny_checkpoint, face_photos):
    """Crop -> restore -> paste back: same size out, one restored crop per face, and a mask that is
    0 where the photo is unchanged."""
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "3": {"class_type": "LPIPRestoreFaces", "inputs": {
                  "model": ["1", 0], "image": ["2", 0], "seed": 0, "steps": 2, "denoise": 1.0,
                  "input_is": "low_resolution", "select": "all", "upsample": 0, "feather": 0.1, "color_match": "none",
                  "strength": 1.0, "max_face_px": -1}},
              "4": save(["3", 0], "restore_faces/photo"), "5": save(["3", 1], "restore_faces/faces"),
              "6": {"class_type": "MaskToImage", "inputs": {"mask": ["3", 2]}},
              "7": save(["6", 0], "restore_faces/mask"),
              "8": save(["2", 0], "restore_faces/original")}
    entry = comfy_server.run(prompt, timeout=240)
    photo, = read_images(comfy_server, entry, "4")
    faces = read_images(comfy_server, entry, "5")
    mask, = read_images(comfy_server, entry, "7")
    original, = read_images(comfy_server, entry, "8")
    assert photo.shape == original.shape == (320, 640, 3)
    assert len(faces) == 2 and {f.shape for f in faces} == {(64, 64, 3)}
    # a mask weight below 0.5/255 saves as 0 and moves a pixel by at most 1 (rounding)
    changed = np.abs(photo.astype(int) - original.astype(int)).max(axis=-1) > 1
    covered = mask[..., 0] > 0
    assert not (changed & ~covered).any()  # outside the mask: unchanged
    assert changed[covered].mean() > 0.5 and 0.05 < covered.mean() < 0.9
    assert covered[:, :320].any() and covered[:, 320:].any()  # both faces


def test_restore_faces_leaves_big_faces_alone(comfy_server, tiny_checkpoint, tmp_path):
    """The size limit at its default, as the demo runs: a photo with a big face (left) and a tiny one
    (right), Lanczos x4, Restore Faces with upscaled_by 4: only the tiny face is restored, the big
    one keeps every pixel and is 0 in the mask, and the node's text names it. Face Crop & Align
    with the same inputs cuts only the tiny face."""
    from tests.helpers import mixed_photo  # the same photo as the core's test (tests/core/test_photo.py)

    mixed_photo().save(tmp_path / "mixed_sizes.png")
    name = comfy_server.upload_image(tmp_path / "mixed_sizes.png")
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "LoadImage", "inputs": {"image": name}},
              "3": {"class_type": "ImageScaleBy", "inputs": {"image": ["2", 0], "upscale_method": "lanczos",
                                                             "scale_by": 4.0}},
              "4": {"class_type": "LPIPRestoreFaces", "inputs": {
                  "model": ["1", 0], "image": ["3", 0], "seed": 0, "steps": 2, "denoise": 1.0,
                  "input_is": "low_resolution", "select": "all", "upsample": 1, "feather": 0.1, "color_match": "none",
                  "strength": 1.0, "upscaled_by": 4.0}},
              "5": save(["4", 0], "limit/photo"), "6": save(["3", 0], "limit/original"),
              "7": {"class_type": "MaskToImage", "inputs": {"mask": ["4", 2]}}, "8": save(["7", 0], "limit/mask"),
              "9": crop_align(["3", 0], face_size=["1", 1], select="all", upsample=1, max_face_px=0, upscaled_by=4.0),
              "10": save(["9", 0], "limit/crops")}
    entry = comfy_server.run(prompt, timeout=240)
    photo, = read_images(comfy_server, entry, "5")
    original, = read_images(comfy_server, entry, "6")
    mask, = read_images(comfy_server, entry, "8")
    assert len(read_images(comfy_server, entry, "10")) == 1
    changed = np.abs(photo.astype(int) - original.astype(int)).max(axis=-1) > 1
    assert not changed[:, :400].any() and changed[:, 400:].any()
    assert mask[:, :400].max() == 0 and mask[:, 400:].max() == 255
    text = " ".join(entry["outputs"]["4"]["text"])
    assert "restored 1" in text and "left alone 1 bigger than 18 px" in text


def test_masks_of_crop_and_paste_and_the_mask_input(comfy_server, tiny_checkpoint, face_photos):
    """Face Crop & Align's MASK covers each crop; Face Paste Back's MASK is 0 where the photo is
    unchanged; a MASK input over the left half keeps only the left face."""
    left = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 320, "height": 320}}
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "3": crop_align(["2", 0], select="all"),
              "4": sampler(["1", 0], ["3", 0]),
              "5": paste_back(["2", 0], ["4", 0], ["3", 1]),
              "6": {"class_type": "MaskToImage", "inputs": {"mask": ["3", 3]}}, "7": save(["6", 0], "masks/crop"),
              "8": {"class_type": "MaskToImage", "inputs": {"mask": ["5", 1]}}, "9": save(["8", 0], "masks/paste"),
              "10": save(["5", 0], "masks/pasted"), "11": save(["2", 0], "masks/original"),
              "12": left, "13": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 640, "height": 320}},
              "14": {"class_type": "MaskComposite", "inputs": {"destination": ["13", 0], "source": ["12", 0],
                                                               "x": 0, "y": 0, "operation": "add"}},
              "15": crop_align(["2", 0], select="all", mask=["14", 0]),
              "16": {"class_type": "MaskToImage", "inputs": {"mask": ["15", 3]}}, "17": save(["16", 0], "masks/left")}
    entry = comfy_server.run(prompt, timeout=240)
    crop_mask, = read_images(comfy_server, entry, "7")
    paste_mask, = read_images(comfy_server, entry, "9")
    pasted, = read_images(comfy_server, entry, "10")
    original, = read_images(comfy_server, entry, "11")
    left_mask, = read_images(comfy_server, entry, "17")
    crop, paste = crop_mask[..., 0] > 127, paste_mask[..., 0] > 0
    assert set(np.unique(crop_mask[..., 0])) == {0, 255} and crop[:, :320].any() and crop[:, 320:].any()
    assert not (paste & ~(crop_mask[..., 0] > 0)).any()  # the feathered paste lies inside the crops
    changed = np.abs(pasted.astype(int) - original.astype(int)).max(axis=-1) > 1  # see above: rounding
    assert not (changed & ~paste).any() and changed[paste_mask[..., 0] == 255].mean() > 0.5
    assert left_mask[:, :320, 0].max() == 255 and left_mask[:, 320:, 0].max() == 0  # only the left face
