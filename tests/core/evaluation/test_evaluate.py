"""lpip_core.evaluation.evaluate: the paper's Tables I-III on committed fixture faces with an untrained tiny model.

The numbers of an untrained model mean nothing; these tests check that every output is written,
complete and consistent with the metrics computed independently.
"""
import csv
import json
import math
import random
import shutil
import statistics
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import lpip_core
from lpip_core.evaluation.evaluate import evaluate, plan_methods
from lpip_core.evaluation.protocols import make_lq
from lpip_core.files import read_image
from lpip_core.resize import resize
from tests.helpers import FIXTURES, aligned_faces, tiny_model

FACES = ("astronaut", "hopper", "obama")  # sorted: the order evaluate() sees them in
METHODS = {"bicubic", "whole-image", "lpip-mean", "lpip-median", "lpip-gaussian", "lpip-mean-p6-s3",
           "lpip-mean-p24-s12"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    data = aligned_faces(root / "faces", *FACES)
    # patch 12 on the tiny UNet (down-sampling 2): Table II's m/4 = 3 cannot run and must say so.
    model_path = lpip_core.save_model(tiny_model(scale=4, patch=12), root / "tiny.safetensors")
    return root, data, model_path


@pytest.fixture(scope="module")
def run(setup):
    root, data, model_path = setup
    out = root / "out"
    results = evaluate(model_path, data, out_dir=out, steps=2, seed=0, progress=False)
    return out, results


def read_rows(out):
    with open(out / "per_face.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_output_is_written(run):
    out, results = run
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "per_face.csv", "protocols.md", "results.json",
                                                      "table1.md", "table2.md", "table3.md"]  # no temporary files
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))


def test_plan_runs_each_setting_once():
    plan = plan_methods(16, 8, 4)
    assert [m.key for m in plan.methods] == ["bicubic", "whole-image", "lpip-mean", "lpip-median", "lpip-gaussian",
                                             "lpip-mean-p4-s2", "lpip-mean-p8-s4", "lpip-mean-p32-s16"]
    assert [r["method"] for r in plan.table2] == ["lpip-mean-p4-s2", "lpip-mean-p8-s4", "lpip-mean",
                                                  "lpip-mean-p32-s16"]
    assert plan.table3 == ["lpip-mean", "lpip-median"] == plan.table1[2:4]
    assert plan.sweep == []
    assert plan.tables == {"table1": plan.table1, "table2": plan.table2, "table3": plan.table3, "sweep": []}
    assert all(r["method"] for r in plan_methods(32, 16, 8).table2)  # the x8 UNet: patch 8 runs, and every other
    table2 = plan_methods(12, 6, 8).table2
    assert [r["method"] is None for r in table2] == [True, True, True, False]
    assert "not a multiple of 8" in table2[0]["note"]
    swept = plan_methods(16, 8, 4, (), denoise_sweep=(0.5, 1.0), fusions=("mean",))
    assert swept.sweep == ["lpip-mean-d0.5", "lpip-mean"]  # denoise 1 is Table I's mean row, run once
    assert [m.key for m in swept.methods] == ["bicubic", "whole-image", "lpip-mean", "lpip-mean-d0.5"]


def test_csv_has_one_row_per_face_and_method(run):
    out, results = run
    rows = read_rows(out)
    assert len(rows) == len(FACES) * len(METHODS)
    assert {(r["face"], r["method"]) for r in rows} == {(f"{f}_aligned_128.png", m) for f in FACES for m in METHODS}
    for r in rows:
        assert 0 < float(r["psnr"]) < 100 and -1 <= float(r["ssim"]) <= 1 and -1 <= float(r["id_sim"]) <= 1
        assert float(r["seconds"]) >= 0 and r["top1"] in ("0", "1") and r["protocol"] == "gfpgan512"
    # results.json's means are the CSV's means
    for key, summary in results["protocols"]["gfpgan512"]["methods"].items():
        mine = [float(r["psnr"]) for r in rows if r["method"] == key]
        assert summary["psnr"]["mean"] == pytest.approx(sum(mine) / len(mine), abs=1e-3)
    # the methods really differ
    by = {(r["face"], r["method"]): float(r["psnr"]) for r in rows}
    assert by[("hopper_aligned_128.png", "whole-image")] != by[("hopper_aligned_128.png", "lpip-mean")]


def test_bicubic_scores_match_an_independent_computation(run):
    out, _ = run
    hq = torch.cat([(resize(read_image(FIXTURES / f"{f}_aligned_128.png"), (64, 64)) * 255).round() / 255
                    for f in FACES])
    params = [lpip_core.random_params(random.Random(b), 64, 16, variant="gfpgan512") for b in range(3)]
    lq, _ = lpip_core.degrade(hq, params, seed=0, lq_size=(16, 16))  # face b uses seed 0 + b
    up = (resize((lq * 255).round() / 255, (64, 64)) * 255).round() / 255
    expected_psnr, expected_ssim = lpip_core.psnr(up, hq), lpip_core.ssim(up, hq)
    rows = {r["face"]: r for r in read_rows(out) if r["method"] == "bicubic"}
    for i, f in enumerate(FACES):
        assert float(rows[f"{f}_aligned_128.png"]["psnr"]) == pytest.approx(expected_psnr[i].item(), abs=1e-3)
        assert float(rows[f"{f}_aligned_128.png"]["ssim"]) == pytest.approx(expected_ssim[i].item(), abs=1e-4)


def test_a_multiple_of_the_model_scale_is_judged_as_the_model_then_bicubic(setup, tmp_path):
    """scale 8 with an x4 model: the faces are judged at 128 px, bicubic goes there from the LQ face in
    one step and LPIP-Diff is the x4 restoration resized x2."""
    root, data, model_path = setup
    results = evaluate(model_path, data, out_dir=tmp_path / "c", scale=8, protocols=["clean"], steps=2,
                       patch_factors=(), fusions=("mean",), grid_faces=0, progress=False)
    assert (results["settings"]["scale"], results["model"]["config"]["scale"], results["settings"]["hq_size"]) == \
        (8, 4, 128)
    assert "the x4 model's, then bicubic x2" in (tmp_path / "c" / "protocols.md").read_text()
    hq = torch.cat([read_image(FIXTURES / f"{f}_aligned_128.png") for f in FACES])
    lq = make_lq("clean", hq, 16)
    model = lpip_core.load_model(model_path)
    rows = {(r["face"], r["method"]): r for r in read_rows(tmp_path / "c")}
    for i, f in enumerate(FACES):
        restored = resize(lpip_core.restore(model, lq[i:i + 1], steps=2, seed=i, end_percent=results["settings"][
            "end_percent"]), (128, 128))
        for method, out in (("bicubic", resize(lq[i:i + 1], (128, 128))), ("lpip-mean", restored)):
            out = (out * 255).round() / 255
            assert float(rows[(f"{f}_aligned_128.png", method)]["psnr"]) == pytest.approx(
                lpip_core.psnr(out, hq[i:i + 1]).item(), abs=1e-3)


def table_rows(path):
    return [line for line in path.read_text().splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_tables_hold_the_paper_rows(run):
    out, results = run
    t1 = table_rows(out / "table1.md")
    assert [r.split(" | ")[0] for r in t1] == [
        "| Bicubic upsampling", "| Whole-image diffusion (SR3 baseline, same model)",
        "| LPIP-Diff, mean fusion (patch 12, stride 6)", "| LPIP-Diff, median fusion (patch 12, stride 6)",
        "| LPIP-Diff, gaussian fusion (patch 12, stride 6)"]
    methods = results["protocols"]["gfpgan512"]["methods"]
    psnr_bicubic = methods["bicubic"]["psnr"]
    assert f"{psnr_bicubic['mean']:.2f} ± {psnr_bicubic['std']:.2f}" in t1[0]
    t2 = table_rows(out / "table2.md")
    assert [r.split(" | ")[0] for r in t2] == ["| 3 (m × 0.25)", "| 6 (m × 0.5)", "| 12 (m × 1)", "| 24 (m × 2)"]
    assert "not run: patch 3 is not a multiple of 2" in t2[0]
    mean = methods["lpip-mean"]["ssim"]
    assert f"{mean['mean']:.4f}" in t2[2] and f"{mean['mean']:.4f}" in t1[2]  # Table I's row, reused
    t3 = table_rows(out / "table3.md")
    assert [r.split(" | ")[0] for r in t3] == ["| mean (patch 12, stride 6)", "| median (patch 12, stride 6)"]
    for name in ("table1.md", "table2.md", "table3.md"):
        text = (out / name).read_text()
        assert "3 faces" in text and "2 DDIM steps" in text and "ID Sim (dlib)" in text and "Command: `" in text


def test_results_json_records_command_machine_and_faces(run):
    out, _ = run
    results = json.loads((out / "results.json").read_text())
    assert results["command"].startswith("lpip_core.evaluation.evaluate.evaluate(")
    assert results["machine"]["cpu_count"] >= 1 and results["machine"]["torch"] == torch.__version__
    assert results["machine"]["date"][:2] == "20" and results["wall_seconds"] > 0
    assert results["faces"]["names"] == [f"{f}_aligned_128.png" for f in FACES]
    assert results["settings"]["steps"] == 2 and results["model"]["config"]["patch"] == 12
    assert set(results["protocols"]["gfpgan512"]["methods"]) == METHODS


def test_grid_shows_the_five_columns(run):
    out, _ = run
    grid = Image.open(out / "grid.png")
    cell, gap, header = 128, 2, 18  # 64 px faces are shown at 128 px
    assert grid.size == (5 * cell + 4 * gap, header + 3 * cell + 2 * gap)
    # the last column is the ground truth (nearest-enlarged), row 2 is hopper
    truth = resize(read_image(FIXTURES / "hopper_aligned_128.png"), (64, 64))
    tile = grid.crop((4 * (cell + gap), header + cell + gap, 4 * (cell + gap) + cell, header + 2 * cell + gap))
    got = torch.from_numpy(np.array(tile.resize((64, 64), Image.Resampling.NEAREST))).float()
    assert (got.permute(2, 0, 1)[None] / 255 - truth).abs().max() < 1.5 / 255


def test_holdout_selects_faces_and_bad_arguments_are_named(setup, tmp_path):
    root, data, model_path = setup
    holdout = tmp_path / "holdout.txt"
    holdout.write_text("# two of the three\nobama_aligned_128.png\nhopper_aligned_128.png\n")
    results = evaluate(model_path, data, out_dir=tmp_path / "o", holdout=holdout, steps=1, patch_factors=(),
                       grid_faces=1, progress=False)
    assert results["faces"]["names"] == ["hopper_aligned_128.png", "obama_aligned_128.png"]
    assert len(read_rows(tmp_path / "o")) == 2 * 5
    assert "not run" in (tmp_path / "o" / "table2.md").read_text()
    holdout.write_text("nobody.png\n")
    with pytest.raises(ValueError, match="not in"):
        evaluate(model_path, data, out_dir=tmp_path / "x", holdout=holdout, progress=False)
    for scale in (6, 2, 8.0):
        with pytest.raises(ValueError, match="scale must be the model's scale 4 or a multiple of it"):
            evaluate(model_path, data, out_dir=tmp_path / "x", scale=scale, progress=False)
    with pytest.raises(ValueError, match="steps"):
        evaluate(model_path, data, out_dir=tmp_path / "x", steps=0, progress=False)
    assert not (tmp_path / "x").exists()


def test_protocols_sweep_and_retrieval(setup, tmp_path):
    """Two protocols and a denoise sweep: one Table I section and one protocols.md row per protocol,
    the sweep's rows and plot, and retrieval top-1 consistent with the per-face rows."""
    root, data, model_path = setup
    out = tmp_path / "p"
    results = evaluate(model_path, data, out_dir=out, protocols=["clean", "unseen"], denoise_sweep=(0.5, 1.0),
                       steps=1, patch_factors=(), grid_faces=0, progress=False)
    assert list(results["protocols"]) == ["clean", "unseen"]
    assert results["tables"]["sweep"] == ["lpip-mean-d0.5", "lpip-mean"]  # 1.0 is Table I's own row
    rows = read_rows(out)
    assert {r["protocol"] for r in rows} == {"clean", "unseen"}
    assert len(rows) == 2 * len(FACES) * 6  # bicubic, whole-image, 3 fusions, denoise 0.5
    for protocol, entry in results["protocols"].items():
        for key, summary in entry["methods"].items():
            mine = [float(r["top1"]) for r in rows if r["protocol"] == protocol and r["method"] == key]
            assert summary["top1"]["mean"] == pytest.approx(sum(mine) / len(mine))
    table = [line for line in (out / "protocols.md").read_text().splitlines() if line.startswith("| `")]
    # verdicts; margins over bicubic; margins over whole-image diffusion, retrieval among them
    assert [line.split(" | ")[0] for line in table] == ["| `clean`", "| `unseen`"] * 3
    assert [len(line.split(" | ")) for line in table] == [6] * 2 + [4] * 2 + [5] * 2
    for protocol, entry in results["protocols"].items():  # the margins: LPIP-Diff minus each baseline, face by face
        row = {(r["face"], r["method"]): r for r in rows if r["protocol"] == protocol}
        faces = {face for face, _ in row}
        for field, baseline in (("against_bicubic", "bicubic"), ("against_whole_image", "whole-image")):
            for metric in ("psnr", "ssim", "id_sim", "top1"):
                diffs = [float(row[f, "lpip-mean"][metric]) - float(row[f, baseline][metric]) for f in faces]
                margin = entry[field][metric]
                assert margin["mean"] == pytest.approx(statistics.fmean(diffs), abs=1e-4)  # the CSV rounds
                assert margin["se"] == pytest.approx(statistics.stdev(diffs) / len(diffs) ** 0.5, abs=1e-4)
    assert (out / "table1.md").read_text().count("## Protocol `") == 2
    assert "| 0.5 |" in (out / "denoise.md").read_text() and (out / "denoise.png").stat().st_size > 1000
    # the two protocols really degrade differently, and a bicubic row under `clean` is its own computation
    bicubic = {(r["protocol"], r["face"]): float(r["psnr"]) for r in rows if r["method"] == "bicubic"}
    assert bicubic[("clean", "hopper_aligned_128.png")] != bicubic[("unseen", "hopper_aligned_128.png")]
    hq = (resize(read_image(FIXTURES / "hopper_aligned_128.png"), (64, 64)) * 255).round() / 255
    up = (resize((resize(hq, (16, 16)) * 255).round() / 255, (64, 64)) * 255).round() / 255
    assert bicubic[("clean", "hopper_aligned_128.png")] == pytest.approx(lpip_core.psnr(up, hq).item(), abs=1e-3)
    with pytest.raises(ValueError, match="protocol must be 'all' or one of clean"):
        evaluate(model_path, data, out_dir=tmp_path / "x", protocols=["blurry"], progress=False)
    with pytest.raises(ValueError, match=r"denoise_sweep item must be a number in \(0, 1\], got 0"):
        evaluate(model_path, data, out_dir=tmp_path / "x", denoise_sweep=(0,), progress=False)


def test_psnr_inside_leaves_out_what_a_tight_crop_mirrored(setup, tmp_path):
    """A crop with an inside512/ mask (its left half filled by reflection) is scored in psnr_inside on
    its right half only; a crop without a mask there the same as in psnr."""
    root, _, model_path = setup
    data = aligned_faces(tmp_path / "crops", *FACES)
    (tmp_path / "inside512").mkdir()
    mask = np.zeros((128, 128), np.uint8)
    mask[:, 64:] = 255
    Image.fromarray(mask).save(tmp_path / "inside512" / "hopper_aligned_128.png")
    results = evaluate(model_path, data, out_dir=tmp_path / "out", protocols=["clean"], steps=1, patch_factors=(),
                       fusions=("mean",), grid_faces=0, progress=False)
    rows = {(r["face"], r["method"]): r for r in read_rows(tmp_path / "out")}
    hq = (resize(read_image(FIXTURES / "hopper_aligned_128.png"), (64, 64)) * 255).round() / 255
    up = (resize((resize(hq, (16, 16)) * 255).round() / 255, (64, 64)) * 255).round() / 255
    hopper = rows["hopper_aligned_128.png", "bicubic"]
    assert float(hopper["psnr"]) == pytest.approx(lpip_core.psnr(up, hq).item(), abs=1e-3)
    assert float(hopper["psnr_inside"]) == pytest.approx(lpip_core.psnr(up[..., 32:], hq[..., 32:]).item(), abs=1e-3)
    assert float(hopper["psnr_inside"]) != pytest.approx(float(hopper["psnr"]), abs=1e-2)
    for (face, _), r in rows.items():
        if face != "hopper_aligned_128.png":
            assert r["psnr_inside"] == r["psnr"]
    margin = results["protocols"]["clean"]["against_bicubic"]["psnr_inside"]["mean"]
    diffs = [float(rows[f"{f}_aligned_128.png", "lpip-mean"]["psnr_inside"]) -
             float(rows[f"{f}_aligned_128.png", "bicubic"]["psnr_inside"]) for f in FACES]
    assert margin == pytest.approx(statistics.fmean(diffs), abs=1e-4)


def test_fusions_limit_table_one_and_drop_table_three(setup, tmp_path):
    """The cheap run the model cards use: mean fusion only (bicubic, whole-image, mean per face)."""
    root, data, model_path = setup
    results = evaluate(model_path, data, out_dir=tmp_path / "f", fusions=("mean",), steps=1, patch_factors=(),
                       grid_faces=1, progress=False)
    assert results["tables"]["table1"] == ["bicubic", "whole-image", "lpip-mean"]
    assert {r["method"] for r in read_rows(tmp_path / "f")} == {"bicubic", "whole-image", "lpip-mean"}
    assert "Not run: median fusion" in (tmp_path / "f" / "table3.md").read_text()
    for bad in (("median",), ("mean", "mean"), ("mean", "max"), ()):
        with pytest.raises(ValueError, match="fusions must start with mean"):
            evaluate(model_path, data, out_dir=tmp_path / "x", fusions=bad, progress=False)


def test_samples_averages_every_diffusion_method(setup, tmp_path):
    """samples=2: the diffusion rows are the mean of two samples (checked against restore on one face,
    computed here), keyed and labelled as such; bicubic stays one row."""
    root, data, model_path = setup
    results = evaluate(model_path, data, out_dir=tmp_path / "k", protocols=["clean"], fusions=("mean",), steps=1,
                       samples=2, patch_factors=(), grid_faces=0, progress=False)
    assert results["tables"]["table1"] == ["bicubic", "whole-image-k2", "lpip-mean-k2"]
    assert "mean of 2 samples" in results["protocols"]["clean"]["methods"]["lpip-mean-k2"]["label"]
    assert results["settings"]["samples"] == 2 and "samples=2" in results["command"]
    assert "each diffusion result the mean of 2 samples" in (tmp_path / "k" / "protocols.md").read_text()
    hq = (resize(read_image(FIXTURES / "hopper_aligned_128.png"), (64, 64)) * 255).round() / 255
    lq = (resize(hq, (16, 16)) * 255).round() / 255
    out = lpip_core.restore(lpip_core.load_model(model_path), lq, steps=1, seed=1, samples=2)  # hopper: face 1
    row = next(r for r in read_rows(tmp_path / "k") if r["method"] == "lpip-mean-k2" and r["face"].startswith("hop"))
    assert float(row["psnr"]) == pytest.approx(lpip_core.psnr((out * 255).round() / 255, hq).item(), abs=1e-3)
    with pytest.raises(ValueError, match="samples must be an integer in 1..16"):
        evaluate(model_path, data, out_dir=tmp_path / "x", samples=0, progress=False)
    two = lpip_core.load_model(model_path)
    two.config = replace(two.config, samples=2)  # a model that asks for 2, as lpip_x8_128 does: what users get
    results = evaluate(lpip_core.save_model(two, tmp_path / "two.safetensors"), data, out_dir=tmp_path / "d",
                       protocols=["clean"], fusions=("mean",), steps=1, patch_factors=(), grid_faces=0,
                       faces_limit=1, progress=False)
    assert results["settings"]["samples"] == 2 and "lpip-mean-k2" in results["tables"]["table1"]


def test_end_percent_ends_every_diffusion_method_early(setup, tmp_path):
    """end_percent=0.5 of 2 steps: the LPIP-Diff row is restore's result ending after step 1 (checked
    on one face, computed here), and the setting is in the settings, the command and the caption;
    1 runs every step (the paper) and says nothing."""
    root, data, model_path = setup
    results = evaluate(model_path, data, out_dir=tmp_path / "e", protocols=["clean"], fusions=("mean",), steps=2,
                       end_percent=0.5, patch_factors=(), grid_faces=0, progress=False)
    assert results["settings"]["end_percent"] == 0.5 and "end_percent=0.5" in results["command"]
    assert "ending at 0.5 of the steps (step 1: its estimate of the clean face)" in \
        (tmp_path / "e" / "protocols.md").read_text()
    hq = (resize(read_image(FIXTURES / "hopper_aligned_128.png"), (64, 64)) * 255).round() / 255
    lq = (resize(hq, (16, 16)) * 255).round() / 255
    model = lpip_core.load_model(model_path)
    ended, full = (lpip_core.restore(model, lq, steps=2, seed=1, end_percent=e) for e in (0.5, 1.0))
    row = next(r for r in read_rows(tmp_path / "e") if r["method"] == "lpip-mean" and r["face"].startswith("hop"))
    assert float(row["psnr"]) == pytest.approx(lpip_core.psnr((ended * 255).round() / 255, hq).item(), abs=1e-3)
    assert float(row["psnr"]) != pytest.approx(lpip_core.psnr((full * 255).round() / 255, hq).item(), abs=1e-3)
    evaluate(model_path, data, out_dir=tmp_path / "p", protocols=["clean"], fusions=("mean",), steps=2,
             end_percent=1.0, patch_factors=(), grid_faces=0, progress=False)
    assert "ending at" not in (tmp_path / "p" / "protocols.md").read_text()
    with pytest.raises(ValueError, match=r"end_percent must be a number in \(0, 1\]"):
        evaluate(model_path, data, out_dir=tmp_path / "x", end_percent=0, progress=False)


def test_faces_of_one_file_name_in_two_folders_stay_two_faces(setup, tmp_path, monkeypatch):
    """Faces are keyed by their path relative to the data folder: rows, retrieval and the margins'
    face count all see two faces, and a holdout may name either by that path."""
    from lpip_core.faces import identity

    # Every result equally near every truth: the nearest is the first face, so only the first face's
    # results are found (by file name, both would count as found).
    monkeypatch.setattr(identity, "face_embedding", lambda images, landmarks: torch.ones(len(images), 4) / 2)
    root, _, model_path = setup
    data = tmp_path / "faces"
    for sub, name in (("a", "hopper"), ("b", "obama")):
        (data / sub).mkdir(parents=True)
        shutil.copy(FIXTURES / f"{name}_aligned_128.png", data / sub / "face.png")
    results = evaluate(model_path, data, out_dir=tmp_path / "o", steps=1, patch_factors=(), fusions=("mean",),
                       protocols=["clean"], grid_faces=0, progress=False)
    assert results["faces"]["names"] == ["a/face.png", "b/face.png"]
    rows = read_rows(tmp_path / "o")
    assert sorted({r["face"] for r in rows}) == ["a/face.png", "b/face.png"] and len(rows) == 2 * 3
    assert {r["face"]: r["top1"] for r in rows if r["method"] == "bicubic"} == {"a/face.png": "1", "b/face.png": "0"}
    margins = results["protocols"]["clean"]["against_bicubic"]["psnr"]
    assert math.isfinite(margins["se"])  # a standard error over two faces (one face would give none)
    holdout = tmp_path / "holdout.txt"
    holdout.write_text("b/face.png\n")
    picked = evaluate(model_path, data, out_dir=tmp_path / "p", holdout=holdout, steps=1, patch_factors=(),
                      fusions=("mean",), protocols=["clean"], grid_faces=0, progress=False)
    assert picked["faces"]["names"] == ["b/face.png"]


@pytest.mark.parametrize("inside", ["", "sub"])
def test_evaluate_never_writes_among_its_faces(setup, tmp_path, inside):
    """An -o that is the data folder (or lies in it) would replace a face called grid.png and leave
    the results to be read as faces by the next run: refused before the model is even loaded."""
    _, _, model_path = setup
    data = tmp_path / "faces"
    data.mkdir()
    shutil.copy(FIXTURES / "hopper_aligned_128.png", data / "grid.png")
    before = {p: p.read_bytes() for p in data.rglob("*")}
    with pytest.raises(ValueError, match="the input folder"):
        evaluate(model_path, data, out_dir=data / inside, progress=False, overwrite=True)
    assert {p: p.read_bytes() for p in data.rglob("*")} == before


def test_evaluate_checks_its_outputs_before_any_work(setup, tmp_path, monkeypatch):
    from lpip_core.evaluation import evaluate as module

    _, data, model_path = setup
    monkeypatch.setattr(module, "load_model", lambda *a, **k: pytest.fail("loaded before the check"))
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match="-o .*file: exists and is not a folder"):
        evaluate(model_path, data, out_dir=tmp_path / "file", progress=False)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "results.json").write_text("an earlier run")
    with pytest.raises(ValueError, match="results.json: exists; pass --overwrite to replace it"):
        evaluate(model_path, data, out_dir=tmp_path / "o", progress=False)
    with pytest.raises(ValueError, match="cannot write there"):
        evaluate(model_path, data, out_dir="/proc/lpip-diff-no-such/out", progress=False)
    assert (tmp_path / "file").read_text() == "mine"
    assert (tmp_path / "o" / "results.json").read_text() == "an earlier run"
