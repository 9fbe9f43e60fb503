"""Checkpoints: .safetensors with the ModelConfig as JSON metadata. Pickles are refused, never opened.

Loading validates before it allocates (spandrel's load-and-validate): the header's size, the
config's every field against its documented range, the parameter count, and each tensor's name,
dtype and shape in the header against the architecture the config implies (built on the meta
device, which allocates nothing); only then are the weights read, and NaN/inf refused. Every
failure is a CheckpointError that names the file and the field or tensor.
"""
from __future__ import annotations

import functools
import json
import math
import os
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..checks import shown
from ..files import atomic_output
from .model import LPIPModel, ModelConfig
from .unet import UNetConfig

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
METADATA_KEY = "lpip_diff_config"
MAX_HEADER_BYTES = 16 * 2 ** 20  # a real header is a few kB (names, shapes, the config)
MAX_CONFIG_CHARS = 2 ** 20
MAX_PARAMETERS = 200_000_000  # 800 MB of float32; the shipped models have about 2 M
WEIGHT_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


class CheckpointError(ValueError):
    """A file that is not a valid LPIP-Diff checkpoint."""


def _check_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path.name}: {path.suffix} files are pickles and may run code when opened; "
                              "LPIP-Diff only loads .safetensors")
    if path.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{path.name}: expected a .safetensors file")
    if not path.is_file():  # also a folder, a pipe or a device, which open() could block on
        what = "is not a regular file" if path.exists() else "model file not found"
        raise CheckpointError(f"{path.name}: {what} ({path})")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"{path.name}: cannot read the file ({e})") from None
    # A safetensors file starts with an 8-byte header length, then the JSON header.
    if len(head) < 9 or head[8:9] != b"{":
        pickled = head[:2] in (b"PK", b"\x80\x02", b"\x80\x04", b"\x80\x05")
        kind = "a zip/pickle archive" if pickled else "not safetensors"
        raise CheckpointError(f"{path.name}: file is {kind}, not a safetensors checkpoint")
    header = struct.unpack("<Q", head[:8])[0]
    if header > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path.name}: its header claims {header} bytes (a checkpoint's is a few kB; "
                              f"at most {MAX_HEADER_BYTES} accepted)")
    if header + 8 > size:
        raise CheckpointError(f"{path.name}: unreadable safetensors file (truncated: the header claims {header} "
                              f"bytes, the file has {size})")
    return path


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The checkpoint's ModelConfig, read from its metadata without loading the weights."""
    path = _check_path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path.name}: unreadable safetensors file ({e})") from None
    text = metadata.get(METADATA_KEY)
    if text is None:
        raise CheckpointError(f"{path.name}: no '{METADATA_KEY}' metadata; not an LPIP-Diff checkpoint")
    if len(text) > MAX_CONFIG_CHARS:
        raise CheckpointError(f"{path.name}: the config is {len(text)} characters long (at most {MAX_CONFIG_CHARS})")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:  # RecursionError: JSON nested thousands deep
        raise CheckpointError(f"{path.name}: the config is not valid JSON ({str(e)[:80]})") from None
    try:
        return ModelConfig.from_dict(data)
    except (ValueError, TypeError, RecursionError) as e:
        where = "" if str(e).startswith("config") else "invalid config: "
        raise CheckpointError(f"{path.name}: {where}{e}") from None


@functools.lru_cache(maxsize=16)
def _expected_shapes(unet: UNetConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor an LPIPModel with this UNet holds: the network built on the meta
    device (no memory; about 0.1 s, so cached per UNet config)."""
    with torch.device("meta"):
        model = LPIPModel(ModelConfig(unet=unet, patch=unet.downsample_factor, stride=1,
                                      hq_size=4 * unet.downsample_factor))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _check_size(config: ModelConfig, name: str) -> dict[str, tuple[int, ...]]:
    shapes = _expected_shapes(config.unet)
    count = sum(math.prod(s) for s in shapes.values())
    if count > MAX_PARAMETERS:
        raise CheckpointError(f"{name}: the config describes {count:,} parameters; at most {MAX_PARAMETERS:,} "
                              "are accepted (config.unet widths and depths are too large)")
    return shapes


def check_header(path: str | os.PathLike) -> ModelConfig:
    """Validate a checkpoint without reading its weights: the config, and every tensor's name,
    dtype and shape in the header against the architecture the config describes."""
    config = read_config(path)
    name = Path(path).name
    expected = _check_size(config, name)
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {key: (f.get_slice(key).get_dtype(), tuple(f.get_slice(key).get_shape())) for key in f.keys()}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{name}: unreadable safetensors file ({e})") from None
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing:
        raise CheckpointError(f"{name}: missing tensor {missing[0]!r}")
    if unexpected:
        raise CheckpointError(f"{name}: unexpected tensor {shown(unexpected[0])}")
    for key in sorted(expected):
        dtype, shape = found[key]
        if dtype not in WEIGHT_DTYPES:
            raise CheckpointError(f"{name}: tensor {key!r} has dtype {dtype}; weights must be floats "
                                  f"({', '.join(WEIGHT_DTYPES)})")
        if shape != expected[key]:
            raise CheckpointError(f"{name}: tensor {key!r} has shape {shape}, expected {expected[key]}")
    return config


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu",
               dtype: torch.dtype | None = None) -> LPIPModel:
    """Build the model the checkpoint describes and load its weights (eval mode).

    Everything the header says is checked first (check_header); the weights are then read one
    tensor at a time, refused if any value is NaN or infinite, and assigned to a model built on
    the meta device, so that loading needs about the weights' own size in memory. Every cast is
    checked again: float64 weights of 1e300 are finite but become inf as float32, float32 weights of
    1e5 become inf as float16 (`dtype`); such a checkpoint is refused, naming the tensor and dtype.
    Weights are stored channels-last: the same numbers, about 20% faster convolutions on the CPU
    (oneDNN) and on tensor-core GPUs.
    """
    config = check_header(path)
    name = Path(path).name
    with torch.device("meta"):  # the weights are assigned below, never initialised
        model = LPIPModel(config)
    state = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                tensor = f.get_tensor(key)
                if not torch.isfinite(tensor).all():
                    raise CheckpointError(f"{name}: tensor {key!r} holds NaN or infinite values")
                state[key] = _cast(name, key, tensor, torch.float32)
                if dtype is not None:
                    _cast(name, key, state[key], dtype)  # refused before any copy reaches the device
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{name}: unreadable safetensors file ({e})") from None
    model.load_state_dict(state, assign=True)
    model = model.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    model.checkpoint_name = name  # named in errors about its results
    return model.eval().requires_grad_(False)


def _cast(name: str, key: str, tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """tensor as dtype, refused if a value does not fit there (it would become inf)."""
    cast = tensor.to(dtype)
    if not torch.isfinite(cast).all():
        largest = tensor.abs().max().item()
        raise CheckpointError(f"{name}: tensor {key!r} holds values too large for {str(dtype).replace('torch.', '')} "
                              f"(largest {largest:.3g}; at most {torch.finfo(dtype).max:.3g})")
    return cast


def save_model(model: LPIPModel, path: str | os.PathLike) -> Path:
    """Write weights + config atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path.name}: checkpoints must be saved as .safetensors")
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {METADATA_KEY: json.dumps(model.config.to_dict())}
    write_safetensors(state, path, metadata)
    return path


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """save_file, atomically; its failures to write (a full disk: a SafetensorError, not an OSError)
    become an OSError that names the file."""
    with atomic_output(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as e:
            raise OSError(f"cannot write {path}: {e}") from None
