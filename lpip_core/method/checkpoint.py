"""Checkpoints: .safetensors with the ModelConfig as JSON metadata. Pickles are refused, never opened.

Loading validates the config and the tensor names and shapes against the architecture the config
describes, and names the first mismatch (spandrel's load-and-validate).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..files import atomic_output
from .model import LPIPModel, ModelConfig

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
METADATA_KEY = "lpip_diff_config"


class CheckpointError(ValueError):
    """A file that is not a valid LPIP-Diff checkpoint."""


def _check_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path.name}: {path.suffix} files are pickles and may run code when opened; "
                              "LPIP-Diff only loads .safetensors")
    if path.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{path.name}: expected a .safetensors file")
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(9)
    # A safetensors file starts with an 8-byte header length, then the JSON header.
    if len(head) < 9 or head[8:9] != b"{":
        kind = "a zip/pickle archive" if head[:2] in (b"PK", b"\x80\x02", b"\x80\x04", b"\x80\x05") else "not safetensors"
        raise CheckpointError(f"{path.name}: file is {kind}, not a safetensors checkpoint")
    return path


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The checkpoint's ModelConfig, read from its metadata without loading the weights."""
    path = _check_path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path.name}: unreadable safetensors file ({e})") from None
    if METADATA_KEY not in metadata:
        raise CheckpointError(f"{path.name}: no '{METADATA_KEY}' metadata; not an LPIP-Diff checkpoint")
    try:
        return ModelConfig.from_dict(json.loads(metadata[METADATA_KEY]))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path.name}: invalid config: {e}") from None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu",
               dtype: torch.dtype | None = None) -> LPIPModel:
    """Build the model the checkpoint describes and load its weights (eval mode).

    Weights are stored channels-last: the same numbers, about 20% faster convolutions on the CPU
    (oneDNN) and on tensor-core GPUs.
    """
    config = read_config(path)
    model = LPIPModel(config)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{Path(path).name}: unreadable safetensors file ({e})") from None
    expected = model.state_dict()
    for key in sorted(set(expected) | set(state)):
        if key not in state:
            raise CheckpointError(f"{Path(path).name}: missing tensor {key!r}")
        if key not in expected:
            raise CheckpointError(f"{Path(path).name}: unexpected tensor {key!r}")
        if state[key].shape != expected[key].shape:
            raise CheckpointError(f"{Path(path).name}: tensor {key!r} has shape {tuple(state[key].shape)}, "
                                  f"expected {tuple(expected[key].shape)}")
    model.load_state_dict(state)
    model = model.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    return model.eval().requires_grad_(False)


def save_model(model: LPIPModel, path: str | os.PathLike) -> Path:
    """Write weights + config atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path.name}: checkpoints must be saved as .safetensors")
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {METADATA_KEY: json.dumps(model.config.to_dict())}
    with atomic_output(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path
