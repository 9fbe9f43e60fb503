"""LPIP Patch-Fused Sampler (nodes/sampler.py) in a real ComfyUI server, 0.3.75 and 0.28.2
(the fixtures: tests/integration/conftest.py): batches and seeds,
denoise, end_percent and samples, progress and previews, interruption, its patch grid, its errors.

Every run uses a tiny untrained checkpoint written by the tests (never the shipped models), a
few sampling steps and small images: the point is the plumbing (inputs, outputs, sizes, errors,
progress, interruption), not the restoration quality.
"""
from __future__ import annotations

import io
import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from lpip_core.method.restoration import RECOMMENDED_DENOISE, RECOMMENDED_END_PERCENT
from tests.integration.helpers import expect_error, load_model, read_images, sampler, save
from tools.comfyui import Interrupted, PromptRejected


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
    from lpip_core import load_model as load_core_model
    from lpip_core import restore
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
    expect_error(comfy_server, prompt, "not enough memory", "65536x65536 px", "a smaller image", node="3")


def test_patch_larger_than_the_image_is_a_clear_error(comfy_server, tiny_checkpoint):
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 12, "batch_size": 1, "color": 0}},
              "3": sampler(["1", 0], ["2", 0], steps=1, patch_size=128),
              "4": save(["3", 0], "errors/never")}
    expect_error(comfy_server, prompt, "patch_size 128", "larger than the output image (64x48 px)",
                  "multiple of 2 from 2 to 48", node="3")
    prompt["3"] = sampler(["1", 0], ["2", 0], steps=1, patch_size=16, stride=17)
    expect_error(comfy_server, prompt, "stride must be an integer in 1..16, got 17", node="3")
    prompt["3"] = sampler(["1", 0], ["2", 0], steps=1, fusion="mode")
    expect_error(comfy_server, prompt, "fusion", "mean, median, gaussian", node="3")


def test_sampler_output_and_injected_oom(in_comfy):
    assert in_comfy["out"] == [[2, 64, 64, 3], "torch.float32", "cpu"]  # intermediate device and dtype
    # both frames in one pass (98 patches): 64, then 32 -> 16 -> 8 per UNet call (max_patch_batch 64 halved), the cache
    # emptied before each retry; the result is the one of an 8-patch run
    assert in_comfy["oom_first_calls"] == [64, 32, 16, 8]
    assert in_comfy["oom_emptied"] == 3 and in_comfy["oom_largest_after"] == 8
    assert in_comfy["oom_same_result"] is True
    assert "out of memory even with max_patch_batch=1 (started at 4)" in in_comfy["oom_1"]


def test_bad_sampler_inputs_are_named_with_their_accepted_values(in_comfy):
    """The node leaves the checks to restore, whose errors name the same inputs and their ranges."""
    assert in_comfy["bad_inputs"] == {
        "input_is": "input_is must be one of low_resolution, already_upscaled, got 'big'",
        "fusion": "fusion must be one of mean, median, gaussian, got 'mode'",
        "patch_size": "patch_size must be a multiple of 2 (the UNet's down-sampling), got 15",
        "stride": "stride must be an integer in 1..16, got 17",
        "max_patch_batch": "max_patch_batch must be an integer >= 1, got 0",
        "eta": "eta must be a number in [0, 1], got 2.0"}
