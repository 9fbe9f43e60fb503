"""studies.face_size_study: rows per face size and method, bicubic's as evaluate would score it."""
import pytest

from lpip_core.data.folders import load_faces
from lpip_core.evaluation.metrics import psnr
from lpip_core.files import quantize_8bit
from lpip_core.resize import resize
from studies import face_size_study


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


def test_face_size_study_without_in_place_restorations(setup, tmp_path):
    """`--denoise ''` leaves out path (b): bicubic, Lanczos and the restoration from 16 px only."""
    root, data, model_path, model = setup
    face_size_study.main(["--model", str(model_path), "--data", str(data), "--sizes", "20", "--denoise", "",
                          "--steps", "2", "--faces", "1", "--out", str(tmp_path)])
    table = (tmp_path / "face_size.md").read_text()
    assert "a: resize to 16 px, restore" in table and "Lanczos" in table and "in place" not in table
