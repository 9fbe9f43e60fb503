import shutil

import pytest
import torch

from lpip_core import load_model
from lpip_core.data import PatchPairs, load_faces
from lpip_core.schedule import NoiseSchedule
from lpip_core.train import TrainConfig, train


@pytest.fixture
def face_folder(tmp_path, fixtures):
    folder = tmp_path / "faces"
    folder.mkdir()
    shutil.copy(fixtures / "hopper_aligned_128.png", folder)
    return folder


def fixed_batch_loss(model, faces) -> float:
    """eps-MSE on one fixed batch of (t, noise, patches): comparable before and after training."""
    hq, lq = PatchPairs(faces, scale=4, patch=16, patches_per_face=16, seed=123)[0]
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 1000, (hq.shape[0],), generator=g)
    noise = torch.randn(hq.shape, generator=g)
    x_t = NoiseSchedule().q_sample(hq, t, noise)
    with torch.no_grad():
        return torch.nn.functional.mse_loss(model(x_t, lq, t.float()), noise).item()


def test_fifty_steps_on_one_real_face_lower_the_loss(face_folder, tmp_path):
    cfg = TrainConfig(data=str(face_folder), out=str(tmp_path / "tiny.safetensors"), preset="tiny", scale=4,
                      hq_size=64, patch=16, steps=50, lr=2e-3, warmup_steps=5, faces_per_step=2,
                      patches_per_face=8, log_every=10)
    out = train(cfg, progress=False)
    faces, _ = load_faces(face_folder, 64)
    trained = load_model(out)
    initial = fixed_batch_loss(type(trained)(trained.config).eval(), faces)  # zero-initialised output: eps = 0
    assert initial == pytest.approx(1.0, abs=0.15)
    assert fixed_batch_loss(trained, faces) < 0.8 * initial
    assert trained.config.training["steps"] == 50 and trained.config.training["faces"] == 1
    log = (tmp_path / "tiny-train" / "loss.csv").read_text().splitlines()
    assert log[0] == "step,seconds,loss,lr" and len(log) == 6
    assert (tmp_path / "tiny-train" / "loss.png").stat().st_size > 1000
