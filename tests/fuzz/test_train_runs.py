"""Training never destroys an earlier run by accident, refuses a broken resume state in one line, and
goes on past unreadable images (skipping and counting them)."""
from __future__ import annotations

import os
import shutil
import warnings

import pytest
from safetensors.torch import save_file

from lpip_core.data.folders import load_faces
from lpip_core.training.train import TrainConfig, train
from tests.helpers import aligned_faces

from .test_cli import one_line, run, tree


@pytest.fixture
def faces(tmp_path):
    return aligned_faces(tmp_path / "faces", "hopper", "obama")


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


@pytest.mark.parametrize("where", ["model inside data", "log-dir is data", "log-dir inside data"])
def test_train_never_writes_into_its_data_folder(faces, tmp_path, where):
    """Files written among the faces would be read as faces by the next run (or replace one)."""
    (faces / "loss.png").write_bytes((faces / "hopper_aligned_128.png").read_bytes())  # a face named like a log
    before = tree(faces)
    flags = {"model inside data": ["-o", faces / "m.safetensors"],
             "log-dir is data": ["--log-dir", faces], "log-dir inside data": ["--log-dir", faces / "run"]}[where]
    code, err = train_cli(faces, tmp_path / "m.safetensors", *flags)  # the last -o wins
    one_line(code, err, "the input folder", str(faces))
    assert tree(faces) == before and not (tmp_path / "m.safetensors").exists()


def test_train_refuses_a_folder_as_its_model_before_training(faces, tmp_path, monkeypatch):
    from lpip_core.training import train as training

    monkeypatch.setattr(training, "train_step", lambda *a, **k: pytest.fail("trained before the check"))
    (tmp_path / "m.safetensors").mkdir()
    for flags in ([], ["--overwrite"]):
        one_line(*train_cli(faces, tmp_path / "m.safetensors", *flags), "is a folder; give the path of a file")


def test_two_trainings_of_one_model_never_run_at_once(faces, tmp_path):
    """The run folder is held for the whole run: a second run refuses in one line, and the hold ends
    with the process that held it, however it ends (here: SIGKILL)."""
    import subprocess
    import sys

    from lpip_core.outputs import exclusive

    out = tmp_path / "m.safetensors"
    (tmp_path / "m-train").mkdir()
    with exclusive(tmp_path / "m-train", "the first run"):  # another open file description: as another process
        one_line(*train_cli(faces, out), f"-o {out}: another process is writing there now")
    assert tree(tmp_path / "m-train") == {} and not out.exists()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                               "os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
                               "time.sleep(600)", str(tmp_path / "m-train")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        one_line(*train_cli(faces, out), "another process is writing there now")
    finally:
        holder.kill()
        holder.wait()
    assert train_cli(faces, out)[0] == 0 and out.is_file()


def test_a_full_disk_under_train_is_one_line(faces, tmp_path, monkeypatch):
    from safetensors import SafetensorError

    from lpip_core.method import checkpoint

    def full(tensors, filename, metadata=None):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    monkeypatch.setattr(checkpoint, "save_file", full)
    one_line(*train_cli(faces, tmp_path / "m.safetensors"), "cannot write", "state.safetensors", "StorageFull")
    assert not (tmp_path / "m.safetensors").exists()


def test_special_files_among_training_faces_are_skipped_and_counted_never_opened(faces, tmp_path):
    os.mkfifo(faces / "pipe.png")  # opened, it would block the run forever
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack, names = load_faces(faces, 32)
    assert names == ["hopper_aligned_128.png", "obama_aligned_128.png"]
    assert "skipped 1 unreadable image(s): image" in str(caught[0].message) and "FIFO" in str(caught[0].message)


def test_the_training_skip_warning_is_one_line_in_the_commands_words(faces, tmp_path):
    (faces / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code, err = train_cli(faces, tmp_path / "m.safetensors")
    assert code == 0 and "UserWarning" not in err
    assert [line for line in err.splitlines() if "skipped" in line][0].startswith(
        "lpip-diff: warning: skipped 1 unreadable image(s)")


def test_a_binary_or_special_holdout_file_is_named(faces, tmp_path):
    binary = tmp_path / "holdout.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    one_line(*train_cli(faces, tmp_path / "m.safetensors", "--holdout", binary),
             f"holdout file {binary} is not a text file of names")
    os.mkfifo(tmp_path / "holdout.txt")
    one_line(*train_cli(faces, tmp_path / "m.safetensors", "--holdout", tmp_path / "holdout.txt"),
             "--holdout", "is a FIFO (named pipe), not a regular file")


def test_memory_scaling_training_options_have_upper_bounds(faces, tmp_path):
    one_line(*train_cli(faces, tmp_path / "m.safetensors", "--faces-per-step", 10 ** 8),
             "faces_per_step must be an integer in 1..1024, got 100000000")
    one_line(*train_cli(faces, tmp_path / "m.safetensors", "--patches-per-face", 10 ** 6), "1..256")
    assert not (tmp_path / "m-train").exists()
