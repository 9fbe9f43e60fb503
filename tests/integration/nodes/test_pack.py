"""The pack as ComfyUI loads it in a real ComfyUI server, 0.3.75 and 0.28.2
(the fixtures: tests/integration/conftest.py): import time, the node list, every
node's inputs, tooltips and defaults, one seed range, and a queue of good and bad prompts.
"""
from __future__ import annotations

import re

import pytest

from lpip_core.method.restoration import RECOMMENDED_END_PERCENT
from tests.integration.helpers import NODE_IDS, crop_align, load_model, read_images, sampler, save
from tools.comfyui import PACK_NAME, PromptRejected


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


def test_import_is_fast_and_loads_no_model(in_comfy):
    assert in_comfy["import_s"] < 1.0
    assert in_comfy["models_loaded"] == 0 and in_comfy["dlib_imported"] is False
    assert in_comfy["web"] == "./web"
    assert in_comfy["nodes"] == ["LoadLPIPModel", "LPIPPatchFusedSampler", "LPIPRestoreFaces", "LPIPDegradeFace",
                                 "LPIPFaceCropAlign", "LPIPFacePasteBack", "LPIPCompare", "LPIPFaceIdentityScore"]
