"""Node internals that a running server cannot show: the IMAGE conversion, the out-of-memory retry
(with an injected OOM: a CPU never raises a real one), interruption inside a retry, the model folder
next to a user's extra_model_paths.yaml, and the pack's import cost.

The pure helpers (nodes/convert.py, nodes/memory.py) are loaded on their own in this process; the
rest runs in a subprocess that imports ComfyUI 0.3.75's own modules (comfy.model_management,
folder_paths, comfy_api) and loads the pack the way ComfyUI does, so that this pytest process never
has ComfyUI's top-level modules (``nodes``, ``utils``, ...) on its path.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"lpip_nodes_{name}", REPO_ROOT / "nodes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


convert = _load("convert")
memory = _load("memory")


# ------------------------------------------------------------------------------------------ convert

def test_image_round_trip_and_channels():
    image = torch.rand(2, 5, 7, 3)
    core = convert.image_to_core(image)
    assert core.shape == (2, 3, 5, 7) and torch.equal(core[1, 2], image[1, ..., 2])
    assert torch.equal(convert.core_to_image(core), image)
    grey = convert.image_to_core(torch.rand(1, 4, 4, 1))
    assert grey.shape == (1, 3, 4, 4) and torch.equal(grey[:, 0], grey[:, 2])
    rgba = torch.rand(1, 4, 4, 4)
    assert torch.equal(convert.image_to_core(rgba), rgba[..., :3].movedim(-1, 1))
    assert convert.image_to_core(torch.rand(4, 4, 3)).shape == (1, 3, 4, 4)
    out = convert.core_to_image(torch.full((1, 3, 2, 2), 1.5), dtype=torch.float16)
    assert out.dtype == torch.float16 and out.max() == 1


@pytest.mark.parametrize("bad, needle", [
    (torch.rand(1, 4, 4, 2), "1, 3 or 4 channels"),
    (torch.rand(4, 4), "IMAGE [batch, height, width, channels]"),
    (torch.zeros(0, 4, 4, 3), "empty"),
    (torch.zeros(1, 4, 4, 3, dtype=torch.uint8), "float"),
    ([1, 2, 3], "IMAGE tensor"),
])
def test_bad_images_name_the_input(bad, needle):
    with pytest.raises(ValueError, match="faces") as ei:
        convert.image_to_core(bad, "faces")
    assert needle in str(ei.value)


# ------------------------------------------------------------------------------------------ OOM retry

class FakeOOM(RuntimeError):
    pass


class FakeInterrupt(Exception):  # like ComfyUI 0.3.75's InterruptProcessingException
    pass


def _runner(fails_above: int, calls: list):
    def run(batch):
        calls.append(batch)
        if batch > fails_above:
            raise FakeOOM("CUDA out of memory. Tried to allocate 1.00 GiB")
        return f"done with {batch}"
    return run


def test_oom_halves_the_batch_until_it_fits():
    calls, emptied = [], []
    result, batch = memory.run_halving_batch(_runner(10, calls), 64, oom_type=FakeOOM,
                                             empty_cache=lambda: emptied.append(1), never_catch=(FakeInterrupt,))
    assert (result, batch) == ("done with 8", 8)
    assert calls == [64, 32, 16, 8] and len(emptied) == 3


def test_oom_at_batch_one_is_a_clear_error_of_the_same_type():
    calls = []
    with pytest.raises(FakeOOM, match=r"even with max_patch_batch=1 \(started at 4\)"):
        memory.run_halving_batch(_runner(0, calls), 4, oom_type=FakeOOM, empty_cache=lambda: None)
    assert calls == [4, 2, 1]


def test_interrupt_and_other_errors_are_never_retried():
    calls = []

    def interrupted(batch):
        calls.append(batch)
        raise FakeInterrupt()

    # FakeInterrupt is an Exception, and with oom_type=Exception (a torch without
    # torch.cuda.OutOfMemoryError) a broad except would have swallowed it
    with pytest.raises(FakeInterrupt):
        memory.run_halving_batch(interrupted, 64, oom_type=Exception, empty_cache=pytest.fail,
                                 never_catch=(FakeInterrupt,))
    assert calls == [64]

    def bad_value(batch):
        raise ValueError("patch_size 99 ...")

    with pytest.raises(ValueError, match="patch_size 99"):
        memory.run_halving_batch(bad_value, 64, oom_type=Exception, empty_cache=pytest.fail)
    with pytest.raises(ValueError, match="max_patch_batch"):
        memory.run_halving_batch(bad_value, 0, oom_type=FakeOOM, empty_cache=pytest.fail)


def test_is_out_of_memory():
    assert memory.is_out_of_memory(FakeOOM("x"), FakeOOM)
    assert not memory.is_out_of_memory(ValueError("out of memory"), FakeOOM)
    assert memory.is_out_of_memory(RuntimeError("CUDA out of memory"), Exception)
    assert not memory.is_out_of_memory(RuntimeError("shape mismatch"), Exception)


# ------------------------------------------------------------------------------------------ in ComfyUI's python

IN_COMFY = textwrap.dedent(r'''
    import importlib.util, json, os, sys, time
    comfy_dir, repo, tmp = sys.argv[1:4]
    sys.argv = ["main.py", "--cpu", "--base-directory", tmp]
    sys.path.insert(0, comfy_dir)
    os.chdir(comfy_dir)
    import comfy.options
    comfy.options.enable_args_parsing()
    import torch
    torch.set_num_threads(1)
    import comfy.model_management as mm
    import folder_paths
    # what ComfyUI has imported (nodes.py, comfy.sd, ...) before it loads any pack
    import comfy.model_patcher, comfy.utils, comfy.cli_args  # noqa: E401
    from comfy_api.latest import io
    from utils.extra_config import load_extra_path_config

    report = {}
    # a user's extra_model_paths.yaml, loaded (as main.py does) before the packs
    with open(os.path.join(tmp, "extra.yaml"), "w") as f:
        f.write("mine:\n  base_path: " + tmp + "\n  lpip_diff: user_lpip\n")
    load_extra_path_config(os.path.join(tmp, "extra.yaml"))

    t0 = time.perf_counter()
    spec = importlib.util.spec_from_file_location("lpip_pack_under_test", os.path.join(repo, "__init__.py"),
                                                  submodule_search_locations=[repo])
    pack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = pack
    spec.loader.exec_module(pack)
    import asyncio  # then what nodes.py load_custom_node does with a V3 pack
    ext = asyncio.run(pack.comfy_entrypoint())
    node_list = asyncio.run(ext.get_node_list())
    report["import_s"] = time.perf_counter() - t0
    report["nodes"] = [n.GET_SCHEMA().node_id for n in node_list]
    report["dlib_imported"] = "dlib" in sys.modules
    report["models_loaded"] = len(mm.current_loaded_models)
    dirs, exts = folder_paths.folder_names_and_paths["lpip_diff"]
    report["dirs"], report["exts"] = dirs, sorted(exts)
    report["web"] = pack.WEB_DIRECTORY

    from lpip_pack_under_test import lpip_core
    from lpip_pack_under_test.nodes.models import LoadLPIPModel
    from lpip_pack_under_test.nodes.sampler import PatchFusedSampler
    torch.manual_seed(0)
    cfg = lpip_core.ModelConfig(unet=lpip_core.PRESETS["tiny"], scale=4, hq_size=64, patch=16, stride=8)
    lpip_core.save_model(lpip_core.LPIPModel(cfg), os.path.join(tmp, "user_lpip", "tiny.safetensors"))

    def load(**kw):
        return LoadLPIPModel.execute("tiny.safetensors", **kw).args

    handle, face_size = load()
    report["face_size"] = face_size
    net = handle.patcher.model
    forward = net.forward
    image = torch.rand(2, 16, 16, 3, generator=torch.Generator().manual_seed(1))

    def sample(**kw):
        args = dict(model=handle, image=image, seed=3, steps=2, eta=0.0, patch_size=0, stride=0, fusion="mean",
                    max_patch_batch=64, input_is="low_resolution")
        args.update(kw)
        return PatchFusedSampler.execute(**args).args[0]

    reference = sample(max_patch_batch=8)
    report["out"] = [list(reference.shape), str(reference.dtype), str(reference.device)]

    emptied, calls = [], []
    mm.soft_empty_cache = lambda *a, **k: emptied.append(1)

    def oom_above(limit):
        def f(x_t, lq, t):
            calls.append(x_t.shape[0])
            if x_t.shape[0] > limit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")
            return forward(x_t, lq, t)
        return f

    net.forward = oom_above(8)
    result = sample(max_patch_batch=64)
    report["oom_same_result"] = bool(torch.allclose(result, reference, atol=1e-5))
    report["oom_emptied"] = len(emptied)
    report["oom_first_calls"] = calls[:4]
    report["oom_largest_after"] = max(calls[4:])

    net.forward = oom_above(0)
    try:
        sample(max_patch_batch=4)
        report["oom_1"] = "no error"
    except torch.cuda.OutOfMemoryError as e:
        report["oom_1"] = str(e)

    calls.clear(); emptied.clear()
    def interrupt(x_t, lq, t):
        calls.append(x_t.shape[0])
        raise mm.InterruptProcessingException()
    net.forward = interrupt
    try:
        sample()
        report["interrupt"] = "no error"
    except mm.InterruptProcessingException:
        report["interrupt"] = [len(calls), len(emptied)]

    net.forward = forward
    report["bad_inputs"] = {}  # the node does not check these: restore does, in the node's input names
    for name, value in (("input_is", "big"), ("fusion", "mode"), ("patch_size", 15), ("stride", 17),
                        ("max_patch_batch", 0), ("eta", 2.0)):
        try:
            sample(**{name: value})
            report["bad_inputs"][name] = "no error"
        except ValueError as e:
            report["bad_inputs"][name] = str(e)

    mm.interrupt_current_processing(True)  # as POST /interrupt does: the cancel check stops sampling
    try:
        sample()
        report["cancel"] = "no error"
    except mm.InterruptProcessingException:
        report["cancel"] = ["interrupted", mm.processing_interrupted()]

    from lpip_pack_under_test.nodes import models as node_models
    real_problem = node_models.compile_problem
    node_models.compile_problem = lambda device: "torch.compile on the CPU needs a C++ compiler (g++ or clang++)"
    try:
        load(compile=True)
        report["compile_missing"] = "no error"
    except ValueError as e:
        report["compile_missing"] = str(e)
    node_models.compile_problem = real_problem

    from torch._inductor.exc import InductorError
    def failing_build(x_t, lq, t):
        raise InductorError(RuntimeError("CppCompileError: g++ exited with 1"), "")
    net.forward, handle.compiled = failing_build, True
    try:
        sample()
        report["compile_failed"] = "no error"
    except RuntimeError as e:
        report["compile_failed"] = str(e)
    net.forward, handle.compiled = forward, False

    for dtype in ("bf16", "fp16"):
        handle, _ = load(dtype=dtype, device="cpu")
        out = sample()
        report[dtype] = [str(next(handle.patcher.model.parameters()).dtype), str(out.dtype),
                         float((out - reference).abs().max())]

    # bad inputs: the core's checks, in the nodes' input names (nodes/inputs.py)
    from lpip_pack_under_test.nodes.degrade import DegradeFace
    from lpip_pack_under_test.nodes.faces import FaceCropAlign, FacePasteBack
    from lpip_pack_under_test.nodes.identity import FaceIdentityScore
    from lpip_pack_under_test.nodes.types import FaceAlignBatch
    photo = torch.full((1, 64, 64, 3), 0.5)
    crop = dict(image=photo, face_size=16, select="largest", index=0, padding=0.0)
    paste = dict(image=photo, faces=photo, face_align=FaceAlignBatch((), 1, (64, 64), 16), feather=0.1,
                 color_match="none")
    lq = dict(image=photo, mode="manual", seed=0, blur_sigma=1.0, downscale=4.0, noise_sigma=5.0, jpeg_quality=80)
    bad = {
        "crop_image": lambda: FaceCropAlign.execute(**{**crop, "image": photo * 3}),
        "crop_face_size": lambda: FaceCropAlign.execute(**{**crop, "face_size": 8}),
        "crop_select": lambda: FaceCropAlign.execute(**{**crop, "select": "biggest"}),
        "crop_index": lambda: FaceCropAlign.execute(**{**crop, "index": -1}),
        "crop_padding": lambda: FaceCropAlign.execute(**{**crop, "padding": 9.0}),
        "crop_upsample": lambda: FaceCropAlign.execute(**crop, upsample=9),
        "crop_if_no_face": lambda: FaceCropAlign.execute(**crop, if_no_face="skip"),
        "crop_min_score": lambda: FaceCropAlign.execute(**crop, min_score=float("nan")),
        "crop_max_face_px": lambda: FaceCropAlign.execute(**crop, max_face_px=-3),
        "crop_upscaled_by": lambda: FaceCropAlign.execute(**crop, upscaled_by=0.0),
        "paste_feather": lambda: FacePasteBack.execute(**{**paste, "feather": 0.9}),
        "paste_color_match": lambda: FacePasteBack.execute(**{**paste, "color_match": "hist"}),
        "paste_strength": lambda: FacePasteBack.execute(**paste, strength=2.0),
        "identity_reference": lambda: FaceIdentityScore.execute(torch.rand(1, 8, 8, 3), photo),
        "identity_restored": lambda: FaceIdentityScore.execute(photo, torch.rand(1, 8, 8, 3)),
        "identity_landmarks": lambda: FaceIdentityScore.execute(photo, photo, landmarks="nose"),
        "degrade_mode": lambda: DegradeFace.execute(**{**lq, "mode": "both"}),
        "degrade_downscale": lambda: DegradeFace.execute(**{**lq, "downscale": 0.001}),
        "degrade_random_noise": lambda: DegradeFace.execute(**{**lq, "mode": "random", "noise_sigma": 300.0}),
        "degrade_resample": lambda: DegradeFace.execute(**lq, resample="nearest"),
        "degrade_seed": lambda: DegradeFace.execute(**{**lq, "seed": -1}),
        "load_dtype": lambda: load(dtype="fp8"),
        "load_device": lambda: load(device="gpu"),
        "load_compile": lambda: load(compile="yes"),
    }
    report["bad_node_inputs"] = {}
    for name, call in bad.items():
        try:
            call()
            report["bad_node_inputs"][name] = "no error"
        except ValueError as e:
            report["bad_node_inputs"][name] = str(e)
    print("REPORT " + json.dumps(report))
''')


@pytest.fixture(scope="module")
def in_comfy(comfy_dir, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("in-comfy")
    (tmp / "custom_nodes").mkdir()
    proc = subprocess.run([sys.executable, "-c", IN_COMFY, str(comfy_dir), str(REPO_ROOT), str(tmp)],
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    report = json.loads(lines[-1][len("REPORT "):])
    report["tmp"] = str(tmp)
    return report


def test_import_is_fast_and_loads_no_model(in_comfy):
    assert in_comfy["import_s"] < 1.0
    assert in_comfy["models_loaded"] == 0 and in_comfy["dlib_imported"] is False
    assert in_comfy["web"] == "./web"
    assert in_comfy["nodes"] == ["LoadLPIPModel", "LPIPPatchFusedSampler", "LPIPRestoreFaces", "LPIPDegradeFace",
                                 "LPIPFaceCropAlign", "LPIPFacePasteBack", "LPIPCompare", "LPIPFaceIdentityScore"]


def test_model_folder_keeps_the_users_extra_model_paths(in_comfy):
    tmp = in_comfy["tmp"]
    assert in_comfy["dirs"] == [str(Path(tmp) / "user_lpip"), str(Path(tmp) / "models" / "lpip_diff"),
                                str(REPO_ROOT / "models")]
    assert in_comfy["exts"] == [".safetensors"]
    assert in_comfy["face_size"] == 16


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


def test_interrupt_inside_the_retry_loop_is_not_swallowed(in_comfy):
    assert in_comfy["interrupt"] == [1, 0]  # one UNet call, no retry, no cache emptying
    assert in_comfy["cancel"] == ["interrupted", False]  # stopped by the cancel check; flag cleared


def test_compile_problems_are_one_line_errors(in_comfy):
    assert in_comfy["compile_missing"] == ("compile: torch.compile on the CPU needs a C++ compiler (g++ or clang++); "
                                           "set compile to false")
    message = in_comfy["compile_failed"]
    assert message.startswith("torch.compile failed on this machine (") and "\n" not in message
    assert message.endswith("load the model with compile set to false")


@pytest.mark.parametrize("call, needles", [
    ("crop_image", ["image values must be in [0, 1]"]),
    ("crop_face_size", ["face_size must be an integer in 16..2048, got 8"]),
    ("crop_select", ["select must be one of largest, all, index, got 'biggest'"]),
    ("crop_index", ["index must be an integer in >= 0", "got -1"]),
    ("crop_padding", ["padding must be a number in [0.0, 4.0]", "got 9.0"]),
    ("crop_upsample", ["upsample must be an integer in 0..3", "got 9"]),
    ("crop_if_no_face", ["if_no_face must be one of error, pass_through, got 'skip'"]),
    ("crop_min_score", ["min_score must be a number in (-inf, inf)", "got nan"]),
    ("crop_max_face_px", ["max_face_px must be a number in [0, inf)", "-1 = no limit", "got -3"]),
    ("crop_upscaled_by", ["upscaled_by must be a number in [0.1, 64.0]", "got 0.0"]),
    ("paste_feather", ["feather must be a number in [0.0, 0.5]", "got 0.9"]),
    ("paste_color_match", ["color_match must be one of none, mean_std, got 'hist'"]),
    ("paste_strength", ["strength must be a number in [0, 1]", "got 2.0"]),
    ("identity_reference", ["reference crops must be at least 16 px"]),
    ("identity_restored", ["restored crops must be at least 16 px"]),
    ("identity_landmarks", ["landmarks must be one of from_reference, each_image, got 'nose'"]),
    ("degrade_mode", ["mode must be one of random, manual, got 'both'"]),
    ("degrade_downscale", ["downscale must be", "0.01", "64", "got 0.001"]),  # DegradeParams' range
    ("degrade_random_noise", ["noise_sigma must be", "255", "got 300.0"]),  # checked in random mode too
    ("degrade_resample", ["resample must be one of", "bicubic-aa", "'nearest'"]),
    ("degrade_seed", ["seed must be an integer in 0..2**64 - 1"]),
    ("load_dtype", ["dtype must be one of auto, fp32, fp16, bf16, got 'fp8'"]),
    ("load_device", ["device must be one of auto, cpu, got 'gpu'"]),
    ("load_compile", ["compile must be true or false, got 'yes'"]),
])
def test_bad_inputs_name_the_node_input_and_its_range(in_comfy, call, needles):
    """The core checks every value; a node names its own input, also where the core's argument has
    another name (image for images, reference and restored for b and a, face_size for crop_size)."""
    message = in_comfy["bad_node_inputs"][call]
    assert message.startswith(needles[0].split()[0] + " "), message
    for needle in needles:
        assert needle in message, message


def test_half_precision_weights(in_comfy):
    for dtype, torch_name in (("bf16", "torch.bfloat16"), ("fp16", "torch.float16")):
        weights, out, err = in_comfy[dtype]
        assert (weights, out) == (torch_name, "torch.float32")
        assert err < 0.25, (dtype, err)  # an untrained tiny net: only a sanity bound
