"""Load LPIP Model (nodes/models.py) in a real ComfyUI server, 0.3.75 and 0.28.2
(the fixtures: tests/integration/conftest.py) and in ComfyUI's own python
(conftest.py): the model folder, bad and hostile files, compile and half precision.
"""
from __future__ import annotations

import uuid
from pathlib import Path

from tests.integration.helpers import NODE_IDS, expect_error, load_model, sampler, save
from tools.comfyui import PACK_NAME, REPO_ROOT


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
        expect_error(comfy_server, prompt, name, hostile_models[name], node="1")


def test_model_folder_lists_safetensors_only_and_new_files(comfy_server, tiny_checkpoint):
    folder = comfy_server.models_dir / "lpip_diff"
    name = f"late-{uuid.uuid4().hex[:6]}"
    (folder / f"{name}.ckpt").write_bytes(b"\x80\x04not a real pickle")
    (folder / f"{name}.safetensors").write_bytes((folder / tiny_checkpoint).read_bytes())
    listed = comfy_server._get("/models/lpip_diff").json()
    assert f"{name}.safetensors" in listed and f"{name}.ckpt" not in listed
    options = comfy_server.object_info("LoadLPIPModel")["LoadLPIPModel"]["input"]["required"]["model_name"][1]
    assert f"{name}.safetensors" in options["options"]


def test_bad_model_names_are_clear_execution_errors(comfy_server, tiny_checkpoint):
    folder = comfy_server.models_dir / "lpip_diff"
    (folder / "pickled.ckpt").write_bytes(b"\x80\x04\x95not really a pickle")
    (folder / "corrupt.safetensors").write_bytes(b"PK\x03\x04 a zip, not safetensors" * 4)

    def prompt(name):
        return {"1": load_model(name),
                "2": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0}},
                "3": sampler(["1", 0], ["2", 0], steps=1), "4": save(["3", 0], "errors/never")}

    err = expect_error(comfy_server, prompt("missing.safetensors"), "missing.safetensors", "not found",
                        tiny_checkpoint, node="1")
    assert "available" in str(err) or tiny_checkpoint in str(err)  # 0.28.2: its list of files
    expect_error(comfy_server, prompt(f"../{tiny_checkpoint}"), "'..'", node="1")
    expect_error(comfy_server, prompt("/etc/passwd.safetensors"), "absolute path", node="1")
    expect_error(comfy_server, prompt("pickled.ckpt"), "pickles", ".safetensors", node="1")
    expect_error(comfy_server, prompt("corrupt.safetensors"), "corrupt.safetensors", "not a safetensors", node="1")


def test_model_folder_keeps_the_users_extra_model_paths(in_comfy):
    tmp = in_comfy["tmp"]
    assert in_comfy["dirs"] == [str(Path(tmp) / "user_lpip"), str(Path(tmp) / "models" / "lpip_diff"),
                                str(REPO_ROOT / "models")]
    assert in_comfy["exts"] == [".safetensors"]
    assert in_comfy["face_size"] == 16


def test_compile_problems_are_one_line_errors(in_comfy):
    assert in_comfy["compile_missing"] == ("compile: torch.compile on the CPU needs a C++ compiler (g++ or clang++); "
                                           "set compile to false")
    message = in_comfy["compile_failed"]
    assert message.startswith("torch.compile failed on this machine (") and "\n" not in message
    assert message.endswith("load the model with compile set to false")


def test_half_precision_weights(in_comfy):
    for dtype, torch_name in (("bf16", "torch.bfloat16"), ("fp16", "torch.float16")):
        weights, out, err = in_comfy[dtype]
        assert (weights, out) == (torch_name, "torch.float32")
        assert err < 0.25, (dtype, err)  # an untrained tiny net: only a sanity bound
