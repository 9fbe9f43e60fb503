"""What the node tests share: API-format prompt pieces for the pack's nodes, the images a prompt
saved, face boxes, the check of a clear error, and the pack's pure modules loaded without ComfyUI."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from tools.comfyui import REPO_ROOT, ExecutionFailed, Interrupted, PromptRejected

NODE_IDS = ["LoadLPIPModel", "LPIPPatchFusedSampler", "LPIPRestoreFaces", "LPIPDegradeFace", "LPIPFaceCropAlign",
            "LPIPFacePasteBack", "LPIPCompare", "LPIPFaceIdentityScore"]


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


def expect_error(server, prompt, *needles, node=None):
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


def load_pure(name: str):
    """One of the pack's pure modules (nodes/convert.py, nodes/memory.py), loaded on its own: this
    pytest process never imports ComfyUI."""
    spec = importlib.util.spec_from_file_location(f"lpip_nodes_{name}", REPO_ROOT / "nodes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
