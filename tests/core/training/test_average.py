"""lpip_core.training.average and `lpip-diff average`: weight averaging of fine-tunes of one model."""
from dataclasses import replace

import pytest
import torch

from lpip_core import CheckpointError, load_model, read_config, save_model
from lpip_core.cli import main
from lpip_core.training.average import average_models
from tests.helpers import tiny_model


def _save(tmp_path, name, seed, steps, degradation, scale=4):
    model = tiny_model(scale=scale, seed=seed)
    model.config = replace(model.config, training={"steps": steps, "minutes": 2.0, "faces": 5,
                                                   "degradation": degradation})
    return save_model(model, tmp_path / f"{name}.safetensors")


def test_the_average_is_the_weighted_mean_of_the_weights_and_records_its_parents(tmp_path):
    a, b = _save(tmp_path, "a", 0, 10, "gfpgan512"), _save(tmp_path, "b", 1, 30, "mix")
    soup = average_models([a, b], [0.25, 0.75])
    for key, (wa, wb) in zip(soup.state_dict(), zip(load_model(a).state_dict().values(),
                                                    load_model(b).state_dict().values())):
        torch.testing.assert_close(soup.state_dict()[key], 0.25 * wa + 0.75 * wb, rtol=0, atol=1e-7)
    training = soup.config.training
    assert (training["steps"], training["minutes"], training["faces"]) == (40, 4.0, 5)
    assert "degradation" not in training  # the parents differ: only their own summaries say
    assert [(p["weight"], p["degradation"]) for p in training["average"]] == [(0.25, "gfpgan512"), (0.75, "mix")]


def test_a_weight_of_one_gives_that_checkpoint_back_exactly(tmp_path):
    a, b = _save(tmp_path, "a", 0, 10, "gfpgan512"), _save(tmp_path, "b", 1, 30, "mix")
    soup = average_models([a, b], [0.0, 1.0])
    assert all(torch.equal(x, y) for x, y in zip(soup.state_dict().values(), load_model(b).state_dict().values()))


def test_checkpoints_of_another_scale_and_bad_weights_are_refused(tmp_path):
    a, x2 = _save(tmp_path, "a", 0, 10, "mix"), _save(tmp_path, "x2", 1, 10, "mix", scale=2)
    with pytest.raises(CheckpointError, match="x2.safetensors: another architecture, scale"):
        average_models([a, x2], [0.5, 0.5])
    for weights in ([0.5, 0.6], [1.5, -0.5], [1.0], [float("nan"), 1.0]):
        with pytest.raises(ValueError, match="weight"):
            average_models([a, a], weights)


def test_cli_average_writes_the_equal_mean_by_default_and_refuses_other_suffixes(tmp_path, capsys):
    a, b = _save(tmp_path, "a", 0, 10, "gfpgan512"), _save(tmp_path, "b", 1, 30, "mix")
    out = tmp_path / "soup.safetensors"
    assert main(["average", str(a), str(b), "-o", str(out)]) == 0
    assert [p["weight"] for p in read_config(out).training["average"]] == [0.5, 0.5]
    assert main(["average", str(a), str(b), "-o", str(tmp_path / "soup.pt")]) == 2
    assert "give a path ending in .safetensors" in capsys.readouterr().err
    other = tmp_path / "other.safetensors"
    assert main(["average", str(a), str(b), "--weights", "0.9", "0.9", "-o", str(other)]) == 2
    assert "weights must be >= 0 and sum to 1" in capsys.readouterr().err
