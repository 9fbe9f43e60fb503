import json
import pickle
import struct
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from lpip_core import CheckpointError, load_model, read_config, save_model
from lpip_core.method.checkpoint import METADATA_KEY
from tests.helpers import tiny_model


def test_round_trip_build_save_load_gives_the_same_model(tmp_path, model):
    path = save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(path)
    assert loaded.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x, lq, t = torch.randn(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.tensor([5.0, 900.0])
    torch.testing.assert_close(loaded(x, lq, t), model(x, lq, t), rtol=0, atol=1e-5)  # channels-last: rounding only
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_config_is_readable_without_loading_weights(tmp_path, model):
    path = save_model(model, tmp_path / "m.safetensors")
    config = read_config(path)
    assert (config.scale, config.patch, config.stride, config.hq_size) == (4, 16, 8, 64)
    assert config.to_dict()["architecture"] == "lpip-diff-sr3-unet"


def test_load_to_a_dtype(tmp_path, model):
    loaded = load_model(save_model(model, tmp_path / "m.safetensors"), dtype=torch.bfloat16)
    assert next(loaded.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth"])
def test_pickle_suffixes_are_refused_without_opening(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"not even read")
    with pytest.raises(CheckpointError, match="pickle"):
        load_model(path)


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled!')",))


def test_a_pickle_renamed_to_safetensors_is_refused_and_never_unpickled(tmp_path):
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="not a safetensors"):
        load_model(path)
    zipped = tmp_path / "torch_save.safetensors"
    torch.save({"w": torch.zeros(1)}, zipped)
    with pytest.raises(CheckpointError, match="zip/pickle"):
        load_model(zipped)


def test_missing_file_and_foreign_safetensors_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not an LPIP-Diff checkpoint"):
        load_model(foreign)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(struct.pack("<Q", 10_000) + b"{")
    with pytest.raises(CheckpointError, match="unreadable"):
        read_config(truncated)


def _resave(tmp_path, model, mutate_state=None, mutate_config=None):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    config = model.config.to_dict()
    if mutate_state:
        mutate_state(state)
    if mutate_config:
        mutate_config(config)
    path = tmp_path / "edited.safetensors"
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(config)})
    return path


def test_missing_tensor_is_named(tmp_path, model):
    path = _resave(tmp_path, model, mutate_state=lambda s: s.pop("unet.input.weight"))
    with pytest.raises(CheckpointError, match="missing tensor 'unet.input.weight'"):
        load_model(path)


def test_unexpected_tensor_is_named(tmp_path, model):
    path = _resave(tmp_path, model, mutate_state=lambda s: s.update({"unet.extra": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="unexpected tensor 'unet.extra'"):
        load_model(path)


def test_shape_mismatch_is_named(tmp_path, model):
    path = _resave(tmp_path, model, mutate_config=lambda c: c["unet"].update(base_channels=32))
    with pytest.raises(CheckpointError, match=r"tensor '.*' has shape"):
        load_model(path)


def test_unknown_config_key_is_named(tmp_path, model):
    path = _resave(tmp_path, model, mutate_config=lambda c: c["unet"].update(wings=2))
    with pytest.raises(CheckpointError, match="config.unet.'wings'"):
        load_model(path)


def test_default_samples_round_trip_default_to_one_and_are_checked(tmp_path, model):
    """A checkpoint may carry how many samples restore averages by default (lpip_x8_128: 2); one
    written before the field existed reads as 1, the paper; a bad value is named with its range."""
    two = model.__class__(replace(model.config, samples=2))
    two.load_state_dict(model.state_dict())
    assert read_config(save_model(two, tmp_path / "two.safetensors")).samples == 2
    assert read_config(_resave(tmp_path, model, mutate_config=lambda c: c.pop("samples"))).samples == 1
    with pytest.raises(CheckpointError, match=r"config.samples must be an integer in 1..16, got 0"):
        load_model(_resave(tmp_path, model, mutate_config=lambda c: c.update(samples=0)))


def test_save_is_atomic_and_refuses_other_formats(tmp_path, model, monkeypatch):
    with pytest.raises(CheckpointError, match=".safetensors"):
        save_model(model, tmp_path / "m.pt")
    target = tmp_path / "m.safetensors"
    save_model(model, target)
    before = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("lpip_core.method.checkpoint.save_file", crash)
    with pytest.raises(OSError):
        save_model(tiny_model(seed=5), target)
    assert target.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def _with_weight(tmp_path, model, value: float, dtype: torch.dtype = torch.float32):
    """The model saved with one conv weight filled with `value`, stored as `dtype`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = save_model(model, tmp_path / "m.safetensors")
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    tensors = {k: v.to(dtype) for k, v in load_file(str(path)).items()}
    key = "unet.down.0.0.conv1.weight"
    tensors[key] = torch.full_like(tensors[key], value)
    out = tmp_path / f"w{value:g}.safetensors"
    save_file(tensors, str(out), metadata=metadata)
    return out


def test_weights_finite_only_before_the_cast_to_float32_are_refused(tmp_path, model):
    """float64 weights of 1e300 are finite, but inf once cast to float32: refused at load."""
    path = _with_weight(tmp_path, model, 1e300, torch.float64)
    with pytest.raises(CheckpointError, match=r"'unet.down.0.0.conv1.weight' holds values too large for float32"):
        load_model(path)


def test_weights_that_overflow_the_requested_dtype_are_refused(tmp_path, model):
    """float32 weights of 1e5 load as float32, but are inf in float16 (the loader node's fp16)."""
    path = _with_weight(tmp_path, model, 1e5)
    assert load_model(path) is not None
    with pytest.raises(CheckpointError, match=r"too large for float16 \(largest 1e\+05; at most 6.55e\+04\)"):
        load_model(path, dtype=torch.float16)


def test_restore_never_returns_a_non_finite_image(tmp_path, model):
    """Weights of 3e38 are finite in float32 but overflow the activations: an error naming the
    checkpoint and the dtype, never a NaN (or clamped black) image."""
    from lpip_core import restore

    loaded = load_model(_with_weight(tmp_path, model, 3e38))
    with pytest.raises(ValueError, match=r"NaN or infinite values: the model w3e\+38.safetensors overflows in float32"):
        restore(loaded, torch.rand(1, 3, 16, 16), steps=1)


def test_a_full_disk_while_saving_a_model_is_an_os_error(tmp_path, model, monkeypatch):
    """safetensors reports a failed write as SafetensorError, which the CLI would not catch."""
    from safetensors import SafetensorError

    from lpip_core.method import checkpoint

    def full(tensors, filename, metadata=None):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(OSError, match="cannot write .*m.safetensors: Error while serializing"):
        save_model(model, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
