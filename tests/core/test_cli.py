"""The command line, driven in-process through lpip_core.cli.main on tiny models and fixture faces."""
import json
from dataclasses import replace

import pytest
import torch
from PIL import Image

import lpip_core
from lpip_core.cli import main
from lpip_core.files import read_image, write_image
from lpip_core.method.restoration import RECOMMENDED_END_PERCENT
from lpip_core.resize import resize
from tests.helpers import FIXTURES, aligned_faces, tiny_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return lpip_core.save_model(tiny_model(), tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture
def lq_faces(tmp_path):
    """Two 16 px LQ faces, as the x4 model takes them."""
    folder = tmp_path / "lq"
    for name in ("hopper", "obama"):
        write_image(resize(read_image(FIXTURES / f"{name}_aligned_128.png"), (16, 16)), folder / f"{name}.png")
    return sorted(folder.iterdir())


@pytest.fixture
def hq_folder(tmp_path):
    return aligned_faces(tmp_path / "hq", "hopper", "astronaut", "obama")


@pytest.fixture
def unreadable(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_text("this is not an image")
    return bad


def one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("lpip-diff: error: ") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def files_in(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- restore / degrade ---------------------------------------------------------------------------------

def test_restore_writes_one_upscaled_png_per_input(model_path, lq_faces, tmp_path):
    out = tmp_path / "out"
    assert main(["restore", *map(str, lq_faces), "-o", str(out), "--model", str(model_path), "--steps", "2",
                 "-q"]) == 0
    assert files_in(out) == ["hopper.png", "obama.png"]  # no temporary files left behind
    assert Image.open(out / "hopper.png").size == (64, 64)


def test_restore_scale_is_the_model_then_bicubic_and_refuses_other_scales(model_path, lq_faces, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["restore", str(lq_faces[0]), "-o", str(out), "--model", str(model_path), "--steps", "2",
                 "--scale", "8", "-q"]) == 0
    expected = resize(lpip_core.restore(lpip_core.load_model(model_path), read_image(lq_faces[0]), steps=2,
                                        end_percent=RECOMMENDED_END_PERCENT), (128, 128))
    written = read_image(out / "hopper.png")
    assert written.shape[-2:] == (128, 128) and (written - expected).abs().max() <= 0.5 / 255 + 1e-6
    for flags, needle in ((["--scale", "6"], "scale must be the model's scale 4 or a multiple of it"),
                          (["--scale", "0"], "got 0"), (["--scale", "8", "--upsampled"], "--scale must be left out")):
        assert main(["restore", str(lq_faces[0]), "-o", str(tmp_path / "bad"), "--model", str(model_path),
                     "-q", *flags]) == 2
        one_line_error(capsys, needle)
    assert not list((tmp_path / "bad").glob("*.png"))


def test_restore_grid_flags_share_the_apis_names_and_the_old_flags_still_work(model_path, lq_faces, tmp_path):
    """--patch-size, --max-patch-batch and --input-is are restore's patch_size, max_patch_batch and
    input_is; the old --patch, --max-batch and --upsampled (hidden) give the same files."""
    up = tmp_path / "up"
    write_image(resize(read_image(lq_faces[0]), (24, 24)), up / "face.png")
    model = lpip_core.load_model(model_path)
    new = ["--patch-size", "12", "--stride", "6", "--max-patch-batch", "5", "--input-is", "already_upscaled"]
    old = ["--patch", "12", "--stride", "6", "--max-batch", "5", "--upsampled"]
    for name, flags in (("new", new), ("old", old)):
        assert main(["restore", str(up / "face.png"), "-o", str(tmp_path / name), "--model", str(model_path),
                     "--steps", "2", "-q", *flags]) == 0
    expected = lpip_core.restore(model, read_image(up / "face.png"), steps=2, patch_size=12, stride=6,
                                 max_patch_batch=5, input_is="already_upscaled", end_percent=RECOMMENDED_END_PERCENT)
    written = read_image(tmp_path / "new" / "face.png")
    assert written.shape[-2:] == (24, 24) and (written - expected).abs().max() <= 0.5 / 255 + 1e-6
    assert torch.equal(written, read_image(tmp_path / "old" / "face.png"))


def test_restore_samples_writes_the_mean_of_samples_and_refuses_zero(model_path, lq_faces, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["restore", str(lq_faces[0]), "-o", str(out), "--model", str(model_path), "--steps", "2",
                 "--samples", "2", "--end-percent", "1", "-q"]) == 0
    expected = lpip_core.restore(lpip_core.load_model(model_path), read_image(lq_faces[0]), steps=2, samples=2)
    written = read_image(out / "hopper.png")
    assert (written - expected).abs().max() <= 0.5 / 255 + 1e-6  # the 8-bit PNG of the two-sample mean
    assert main(["restore", str(lq_faces[0]), "-o", str(tmp_path / "bad"), "--model", str(model_path),
                 "--samples", "0", "-q"]) == 2
    one_line_error(capsys, "samples must be an integer in 1..1000")
    assert not list((tmp_path / "bad").glob("*.png"))


def test_restore_takes_the_models_default_samples(lq_faces, tmp_path):
    """Without --samples a model that asks for 2 (lpip_x8_128) gets the mean of 2; --samples 1 overrides."""
    model = tiny_model()
    model.config = replace(model.config, samples=2)
    path = lpip_core.save_model(model, tmp_path / "two.safetensors")
    written = {}
    for flags, samples in (([], 2), (["--samples", "1"], 1)):
        out = tmp_path / f"out{samples}"
        assert main(["restore", str(lq_faces[0]), "-o", str(out), "--model", str(path), "--steps", "2", *flags,
                     "-q"]) == 0
        expected = lpip_core.restore(lpip_core.load_model(path), read_image(lq_faces[0]), steps=2, samples=samples,
                                     end_percent=RECOMMENDED_END_PERCENT)
        written[samples] = read_image(out / "hopper.png")
        assert (written[samples] - expected).abs().max() <= 0.5 / 255 + 1e-6
    assert (written[1] - written[2]).abs().max() > 2 / 255


def test_restore_ends_at_the_recommended_share_by_default_and_refuses_zero(model_path, lq_faces, tmp_path, capsys):
    """The CLI's default is RECOMMENDED_END_PERCENT (restore's own is the paper's 1.0); --end-percent 1
    is the paper."""
    model, lq = lpip_core.load_model(model_path), read_image(lq_faces[0])
    for flags, end in (([], RECOMMENDED_END_PERCENT), (["--end-percent", "1"], 1.0), (["--end-percent", "0.34"], 0.34)):
        out = tmp_path / f"out{end}"
        assert main(["restore", str(lq_faces[0]), "-o", str(out), "--model", str(model_path), "--steps", "3", "-q",
                     *flags]) == 0
        expected = lpip_core.restore(model, lq, steps=3, end_percent=end)
        assert (read_image(out / "hopper.png") - expected).abs().max() <= 0.5 / 255 + 1e-6
    ended, full = (lpip_core.restore(model, lq, steps=3, end_percent=end) for end in (0.34, 1.0))
    assert (ended - full).abs().max() > 2 / 255
    assert main(["restore", str(lq_faces[0]), "-o", str(tmp_path / "bad"), "--model", str(model_path),
                 "--end-percent", "0", "-q"]) == 2
    one_line_error(capsys, "end_percent must be a number in (0, 1]")
    assert not list((tmp_path / "bad").glob("*.png"))


def test_restore_with_an_unreadable_input_writes_nothing(model_path, lq_faces, unreadable, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["restore", str(lq_faces[0]), str(unreadable), "-o", str(out), "--model", str(model_path), "-q"])
    assert code == 2
    one_line_error(capsys, "broken.png")
    assert files_in(out) == []  # not even the good input's result: inputs are read before any work


def test_restore_refuses_a_pickle_and_a_missing_model(lq_faces, tmp_path, capsys):
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"\x80\x04junk")
    assert main(["restore", str(lq_faces[0]), "-o", str(tmp_path / "o"), "--model", str(pickle)]) == 2
    one_line_error(capsys, "pickle")
    missing = tmp_path / "no.safetensors"
    assert main(["restore", str(lq_faces[0]), "-o", str(tmp_path / "o"), "--model", str(missing)]) == 2
    one_line_error(capsys, "model not found")
    assert files_in(tmp_path / "o") == []


def test_an_output_that_fails_midway_is_never_left_half_written(model_path, lq_faces, tmp_path, monkeypatch,
                                                                 capsys):
    out = tmp_path / "out"

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")  # a partial file, then the disk "fills up"
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    assert main(["restore", str(lq_faces[0]), "-o", str(out), "--model", str(model_path), "--steps", "1", "-q"]) == 2
    one_line_error(capsys, f"cannot write {out / lq_faces[0].name}: No space left on device")
    assert files_in(out) == []


def test_degrade_random_and_manual(hq_folder, tmp_path, capsys):
    out = tmp_path / "lq"
    inputs = [str(p) for p in sorted(hq_folder.iterdir())]
    assert main(["degrade", *inputs, "-o", str(out), "--scale", "8", "--save-upsampled"]) == 0
    assert len(files_in(out)) == 6
    assert Image.open(out / "hopper_aligned_128_lq.png").size == (16, 16)
    assert Image.open(out / "hopper_aligned_128_lq_up.png").size == (128, 128)
    manual = tmp_path / "manual"
    assert main(["degrade", inputs[0], "-o", str(manual), "--blur", "1.5", "--downscale", "4", "--noise", "5",
                 "--jpeg", "70"]) == 0
    assert Image.open(manual / "astronaut_aligned_128_lq.png").size == (32, 32)
    capsys.readouterr()
    assert main(["degrade", inputs[0], "-o", str(manual), "--jpeg", "0"]) == 2
    one_line_error(capsys, "--jpeg must be", "1", "100", "got 0")  # DegradeParams' range, in the option's name


def test_degrade_with_an_unreadable_input_writes_nothing(hq_folder, unreadable, tmp_path, capsys):
    out = tmp_path / "lq"
    assert main(["degrade", str(next(hq_folder.iterdir())), str(unreadable), "-o", str(out)]) == 2
    one_line_error(capsys, "broken.png")
    assert files_in(out) == []


# --- train -----------------------------------------------------------------------------------------------

def test_train_writes_the_model_log_and_plot(hq_folder, tmp_path, capsys):
    out = tmp_path / "run" / "m.safetensors"
    holdout = tmp_path / "holdout.txt"
    holdout.write_text("obama_aligned_128.png\n")
    args = ["train", "--data", str(hq_folder), "--out", str(out), "--scale", "4", "--hq-size", "32", "--patch", "8",
            "--preset", "tiny", "--steps", "4", "--holdout", str(holdout), "--faces-per-step", "2",
            "--patches-per-face", "2", "--lr", "1e-3", "--warmup-steps", "2", "--log-every", "2", "--threads", "1",
            "--device", "cpu", "--seed", "3", "--checkpoint-minutes", "5", "-q"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    config = lpip_core.read_config(out)
    assert (config.scale, config.hq_size, config.patch, config.stride) == (4, 32, 8, 4)
    assert config.training["steps"] == 4 and config.training["faces"] == 2 and config.training["seed"] == 3
    assert files_in(tmp_path / "run") == ["loss.csv", "loss.png", "m.safetensors", "state.safetensors"]
    # --resume with a larger budget carries on from step 4
    assert main([*args[:args.index("--steps")], "--steps", "6", *args[args.index("--steps") + 2:], "--resume"]) == 0
    assert lpip_core.read_config(out).training["steps"] == 6
    rows = (tmp_path / "run" / "m-train" / "loss.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4", "6"]


def test_train_default_patch_is_a_quarter_of_the_face(hq_folder, tmp_path):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(hq_folder), "--out", str(out), "--hq-size", "32", "--preset", "tiny",
                 "--steps", "1", "--threads", "1", "-q"]) == 0
    assert lpip_core.read_config(out).patch == 8


@pytest.mark.parametrize("extra, needle", [
    ([], "give a budget: --minutes N"),
    (["--steps", "2", "--lr", "-1"], "lr must be"),
    (["--steps", "2", "--photo-share", "2"], "photo_share must be"),
    (["--steps", "2", "--scale", "3"], "divisible by scale 3"),
    (["--steps", "2", "--holdout", "/nonexistent/holdout.txt"], "--holdout"),
    (["--steps", "2", "--device", "nonsense"], "--device nonsense"),
])
def test_train_bad_settings_exit_2_with_one_line(hq_folder, tmp_path, capsys, extra, needle):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(hq_folder), "--out", str(out), "--hq-size", "32", "--preset", "tiny",
                 "-q", *extra]) == 2
    one_line_error(capsys, needle)
    assert not out.exists() and not (tmp_path / "m-train").exists()


def test_train_refuses_a_missing_data_folder_and_a_pickle_out(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "m.safetensors"),
                 "--steps", "1"]) == 2
    one_line_error(capsys, "folder not found")
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--steps", "1"]) == 2
    one_line_error(capsys, ".safetensors")


# --- evaluate ------------------------------------------------------------------------------------------

def test_evaluate_writes_the_tables(model_path, hq_folder, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(model_path), "--data", str(hq_folder), "--out", str(out), "--scale", "4",
            "--steps", "1", "--faces", "2", "--table2", "0.5,2", "--grid-faces", "2", "--threads", "1",
            "--device", "cpu", "--protocol", "clean,unseen"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == str(out / "protocols.md") and "| `clean` |" in printed and "| `unseen` |" in printed
    assert files_in(out) == ["grid.png", "per_face.csv", "protocols.md", "results.json", "table1.md", "table2.md",
                             "table3.md"]
    results = json.loads((out / "results.json").read_text())
    assert results["command"].startswith("lpip-diff evaluate --model ") and "--faces 2" in results["command"]
    assert results["faces"]["count"] == 2 and len(results["tables"]["table2"]) == 2
    # clean: 5 + 2 Table II patches (8, 32); unseen: Table I's 5
    assert len((out / "per_face.csv").read_text().splitlines()) == 1 + 2 * 7 + 2 * 5


def test_evaluate_bad_input_exits_2(model_path, hq_folder, tmp_path, capsys):
    out = tmp_path / "eval"
    base = ["evaluate", "--model", str(model_path), "--data", str(hq_folder), "--out", str(out), "-q"]
    assert main([*base, "--scale", "6"]) == 2
    one_line_error(capsys, "scale must be the model's scale 4 or a multiple of it", "got 6")
    assert main([*base, "--table2", "half"]) == 2
    one_line_error(capsys, "--table2")
    assert main([*base, "--holdout", str(tmp_path / "none.txt")]) == 2
    one_line_error(capsys, "--holdout")
    assert main([*base, "--protocol", "blurry"]) == 2
    one_line_error(capsys, "protocol must be 'all' or one of clean")
    assert main([*base, "--denoise-sweep", "0.5,x"]) == 2
    one_line_error(capsys, "--denoise-sweep")
    assert main([*base, "--denoise", "0"]) == 2
    one_line_error(capsys, "denoise must be a number in (0, 1]")
    assert not out.exists()
