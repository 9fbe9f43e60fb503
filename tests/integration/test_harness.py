"""The ComfyUI harness itself (tools/comfyui.py) against a real ComfyUI 0.3.75, built-in nodes only."""
from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from PIL import Image

from tools.comfyui import (
    PACK_NAME,
    REPO_ROOT,
    ComfyError,
    ExecutionFailed,
    Interrupted,
    PromptRejected,
    apply_sets,
    decode_binary_frame,
    ui_to_api,
)


def _save_image(inputs_from: str, prefix: str) -> dict:
    return {"class_type": "SaveImage", "inputs": {"images": [inputs_from, 0], "filename_prefix": prefix}}


def _empty_image(w: int, h: int, batch: int = 1, color: int = 0) -> dict:
    return {"class_type": "EmptyImage",
            "inputs": {"width": w, "height": h, "batch_size": batch, "color": color}}


@pytest.mark.timeout(600)
def test_server_starts_and_lists_core_nodes(comfy_server):
    assert comfy_server.alive()
    info = comfy_server.object_info()
    for name in ("LoadImage", "SaveImage", "PreviewImage", "ImageScale", "EmptyImage"):
        assert name in info, name
    assert info["SaveImage"]["output_node"] is True
    assert info["ImageScale"]["input"]["required"]["width"][1]["max"] == 16384
    assert comfy_server.startup_seconds is not None and comfy_server.startup_seconds < 300


def test_pack_imports_without_error(comfy_server):
    if not (REPO_ROOT / "__init__.py").is_file():
        pytest.skip("the node pack has no __init__.py at the repository root yet")
    status = comfy_server.custom_node_status()
    assert status.get(PACK_NAME) is True, f"{PACK_NAME} failed to import:\n{comfy_server.log_tail(80)}"


@pytest.mark.timeout(120)
def test_empty_image_to_save_image(comfy_server):
    prompt = {"1": _empty_image(96, 64, batch=2, color=0xFF8000),
              "2": _save_image("1", "harness/empty")}
    entry = comfy_server.run(prompt, timeout=60)
    assert entry["status"] == {**entry["status"], "status_str": "success", "completed": True}
    files = comfy_server.output_images(entry)
    assert len(files) == 2
    for f in files:
        assert f.parent == comfy_server.output_dir / "harness"
        with Image.open(f) as im:
            assert im.size == (96, 64)
            assert im.convert("RGB").getpixel((5, 5)) == (255, 128, 0)


@pytest.mark.timeout(120)
def test_uploaded_png_load_scale_save(comfy_server, tmp_path):
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    Image.fromarray(src).save(path)
    name = comfy_server.upload_image(path, name=f"harness-{uuid.uuid4().hex[:8]}.png")
    assert (comfy_server.input_dir / name).is_file()
    assert name in comfy_server.object_info("LoadImage")["LoadImage"]["input"]["required"]["image"][0]

    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": name}},
              "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method":
                                                           "nearest-exact", "width": 80,
                                                           "height": 60, "crop": "disabled"}},
              "3": _save_image("2", "harness/scaled")}
    files = comfy_server.output_images(comfy_server.run(prompt, timeout=60))
    assert len(files) == 1
    with Image.open(files[0]) as im:
        out = np.asarray(im.convert("RGB")).astype(int)
    assert out.shape == (60, 80, 3)
    expected = src.repeat(2, axis=0).repeat(2, axis=1).astype(int)
    assert np.abs(out - expected).max() <= 1  # 8 bit -> float -> 8 bit may truncate by one


def test_missing_input_file_is_rejected_at_queue_time(comfy_server):
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "does-not-exist.png"}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    with pytest.raises(PromptRejected) as ei:
        comfy_server.queue(prompt)
    assert "does-not-exist.png" in str(ei.value)
    assert "1" in ei.value.node_errors
    assert comfy_server.alive()


@pytest.mark.timeout(120)
def test_node_exception_gives_execution_error_and_server_goes_on(comfy_server, comfy_ws):
    name = f"corrupt-{uuid.uuid4().hex[:8]}.png"
    (comfy_server.input_dir / name).write_bytes(b"this is not a png")  # passes validation
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": name}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    pid = comfy_server.queue(prompt, client_id=comfy_ws.client_id)
    with pytest.raises(ExecutionFailed) as ei:
        comfy_server.wait(pid, timeout=60)
    err = ei.value
    assert (err.node_id, err.node_type) == ("1", "LoadImage")
    assert err.exception_type == "PIL.UnidentifiedImageError"
    assert "cannot identify image file" in err.message

    msg = comfy_ws.wait_for(lambda m: m["type"] == "execution_error"
                            and m["data"]["prompt_id"] == pid, timeout=10)
    assert msg["data"]["exception_message"].strip() == err.message
    assert isinstance(msg["data"]["traceback"], list)
    entry = comfy_server.history(pid)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["outputs"] == {}

    files = comfy_server.output_images(comfy_server.run(
        {"1": _empty_image(8, 8), "2": _save_image("1", "harness/after-error")}, timeout=60))
    assert len(files) == 1 and comfy_server.alive()


@pytest.mark.timeout(120)
def test_websocket_reports_a_successful_run(comfy_server, comfy_ws):
    prompt = {"1": _empty_image(16, 16, color=random.randrange(1 << 24)),
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    pid = comfy_server.queue(prompt, client_id=comfy_ws.client_id)
    entry = comfy_server.wait(pid, timeout=60)
    comfy_ws.wait_for(lambda m: m["type"] == "executing" and m["data"]["node"] is None
                      and m["data"].get("prompt_id") == pid, timeout=10)
    types = [m["type"] for m in comfy_ws.messages]
    assert types[0] == "status"
    for t in ("execution_start", "execution_cached", "executing", "executed", "execution_success"):
        assert comfy_ws.of_type(t, pid), f"no {t} in {types}"
    executed = comfy_ws.of_type("executed", pid)[0]["data"]
    assert executed["node"] == "2"
    assert executed["output"]["images"][0]["type"] == "temp"
    assert comfy_server.output_images(entry)[0].is_file()


@pytest.mark.timeout(180)
def test_interrupt_stops_a_long_prompt(comfy_server, comfy_ws):
    n_blur = 20
    prompt = {"1": _empty_image(768, 768, color=random.randrange(1 << 24))}
    for i in range(n_blur):  # ImageBlur: about 0.2 to 0.6 s each on 768 px here
        prompt[str(i + 2)] = {"class_type": "ImageBlur", "inputs": {
            "image": [str(i + 1), 0], "blur_radius": 31, "sigma": 2.0 + 0.1 * i}}
    prompt["99"] = {"class_type": "PreviewImage", "inputs": {"images": [str(n_blur + 1), 0]}}
    pid = comfy_server.queue(prompt, client_id=comfy_ws.client_id)
    comfy_ws.wait_for(lambda m: m["type"] == "executing" and m["data"].get("node") == "3",
                      timeout=60)
    t0 = time.monotonic()
    comfy_server.interrupt(pid)
    with pytest.raises(Interrupted) as ei:
        comfy_server.wait(pid, timeout=60)
    stopped_after = time.monotonic() - t0
    assert stopped_after < 10
    assert len(ei.value.data["executed"]) < n_blur
    msg = comfy_ws.wait_for(lambda m: m["type"] == "execution_interrupted", timeout=10)
    assert msg["data"]["prompt_id"] == pid
    # the flag is reset when the next prompt starts: it runs normally
    files = comfy_server.output_images(comfy_server.run(
        {"1": _empty_image(8, 8, color=7), "2": _save_image("1", "harness/after-interrupt")}, 60))
    assert len(files) == 1


def test_decode_binary_preview_frames():
    jpeg = b"\xff\xd8fake-jpeg"
    msg = decode_binary_frame(struct.pack(">II", 1, 1) + jpeg)
    assert (msg["type"], msg["format"], msg["image"]) == ("preview", "JPEG", jpeg)
    meta = json.dumps({"node_id": "3", "prompt_id": "p", "image_type": "image/png"}).encode()
    msg = decode_binary_frame(struct.pack(">II", 4, len(meta)) + meta + b"\x89PNG")
    assert (msg["format"], msg["metadata"]["node_id"], msg["image"]) == ("PNG", "3", b"\x89PNG")


def test_apply_sets_addresses_nodes_by_id_title_or_class():
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}, "_meta": {"title": "Canvas"}},
              "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "a"}}}
    out = apply_sets(prompt, ["1.width=32", "Canvas.height=16", "SaveImage.filename_prefix=b/c",
                              "EmptyImage.color=[1, 2]"])
    assert out["1"]["inputs"] == {"width": 32, "height": 16, "color": [1, 2]}
    assert out["2"]["inputs"]["filename_prefix"] == "b/c"
    assert prompt["1"]["inputs"] == {"width": 8}  # the input is not modified
    with pytest.raises(ComfyError):
        apply_sets(prompt, ["Nope.width=1"])
    with pytest.raises(ComfyError):
        apply_sets(prompt, ["width=1"])


@pytest.mark.timeout(600)
def test_cli_run_workflow(tmp_path, comfy_dir):
    src = tmp_path / "in.png"
    Image.new("RGB", (20, 10), (10, 200, 30)).save(src)
    wf = {"1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
          "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0],
                                                        "upscale_method": "nearest-exact",
                                                        "scale_by": 1.0}},
          "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "cli"}}}
    wf_path = tmp_path / "wf_api.json"
    wf_path.write_text(json.dumps(wf))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.comfyui", "run", str(wf_path), "--out", str(out),
         "--comfy-dir", str(comfy_dir), "--set", f"1.image=@{src}", "--set", "ImageScaleBy.scale_by=3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    paths = proc.stdout.split()
    assert len(paths) == 1 and paths[0].startswith(str(out))
    with Image.open(paths[0]) as im:
        assert im.size == (60, 30) and im.convert("RGB").getpixel((0, 0)) == (10, 200, 30)

    proc = subprocess.run([sys.executable, "-m", "tools.comfyui", "run", str(tmp_path / "nope.json"),
                           "--out", str(out), "--comfy-dir", str(comfy_dir)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error:") and "nope.json" in proc.stderr

def _ui_node(nid, type_, widgets=(), inputs=(), outputs=(), mode=0, title=None):
    node = {"id": nid, "type": type_, "pos": [0, 0], "size": [200, 100], "flags": {}, "order": nid,
            "mode": mode, "inputs": [{"name": n, "type": t, "link": l} for n, t, l in inputs],
            "outputs": [{"name": n, "type": t, "links": ls} for n, t, ls in outputs],
            "properties": {"Node name for S&R": type_}, "widgets_values": list(widgets)}
    if title:
        node["title"] = title
    return node


@pytest.mark.timeout(120)
def test_ui_to_api_follows_the_frontend_rules_and_runs(comfy_server, tmp_path):
    src = tmp_path / "ui-src.png"
    Image.new("RGB", (40, 30), (250, 20, 20)).save(src)
    name = comfy_server.upload_image(src, name=f"ui-{uuid.uuid4().hex[:8]}.png")
    ui = {"last_node_id": 8, "last_link_id": 5, "version": 0.4, "groups": [], "config": {},
          "extra": {}, "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"],
                                 [3, 3, 0, 4, 0, "*"], [4, 4, 0, 5, 0, "IMAGE"],
                                 [5, 2, 0, 7, 0, "IMAGE"]],
          "nodes": [
              _ui_node(1, "LoadImage", [name, "image"],
                       outputs=[("IMAGE", "IMAGE", [1]), ("MASK", "MASK", [])]),
              _ui_node(2, "ImageScale", ["nearest-exact", 80, 60, "disabled"],
                       inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE", [2, 5])]),
              _ui_node(3, "ImageInvert", inputs=[("image", "IMAGE", 2)],
                       outputs=[("IMAGE", "IMAGE", [3])], mode=4),  # bypassed
              _ui_node(4, "Reroute", inputs=[("", "*", 3)], outputs=[("", "IMAGE", [4])]),
              _ui_node(5, "SaveImage", ["harness/ui"], inputs=[("images", "IMAGE", 4)],
                       title="Result"),
              _ui_node(6, "Note", ["a note"]),
              _ui_node(7, "PreviewImage", inputs=[("images", "IMAGE", 5)], mode=2),  # muted
              _ui_node(8, "RandomNoise", [123, "randomize"], outputs=[("NOISE", "NOISE", [])]),
          ]}
    info = comfy_server.object_info()
    api = ui_to_api(ui, info)
    assert api == {
        "1": {"class_type": "LoadImage", "inputs": {"image": name},
              "_meta": {"title": info["LoadImage"]["display_name"]}},
        "2": {"class_type": "ImageScale", "_meta": {"title": info["ImageScale"]["display_name"]},
              "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "width": 80,
                         "height": 60, "crop": "disabled"}},
        "5": {"class_type": "SaveImage", "_meta": {"title": "Result"},
              "inputs": {"images": ["2", 0], "filename_prefix": "harness/ui"}},
        "8": {"class_type": "RandomNoise", "inputs": {"noise_seed": 123},  # V3 node without
              "_meta": {"title": "RandomNoise"}},                           # display_name
    }
    files = comfy_server.output_images(comfy_server.run(api, timeout=60))
    with Image.open(files[0]) as im:  # ImageInvert was bypassed
        assert im.size == (80, 60) and im.convert("RGB").getpixel((1, 1)) == (250, 20, 20)

    ui["nodes"][1]["widgets_values"] = ["nearest-exact", 80, 60]  # out of sync with the node
    with pytest.raises(ComfyError, match="ImageScale"):
        ui_to_api(ui, info)
    ui["nodes"][1]["widgets_values"] = ["nearest-exact", 80, 60, "disabled", "extra"]
    with pytest.raises(ComfyError, match="ImageScale"):
        ui_to_api(ui, info)
