"""studies.ending_early_study: one restore per face scores every step's estimate as restore ending there."""
import json

import pytest

import lpip_core
from lpip_core.evaluation.evaluate import held_out_faces
from lpip_core.evaluation.metrics import psnr
from lpip_core.evaluation.protocols import PROTOCOLS, make_lq
from lpip_core.files import quantize_8bit
from studies import ending_early_study


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
