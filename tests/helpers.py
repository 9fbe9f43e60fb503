"""What the tests share besides fixtures: the repository's paths, tiny models and test pictures.

Imported as ``tests.helpers`` (tests/ is a package, so that test files of the same name in
different folders never clash and their imports do not depend on where pytest was started).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
from PIL import Image

import lpip_core

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def aligned_faces(folder: Path, *names: str) -> Path:
    """A folder of the committed 128 px aligned faces (hopper, astronaut, obama): training and evaluation data."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(FIXTURES / f"{name}_aligned_128.png", folder)
    return folder


def tiny_model(scale: int = 4, patch: int = 16, seed: int = 0) -> lpip_core.LPIPModel:
    """An untrained tiny model whose output is not identically zero (its zero-initialised layers are
    re-drawn), so that fusion and sampling differences show."""
    torch.manual_seed(seed)
    config = lpip_core.ModelConfig(unet=lpip_core.PRESETS["tiny"], scale=scale, hq_size=16 * scale, patch=patch,
                                   stride=patch // 2)
    model = lpip_core.LPIPModel(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.05)
    return model.eval()


def mixed_photo() -> Image.Image:
    """200x100 px: Grace Hopper big (her aligned crop spans about 66 px) and Obama tiny (about 16 px).
    The photo pipeline's test (tests/core/test_photo.py) and the Restore Faces node's use it."""
    canvas = Image.new("RGB", (200, 100), (128, 128, 128))
    with Image.open(FIXTURES / "faces" / "hopper.jpg") as big, Image.open(FIXTURES / "faces" / "obama.jpg") as tiny:
        canvas.paste(big.convert("RGB").resize((96, 96), Image.Resampling.LANCZOS), (0, 2))
        canvas.paste(tiny.convert("RGB").resize((36, 45), Image.Resampling.LANCZOS), (140, 30))
    return canvas
