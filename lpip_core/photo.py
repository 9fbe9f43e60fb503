"""Restore the faces of whole photos: find them, leave the big ones alone, restore, paste back.

The one photo pipeline behind the Restore Faces node, Face Crop & Align's size limit and
`lpip-diff restore --photo`. The restoration itself is passed in (`restore_crops`), so that the
node runs it under ComfyUI's control and the CLI with a progress bar.

Why a size limit: the models take nothing from detail beyond their LQ size. A face whose aligned
crop spans more source pixels than that is shrunk before restoring, and from a little above the LQ
size Lanczos keeps more of it than the restoration adds (README "Faces bigger than 16 px").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from PIL import Image

from .faces.detect import FaceAlignment, align_faces, check_images
from .faces.paste import face_masks, paste_faces
from .files import from_pil, to_pil

__all__ = ["MAX_FACE_FACTOR", "AUTO", "NO_LIMIT", "face_limit", "check_upscaled_by", "split_by_size", "describe_faces",
           "PhotoResult", "restore_photo", "upscale_lanczos"]

# Measured on the 1927 photo's 29 faces shrunk to 10-12 px (tools/demo_score.py, README "The demo"),
# restored by the x4 model against Lanczos x4, by the crop's span in the photo: up to 17 px it wins
# PSNR, SSIM and ID Sim; at 17-18 px it trails by 0.2 dB, ties SSIM and wins ID Sim; from 18 px it
# loses PSNR and SSIM, more the bigger the face (-1.1 dB at 20-22 px, -3.2 dB at 24-27 px). The
# face-size study on held-out faces agrees (Lanczos ahead from 24 px). So faces are restored up to
# 1.125 x the model's LQ size: 18 px for the x4 and x8 models (faces about 10 px wide), 36 px for
# lpip_x2_64.
MAX_FACE_FACTOR = 1.125
AUTO, NO_LIMIT = 0, -1  # values of max_face_px


def face_limit(max_face_px: float, lq_size: int) -> float | None:
    """The limit in source px (None: no limit). ``max_face_px``: AUTO (0) = MAX_FACE_FACTOR x the
    model's LQ size, NO_LIMIT (-1), or a number of px."""
    if isinstance(max_face_px, bool) or not isinstance(max_face_px, (int, float)) or not (
            max_face_px >= 0 or max_face_px == NO_LIMIT):
        raise ValueError(f"max_face_px must be {AUTO} (automatic: {MAX_FACE_FACTOR:g} x the model's face size), "
                         f"{NO_LIMIT} (no limit) or a size in px > 0, got {max_face_px!r}")
    if max_face_px == NO_LIMIT:
        return None
    return MAX_FACE_FACTOR * lq_size if max_face_px == AUTO else float(max_face_px)


def check_upscaled_by(upscaled_by) -> float:
    if isinstance(upscaled_by, bool) or not isinstance(upscaled_by, (int, float)) or not 0.1 <= upscaled_by <= 64:
        raise ValueError(f"upscaled_by must be a number in [0.1, 64] (1 = the photo as taken), got {upscaled_by!r}")
    return float(upscaled_by)


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
    """Find the faces of BCHW ``images``, cut them at ``crop_size`` px, restore those within the
    size limit (:func:`face_limit` of ``max_face_px`` and the model's ``lq_size``; see
    :func:`split_by_size` for ``upscaled_by``) with ``restore_crops`` (N, 3, s, s) -> (N, 3, S, S)
    in one call, and paste them back. ``select``, ``upsample``, ``min_score``, ``mask``: as
    :func:`~lpip_core.faces.detect.align_faces`; ``feather``, ``color_match``, ``strength``: as
    :func:`~lpip_core.faces.paste.paste_faces`."""
    x = check_images(images, "images", batched=True)
    limit = face_limit(max_face_px, lq_size)
    crops, alignments = align_faces(x, face_size=crop_size, select=select, upsample=upsample, min_score=min_score,
                                    mask=mask)
    keep, skip = split_by_size(alignments, limit, upscaled_by)
    text = describe_faces(alignments, keep, skip, limit, upscaled_by)
    kept = [alignments[i] for i in keep]
    count, _, h, w = x.shape
    if not kept:
        return PhotoResult(x.clone(), crops[:0], [], [alignments[i] for i in skip], face_masks([], count, (h, w)),
                           text, alignments)
    restored = restore_crops(crops[keep]).to(x.device)
    out = paste_faces(x, restored, kept, feather=feather, color_match=color_match, strength=strength)
    masks = face_masks(kept, count, (h, w), feather=feather, strength=strength)
    return PhotoResult(out, restored, kept, [alignments[i] for i in skip], masks, text, alignments)


def upscale_lanczos(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Enlarge BCHW images with Lanczos as ComfyUI's *Upscale Image By* (lanczos) does (PIL, 8-bit):
    the step before finding tiny faces."""
    x = check_images(images, "images", batched=True)
    if factor == 1:
        return x
    h, w = round(x.shape[-2] * factor), round(x.shape[-1] * factor)
    return torch.cat([from_pil(to_pil(im).resize((w, h), Image.Resampling.LANCZOS)) for im in x])
