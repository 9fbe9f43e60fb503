"""Hostile files, built in the test run (nothing binary is committed): checkpoints that a careless
or malicious user could drop into models/lpip_diff, and images that a CLI user could pass.

``hostile_checkpoints(folder)`` writes the corpus and returns {file name: what the refusal must
mention}; the unit tests load every file, and the integration tests seed a real ComfyUI's model
folder with it.
"""
from __future__ import annotations

import io
import json
import pickle
import struct
import zlib
from pathlib import Path

import torch
from safetensors.torch import save_file

import lpip_core
from lpip_core.method.checkpoint import METADATA_KEY


def tiny_config() -> dict:
    config = lpip_core.ModelConfig(unet=lpip_core.PRESETS["tiny"], scale=4, hq_size=64, patch=16, stride=8)
    return json.loads(json.dumps(config.to_dict()))


def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = lpip_core.LPIPModel(lpip_core.ModelConfig.from_dict(tiny_config()))
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def write_checkpoint(path: Path, state: dict, config_text: str | None) -> Path:
    metadata = {} if config_text is None else {METADATA_KEY: config_text}
    save_file(state, str(path), metadata=metadata)
    return path


def edited(config: dict, where: str, value) -> dict:
    """A deep copy of config with config[a][b] = value for where = "a.b" (value None deletes)."""
    config = json.loads(json.dumps(config))
    *parents, leaf = where.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[leaf] = value
    return config


# (file stem, config field, bad value, what the error must name). Header-only: no tensors at all, so
# that the old loader, which built the network from these numbers first, allocated before refusing.
BAD_FIELDS = [
    ("norm_groups_zero", "unet.norm_groups", 0, "norm_groups"),
    ("base_channels_65536", "unet.base_channels", 65536, "base_channels"),
    ("base_channels_negative", "unet.base_channels", -32, "base_channels"),
    ("res_blocks_20000", "unet.num_res_blocks", 20000, "num_res_blocks"),
    ("head_channels_zero", "unet.head_channels", 0, "head_channels"),
    ("dropout_two", "unet.dropout", 2, "dropout"),
    ("mults_empty", "unet.channel_mults", [], "channel_mults"),
    ("mults_string", "unet.channel_mults", "12", "channel_mults"),
    ("mults_huge", "unet.channel_mults", [1, 10 ** 9], "channel_mults"),
    ("mults_long", "unet.channel_mults", [1] * 100_000, "channel_mults"),
    ("attention_level_7", "unet.attention_levels", [7], "attention_levels"),
    ("image_channels_4", "unet.image_channels", 4, "image_channels"),
    ("middle_attention_yes", "unet.middle_attention", "yes", "middle_attention"),
    ("widths_fractional", "unet.base_channels", 16.5, "base_channels"),
    ("timesteps_1e9", "schedule.timesteps", 1e9, "timesteps"),
    ("timesteps_huge_int", "schedule.timesteps", 10 ** 9, "timesteps"),
    ("beta_nan", "schedule.beta_start", float("nan"), "beta_start"),
    ("beta_end_one", "schedule.beta_end", 1.0, "beta_end"),
    ("schedule_kind", "schedule.kind", ["linear"], "kind"),
    ("hq_size_negative", "hq_size", -64, "hq_size"),
    ("scale_zero", "scale", 0, "scale"),
    ("scale_bool", "scale", True, "scale"),
    ("patch_odd", "patch", 3, "patch"),
    ("stride_zero", "stride", 0, "stride"),
    ("training_list", "training", [1, 2], "training"),
    ("unet_null", "unet", None, "config.unet"),
    ("schedule_string", "schedule", "linear", "config.schedule"),
    ("version_two", "version", 2, "version"),
    ("foreign_architecture", "architecture", "stable-diffusion", "architecture"),
    ("unknown_key", "unet.wings", 2, "wings"),
]


def hostile_checkpoints(folder: Path) -> dict[str, str]:
    """Write the corpus into folder; returns {file name: text the CheckpointError must contain}."""
    folder.mkdir(parents=True, exist_ok=True)
    config, state = tiny_config(), tiny_state()
    valid = json.dumps(config)
    cases: dict[str, str] = {}

    def add(name: str, needle: str, state_=None, text=valid):
        write_checkpoint(folder / name, state if state_ is None else state_, text)
        cases[name] = needle

    for stem, where, value, needle in BAD_FIELDS:
        add(f"{stem}.safetensors", needle, {}, json.dumps(edited(config, where, value)))
    add("heads_uneven.safetensors", "head_channels", {},
        json.dumps(edited(edited(config, "unet.attention_levels", [1]), "unet.head_channels", 10)))
    add("header_only.safetensors", "missing tensor", {})
    add("too_many_parameters.safetensors", "parameters", {},
        json.dumps(edited(edited(config, "unet.base_channels", 1024), "unet.channel_mults", [16] * 3)))
    add("nested_100k.safetensors", "not valid JSON", {}, "[" * 100_000 + "]" * 100_000)
    add("nested_in_training.safetensors", "not valid JSON", {},
        json.dumps(edited(config, "training", {"a": "NEST"})).replace('"NEST"', "[" * 50_000 + "]" * 50_000))
    add("config_not_json.safetensors", "not valid JSON", text="{'unet': ")
    add("config_a_list.safetensors", "JSON object", text="[1, 2, 3]")
    add("config_two_megabytes.safetensors", "characters long", {}, json.dumps({"pad": "x" * 2 ** 21}))
    add("no_metadata.safetensors", "not an LPIP-Diff checkpoint", text=None)
    first = sorted(state)[0]
    add("int32_weights.safetensors", "dtype I32", {k: v.to(torch.int32) for k, v in state.items()})
    add("bool_weight.safetensors", "dtype BOOL", {**state, first: state[first] != 0})
    add("uint8_weight.safetensors", "dtype U8", {**state, first: state[first].to(torch.uint8)})
    add("nan_weights.safetensors", "NaN or infinite", {k: torch.full_like(v, float("nan")) for k, v in state.items()})
    add("inf_weight.safetensors", "NaN or infinite", {**state, first: torch.full_like(state[first], float("inf"))})
    add("transposed.safetensors", "has shape", {**state, "unet.input.weight": state["unet.input.weight"].transpose(0, 1)
                                                .contiguous()})
    add("missing_tensor.safetensors", "missing tensor", {k: v for k, v in state.items() if k != first})
    add("extra_tensor.safetensors", "unexpected tensor", {**state, "unet.backdoor": torch.zeros(3)})
    add("shapes_of_another_config.safetensors", "has shape",
        text=json.dumps(edited(config, "unet.base_channels", 32)))

    raw = (folder / "header_only.safetensors").read_bytes()
    full = write_checkpoint(folder / "_full.tmp", state, valid).read_bytes()
    (folder / "_full.tmp").unlink()
    for name, data, needle in [
        ("truncated.safetensors", full[: len(full) // 2], "unreadable"),
        ("header_length_2_60.safetensors", struct.pack("<Q", 2 ** 60) + raw[8:], "header claims"),
        ("header_length_past_end.safetensors", struct.pack("<Q", len(raw)) + raw[8:], "truncated"),
        ("empty.safetensors", b"", "not safetensors"),
        ("eight_bytes.safetensors", b"\x00" * 8, "not safetensors"),
        ("garbage.safetensors", bytes(range(256)) * 8, "not safetensors"),
        ("pickle.safetensors", pickle.dumps({"w": [1, 2, 3]}), "not a safetensors"),
        ("zip.safetensors", _torch_save_bytes(), "zip/pickle"),
        ("header_not_json.safetensors", struct.pack("<Q", 12) + b"{not json!!}", "unreadable"),
    ]:
        (folder / name).write_bytes(data)
        cases[name] = needle
    return cases


def _torch_save_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- images

def png_bomb(width: int = 200_000, height: int = 200_000) -> bytes:
    """A valid-looking PNG of width x height grey pixels in a few hundred bytes (one compressed
    row of zeros, then the file ends): Pillow must refuse it from the header alone."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
