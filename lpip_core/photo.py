"""Restore the faces of whole photos: find them, leave the big ones alone, restore, paste back.

The one photo pipeline behind the Restore Faces node, Face Crop & Align's size limit and
`lpip-diff restore --photo`. The restoration itself is passed in (`restore_crops`), so that the
node runs it under ComfyUI's control and the CLI with a progress bar.

Why a size limit: the models take nothing from detail beyond their LQ size. A face whose aligned
crop spans more source pixels than that is shrunk before restoring, and from a little above the LQ
size Lanczos keeps more of it than the restoration adds (the face-size study, docs/experiments.md).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import torch
from PIL import Image

from .checks import check_float, check_int
from .faces.detect import FACE_SIZE_RANGE, FaceAlignment, align_faces, check_images
from .faces.paste import check_paste, face_masks, paste_faces
from .files import from_pil, to_pil

__all__ = ["MAX_FACE_FACTOR", "AUTO", "NO_LIMIT", "UPSCALED_BY_RANGE", "face_limit", "check_upscaled_by",
           "split_by_size", "describe_faces", "FoundFaces", "find_faces", "PhotoResult", "restore_photo",
           "upscale_lanczos"]

# Measured with the default x4 model against Lanczos x4 by the aligned crop's span in the photo
# (studies/face_size_study.py on 82 held-out Pixabay portraits, docs/demo.md): ahead in PSNR and
# SSIM at 16 and 18 px (+1.2, +0.17 dB), behind from 20 px (-0.4 dB; -1.6 dB at 24 px). The 1927
# demo photo set the same limit with the earlier model. So faces are restored up to 1.125 x the
# model's LQ size: 18 px for the x4 and x8 models (faces about 10 px wide), 36 px for lpip_x2_64.
MAX_FACE_FACTOR = 1.125
AUTO, NO_LIMIT = 0, -1  # values of max_face_px
UPSCALED_BY_RANGE = (0.1, 64.0)  # how much a photo may have been enlarged before its faces are found


def face_limit(max_face_px: float, lq_size: int) -> float | None:
    """The limit in source px (None: no limit). ``max_face_px``: AUTO (0) = MAX_FACE_FACTOR x the
    model's LQ size, NO_LIMIT (-1), or a number of px."""
    lq_size = check_int("lq_size", lq_size, 1)
    if isinstance(max_face_px, numbers.Real) and not isinstance(max_face_px, bool) and max_face_px == NO_LIMIT:
        return None
    px = check_float("max_face_px", max_face_px, 0, math.inf,
                     hint=f"{AUTO} = automatic, {MAX_FACE_FACTOR:g} x the model's face size; {NO_LIMIT} = no limit")
    return MAX_FACE_FACTOR * lq_size if px == AUTO else px


def check_upscaled_by(upscaled_by) -> float:
    """How much the image was enlarged before its faces were found: a number in UPSCALED_BY_RANGE."""
    return check_float("upscaled_by", upscaled_by, *UPSCALED_BY_RANGE, hint="1 = the photo as taken")


def split_by_size(alignments: list[FaceAlignment], limit: float | None,
                  upscaled_by: float = 1.0) -> tuple[list[int], list[int]]:
    """(indices to restore, indices to leave alone). A face is left alone when its crop spans more
    than ``limit`` px of the photo as taken: its span in this image over ``upscaled_by`` (how much
    the image was enlarged before the faces were found)."""
    upscaled_by = check_upscaled_by(upscaled_by)
    keep, skip = [], []
    for i, al in enumerate(alignments):
        (skip if limit is not None and al.source_side / upscaled_by > limit + 1e-6 else keep).append(i)
    return keep, skip


def describe_faces(alignments: list[FaceAlignment], keep: list[int], skip: list[int], limit: float | None,
                   upscaled_by: float = 1.0) -> str:
    """One line for a node's text or the CLI: how many faces, which were left alone and why."""
    if not alignments:
        return "no face found"
    sizes = [al.source_side / upscaled_by for al in alignments]
    many = len({al.image_index for al in alignments}) > 1

    def name(i):
        return f"image {alignments[i].image_index} face {i}" if many else f"face {i}"

    span = (lambda ids: f"{min(sizes[i] for i in ids):.0f}-{max(sizes[i] for i in ids):.0f} px"
            if len(ids) > 1 else f"{sizes[ids[0]]:.0f} px")
    plural = "s" * (len(alignments) != 1)
    text = f"{len(alignments)} face{plural} found (crops of {span(range(len(sizes)))} in the photo)"
    text += f"; restored {len(keep)}" + (f" ({span(keep)})" if keep else "")
    if skip:
        text += (f"; left alone {len(skip)} bigger than {limit:.0f} px (the model's limit; Lanczos keeps more of "
                 "them): " + ", ".join(f"{name(i)} ({sizes[i]:.1f} px)" for i in skip))
    return text


@dataclass
class FoundFaces:
    """What :func:`find_faces` returns: every face found (``crops`` and their ``alignments``, in
    detection order), the indices of those within the size limit (``keep``) and of those left alone
    (``skip``), the ``limit`` in source px (None: none) and :func:`describe_faces`' line."""

    crops: torch.Tensor
    alignments: list[FaceAlignment]
    keep: list[int]
    skip: list[int]
    limit: float | None
    text: str

    @property
    def kept(self) -> list[FaceAlignment]:
        return [self.alignments[i] for i in self.keep]

    @property
    def skipped(self) -> list[FaceAlignment]:
        return [self.alignments[i] for i in self.skip]


def find_faces(images: torch.Tensor, *, crop_size: int, lq_size: int, max_face_px: float = AUTO,
               upscaled_by: float = 1.0, select: str = "all", index: int = 0, padding: float = 0.0, upsample: int = 1,
               min_score: float = 0.0, mask: torch.Tensor | None = None) -> FoundFaces:
    """The faces of BCHW ``images`` cut at ``crop_size`` px, split by the size limit
    (:func:`face_limit` of ``max_face_px`` and the model's ``lq_size``; :func:`split_by_size` for
    ``upscaled_by``). Every option is checked before the first image is searched. ``select``,
    ``index``, ``padding``, ``upsample``, ``min_score``, ``mask``: as
    :func:`~lpip_core.faces.detect.align_faces`."""
    x = check_images(images, "images", batched=True)
    check_int("crop_size", crop_size, *FACE_SIZE_RANGE)
    limit = face_limit(max_face_px, lq_size)
    check_upscaled_by(upscaled_by)
    crops, alignments = align_faces(x, face_size=crop_size, select=select, index=index, padding=padding,
                                    upsample=upsample, min_score=min_score, mask=mask)
    keep, skip = split_by_size(alignments, limit, upscaled_by)
    return FoundFaces(crops, alignments, keep, skip, limit, describe_faces(alignments, keep, skip, limit, upscaled_by))


@dataclass
class PhotoResult:
    """What :func:`restore_photo` returns: the images with the restored faces pasted back, the
    restored crops and their alignments, the faces left alone, the paste masks (B, H, W: 0 where a
    pixel is unchanged, so 0 on every face left alone), :func:`describe_faces`'s line and every
    face found, in detection order (the numbering of the line)."""

    images: torch.Tensor
    faces: torch.Tensor
    restored: list[FaceAlignment]
    skipped: list[FaceAlignment]
    masks: torch.Tensor
    text: str
    found: list[FaceAlignment]


def restore_photo(images: torch.Tensor, restore_crops: Callable[[torch.Tensor], torch.Tensor], *, crop_size: int,
                  lq_size: int, max_face_px: float = AUTO, upscaled_by: float = 1.0, select: str = "all",
                  upsample: int = 1, min_score: float = 0.0, mask: torch.Tensor | None = None, feather: float = 0.1,
                  color_match: str = "none", strength: float = 1.0) -> PhotoResult:
    """The faces of BCHW ``images`` found as :func:`find_faces` finds them, those within the size
    limit restored by ``restore_crops`` (N, 3, s, s) -> (N, 3, S, S) in one call and pasted back;
    ``feather``, ``color_match``, ``strength``: as :func:`~lpip_core.faces.paste.paste_faces`
    (checked before anything runs)."""
    x = check_images(images, "images", batched=True)
    check_paste(feather, color_match, strength)
    found = find_faces(x, crop_size=crop_size, lq_size=lq_size, max_face_px=max_face_px, upscaled_by=upscaled_by,
                       select=select, upsample=upsample, min_score=min_score, mask=mask)
    kept = found.kept
    count, _, h, w = x.shape
    if not kept:
        return PhotoResult(x.clone(), found.crops[:0], [], found.skipped, face_masks([], count, (h, w)), found.text,
                           found.alignments)
    restored = restore_crops(found.crops[found.keep]).to(x.device)
    out = paste_faces(x, restored, kept, feather=feather, color_match=color_match, strength=strength)
    masks = face_masks(kept, count, (h, w), feather=feather, strength=strength)
    return PhotoResult(out, restored, kept, found.skipped, masks, found.text, found.alignments)


def upscale_lanczos(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Enlarge BCHW images with Lanczos as ComfyUI's *Upscale Image By* (lanczos) does (PIL, 8-bit):
    the step before finding tiny faces."""
    x = check_images(images, "images", batched=True)
    factor = check_float("factor", factor, *UPSCALED_BY_RANGE)
    if factor == 1:
        return x
    h, w = round(x.shape[-2] * factor), round(x.shape[-1] * factor)
    return torch.cat([from_pil(to_pil(im).resize((w, h), Image.Resampling.LANCZOS)) for im in x])
