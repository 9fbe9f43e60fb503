"""The `lpip_diff` model folder and LoadLPIPModel: a checkpoint under ComfyUI's model management."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import torch
from comfy_api.latest import io, ui

from ..lpip_core import CheckpointError, ModelConfig, load_model, read_config
from ..lpip_core.checks import check_bool, check_choice
from ..lpip_core.method.runtime import compile_problem, compile_unet
from .types import LPIPModel

log = logging.getLogger("LPIP-Diff")

FOLDER = "lpip_diff"
EXTENSIONS = {".safetensors"}
PACK_MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEVICES = ("auto", "cpu")


def register_model_folder() -> None:
    """Add ComfyUI's models/lpip_diff and the pack's own models/ to the `lpip_diff` folder.

    Appends, so that folders a user gave in extra_model_paths.yaml (loaded before custom nodes)
    keep their place, then restricts the folder to .safetensors (a new folder name starts with
    no filter, which lets every file through). Idempotent.
    """
    user_dir = os.path.join(folder_paths.models_dir, FOLDER)
    try:
        os.makedirs(user_dir, exist_ok=True)  # so that users see where models go
    except OSError:
        pass
    folder_paths.add_model_folder_path(FOLDER, user_dir)
    folder_paths.add_model_folder_path(FOLDER, PACK_MODELS_DIR)
    dirs, _ = folder_paths.folder_names_and_paths[FOLDER]
    folder_paths.folder_names_and_paths[FOLDER] = (dirs, set(EXTENSIONS))


def model_names() -> list[str]:
    return folder_paths.get_filename_list(FOLDER)


def model_dirs() -> list[str]:
    return list(folder_paths.get_folder_paths(FOLDER))


# ------------------------------------------------------------------------------------ metadata

_checked: dict[tuple[str, int, int], ModelConfig | str] = {}


def describe_config(config: ModelConfig) -> str:
    """'x4, 16 -> 64 px faces, patch 16' from a checkpoint's metadata."""
    return (f"x{config.scale}, {config.lq_size} -> {config.hq_size} px faces, training patch {config.patch} "
            f"(stride {config.stride})")


def checked_config(name: str) -> ModelConfig | str:
    """A checkpoint's config if its metadata passes lpip_core's checks (every field in its documented
    range; milliseconds, nothing else is read), else why not. Cached by path, mtime and size; a file
    that fails is logged once. Never raises: one broken file must not take the pack down. The
    tensors are checked when the file is loaded."""
    path = folder_paths.get_full_path(FOLDER, name)
    if path is None:
        return "not found"
    try:
        st = os.stat(path)
    except OSError as e:
        return str(e)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _checked:
        try:
            _checked[key] = read_config(path)
        except Exception as e:  # noqa: BLE001 - whatever a hostile file triggers, skip the file
            _checked[key] = str(e) if isinstance(e, CheckpointError) else f"{name}: {type(e).__name__}: {e}"
            log.warning("LPIP-Diff: skipping %s: %s", path, _checked[key])
    return _checked[key]


def usable_model_names() -> list[str]:
    """The checkpoints of the folder whose config is valid: the loader's options."""
    return [n for n in model_names() if isinstance(checked_config(n), ModelConfig)]


# ------------------------------------------------------------------------------------ validation

def resolve_model_path(name) -> str:
    """The full path of ``name`` in the lpip_diff folders, or a ValueError that says what is accepted.

    ComfyUI 0.3.75 does not check V3 combo values, so any string can arrive here: refuse paths
    that climb out of the folder or are absolute, refuse pickles with lpip_core's message, and
    accept only files the folder lists.
    """
    available = model_names()
    listing = ", ".join(available) if available else "none (put .safetensors checkpoints in " \
        f"{os.path.join(folder_paths.models_dir, FOLDER)})"
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model_name must be the file name of a checkpoint; available: {listing}")
    for flavour in (PurePosixPath, PureWindowsPath):
        p = flavour(name)
        if p.is_absolute() or p.anchor or ".." in p.parts:
            raise ValueError(f"model_name {name!r} must be a file name inside the lpip_diff model folder "
                             f"(no '..', no absolute path); available: {listing}")
    if os.path.splitext(name)[1].lower() not in EXTENSIONS:
        try:
            read_config(name)  # lpip_core refuses by suffix before it opens anything
        except CheckpointError as e:
            raise ValueError(f"model_name: {e}; available: {listing}") from None
    if name not in available:
        raise ValueError(f"model_name {name!r} not found in the lpip_diff model folders "
                         f"({', '.join(model_dirs())}); available: {listing}")
    path = folder_paths.get_full_path(FOLDER, name)
    if path is None:
        raise ValueError(f"model_name {name!r}: the file has gone; available: {listing}")
    return path


# ------------------------------------------------------------------------------------ the model object

@dataclass
class LPIPModelHandle:
    """What flows along an LPIP_MODEL link: the network under ComfyUI's model management."""

    patcher: comfy.model_patcher.ModelPatcher
    config: ModelConfig
    name: str
    dtype: torch.dtype
    compiled: bool = False

    def load(self, memory_required: int = 0) -> torch.nn.Module:
        """Load the weights onto the device (freeing other models if needed); return the network.

        force_full_load: the network is made of plain torch layers, which ComfyUI's partial
        (low-VRAM) loading would silently leave on the CPU.
        """
        mm.load_models_gpu([self.patcher], memory_required=memory_required, force_full_load=True)
        return self.patcher.model

    @property
    def device(self) -> torch.device:
        return self.patcher.load_device

    def __repr__(self) -> str:
        compiled = ", compiled" if self.compiled else ""
        return f"LPIPModelHandle({self.name!r}, {describe_config(self.config)}, {self.dtype}, {self.device}{compiled})"


def pick_dtype(choice: str) -> torch.dtype:
    """auto is float32, the precision the models are trained and tested in. bf16/fp16 halve the
    activations' memory and run on a GPU's tensor cores; the sampler keeps its own arithmetic in
    float32 (lpip_core.method.runtime), and a restored face stays within float rounding of fp32."""
    if check_choice("dtype", choice, ("auto", *DTYPES)) == "auto":
        return torch.float32
    return DTYPES[choice]


def pick_device(choice: str) -> tuple[torch.device, torch.device]:
    """(load device, offload device) for 'auto' (ComfyUI's device) or 'cpu'."""
    if check_choice("device", choice, DEVICES) == "auto":
        return mm.get_torch_device(), mm.unet_offload_device()
    cpu = torch.device("cpu")
    return cpu, cpu


# ------------------------------------------------------------------------------------ the node

class LoadLPIPModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        names = usable_model_names()
        about = "\n".join(f"  {n}: {describe_config(checked_config(n))}" for n in names) or \
            f"  none yet: put .safetensors checkpoints in {os.path.join(folder_paths.models_dir, FOLDER)}"
        skipped = len(model_names()) - len(names)
        if skipped:
            about += f"\n  ({skipped} other .safetensors file(s) skipped: not valid LPIP-Diff checkpoints; see the log)"
        return io.Schema(
            node_id="LoadLPIPModel",
            display_name="Load LPIP-Diff Model",
            category="LPIP-Diff",
            description=(
                "Loads an LPIP-Diff face restoration checkpoint (.safetensors) from models/lpip_diff "
                "(or the pack's own models/ folder) under ComfyUI's model management: weights go to "
                "the GPU when a sampler needs them and are offloaded when other models need the room.\n"
                "Available checkpoints (scale, LQ -> HQ face size, training patch, from each file's metadata):\n"
                + about),
            inputs=[
                io.Combo.Input("model_name", options=names,
                               tooltip="Checkpoint file in models/lpip_diff (or the pack's models/). "
                                       "Only .safetensors files are listed and loaded.\n" + about),
                io.Combo.Input("dtype", options=["auto", *DTYPES], default="auto",
                               tooltip="UNet precision: auto is fp32, what the models are trained in; bf16/fp16 "
                                       "halve the activation memory and are faster on GPUs with tensor cores "
                                       "(the sampler's own arithmetic stays fp32, so faces agree with fp32 to "
                                       "float rounding), but much slower on a CPU without native bf16/fp16."),
                io.Combo.Input("device", options=list(DEVICES), default="auto",
                               tooltip="auto: ComfyUI's device (the GPU unless ComfyUI runs with --cpu). "
                                       "cpu: always run this model on the CPU."),
                io.Boolean.Input("compile", default=False, optional=True,
                                 tooltip="torch.compile the UNet: faster sampling after a first run that "
                                         "compiles (tens of seconds, again for a new number of faces). "
                                         "Needs triton on a GPU, a C++ compiler on the CPU."),
            ],
            outputs=[
                LPIPModel.Output(display_name="model",
                                 tooltip="The loaded model; connect it to an LPIP-Diff Patch-Fused Sampler."),
                io.Int.Output(display_name="face_size",
                              tooltip="The low-resolution face size the model was trained on (its HQ size / "
                                      "scale, e.g. 16): connect it to Face Crop & Align's face_size."),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, model_name, dtype="auto", device="auto", compile=False):
        """Reload when the file changes on disk, not only when the inputs change."""
        path = folder_paths.get_full_path(FOLDER, model_name) if isinstance(model_name, str) else None
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        return (model_name, dtype, device, compile, st.st_mtime_ns if st else None, st.st_size if st else None)

    @classmethod
    def execute(cls, model_name, dtype="auto", device="auto", compile=False) -> io.NodeOutput:
        path = resolve_model_path(model_name)
        load_device, offload_device = pick_device(device)
        torch_dtype = pick_dtype(dtype)
        check_bool("compile", compile)
        problem = compile and compile_problem(load_device)
        if problem:
            raise ValueError(f"compile: {problem}; set compile to false")
        try:
            net = load_model(path, device=offload_device, dtype=torch_dtype)
        except CheckpointError as e:
            raise ValueError(f"model_name: {e}") from None
        if compile:
            compile_unet(net, load_device)
        patcher = comfy.model_patcher.ModelPatcher(net, load_device=load_device, offload_device=offload_device)
        handle = LPIPModelHandle(patcher, net.config, model_name, torch_dtype, compile)
        info = f"{model_name}: {describe_config(net.config)}; {torch_dtype} on {load_device}" + \
            (", compiled" if compile else "")
        log.info("LPIP-Diff: loaded %s", info)
        return io.NodeOutput(handle, net.config.lq_size, ui=ui.PreviewText(info))
