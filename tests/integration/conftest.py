"""Fixtures that drive a real ComfyUI server (see tools/comfyui.py), on both supported releases.

Every test under tests/integration/ gets the ``integration`` marker (deselect with
``-m "not integration"``). The server is started once per ComfyUI version (0.3.75, what users ran
a year ago, and 0.28.2, today's release) with this repository linked into its custom_nodes/ as
ComfyUI-LPIP-Diff; tests that use ``comfy_server`` run once on each (their ids end in [0.3.75] and
[0.28.2]). It runs on CPU with its own base directory under pytest's tmp dir (its log:
``<tmp>/comfyui-<version>0/comfyui.log``). If ComfyUI cannot be obtained or does not start, the
tests fail with the reason; the one exception is 0.28.2 without its source tarball (no registry
carries it; LPIP_COMFYUI_SOURCES names its folder, as .ci/run does): its tests are skipped with
that reason, so a clone elsewhere still runs everything on 0.3.75.

Environment: LPIP_COMFYUI_VERSIONS (comma-separated, default both), LPIP_COMFYUI_HOME (another
ComfyUI folder for 0.3.75), LPIP_COMFYUI_SOURCES (the folder with ComfyUI-0.28.2.tar.gz; unset:
0.28.2 is skipped), LPIP_COMFY_PYTHON (python for the server, default: the one running pytest),
LPIP_COMFY_CPU=0 (let the server use the GPU; default --cpu), LPIP_KEEP_COMFY_DIR=1 (keep
temporary server dirs).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # so that `tools` imports without pytest.ini's pythonpath
    sys.path.insert(0, str(REPO_ROOT))

from tools.comfyui import (  # noqa: E402
    COMFYUI_VERSIONS,
    PACK_NAME,
    ComfyError,
    ComfyServer,
    SourcesMissing,
    ensure_comfyui,
)

_HERE = Path(__file__).resolve().parent
_STARTUPS: list[tuple[str, float]] = []
VERSIONS = [v.strip() for v in os.environ.get("LPIP_COMFYUI_VERSIONS", ",".join(COMFYUI_VERSIONS)).split(",")
            if v.strip()]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter):
    for version, seconds in _STARTUPS:
        terminalreporter.write_line(f"ComfyUI {version} server start-up: {seconds:.1f} s")


@pytest.fixture(scope="session", params=VERSIONS)
def comfy_version(request) -> str:
    """The ComfyUI release of this run of the test."""
    return request.param


@pytest.fixture(scope="session")
def comfy_dir(comfy_version) -> Path:
    try:
        return ensure_comfyui(version=comfy_version)
    except SourcesMissing as e:  # no tarball named: say so, run the other release
        pytest.skip(f"ComfyUI {comfy_version} not on this machine: {e}")
    except ComfyError as e:
        pytest.fail(f"could not obtain ComfyUI {comfy_version}: {e}", pytrace=False)


@pytest.fixture(scope="session")
def hostile_models(comfy_version, tmp_path_factory) -> dict[str, str]:
    """The hostile checkpoint corpus (tests/fuzz/hostile.py), written into the server's
    models/lpip_diff before it starts: every test runs with this junk beside the good models."""
    from tests.fuzz.hostile import hostile_checkpoints

    base = tmp_path_factory.mktemp(f"comfyui-{comfy_version}")
    return {"base_dir": base, **hostile_checkpoints(base / "models" / "lpip_diff")}


@pytest.fixture(scope="session")
def comfy_server(comfy_version, comfy_dir, hostile_models):
    """A running ComfyServer with this repository as the custom-node pack ComfyUI-LPIP-Diff, and the
    hostile checkpoint corpus in its model folder."""
    server = ComfyServer(comfy_dir, python=os.environ.get("LPIP_COMFY_PYTHON") or None,
                         custom_nodes={PACK_NAME: REPO_ROOT},
                         cpu=os.environ.get("LPIP_COMFY_CPU", "1") != "0",
                         base_dir=hostile_models["base_dir"])
    try:
        server.start()
    except ComfyError as e:
        pytest.fail(f"ComfyUI {comfy_version} server did not start: {e}", pytrace=False)
    server.version = comfy_version
    _STARTUPS.append((comfy_version, server.startup_seconds))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def comfy_ws(comfy_server):
    """A websocket client with a fresh client_id; pass ``comfy_ws.client_id`` to queue()."""
    ws = comfy_server.websocket()
    try:
        yield ws
    finally:
        ws.close()


# --------------------------------------------------------------------------- the pack's test data

TINY_CHECKPOINT = "lpip_tiny_x4_test.safetensors"


@pytest.fixture(scope="session")
def tiny_checkpoint(comfy_server) -> str:
    """A tiny untrained x4 checkpoint (16 -> 64 px, patch 16) in the server's models/lpip_diff/;
    its zero-initialised layers are re-drawn so that its output is not a constant. Returns the
    model_name to use. Never the shipped models."""
    import torch

    import lpip_core

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = lpip_core.ModelConfig(unet=lpip_core.PRESETS["tiny"], scale=4, hq_size=64, patch=16, stride=8)
    model = lpip_core.LPIPModel(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.05)
    folder = comfy_server.models_dir / "lpip_diff"
    folder.mkdir(parents=True, exist_ok=True)
    lpip_core.save_model(model, folder / TINY_CHECKPOINT)
    return TINY_CHECKPOINT


def _upload(server, image, name: str) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        image.save(path)
        return server.upload_image(path, name=name)


@pytest.fixture(scope="session")
def lq_faces(comfy_server) -> dict[str, str]:
    """Two different 16 px LQ faces in the server's input folder: {"a": name, "b": name}."""
    from PIL import Image

    fixtures = REPO_ROOT / "tests" / "fixtures"
    out = {}
    for key, src in (("a", "hopper_aligned_128.png"), ("b", "obama_aligned_128.png")):
        with Image.open(fixtures / src) as im:
            out[key] = _upload(comfy_server, im.convert("RGB").resize((16, 16), Image.LANCZOS), f"lq_{key}.png")
    return out


@pytest.fixture(scope="session")
def face_photos(comfy_server) -> dict[str, str]:
    """Public-domain test photos in the server's input folder (names for LoadImage):
    portrait (one face, 320 px), two (two people side by side, 640x320), aligned (a 128 px
    aligned clean face), solvay, solvay_tiny and hopper (the pack's bundled example photos)."""
    from PIL import Image

    fixtures = REPO_ROOT / "tests" / "fixtures"
    with Image.open(fixtures / "faces" / "hopper.jpg") as a, Image.open(fixtures / "faces" / "astronaut.jpg") as b:
        two = Image.new("RGB", (640, 320))
        two.paste(a.convert("RGB"), (0, 0))
        two.paste(b.convert("RGB").resize((320, 320), Image.LANCZOS), (320, 0))
    return {
        "portrait": comfy_server.upload_image(fixtures / "faces" / "hopper.jpg", name="portrait.jpg"),
        "two": _upload(comfy_server, two, "two_people.png"),
        "aligned": comfy_server.upload_image(fixtures / "hopper_aligned_128.png", name="aligned_128.png"),
        "solvay": comfy_server.upload_image(REPO_ROOT / "examples" / "photos" / "solvay_1927.jpg"),
        "solvay_tiny": comfy_server.upload_image(REPO_ROOT / "examples" / "photos" / "solvay_1927_tiny.jpg"),
        "hopper": comfy_server.upload_image(REPO_ROOT / "examples" / "photos" / "grace_hopper.jpg"),
    }


@pytest.fixture(scope="session")
def fixtures_uploaded(comfy_server) -> dict[str, str]:
    """Aligned 128 px faces in the server's input folder: hopper, obama, and hopper_64 (hopper
    shrunk to 64 px, the same person at a restoration's size)."""
    from PIL import Image

    fixtures = REPO_ROOT / "tests" / "fixtures"
    with Image.open(fixtures / "hopper_aligned_128.png") as im:
        small = _upload(comfy_server, im.convert("RGB").resize((64, 64), Image.LANCZOS), "hopper_64.png")
    return {"hopper": comfy_server.upload_image(fixtures / "hopper_aligned_128.png"),
            "obama": comfy_server.upload_image(fixtures / "obama_aligned_128.png"),
            "hopper_64": small}
