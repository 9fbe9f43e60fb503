import json
import random
import time

import pytest
import torch

from lpip_core import load_model
from lpip_core.data.folders import load_faces
from lpip_core.method.schedule import NoiseSchedule
from lpip_core.training.pairs import PatchPairs
from lpip_core.training.train import TrainConfig, train
from tests.helpers import aligned_faces


@pytest.fixture
def face_folder(tmp_path):
    return aligned_faces(tmp_path / "faces", "hopper")


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


# --- resume, budgets, checkpoint format, training summary, config validation ---------------------

from safetensors import safe_open  # noqa: E402

import lpip_core.training.train as train_module  # noqa: E402
from lpip_core import read_config  # noqa: E402


@pytest.fixture
def three_faces(tmp_path):
    return aligned_faces(tmp_path / "three", "hopper", "astronaut", "obama")


def tiny_cfg(data, out, **kw) -> TrainConfig:
    """hq 32, 8 px patches, tiny UNet: a step takes milliseconds. A long warm-up keeps the learning
    rate independent of the budget, so runs with different budgets follow the same path."""
    base = dict(data=data if isinstance(data, list) else str(data), out=str(out), preset="tiny", scale=4, hq_size=32, patch=8, lr=1e-3,
                warmup_steps=1000, faces_per_step=2, patches_per_face=2, log_every=2, threads=1)
    return TrainConfig(**{**base, **kw})


def weights(path) -> dict:
    return load_model(path).state_dict()


def log_rows(run_dir) -> list[list[str]]:
    lines = (run_dir / "loss.csv").read_text().splitlines()
    assert lines[0] == "step,seconds,loss,lr"
    return [line.split(",") for line in lines[1:]]


def test_resume_continues_the_interrupted_run_exactly(three_faces, tmp_path):
    straight = train(tiny_cfg(three_faces, tmp_path / "a.safetensors", steps=8), progress=False)
    half = train(tiny_cfg(three_faces, tmp_path / "b.safetensors", steps=4), progress=False)
    at_half = weights(half)
    # A row logged after the last checkpoint of an interrupted run must not survive the resume.
    with open(tmp_path / "b-train" / "loss.csv", "a") as f:
        f.write("6,1.0,9.999,0.001\n")
    resumed = train(tiny_cfg(three_faces, tmp_path / "b.safetensors", steps=8, resume=True), progress=False)

    assert read_config(resumed).training["steps"] == 8
    final = weights(resumed)
    assert any(not torch.equal(final[k], at_half[k]) for k in final)  # it trained on
    for k, v in weights(straight).items():  # same data, noise and lr as the run that never stopped
        assert torch.equal(final[k], v), k
    rows_a, rows_b = log_rows(tmp_path / "a-train"), log_rows(tmp_path / "b-train")
    assert [r[0] for r in rows_b] == ["2", "4", "6", "8"]
    assert [r[2] for r in rows_b] == [r[2] for r in rows_a]  # the same losses, step for step
    assert float(rows_b[-1][1]) >= float(rows_b[1][1])  # seconds carry on from the first part


def test_resume_refuses_a_state_of_another_model(three_faces, tmp_path):
    out = tmp_path / "m.safetensors"
    train(tiny_cfg(three_faces, out, steps=2), progress=False)
    with pytest.raises(ValueError, match="another model.*patch"):
        train(tiny_cfg(three_faces, out, steps=4, patch=16, resume=True), progress=False)


def test_time_budget_stops_the_run(three_faces, tmp_path):
    start = time.monotonic()
    out = train(tiny_cfg(three_faces, tmp_path / "t.safetensors", minutes=0.02, log_every=1), progress=False)
    assert time.monotonic() - start < 1.2 + 10  # the budget, plus start-up and the final writes
    summary = read_config(out).training
    assert summary["steps"] >= 1
    rows = log_rows(tmp_path / "t-train")
    assert len(rows) == summary["steps"]
    last_step_start = float(rows[-2][1]) if len(rows) > 1 else 0.0
    assert last_step_start <= 1.25  # no step starts after the budget is spent (log seconds are rounded)


def test_checkpoints_are_periodic_safetensors_without_pickle(three_faces, tmp_path, monkeypatch):
    writes = []
    original = train_module._write_outputs
    monkeypatch.setattr(train_module, "_write_outputs", lambda *a, **k: (writes.append(a[4]), original(*a, **k)))
    out = train(tiny_cfg(three_faces, tmp_path / "c.safetensors", steps=3, checkpoint_minutes=0), progress=False)
    assert writes == [1, 2, 3, 3]  # every step (checkpoint_minutes=0), then the final write
    state = tmp_path / "c-train" / "state.safetensors"
    for path in (out, state):
        head = path.read_bytes()[:9]
        assert head[8:9] == b"{" and head[:2] != b"PK" and head[:1] != b"\x80"  # safetensors, not zip/pickle
        with safe_open(str(path), framework="pt") as f:
            assert f.metadata() and len(list(f.keys())) > 10
    with safe_open(str(state), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["step"] == "3" and json.loads(meta["train_config"])["steps"] == 3
    assert any(k.startswith("ema.") for k in keys) and any(k.startswith("opt.") for k in keys)


def test_shipped_model_carries_the_training_summary(three_faces, tmp_path):
    holdout = tmp_path / "holdout.txt"
    holdout.write_text("# never train on these\nobama_aligned_128.png\n")
    out = train(tiny_cfg(three_faces, tmp_path / "s.safetensors", steps=2, holdout=str(holdout), seed=5),
                progress=False)
    config = read_config(out)
    summary = config.training
    assert summary["faces"] == 2 and summary["holdout"] == "holdout.txt"  # the held-out face is left out
    assert summary["data"] == "three" and summary["steps"] == 2 and summary["seed"] == 5
    assert summary["preset"] == "tiny" and summary["processes"] == 1 and summary["device"].startswith("cpu")
    assert {"minutes", "date", "lr", "ema_decay", "faces_per_step", "patches_per_face"} <= set(summary)
    assert (config.scale, config.hq_size, config.patch, config.stride) == (4, 32, 8, 4)


@pytest.mark.parametrize("field, value", [
    ("scale", 0), ("hq_size", 30), ("patch", 64), ("steps", 0), ("minutes", -1.0), ("lr", 0.0), ("lr", float("nan")),
    ("faces_per_step", 0), ("workers", -1), ("ema_decay", 1.5), ("preset", "huge"), ("seed", -3),
])
def test_bad_training_settings_name_the_setting(field, value, tmp_path):
    with pytest.raises(ValueError, match=field if field != "hq_size" else "hq_size 30 must be divisible"):
        tiny_cfg(tmp_path, tmp_path / "x.safetensors", **{"steps": 1, field: value})


def test_a_budget_is_required(tmp_path):
    with pytest.raises(ValueError, match="budget"):
        TrainConfig(data=str(tmp_path), out=str(tmp_path / "x.safetensors"))


def test_init_starts_from_a_checkpoint_of_any_scale_and_refuses_another_architecture(three_faces, tmp_path):
    first = train(tiny_cfg(three_faces, tmp_path / "first.safetensors", steps=3), progress=False)
    # zero steps of learning: a learning rate too small to move a float32 weight shows what init loaded
    tuned = train(tiny_cfg(three_faces, tmp_path / "tuned.safetensors", steps=1, lr=1e-30, init=str(first)),
                  progress=False)
    # another scale is fine: the UNet sees the LQ face resized to the HQ size, whatever the scale
    x2 = train(tiny_cfg(three_faces, tmp_path / "x2.safetensors", steps=1, lr=1e-30, scale=2, init=str(first)),
               progress=False)
    for run in (tuned, x2):
        for k, v in weights(first).items():
            assert torch.allclose(weights(run)[k], v, atol=1e-6), (run.name, k)
    assert read_config(tuned).training["init"] == "first.safetensors" and read_config(x2).scale == 2
    with pytest.raises(ValueError, match="init: .* another patch"):
        train(tiny_cfg(three_faces, tmp_path / "other.safetensors", steps=1, patch=16, init=str(first)),
              progress=False)
    with pytest.raises(ValueError, match="init checkpoint not found"):
        tiny_cfg(three_faces, tmp_path / "x.safetensors", steps=1, init=str(tmp_path / "missing.safetensors"))


def test_degradation_and_augmentation_are_recorded_and_checked(three_faces, tmp_path):
    out = train(tiny_cfg(three_faces, tmp_path / "g.safetensors", steps=1, degradation="gfpgan512", augment=False,
                         photo_share=0.5), progress=False)
    summary = read_config(out).training
    assert summary["degradation"] == "gfpgan512" and summary["augmentation"] == "flips only"
    assert summary["photo_share"] == 0.5
    with pytest.raises(ValueError, match="degradation must be one of"):
        tiny_cfg(three_faces, tmp_path / "x.safetensors", steps=1, degradation="heavy")
    with pytest.raises(ValueError, match="photo_share must be"):
        tiny_cfg(three_faces, tmp_path / "x.safetensors", steps=1, photo_share=-0.1)


# --- several folders, MANIFEST.csv filters, inside masks, precision ----------------------------------

def manifest_folder(root, fixtures, rows):
    """<root>/crops/ with the three fixture faces, a MANIFEST.csv of `rows` and, for hopper, an
    inside mask in <root>/inside512/ whose left half is outside the photo."""
    from PIL import Image

    crops = aligned_faces(root / "crops", "hopper", "astronaut", "obama")
    lines = ["crop,source,crop_side_in_source_px,outside_fraction"] + [f"{n}_aligned_128.png,x.jpg,{side},{out}"
                                                                       for n, side, out in rows]
    (crops / "MANIFEST.csv").write_text("\n".join(lines) + "\n")
    (root / "inside512").mkdir()
    mask = torch.zeros(128, 128, dtype=torch.uint8)
    mask[:, 64:] = 255
    Image.fromarray(mask.numpy()).save(root / "inside512" / "hopper_aligned_128.png")
    return crops


def test_loader_reads_the_manifest_filters_and_the_inside_masks(tmp_path, fixtures):
    crops = manifest_folder(tmp_path, fixtures, [("hopper", 600, 0.5), ("astronaut", 50, 0.0), ("obama", 400, 0.7)])
    faces, names = load_faces(crops, 64, store_size=64, masks=True)
    assert names == ["hopper_aligned_128.png", "obama_aligned_128.png"]  # astronaut spans 50 source px < 64
    assert faces.shape == (2, 4, 64, 64) and faces.dtype == torch.uint8
    hopper_mask, obama_mask = faces[0, 3].float() / 255, faces[1, 3].float() / 255
    assert hopper_mask[:, :30].max() == 0 and hopper_mask[:, 34:].min() == 1 and obama_mask.min() == 1
    _, kept = load_faces(crops, 64, max_outside=0.6)
    assert kept == ["hopper_aligned_128.png"]
    rgb, _ = load_faces(crops, 64, max_outside=0.6)
    assert rgb.shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="max_outside"):
        load_faces(crops, 64, max_outside=1.5)


def test_patches_are_cut_inside_the_photo_unless_told_otherwise(tmp_path, fixtures):
    crops = manifest_folder(tmp_path, fixtures, [("hopper", 600, 0.5)])
    faces, _ = load_faces(crops, 64, include={"hopper_aligned_128.png"}, store_size=64, masks=True)
    inside = PatchPairs(faces, scale=4, patch=16, patches_per_face=8, seed=0)
    anywhere = PatchPairs(faces, scale=4, patch=16, patches_per_face=8, seed=0, anywhere=True)
    mask = faces[0, 3:].float() / 255
    xs_inside = [x for k in range(20) for _, x in inside.corners(mask, random.Random(k))]
    xs_anywhere = [x for k in range(20) for _, x in anywhere.corners(mask, random.Random(k))]
    assert min(xs_inside) >= 32 and min(xs_anywhere) < 32
    hq, lq = inside[0]
    assert hq.shape == lq.shape == (8, 3, 16, 16)


def test_training_on_two_folders_with_two_holdout_files(tmp_path, fixtures, three_faces):
    crops = manifest_folder(tmp_path / "second", fixtures, [("hopper", 600, 0.5)])
    (tmp_path / "a.txt").write_text("obama_aligned_128.png\n")
    (tmp_path / "b.txt").write_text("astronaut_aligned_128.png\n")
    out = train(tiny_cfg([str(three_faces), str(crops)], tmp_path / "two.safetensors", steps=2,
                         holdout=[str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], precision="fp32"),
                progress=False)
    summary = read_config(out).training
    assert summary["faces"] == 2 and summary["holdout"] == "a.txt, b.txt"  # hopper from each folder
    assert summary["data"] == "three, second/crops" and summary["precision"] == "fp32"
    assert summary["masked_patches"] is True


def test_precision_picks_bf16_only_where_asked_or_native():
    cpu = torch.device("cpu")
    assert train_module.uses_bf16("bf16", cpu) and not train_module.uses_bf16("fp32", cpu)
    assert train_module.uses_bf16("auto", cpu) == train_module._cpu_has_bf16()
    with pytest.raises(ValueError, match="precision must be one of"):
        tiny_cfg("x", "y.safetensors", steps=1, precision="fp16")
