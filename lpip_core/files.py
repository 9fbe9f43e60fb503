"""Image files in and out, and atomic writes: an output file is complete or absent, never half-written."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """An image file as float32 [1, 3, H, W] RGB in [0, 1] (greyscale and alpha are converted)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise ValueError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from None
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


def to_pil(image: torch.Tensor) -> Image.Image:
    """[3, H, W] or [1, 3, H, W] in [0, 1] -> an 8-bit RGB PIL image."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of {image.shape[0]}")
        image = image[0]
    array = (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def write_image(image: torch.Tensor, path: str | os.PathLike, **save_args) -> Path:
    """Save one image atomically; the format follows the suffix."""
    path = Path(path)
    with atomic_output(path) as tmp:
        to_pil(image).save(tmp, format=Image.registered_extensions().get(path.suffix.lower()), **save_args)
    return path
