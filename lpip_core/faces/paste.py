"""Paste restored face crops back into the images they were cut from, with a feathered mask."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import check_choice, check_float
from .detect import FaceAlignment, check_image_size, check_images
from .warp import compose, footprint, invert, rescale_crop_matrix, shift, warp_affine

__all__ = ["COLOR_MATCH_MODES", "FEATHER_RANGE", "check_paste", "face_masks", "paste_faces"]

COLOR_MATCH_MODES = ("none", "mean_std")
FEATHER_RANGE = (0.0, 0.5)  # the soft edge, as a fraction of the crop side
FEATHER_HINT = "a fraction of the crop side"


def paste_faces(
    images: torch.Tensor,
    faces: torch.Tensor,
    alignments: list[FaceAlignment],
    *,
    feather: float = 0.1,
    color_match: str = "none",
    strength: float = 1.0,
) -> torch.Tensor:
    """Warp (restored) face crops back into their source images, in order.

    ``faces[i]`` (square, any side: its alignment's matrix is rescaled to it) goes into
    ``images[alignments[i].image_index]``. The blend mask is 1 inside the crop's square and
    falls smoothly to 0 at its edge over ``feather`` x the crop side (a fraction in [0, 0.5]; the
    FFHQ crop is about twice the face, so the default 0.1 fades well outside the face). Pixels
    outside the crop's footprint are returned bit-for-bit. ``color_match='mean_std'`` first gives
    each face the per-channel mean and std of the source's own crop. ``strength`` in [0, 1] scales
    the mask: 1 pastes the faces, 0.5 blends half of each into the original, 0 changes nothing.
    Returns a new tensor.
    """
    x = check_images(images, "images", batched=True)
    feather, color_match, strength = check_paste(feather, color_match, strength)
    if not isinstance(alignments, (list, tuple)) or not all(isinstance(a, FaceAlignment) for a in alignments):
        raise ValueError("alignments must be a list of FaceAlignment (from align_faces)")
    if len(alignments) == 0 and isinstance(faces, torch.Tensor) and faces.dim() == 4 and faces.shape[0] == 0:
        return x.clone()  # nothing was detected upstream
    f = check_images(faces, "faces", batched=True)
    if f.shape[0] != len(alignments):
        raise ValueError(f"faces has {f.shape[0]} crops but alignments has {len(alignments)}; need one each")
    if f.shape[-1] != f.shape[-2]:
        raise ValueError(f"faces must be square crops, got {f.shape[-2]}x{f.shape[-1]}")
    f = f.to(x.device)
    k = f.shape[-1]
    out = x.clone()
    for i, al in enumerate(alignments):
        if not 0 <= al.image_index < x.shape[0]:
            raise ValueError(f"alignments[{i}].image_index {al.image_index} is out of range for {x.shape[0]} images")
        check_image_size(x[al.image_index : al.image_index + 1], al, f"alignments[{i}]")
        b = al.image_index
        m = rescale_crop_matrix(np.asarray(al.matrix, np.float64), al.face_size, k)  # src -> crop px
        face = f[i : i + 1]
        if color_match == "mean_std":
            face = _match_mean_std(face, warp_affine(out[b : b + 1], m, (k, k)))
        _paste_one(out, b, face, m, feather, strength)
    return out


def check_paste(feather=0.1, color_match="none", strength=1.0) -> tuple[float, str, float]:
    """:func:`paste_faces`' options, checked (the photo pipeline checks them before it restores)."""
    return (check_float("feather", feather, *FEATHER_RANGE, hint=FEATHER_HINT),
            check_choice("color_match", color_match, COLOR_MATCH_MODES),
            check_float("strength", strength, 0, 1, hint="1 = the restored faces"))


def face_masks(alignments: list[FaceAlignment], image_count: int, image_size: tuple[int, int], *,
               feather: float = 0.0, strength: float = 1.0) -> torch.Tensor:
    """Where the faces of ``alignments`` lie: (image_count, H, W) float32 in [0, 1], per image the
    union (max) of its crops' footprints, softened at the edge and scaled by ``strength`` as
    :func:`paste_faces` blends them (``feather`` 0: a hard-edged footprint). Pixels that paste-back
    leaves unchanged are 0."""
    feather = check_float("feather", feather, *FEATHER_RANGE, hint=FEATHER_HINT)
    h, w = image_size
    masks = torch.zeros(image_count, h, w)
    for i, al in enumerate(alignments):
        if not 0 <= al.image_index < image_count or tuple(al.image_size) != (h, w):
            raise ValueError(f"alignments[{i}] does not belong to {image_count} image(s) of {w}x{h} px")
        k = al.face_size
        m = np.asarray(al.matrix, np.float64)
        box = _footprint_box(m, k, h, w)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        region = masks[al.image_index, y0:y1, x0:x1]
        torch.maximum(region, _feather_mask(m, x0, y0, x1, y1, k, feather, masks.device) * strength, out=region)
    return masks


def _footprint_box(m: np.ndarray, k: int, h: int, w: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the source pixels a k px crop of matrix ``m`` covers, clipped to the image."""
    sx, sy = footprint(invert(m), k, k)
    x0, x1 = max(0, math.floor(sx.min())), min(w, math.ceil(sx.max()) + 1)
    y0, y1 = max(0, math.floor(sy.min())), min(h, math.ceil(sy.max()) + 1)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def _paste_one(out: torch.Tensor, b: int, face: torch.Tensor, m: np.ndarray, feather: float,
               strength: float) -> None:
    """Blend one crop into ``out[b]`` in place, touching only its footprint's bounding box."""
    _, _, h, w = out.shape
    k = face.shape[-1]
    box = _footprint_box(m, k, h, w)
    if box is None:
        return
    x0, y0, x1, y1 = box
    to_region = compose(shift(-x0, -y0), invert(m))  # crop px -> region px
    warped = warp_affine(face, to_region, (y1 - y0, x1 - x0), padding_mode="border")
    mask = _feather_mask(m, x0, y0, x1, y1, k, feather, out.device) * strength
    region = out[b, :, y0:y1, x0:x1]
    out[b, :, y0:y1, x0:x1] = region + mask * (warped[0] - region)


def _feather_mask(m, x0, y0, x1, y1, k, feather, device) -> torch.Tensor:
    """Blend weight per source pixel of the box: smoothstep of the distance to the crop's edge."""
    xs = torch.arange(x0, x1, device=device, dtype=torch.float64)
    ys = torch.arange(y0, y1, device=device, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    # position in the crop as a fraction of its side (0..1 inside)
    fu = (m[0, 0] * xx + m[0, 1] * yy + m[0, 2] + 0.5) / k
    fv = (m[1, 0] * xx + m[1, 1] * yy + m[1, 2] + 0.5) / k
    d = torch.minimum(torch.minimum(fu, 1 - fu), torch.minimum(fv, 1 - fv))
    if feather > 0:
        t = (d / feather).clamp(0, 1)
        mask = t * t * (3 - 2 * t)
    else:
        mask = (d > 0).double()
    return mask.float()


def _match_mean_std(face: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Give ``face`` the per-channel mean and std of ``ref`` (both 1x3xSxS)."""
    mf, sf = face.mean(dim=(2, 3), keepdim=True), face.std(dim=(2, 3), keepdim=True)
    mr, sr = ref.mean(dim=(2, 3), keepdim=True), ref.std(dim=(2, 3), keepdim=True)
    return ((face - mf) * (sr / sf.clamp_min(1e-4)) + mr).clamp(0.0, 1.0)
