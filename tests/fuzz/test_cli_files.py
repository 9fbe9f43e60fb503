"""Invariant: whatever tree of files, folders, links and pipes the commands get as inputs and outputs, no
input's bytes ever change, nothing that exists is replaced without --overwrite, and every run exits 0
with valid outputs or 2 with one line."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import lpip_core
from lpip_core.files import read_image, write_image
from lpip_core.resize import resize
from tests.helpers import FIXTURES, tiny_model

from .test_cli import one_line, run

ENTRIES = ("a.png", "b.png", "sub/a.png", "link.png", "hard.png", "m.safetensors", "n.safetensors", "data",
           "notes.txt", "pipe.png", "dir.png")
OUTPUTS = ENTRIES + ("out", "out/deeper", "a.png/x", "data/x", "data/x.safetensors", "sub", ".", "new.safetensors", "out/m.safetensors",
                     "o" * 300)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("sources")
    face = write_image(resize(read_image(FIXTURES / "hopper_aligned_128.png"), (16, 16)), folder / "face.png")
    model = lpip_core.save_model(tiny_model(), folder / "tiny.safetensors")
    return {"face": face.read_bytes(), "model": model.read_bytes(),
            "hq": (FIXTURES / "hopper_aligned_128.png").read_bytes()}


def make_tree(root: Path, sources: dict[str, bytes]) -> None:
    """Every kind of entry a careless user may name: images, a copy in a sub-folder, a symlink and a
    hard link to an image, models, a data folder of faces, text, a FIFO and a folder named like an image."""
    (root / "sub").mkdir()
    (root / "data").mkdir()
    for name in ("a.png", "b.png", "sub/a.png"):
        (root / name).write_bytes(sources["face"])
    (root / "link.png").symlink_to(root / "a.png")
    os.link(root / "a.png", root / "hard.png")
    for name in ("m.safetensors", "n.safetensors"):
        (root / name).write_bytes(sources["model"])
    (root / "data" / "loss.png").write_bytes(sources["hq"])  # a face named like a training log
    (root / "notes.txt").write_text("not an image")
    os.mkfifo(root / "pipe.png")
    (root / "dir.png").mkdir()


def fingerprint(root: Path) -> dict[str, str]:
    """Each regular file's hash, by path (links followed only for what they point at)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def inputs_of(root: Path, names: list[str]) -> set[str]:
    """The regular files that the named inputs are or hold, relative to root."""
    found = set()
    for name in names:
        path = (root / name).resolve()
        files = path.rglob("*") if path.is_dir() else [path]
        found |= {str(p.relative_to(root.resolve())) for p in files if p.is_file()}
    return found


def argv_for(command: str, root: Path, inputs: list[str], out: str, overwrite: bool) -> list:
    given_in = [root / name for name in inputs]
    o = root / out
    flags = ["--overwrite"] if overwrite else []
    if command == "restore":
        return ["restore", *given_in, "-o", o, "--model", root / "m.safetensors", "--steps", 1, "-q", *flags]
    if command == "degrade":
        return ["degrade", *given_in, "-o", o, *flags]
    if command == "average":
        return ["average", *given_in, "-o", o, *flags]
    return ["train", "--data", *given_in[:1], "-o", o, "--preset", "tiny", "--hq-size", 16, "--patch", 8, "--steps", 1,
            "--faces-per-step", 1, "--patches-per-face", 1, "--min-face-size", 1, "--no-augment", "--threads", 1,
            "-q", *flags]


def check_outputs(command: str, root: Path, inputs: list[str], out: str) -> None:
    """What an exit 0 promises: readable outputs of the right kind."""
    o = root / out
    if command == "restore":
        for name in inputs:
            assert read_image(o / f"{Path(name).stem}.png").shape == (1, 3, 64, 64)
    elif command == "degrade":
        for name in inputs:
            assert read_image(o / f"{Path(name).stem}_lq.png").shape[:2] == (1, 3)
    else:
        assert lpip_core.read_config(o).scale == 4


GOOD_INPUTS = {"restore": ("a.png", "b.png", "sub/a.png", "link.png", "hard.png"),
               "degrade": ("a.png", "b.png", "sub/a.png", "link.png", "hard.png"),
               "average": ("m.safetensors", "n.safetensors"), "train": ("data",)}


@given(command=st.sampled_from(["restore", "degrade", "average", "train"]), data=st.data(),
       out=st.sampled_from(OUTPUTS), overwrite=st.booleans())
def test_no_input_changes_and_every_exit_is_valid_outputs_or_one_line(sources, command, data, out, overwrite):
    good = GOOD_INPUTS[command]
    pick = st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(ENTRIES))  # mostly sensible
    inputs = data.draw(st.lists(pick, min_size=2 if command == "average" else 1,
                                max_size=1 if command == "train" else 2), label="inputs")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, sources)
        before = fingerprint(root)
        given_inputs = inputs_of(root, inputs) | inputs_of(root, ["m.safetensors"] if command == "restore" else [])
        code, err = run(argv_for(command, root, inputs, out, overwrite))
        event(f"{command} exit {code}")
        after = fingerprint(root)
        changed = {name for name in before if after.get(name) != before[name]}
        assert not changed & given_inputs, (changed, err)  # no input's bytes ever change
        if not overwrite:
            assert not changed, (changed, err)  # nothing that exists is replaced unasked
        if code == 0:
            check_outputs(command, root, inputs, out)
        else:
            one_line(code, err)
            assert after.keys() == before.keys()  # nothing written, nothing lost
