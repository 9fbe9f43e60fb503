"""The checkpoints shipped in models/: each loads and validates, matches its name and model card,
and restores real degraded faces better than bicubic upsampling under every evaluation protocol
(as its card claims)."""
import re
from pathlib import Path

import pytest
import torch

import lpip_core
from lpip_core.evaluation.protocols import PROTOCOLS, make_lq
from lpip_core.faces.identity import id_similarity
from lpip_core.files import read_image
from lpip_core.method.restoration import RECOMMENDED_DENOISE, RECOMMENDED_END_PERCENT
from lpip_core.resize import resize
from tests.helpers import FIXTURES

MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULTS = ("lpip_x4_64", "lpip_x8_128")
SHIPPED = sorted(p.stem for p in MODELS.glob("*.safetensors"))
FACES = ("hopper", "astronaut", "obama")  # hopper is held out; all three are public domain


def test_the_default_models_are_shipped():
    assert set(DEFAULTS) <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_matches_its_name_size_and_card(name):
    path = MODELS / f"{name}.safetensors"
    assert path.stat().st_size <= 50 * 2 ** 20
    config = lpip_core.load_model(path).config
    assert name == f"lpip_x{config.scale}_{config.hq_size}"
    card = (MODELS / f"{name}.md").read_text()
    steps = config.training["steps"]
    assert f"{steps:,} steps" in card, "the model card must state the step count recorded in the checkpoint"
    assert config.samples == 1 or f"samples: {config.samples}" in card, "the card must state a default of samples"
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card):
        assert (MODELS / image).is_file(), f"{name}.md shows a missing image {image}"


# How each model is sampled: its default (what the nodes and the CLI give: ending at
# RECOMMENDED_END_PERCENT, the model's own number of samples) and the paper's sampler (every step, one
# sample). docs/experiments.md, "Ending early" and "Why lpip_x8_128 defaults to two samples".
SAMPLERS = {"default": (RECOMMENDED_END_PERCENT, None), "paper": (1.0, 1)}

# Where a shipped model does not yet beat bicubic on these faces, as its card reports: these run too,
# and must keep failing (strict), so a model that closes the gap is noticed and the card updated.
# Where a sampler falls short under every protocol, its first (`clean`) stands for all: each x8 case costs CI a minute.
SHORT_UNDER_ALL = {("lpip_x8_128", "paper")}
FIRST_PROTOCOL = next(iter(PROTOCOLS))
SHORTFALLS = {("lpip_x4_64", protocol, "paper")
              for protocol in ("lq-noise-jpeg-medium", "lq-noise-jpeg-strong", "unseen")} \
    | {("lpip_x2_64", "lq-noise-jpeg-light", "default")} \
    | {("lpip_x2_64", protocol, "paper") for protocol in ("lq-noise-jpeg-medium", "lq-noise-jpeg-strong")} \
    | {(name, FIRST_PROTOCOL, sampler) for name, sampler in SHORT_UNDER_ALL}


def _cases():
    for name in SHIPPED:
        for sampler in SAMPLERS:
            protocols = [FIRST_PROTOCOL] if (name, sampler) in SHORT_UNDER_ALL else PROTOCOLS
            for protocol in protocols:
                marks = [pytest.mark.xfail(strict=True, reason=f"{name} falls short of bicubic under {protocol}: "
                                                               f"see models/{name}.md")] \
                    if (name, protocol, sampler) in SHORTFALLS else []
                yield pytest.param(name, 1, protocol, sampler, marks=marks, id=f"{name}-{protocol}-{sampler}")
    for protocol in PROTOCOLS:  # x8 through x4 (models/lpip_x4_64.md), as `lpip-diff restore --scale 8` runs it
        yield pytest.param("lpip_x4_64", 2, protocol, "default", id=f"lpip_x4_64-then-bicubic-x2-{protocol}-default")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "then_bicubic", "protocol", "sampler"), list(_cases()))
def test_restores_degraded_faces_better_than_bicubic(name, then_bicubic, protocol, sampler):
    """Three real faces degraded by each evaluation protocol to the model's LQ size: LPIP-Diff
    (25 steps, the node's and CLI's default denoise, sampled as `sampler` names; then enlarged
    `then_bicubic` times by bicubic) beats bicubic upsampling from the LQ face in mean PSNR, SSIM
    and ID Sim (dlib), as the model card's protocol tables claim on the held-out faces."""
    end_percent, samples = SAMPLERS[sampler]
    model = lpip_core.load_model(MODELS / f"{name}.safetensors")
    size, lq_side = model.config.hq_size * then_bicubic, model.config.hq_size // model.config.scale
    hq = torch.cat([resize(read_image(FIXTURES / f"{face}_aligned_128.png"), (size, size)) for face in FACES])
    hq = (hq.clamp(0, 1) * 255).round() / 255
    lq = make_lq(protocol, hq, lq_side, seed=0)
    bicubic = resize(lq, (size, size))
    # 2 threads: the shipped models are compute-bound here, and the slow tests run one at a time
    restored = resize(lpip_core.restore(model, lq, steps=25, seed=0, denoise=RECOMMENDED_DENOISE,
                                        end_percent=end_percent, samples=samples, threads=2), (size, size))
    assert restored.shape == hq.shape
    assert lpip_core.psnr(restored, hq).mean() > lpip_core.psnr(bicubic, hq).mean()
    assert lpip_core.ssim(restored, hq).mean() > lpip_core.ssim(bicubic, hq).mean()
    assert id_similarity(restored, hq).mean() > id_similarity(bicubic, hq).mean()
