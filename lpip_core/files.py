"""Image files in and out, and atomic writes: an output file is complete or absent, never half-written."""
from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name is kept short, so that any target name the file system takes has one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:64]}.", suffix=path.suffix[:16])
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


def regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """`path`, if it is a regular file (or a link to one); else a ValueError that names it. Checked
    without opening it: opening a FIFO blocks until someone writes, a device may never end."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ValueError(f"{what} not found: {path}") from None
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise ValueError(f"{what} {path} is {kind}, not a regular file")
    return path


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """An image file as float32 [1, 3, H, W] RGB in [0, 1], read the way it is meant to be seen.

    EXIF orientation is applied; 16-bit and 32-bit integer images are scaled by their full range
    and float images taken as 0..1 (Pillow's own conversion would clip them to 8 bits); greyscale is
    repeated to RGB; transparency is composited over white. Anything unreadable, or larger than
    Pillow's decompression-bomb limit, is a ValueError that names the file; so is anything but a
    regular file (a FIFO, device or socket), which is never opened.
    """
    path = regular_file(path, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                rgb = _to_rgb(ImageOps.exif_transpose(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"image {path} is too large to read safely (more than {Image.MAX_IMAGE_PIXELS:,} "
                         "pixels; a decompression bomb?)") from None
    except ValueError as e:
        raise ValueError(f"cannot read image {path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many kinds on a broken file
        raise ValueError(f"cannot read image {path}: {type(e).__name__}: {e}"[:300]) from None
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


def _to_rgb(im: Image.Image) -> np.ndarray:
    """[H, W, 3] float32 in [0, 1] from any Pillow mode."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):  # one channel, more than 8 bits
        values = np.asarray(im, dtype=np.float64)
        if im.mode == "F":
            if not np.isfinite(values).all() or values.min() < -0.5 or values.max() > 1.5:
                raise ValueError(f"a float image must hold values in 0..1, got {values.min():.4g}..{values.max():.4g}")
        elif values.min() < 0 or values.max() > 65535:
            raise ValueError(f"32-bit integer images must hold 0..65535 (16-bit) values, got "
                             f"{values.min():.0f}..{values.max():.0f}")
        else:
            values = values / 65535
        grey = values.clip(0, 1).astype(np.float32)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(canvas, rgba)
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def from_pil(im: Image.Image) -> torch.Tensor:
    """A PIL image (any mode) -> float32 [1, 3, H, W] RGB in [0, 1]: to_pil's inverse."""
    return torch.from_numpy(_to_rgb(im)).permute(2, 0, 1)[None].contiguous()


def to_pil(image: torch.Tensor) -> Image.Image:
    """[3, H, W] or [1, 3, H, W] in [0, 1] -> an 8-bit RGB PIL image."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of {image.shape[0]}")
        image = image[0]
    array = (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def quantize_8bit(image: torch.Tensor) -> torch.Tensor:
    """An image in [0, 1] rounded to the 256 levels an 8-bit file holds (to_pil's levels), still float:
    what a saved and re-read PNG gives back, so that scores are those of the files a user sees."""
    return (image.clamp(0, 1) * 255).round() / 255


def compressed(image: torch.Tensor, format: str, quality: int) -> torch.Tensor:
    """[3, H, W] in [0, 1] as a lossy file (JPEG, WEBP) of that quality gives it back, on image's device."""
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format=format, quality=int(quality))
    return from_pil(Image.open(buffer))[0].to(image.device)


def tile(images: torch.Tensor, limit: int = 64) -> torch.Tensor:
    """The first ``limit`` images of a batch [B, 3, H, W] as one [3, rows*H, cols*W] image, row by row,
    ceil(sqrt(B)) columns (empty cells black): a preview of a whole batch."""
    images = images[:limit]
    b, c, h, w = images.shape
    cols = max(1, int(-(-b ** 0.5 // 1)))
    rows = -(-b // cols)
    canvas = images.new_zeros(rows * cols, c, h, w)
    canvas[:b] = images
    return canvas.reshape(rows, cols, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, rows * h, cols * w)


def write_image(image: torch.Tensor, path: str | os.PathLike, **save_args) -> Path:
    """Save one image atomically; the format follows the suffix."""
    path = Path(path)
    with atomic_output(path) as tmp:
        to_pil(image).save(tmp, format=Image.registered_extensions().get(path.suffix.lower()), **save_args)
    return path
