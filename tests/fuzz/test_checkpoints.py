"""Hostile checkpoints: every file is a CheckpointError that names the file and the field, found
before anything is allocated; loading any of them stays far below 1 GB and a second."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lpip_core
from lpip_core import CheckpointError, load_model, restore
from lpip_core.method.checkpoint import check_header

from .hostile import edited, hostile_checkpoints, tiny_config, tiny_state, write_checkpoint

REPO = Path(__file__).resolve().parents[2]
FOUND_IN_WEIGHTS = {"nan_weights.safetensors", "inf_weight.safetensors"}  # found only when the weights are read


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile")
    return folder, hostile_checkpoints(folder)


def refusal(path: Path, load=load_model) -> str:
    """The CheckpointError message of loading path, without its 'file name: ' prefix."""
    with pytest.raises(CheckpointError) as ei:
        load(path)
    message = str(ei.value)
    assert message.startswith(f"{path.name}: ") and "\n" not in message and len(message) < 400, message
    return message.split(": ", 1)[1]


def test_every_hostile_checkpoint_is_refused_naming_file_and_field(corpus):
    folder, cases = corpus
    assert len(cases) >= 50
    for name, needle in cases.items():
        assert needle in refusal(folder / name), name
        if name not in FOUND_IN_WEIGHTS:
            assert needle in refusal(folder / name, check_header), name  # the header alone tells


def test_loading_the_whole_corpus_stays_far_below_a_gigabyte(corpus):
    """In a fresh process: peak memory growth over torch's own while every file is loaded (the old
    loader asked for 68 GB on base_channels_65536 and ground for seconds on res_blocks_20000)."""
    folder, cases = corpus
    script = textwrap.dedent(f"""
        import resource, sys, time
        import torch
        from lpip_core import CheckpointError, load_model
        torch.set_num_threads(1)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        slowest = 0.0
        for name in {sorted(cases)!r}:
            t0 = time.perf_counter()
            try:
                load_model({str(folder)!r} + "/" + name)
                sys.exit("loaded " + name)
            except CheckpointError:
                pass
            slowest = max(slowest, time.perf_counter() - t0)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(grown, slowest)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    grown_mb, slowest_s = map(float, out.stdout.split())
    assert grown_mb < 1024, f"loading the corpus grew memory by {grown_mb:.0f} MB"
    assert slowest_s < 5, f"one file took {slowest_s:.1f} s to refuse"


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth", ".bin", ".pkl"])
def test_pickle_suffixes_are_refused_unopened(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x80\x04 never read")
    assert "pickles" in refusal(path)


def test_files_that_are_not_files(tmp_path):
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)  # opening it would block forever
    assert "not a regular file" in refusal(fifo)
    (tmp_path / "folder.safetensors").mkdir()
    assert "not a regular file" in refusal(tmp_path / "folder.safetensors")
    assert "not found" in refusal(tmp_path / "absent.safetensors")
    zero = tmp_path / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    with pytest.raises(CheckpointError):
        load_model(zero)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_load_as_float32(tmp_path, dtype):
    state = tiny_state()
    path = write_checkpoint(tmp_path / "m.safetensors", {k: v.to(dtype) for k, v in state.items()},
                            json.dumps(tiny_config()))
    model = load_model(path)
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, state[key].to(dtype).float())


# ------------------------------------------------------------------------------- property-based

FIELDS = ["unet.image_channels", "unet.base_channels", "unet.channel_mults", "unet.num_res_blocks",
          "unet.attention_levels", "unet.middle_attention", "unet.head_channels", "unet.norm_groups", "unet.dropout",
          "schedule.kind", "schedule.timesteps", "schedule.beta_start", "schedule.beta_end", "scale", "hq_size",
          "patch", "stride", "training", "architecture", "version", "unet", "schedule", "unet.extra", "extra"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 70), st.integers(-2 ** 70, 2 ** 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                    st.sampled_from(["linear", "cosine", "lpip-diff-sr3-unet"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


@given(edits=st.lists(st.tuples(st.sampled_from(FIELDS), json_values), min_size=1, max_size=3))
def test_any_edited_config_is_refused_cleanly_or_gives_a_working_model(tmp_path_factory, edits):
    """The real tiny weights under a config with 1-3 fields replaced by arbitrary JSON: either a
    CheckpointError, or a model that restores a face to the size its config says."""
    config = tiny_config()
    for where, value in edits:
        parent = where.rsplit(".", 1)[0]
        if "." in where and not isinstance(config.get(parent), dict):
            continue  # the parent object was replaced by an earlier edit
        config = edited(config, where, value)
    path = write_checkpoint(tmp_path_factory.mktemp("edit") / "edited.safetensors", tiny_state(),
                            json.dumps(config))
    try:
        model = load_model(path)
    except CheckpointError as e:
        assert str(e).startswith("edited.safetensors: ") and "\n" not in str(e)
        return
    scale = model.config.scale
    out = restore(model, torch.rand(1, 3, 4, 4), steps=1)
    assert out.shape == (1, 3, 4 * scale, 4 * scale) and torch.isfinite(out).all()
    assert isinstance(model.config, lpip_core.ModelConfig)
