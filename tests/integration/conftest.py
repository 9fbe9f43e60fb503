"""Fixtures that drive a real ComfyUI 0.3.75 server (see tools/comfyui.py).

Every test under tests/integration/ gets the ``integration`` marker (deselect with
``-m "not integration"``). The server is started once per session with this repository linked
into its custom_nodes/ as ComfyUI-LPIP-Diff; it runs on CPU with its own base directory under
pytest's tmp dir (its log: ``<tmp>/comfyui0/comfyui.log``). If ComfyUI cannot be obtained or does
not start, the tests fail with the reason; nothing is skipped.

Environment: LPIP_COMFYUI_HOME (the ComfyUI folder, default ~/.cache/lpip-diff/comfyui-0.3.75),
LPIP_COMFY_PYTHON (python for the server, default: the one running pytest), LPIP_COMFY_CPU=0
(let the server use the GPU; default --cpu), LPIP_KEEP_COMFY_DIR=1 (keep temporary server dirs).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # so that `tools` imports without pytest.ini's pythonpath
    sys.path.insert(0, str(REPO_ROOT))

from tools.comfyui import (COMFYUI_VERSION, PACK_NAME, ComfyError, ComfyServer,  # noqa: E402
                           ensure_comfyui)

_HERE = Path(__file__).resolve().parent
_STARTUPS: list[float] = []


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "integration: drives a real ComfyUI 0.3.75 server (tools/comfyui.py); slow")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter):
    for seconds in _STARTUPS:
        terminalreporter.write_line(f"ComfyUI {COMFYUI_VERSION} server start-up: {seconds:.1f} s")


@pytest.fixture(scope="session")
def comfy_dir() -> Path:
    try:
        return ensure_comfyui()
    except ComfyError as e:
        pytest.fail(f"could not obtain ComfyUI {COMFYUI_VERSION}: {e}", pytrace=False)


@pytest.fixture(scope="session")
def comfy_server(comfy_dir, tmp_path_factory):
    """A running ComfyServer with this repository as the custom-node pack ComfyUI-LPIP-Diff."""
    server = ComfyServer(comfy_dir, python=os.environ.get("LPIP_COMFY_PYTHON") or None,
                         custom_nodes={PACK_NAME: REPO_ROOT},
                         cpu=os.environ.get("LPIP_COMFY_CPU", "1") != "0",
                         base_dir=tmp_path_factory.mktemp("comfyui"))
    try:
        server.start()
    except ComfyError as e:
        pytest.fail(f"ComfyUI server did not start: {e}", pytrace=False)
    _STARTUPS.append(server.startup_seconds)
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
