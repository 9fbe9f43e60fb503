"""The nodes inside ComfyUI's own python, without a server: the ``in_comfy`` fixture.

IN_COMFY runs in a subprocess that imports ComfyUI's own modules (comfy.model_management,
folder_paths, comfy_api) and loads the pack the way ComfyUI does, so that this pytest process never
has ComfyUI's top-level modules (``nodes``, ``utils``, ...) on its path. It reports what the
node files check: import cost (test_pack.py), the model folder next to a user's
extra_model_paths.yaml, compile and half precision (test_models.py), the sampler's output and an
injected OOM (test_sampler.py), interruption inside a retry (test_memory.py), and the bad-input
messages (test_sampler.py, test_inputs.py). The server fixtures are in tests/integration/conftest.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tools.comfyui import REPO_ROOT

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


@pytest.fixture(scope="session")
def in_comfy(comfy_dir, tmp_path_factory) -> dict:
    """The report of IN_COMFY, run once per ComfyUI release and shared by the node files that read it."""
    tmp = tmp_path_factory.mktemp("in-comfy")
    (tmp / "custom_nodes").mkdir()
    proc = subprocess.run([sys.executable, "-c", IN_COMFY, str(comfy_dir), str(REPO_ROOT), str(tmp)],
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    report = json.loads(lines[-1][len("REPORT "):])
    report["tmp"] = str(tmp)
    return report
