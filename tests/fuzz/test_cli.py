"""The command line as a careless user drives it: every bad input is one line and exit status 2,
nothing is overwritten or lost, and whatever exits 0 wrote the right images."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import lpip_core
from lpip_core.cli import main
from lpip_core.files import read_image, write_image
from lpip_core.resize import resize
from tests.helpers import FIXTURES, tiny_model

from .hostile import png_bomb

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return lpip_core.save_model(tiny_model(), tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def face16(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lq") / "face.png"
    return write_image(resize(read_image(FIXTURES / "hopper_aligned_128.png"), (16, 16)), path)


def run(argv) -> tuple[int, str]:
    """main(argv) in-process: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            code = e.code
    return code, err.getvalue()


def one_line(code, err, *needles) -> None:
    lines = [line for line in err.splitlines() if not line.startswith("lpip-diff: warning:")]
    assert code == 2 and len(lines) == 1 and "error: " in lines[0] and "Traceback" not in err, (code, err)
    for needle in needles:
        assert needle in lines[0], lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ nothing lost

def test_inputs_with_the_same_name_are_refused_up_front(model_path, face16, tmp_path):
    for sub, name in (("a", "x.png"), ("b", "x.png"), (".", "x.jpg")):
        (tmp_path / sub).mkdir(exist_ok=True)
        Image.open(face16).save(tmp_path / sub / name)
    code, err = run(["restore", tmp_path / "a/x.png", tmp_path / "b/x.png", tmp_path / "x.jpg", "-o",
                     tmp_path / "out", "--model", model_path, "--steps", 1, "-q"])
    one_line(code, err, "a/x.png and", "b/x.png would both be written to", "out/x.png")
    assert not (tmp_path / "out").exists() or tree(tmp_path / "out") == {}


def test_output_folder_equal_to_the_input_folder_never_replaces_an_input(model_path, face16, tmp_path):
    source = tmp_path / "face.png"
    source.write_bytes(face16.read_bytes())
    before = tree(tmp_path)
    one_line(*run(["restore", source, "-o", tmp_path, "--model", model_path, "--steps", 1, "-q"]),
             "would replace the input")
    hq = tmp_path / "hq.png"
    write_image(read_image(FIXTURES / "hopper_aligned_128.png"), hq)
    (tmp_path / "hq_lq.png").write_bytes(face16.read_bytes())  # an input named like degrade's output
    before = tree(tmp_path)
    one_line(*run(["degrade", hq, tmp_path / "hq_lq.png", "-o", tmp_path]), "would replace the input")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("out, needle", [
    ("file", "exists and is not a folder"),
    ("/proc/lpip-diff-no-such/out", "cannot write there"),
])
def test_unwritable_output_folders_are_one_line(model_path, face16, tmp_path, out, needle):
    if out == "file":
        out = tmp_path / "taken.txt"
        out.write_text("mine")
    one_line(*run(["restore", face16, "-o", out, "--model", model_path, "--steps", 1, "-q"]), needle)
    one_line(*run(["degrade", face16, "-o", out]), needle)


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(model_path, face16, tmp_path, monkeypatch):
    save = Image.Image.save

    def full(self, fp, *args, **kwargs):
        if isinstance(fp, io.BytesIO):  # the degradation's in-memory JPEG
            return save(self, fp, *args, **kwargs)
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    one_line(*run(["degrade", face16, "-o", tmp_path / "o"]), "cannot write", "No space left on device")
    assert tree(tmp_path / "o") == {}


def test_average_never_replaces_its_input(model_path, tmp_path):
    a, b = (tmp_path / n for n in ("a.safetensors", "b.safetensors"))
    for p in (a, b):
        p.write_bytes(model_path.read_bytes())
    os.link(a, tmp_path / "a-link.safetensors")
    before = tree(tmp_path)
    for out in (a, tmp_path / "a-link.safetensors"):  # by name, or by another name of the same file
        for flags in ([], ["--overwrite"]):
            one_line(*run(["average", a, b, "-o", out, *flags]), f"-o {out}: writing it would replace the input")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", ["restore", "degrade", "average"])
def test_an_existing_output_is_never_replaced_unasked(model_path, face16, tmp_path, command):
    out = tmp_path / "o"
    out.mkdir()
    if command == "average":
        argv, target = ["average", model_path, model_path, "-o", out / "m.safetensors"], out / "m.safetensors"
    else:
        argv = [command, face16, "-o", out]
        argv += ["--model", model_path, "--steps", 1, "-q"] if command == "restore" else []
        target = out / ("face.png" if command == "restore" else "face_lq.png")
    target.write_bytes(b"an earlier result")
    one_line(*run(argv), f"-o {target}: exists; pass --overwrite to replace it")
    assert target.read_bytes() == b"an earlier result"
    assert run(argv + ["--overwrite"])[0] == 0 and target.read_bytes() != b"an earlier result"


def test_a_folder_where_an_output_file_goes_is_refused_before_any_work(model_path, face16, tmp_path, monkeypatch):
    from lpip_core.method import restoration

    (tmp_path / "o" / "face.png").mkdir(parents=True)
    (tmp_path / "m.safetensors").mkdir()
    monkeypatch.setattr(restoration, "restore", lambda *a, **k: pytest.fail("restored before the check"))
    for flags in ([], ["--overwrite"]):
        one_line(*run(["restore", face16, "-o", tmp_path / "o", "--model", model_path, "-q", *flags]),
                 "face.png: is a folder; give the path of a file to write")
        one_line(*run(["average", model_path, model_path, "-o", tmp_path / "m.safetensors", *flags]), "is a folder")


def test_a_name_too_long_for_the_file_system_is_refused_and_the_longest_that_fits_is_written(face16, tmp_path):
    """Atomic writes use a temporary name beside the target: it must not be longer than the target."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    longest = tmp_path / ("f" * (limit - len("_lq.png")) + ".png")  # its _lq.png output is exactly the limit
    longest.write_bytes(face16.read_bytes())
    assert run(["degrade", longest, "-o", tmp_path / "o"])[0] == 0
    assert [len(p.name) for p in (tmp_path / "o").iterdir()] == [limit]
    too_long = tmp_path / ("g" * (limit - len("_lq.png") + 1) + ".png")
    too_long.write_bytes(face16.read_bytes())
    one_line(*run(["degrade", too_long, "-o", tmp_path / "p"]),
             f"bytes long; this file system takes at most {limit}")
    one_line(*run(["average", face16, face16, "-o", tmp_path / ("m" * limit + ".safetensors")]), "bytes long")


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_special_files_are_refused_as_inputs_without_being_opened(model_path, face16, tmp_path, kind):
    """Opening a FIFO blocks until someone writes to it: these inputs must be refused from a stat alone."""
    special = {"device": Path("/dev/zero"), "folder": tmp_path / "folder.png"}.get(kind, tmp_path / "pipe.png")
    if kind == "fifo":
        os.mkfifo(special)
    elif kind == "folder":
        special.mkdir()
    words = {"fifo": "is a FIFO (named pipe), not a regular file", "device": "is a device, not a regular file",
             "folder": "is a folder, not a regular file"}[kind]
    one_line(*run(["restore", face16, special, "-o", tmp_path / "o", "--model", model_path, "-q"]), words)
    one_line(*run(["degrade", special, "-o", tmp_path / "o"]), words)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------ one line each

@pytest.mark.parametrize("options, needles", [
    (["--scale", "0"], ["--scale must be a number in [1, 64]"]),
    (["--scale", "-2"], ["--scale must be a number in [1, 64]"]),
    # the manual knobs are checked by DegradeParams: its ranges, in the option's name
    (["--downscale", "0"], ["--downscale must be", "0.01", "64", "got 0.0"]),
    (["--downscale", "nan"], ["--downscale must be", "0.01", "64", "got nan"]),
    (["--blur", "-1"], ["--blur must be", "0", "50", "got -1.0"]),
    (["--noise", "1e9"], ["--noise must be", "0", "255", "got 1000000000.0"]),
    (["--jpeg", "0"], ["--jpeg must be", "1", "100", "got 0"]),
    (["--resample", "nearest"], ["--resample", "invalid choice"]),
    (["--seed", str(2 ** 64)], ["--seed must be an integer in 0..2**64 - 1"]),
    (["--seed", "-1"], ["--seed must be"]),
    (["--scale", "four"], ["invalid int value"]),
])
def test_degrade_options_reject_nonsense(face16, tmp_path, options, needles):
    one_line(*run(["degrade", face16, "-o", tmp_path / "o", *options]), *needles)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("options, needle", [
    (["--seed", str(2 ** 64)], "seed must be an integer in 0..2**64 - 1"),
    (["--steps", "0"], "steps must be an integer in 1..1000"),
    (["--steps", "many"], "invalid int value: 'many'"),
    (["--patch-size", "7"], "patch_size must be a multiple of 2"),
    (["--patch", "7"], "patch_size must be a multiple of 2"),  # the old flag, still accepted
    (["--max-patch-batch", "0"], "max_patch_batch must be an integer in >= 1"),
    (["--input-is", "big"], "invalid choice: 'big'"),
    (["--fusion", "max"], "invalid choice"),
    (["--eta", "inf"], "eta must be a number in [0, 1]"),
])
def test_restore_options_reject_nonsense(model_path, face16, tmp_path, options, needle):
    one_line(*run(["restore", face16, "-o", tmp_path / "o", "--model", model_path, "-q", *options]), needle)


BIG = str(10 ** 400)  # a number inside every open-ended range, beyond a float's


@pytest.mark.parametrize("command, options, needle", [
    ("restore", ["--steps", BIG], "steps must be an integer in 1..10000"),
    ("restore", ["--samples", BIG], "samples must be an integer in 1..1000"),
    ("restore", ["--patch-size", BIG], "patch_size must be an integer in 2..8192"),
    ("restore", ["--scale", BIG], "at most 8192 px a side"),
    ("degrade", ["--scale", BIG], "--scale must be a number in [1, 64]"),
    ("degrade", ["--jpeg", BIG], "--jpeg must be"),  # and its range: test_degrade_options_reject_nonsense
    ("evaluate", ["--table2", "1e300"], "patch_factors item must be a number in (0, 512.0]"),
    ("evaluate", ["--threads", BIG], "threads must be an integer in 1..1024"),
    ("train", ["--steps", BIG], "steps must be an integer in 1..9223372036854775807"),
    ("train", ["--steps", "1", "--warmup-steps", BIG], "warmup_steps must be an integer in 0..9223372036854775807"),
    ("train", ["--steps", "1", "--log-every", BIG], "log_every must be an integer in 1..9223372036854775807"),
    ("train", ["--steps", "1", "--hq-size", BIG], "hq_size must be an integer in 8..4096"),
    ("train", ["--steps", "1", "--minutes", BIG], "minutes must be a number in (0, inf), got inf"),
    ("train", ["--steps", "1", "--min-face-size", BIG], "no usable face images"),
])
def test_numbers_beyond_a_float_are_one_short_line_naming_the_option(model_path, face16, tmp_path, command, options,
                                                                    needle):
    """Issue 31: values inside an open-ended range (10**400) overflowed into tracebacks."""
    data = tmp_path / "data"
    data.mkdir()
    write_image(read_image(FIXTURES / "hopper_aligned_128.png"), data / "face.png")
    argv = {"restore": ["restore", face16, "-o", tmp_path / "o", "--model", model_path],
            "degrade": ["degrade", face16, "-o", tmp_path / "o"],
            "evaluate": ["evaluate", "--data", data, "-o", tmp_path / "o", "--model", model_path, "--steps", 1],
            "train": ["train", "--data", data, "-o", tmp_path / "o" / "m.safetensors", "--preset", "tiny",
                      "--workers", 0]}[command]
    code, err = run([*argv, "-q" if command != "degrade" else "--save-upsampled", *options])
    one_line(code, err, needle)
    assert len(err) < 400
    assert not (tmp_path / "o").exists() or tree(tmp_path / "o") == {}


def test_numbers_beyond_a_float_are_value_errors_in_the_api():
    from lpip_core.checks import check_float, finite
    from lpip_core.data.degrade import DegradeParams
    from lpip_core.training.train import TrainConfig

    big = 10 ** 400
    assert not finite(big) and not finite(-big) and finite(2 ** 1000) and not finite(float("nan"))
    with pytest.raises(ValueError, match=r"eta must be a number in \[0, 1\], got 1000"):
        check_float("eta", big, 0, 1)
    with pytest.raises(ValueError, match=r"jpeg_quality must be an integer in 1..100"):
        DegradeParams(jpeg_quality=big)
    with pytest.raises(ValueError, match=r"grad_clip must be a number in \(0, inf\), got 1000"):
        TrainConfig(data="d", out="m.safetensors", steps=1, grad_clip=big)


def test_the_memory_guard_is_one_line(model_path, tmp_path, monkeypatch):
    from lpip_core.method import memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 2 ** 30)
    big = write_image(torch.rand(1, 3, 1024, 1024), tmp_path / "big.png")
    one_line(*run(["restore", big, "-o", tmp_path / "o", "--model", model_path, "-q"]),
             "not enough memory: restoring 1 image(s) to 4096x4096 px needs about", "a smaller image")
    assert tree(tmp_path / "o") == {}


def test_a_decompression_bomb_is_one_line(model_path, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    one_line(*run(["restore", bomb, "-o", tmp_path / "o", "--model", model_path]), "too large to read safely")
    one_line(*run(["degrade", bomb, "-o", tmp_path / "o"]), "too large to read safely")


def test_a_photo_warns_that_it_is_not_a_face_crop(model_path, tmp_path):
    photo = write_image(read_image(FIXTURES / "hopper_aligned_128.png"), tmp_path / "photo.png")
    code, err = run(["restore", photo, "-o", tmp_path / "o", "--model", model_path, "--steps", 1, "-q",
                     "--max-batch", 64])  # the old name of --max-patch-batch, still accepted
    assert code == 0 and "warning: photo.png is 128x128 px, but the model restores 16 px faces" in err


def test_a_16_bit_input_is_restored_like_its_8_bit_copy(model_path, face16, tmp_path):
    """Pillow alone reads a 16-bit grey PNG as almost all white; the CLI must see the face."""
    grey = np.asarray(Image.open(face16).convert("L"), dtype=np.float64) / 255
    Image.fromarray((grey * 65535).round().astype(np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray((grey * 255).round().astype(np.uint8)).save(tmp_path / "g8.png")
    for name in ("g16", "g8"):
        assert run(["restore", tmp_path / f"{name}.png", "-o", tmp_path / name, "--model", model_path, "--steps", 1,
                    "-q"])[0] == 0
    a, b = (np.asarray(Image.open(tmp_path / n / f"{n}.png"), dtype=float) for n in ("g16", "g8"))
    assert np.abs(a - b).max() <= 2 and a.mean() < 200


def test_tools_comfyui_ensure_prints_the_folder(tmp_path):
    (tmp_path / "main.py").write_text("")  # an existing ComfyUI: nothing is downloaded
    env = {**os.environ, "LPIP_COMFYUI_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "tools.comfyui", "ensure"], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == str(tmp_path), out.stderr


# ------------------------------------------------------------------------------ property-based

numbers = st.one_of(st.integers(-3, 300), st.sampled_from(["0", "-0", "nan", "inf", "1e9", "2.5", "abc", ""]),
                    st.just(str(2 ** 64)))
degrade_options = st.dictionaries(st.sampled_from(["--scale", "--blur", "--downscale", "--noise", "--jpeg", "--seed"]),
                                  numbers, max_size=4)
restore_options = st.dictionaries(st.sampled_from(["--steps", "--eta", "--patch-size", "--stride", "--max-patch-batch", "--seed",
                                                   "--fusion"]), numbers, max_size=3)


@given(options=degrade_options, upsampled=st.booleans())
def test_degrade_with_any_options_writes_correct_images_or_one_line(tmp_path_factory, face16, options, upsampled):
    out = tmp_path_factory.mktemp("deg") / "o"
    hq = FIXTURES / "hopper_aligned_128.png"
    argv = ["degrade", hq, "-o", out, *[str(x) for kv in options.items() for x in kv]]
    code, err = run(argv + (["--save-upsampled"] if upsampled else []))
    if code != 0:
        one_line(code, err)
        assert not out.exists() or tree(out) == {}
        return
    lq = read_image(out / "hopper_aligned_128_lq.png")
    assert lq.shape[:2] == (1, 3) and 1 <= lq.shape[-1] <= 128
    if upsampled:
        assert read_image(out / "hopper_aligned_128_lq_up.png").shape == (1, 3, 128, 128)


@given(options=restore_options)
def test_restore_with_any_options_writes_a_correct_image_or_one_line(tmp_path_factory, model_path, face16, options):
    out = tmp_path_factory.mktemp("res") / "o"
    options.setdefault("--steps", 1)
    if isinstance(options["--steps"], int) and options["--steps"] > 3:
        options["--steps"] = 3  # keep each example short
    code, err = run(["restore", face16, "-o", out, "--model", model_path, "-q",
                     *[str(x) for kv in options.items() for x in kv]])
    if code != 0:
        one_line(code, err)
        assert not out.exists() or tree(out) == {}
        return
    result = read_image(out / "face.png")
    assert result.shape == (1, 3, 64, 64)


def test_a_tiny_image_is_refused_for_its_size_not_for_an_option_never_given(tmp_path):
    for side in (1, 3):
        write_image(torch.rand(1, 3, side, side), tmp_path / f"tiny{side}.png")
        one_line(*run(["degrade", tmp_path / f"tiny{side}.png", "-o", tmp_path / "o"]),
                 f"--scale 4: tiny{side}.png is {side}x{side} px, smaller than the scale")
    write_image(torch.rand(1, 3, 5, 5), tmp_path / "five.png")  # GFPGAN's ranges scaled to 5 px: below 0.01
    for seed in range(8):
        assert run(["degrade", tmp_path / "five.png", "-o", tmp_path / f"s{seed}", "--seed", seed])[0] == 0


def test_options_that_scale_memory_are_bounded_before_any_work(model_path, face16, tmp_path, monkeypatch):
    from lpip_core.method import restoration

    monkeypatch.setattr(restoration, "restore", lambda *a, **k: pytest.fail("restored before the check"))
    one_line(*run(["restore", face16, "-o", tmp_path / "o", "--model", model_path, "--scale", 4000, "-q"]),
             "--scale 4000: face.png (16x16 px) would become 64000x64000 px; at most 8192 px a side")
    hq = FIXTURES / "hopper_aligned_128.png"
    one_line(*run(["degrade", hq, "-o", tmp_path / "o", "--downscale", "0.01"]),
             "--downscale 0.01: hopper_aligned_128.png (128x128 px) would become 12800x12800 px")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("device", ["meta", "privateuseone"])
def test_a_device_that_cannot_compute_is_refused_before_any_work(model_path, face16, tmp_path, device):
    one_line(*run(["restore", face16, "-o", tmp_path / "o", "--model", model_path, "--device", device, "-q"]),
             f"--device {device} is not available here")
    one_line(*run(["train", "--data", tmp_path, "-o", tmp_path / "m.safetensors", "--steps", 1, "--device", device]),
             f"--device {device}")
    assert not (tmp_path / "o").exists()


def test_numpy_scalars_are_numbers_and_shown_as_numbers(model):
    from lpip_core.checks import check_float, check_int, shown
    from lpip_core.data.degrade import DegradeParams

    assert check_float("eta", np.float32(0.5), 0, 1) == 0.5 and check_int("steps", np.int64(3), 1, 9) == 3
    assert shown(np.float32(2.5)) == "2.5" and shown(np.int64(7)) == "7"
    with pytest.raises(ValueError, match=r"downscale must be a number in \[0.01, 64\], got 100.0$"):
        DegradeParams(downscale=np.float64(100))
    out = lpip_core.restore(model, torch.rand(1, 3, 16, 16), steps=np.int64(1), eta=np.float32(0), seed=np.uint64(1))
    assert out.shape == (1, 3, 64, 64)
