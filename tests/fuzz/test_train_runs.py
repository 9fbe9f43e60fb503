"""Training never destroys an earlier run by accident, refuses a broken resume state in one line, and
goes on past unreadable images (skipping and counting them)."""
from __future__ import annotations

import shutil
import warnings

import pytest
from safetensors.torch import save_file

from lpip_core.training.data import load_faces
from lpip_core.training.train import TrainConfig, train

from .test_cli import one_line, run, tree


@pytest.fixture
def faces(tmp_path, fixtures):
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("hopper", "obama"):
        shutil.copy(fixtures / f"{name}_aligned_128.png", folder)
    return folder


def train_cli(faces, out, *flags):
    return run(["train", "--data", faces, "-o", out, "--preset", "tiny", "--hq-size", 32, "--patch", 8, "--steps", 2,
                "--log-every", 1, "--faces-per-step", 1, "--patches-per-face", 1, "--threads", 1, "-q", *flags])


def test_the_same_command_twice_refuses_to_start_over(faces, tmp_path):
    out = tmp_path / "m.safetensors"
    assert train_cli(faces, out)[0] == 0
    before = tree(tmp_path / "m-train") | {"model": out.read_bytes()}
    one_line(*train_cli(faces, out), "m.safetensors exists from an earlier run", "--resume", "--overwrite")
    assert tree(tmp_path / "m-train") | {"model": out.read_bytes()} == before  # loss.csv and all intact
    assert train_cli(faces, out, "--steps", 4, "--resume")[0] == 0  # --resume continues it
    assert train_cli(faces, out, "--overwrite")[0] == 0  # --overwrite starts over
    rows = (tmp_path / "m-train" / "loss.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2"]  # a new log


def test_resume_without_a_state_refuses_to_overwrite_the_model(faces, tmp_path):
    out = tmp_path / "m.safetensors"
    assert train_cli(faces, out)[0] == 0
    (tmp_path / "m-train" / "state.safetensors").unlink()
    model = out.read_bytes()
    one_line(*train_cli(faces, out, "--resume"), "--resume: no training state at", "pass --overwrite instead")
    assert out.read_bytes() == model
    one_line(*train_cli(faces, out, "--resume", "--overwrite"), "pass only one")
    assert train_cli(faces, tmp_path / "fresh.safetensors", "--resume")[0] == 0  # nothing to lose: a new run


@pytest.mark.parametrize("damage", ["truncated", "foreign", "garbage", "bad_step", "wrong_shapes"])
def test_a_broken_resume_state_is_one_line(faces, tmp_path, damage):
    out = tmp_path / "m.safetensors"
    assert train_cli(faces, out)[0] == 0
    state = tmp_path / "m-train" / "state.safetensors"
    data = state.read_bytes()
    if damage == "truncated":
        state.write_bytes(data[: len(data) // 2])
    elif damage == "foreign":
        shutil.copy(out, state)  # a model, not a training state
    elif damage == "garbage":
        state.write_bytes(b"\x00" * 100)
    else:
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(state), "pt") as f:
            meta = f.metadata()
        tensors = load_file(str(state))
        if damage == "bad_step":
            meta["step"] = "many"
        else:
            key = next(k for k in tensors if k.startswith("opt.") and k.endswith("exp_avg"))
            tensors[key] = tensors[key].reshape(-1)[:1].clone()
        save_file(tensors, str(state), metadata=meta)
    one_line(*train_cli(faces, out, "--steps", 4, "--resume"), "is not a usable training state", "--overwrite")


def test_unreadable_training_images_are_skipped_and_counted(faces, tmp_path):
    (faces / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (faces / "empty.jpg").write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack, names = load_faces(faces, 32)
    assert names == ["hopper_aligned_128.png", "obama_aligned_128.png"] and stack.shape[0] == 2
    message = " ".join(str(w.message) for w in caught)
    assert "skipped 2 unreadable image(s)" in message and "broken.png" in message and "empty.jpg" in message
    cfg = TrainConfig(data=str(faces), out=str(tmp_path / "m.safetensors"), preset="tiny", hq_size=32, patch=8,
                      steps=1, faces_per_step=1, patches_per_face=1, threads=1)
    with pytest.warns(UserWarning, match="skipped 2"):
        assert train(cfg, progress=False).is_file()
