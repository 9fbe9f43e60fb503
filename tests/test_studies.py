"""studies/: the studies rebuilt on evaluate's steps, run for real on two fixture faces with an untrained tiny
model and two steps (their numbers mean nothing; their shape and their agreement with restore do)."""
import json
import shutil

import pytest
from conftest import tiny_model

import lpip_core
from lpip_core.data.folders import load_faces
from lpip_core.evaluation.evaluate import held_out_faces
from lpip_core.evaluation.metrics import psnr
from lpip_core.evaluation.protocols import PROTOCOLS, make_lq
from lpip_core.files import quantize_8bit
from lpip_core.resize import resize
from studies import ending_early_study, face_size_study

FACES = ("astronaut", "hopper")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, fixtures):
    root = tmp_path_factory.mktemp("studies")
    data = root / "faces"
    data.mkdir()
    for name in FACES:
        shutil.copy(fixtures / f"{name}_aligned_128.png", data)
    model = tiny_model(scale=4, patch=16)  # 16 -> 64 px
    return root, data, lpip_core.save_model(model, root / "tiny.safetensors"), model


def test_ending_early_scores_each_step_as_restore_ending_there(setup, tmp_path):
    root, data, model_path, model = setup
    ending_early_study.main(["--model", str(model_path), "--data", str(data), "--steps", "2", "--show", "1,2",
                             "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ending_early.json", "ending_early.md", "ending_early.png"]
    result = json.loads((tmp_path / "ending_early.json").read_text())
    assert (result["faces"], result["steps"], list(result["means"])) == (2, 2, list(PROTOCOLS))
    for rows in result["means"].values():
        assert list(rows) == ["bicubic", "1", "2"]
        assert all(list(r) == list(ending_early_study.MEASURES) for r in rows.values())
    # the estimate after step k is what restore returns when it ends at k of the steps
    faces = held_out_faces(data, 64)
    lq = make_lq("clean", faces.hq, 16, 0)
    for k, end in (("1", 0.5), ("2", 1.0)):
        outs = [quantize_8bit(lpip_core.restore(model, lq[i:i + 1], steps=2, seed=i, samples=1, end_percent=end))
                for i in range(2)]
        expected = sum(float(psnr(out, faces.hq[i:i + 1])[0]) for i, out in enumerate(outs)) / 2
        assert result["means"]["clean"][k]["psnr"] == pytest.approx(expected, abs=1e-9)
    table = (tmp_path / "ending_early.md").read_text()
    assert all(f"`{p}`" in table for p in PROTOCOLS) and "end 0.5" in table and "end 1 " in table


def test_face_size_study_rows_and_bicubic_reference(setup):
    root, data, model_path, model = setup
    result = face_size_study.study(model_path, data, None, [24], [0.5], "clean", steps=2)
    methods = ["bicubic", "Lanczos", "a: resize to 16 px, restore", "b: upscale, restore in place, denoise 0.5"]
    assert (result["faces"], result["output_size"], len(result["rows"])) == (2, 64, 2 * len(methods))
    assert [r["method"] for r in result["rows"][:4]] == methods
    assert all(set(r) == {"face", "size", "method", "psnr", "ssim", "id_sim"} for r in result["rows"])
    faces, _ = load_faces(data, 512, min_face_size=64)
    face = faces[:1].float() / 255
    seen = quantize_8bit(resize(face, (24, 24)))
    expected = psnr(quantize_8bit(resize(seen, (64, 64))), resize(face, (64, 64)))[0]
    assert result["rows"][0]["psnr"] == pytest.approx(float(expected), abs=1e-9)
    table = face_size_study.table(result)
    assert table.count("\n| ") == 1 + len(methods) and "24 px" in table and "**" in table
