"""Face detection and FFHQ-style alignment (paste-back: ``lpip_core.faces.paste``).

dlib finds faces (HOG frontal detector) and five landmarks (``shape_predictor_5_face_landmarks``,
from the CC0 ``face-recognition-models`` package); the alignment and the crop (``lpip_core.faces.warp``)
are pure torch, so they run on CPU and GPU tensors alike.

Conventions
-----------
* Images are float32 RGB in [0, 1], CHW (one image) or BCHW (a batch).
* Point coordinates are in source pixels with pixel *centres* on integers (pixel ``(i, j)`` covers
  ``[i - 0.5, i + 0.5]``), the convention of dlib and OpenCV.
* The five landmarks are in dlib's order (sides as seen in the image):
  0 outer and 1 inner corner of the eye on the image's right (the subject's left eye),
  2 outer and 3 inner corner of the eye on the image's left, 4 base of the nose (subnasale).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from ..checks import check_choice, check_float, check_int, check_int_list
from .warp import rescale_crop_matrix, warp_affine

__all__ = [
    "FaceDetection",
    "FaceAlignment",
    "detect_faces",
    "predict_landmarks",
    "alignment_matrix",
    "align_faces",
    "warp_face",
    "check_detection",
    "check_image_size",
    "check_images",
    "to_uint8_hwc",
    "dlib_model_path",
    "import_dlib",
    "load_detector",
    "load_shape_predictor",
]

FACE_SIZE_RANGE = (16, 2048)
PADDING_RANGE = (0.0, 4.0)
UPSAMPLE_RANGE = (0, 3)
SELECT_MODES = ("largest", "all", "index")

# dlib's 5-point model has no mouth, which the FFHQ recipe needs. The mouth centre is put on the
# perpendicular through the eye midpoint, MOUTH_DEPTH times as far below the eye line as the nose
# base. 1.5 makes our crops the same size (median ratio 1.00) as the project's aligned512 crops,
# which were made with detected mouth corners; ignoring the nose's sideways offset (it swings more
# than the mouth under yaw) halves the roll disagreement with them (2.1 vs 3.4 degrees std).
MOUTH_DEPTH = 1.5
# Landmarks are predicted on a patch resampled so that the face box is this many pixels wide:
# sub-pixel precision for small faces, the same accuracy whatever the face size.
_LANDMARK_BOX_PX = 192


# ----------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class FaceDetection:
    """One face found by :func:`detect_faces`: box, 5 landmarks (module docstring order), score."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    score: float

    @property
    def area(self) -> float:
        """Box area in source pixels (what 'largest' means)."""
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


@dataclass(frozen=True)
class FaceAlignment:
    """One aligned face: everything needed to cut it out again or paste a restored crop back.

    ``matrix`` is the 2x3 affine map from source pixels to pixels of a ``face_size`` crop
    (use :meth:`resized` for a crop of another side); ``box`` (x0, y0, x1, y1) and the 5
    ``landmarks`` (dlib order, see the module docstring) are in source pixels; ``image_size`` is
    the source's (H, W); ``score`` is the detector's confidence (0 when the landmarks came from
    elsewhere). Frozen and JSON round-trippable via :meth:`to_dict` / :meth:`from_dict`.
    """

    image_index: int
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    matrix: tuple[tuple[float, float, float], tuple[float, float, float]]
    face_size: int
    image_size: tuple[int, int]
    score: float = 0.0

    @classmethod
    def from_landmarks(
        cls,
        landmarks,
        *,
        image_index: int = 0,
        image_size: tuple[int, int],
        face_size: int = 512,
        padding: float = 0.0,
        box: tuple[float, float, float, float] | None = None,
        score: float = 0.0,
    ) -> "FaceAlignment":
        """Alignment from 5 dlib-order landmarks (e.g. from :func:`detect_faces` or a dataset)."""
        pts = _check_landmarks(landmarks)
        image_size = check_int_list("image_size", image_size, 1, None, min_len=2, max_len=2)  # (H, W)
        if box is None:
            box = (*pts.min(0).tolist(), *pts.max(0).tolist())
        return cls(
            image_index=int(image_index),
            box=tuple(float(v) for v in box),
            landmarks=tuple((float(x), float(y)) for x, y in pts),
            matrix=alignment_matrix(pts, face_size=face_size, padding=padding),
            face_size=int(face_size),
            image_size=(int(image_size[0]), int(image_size[1])),
            score=float(score),
        )

    @property
    def source_side(self) -> float:
        """How many source pixels the crop's side spans: the detail the photo holds for this face
        (a 16 px crop that spans 40 source px throws most of it away)."""
        return self.face_size / math.hypot(self.matrix[0][0], self.matrix[0][1])

    def resized(self, face_size: int) -> "FaceAlignment":
        """The same alignment for a crop of another side (e.g. a restored crop at 4x)."""
        check_int("face_size", face_size, *FACE_SIZE_RANGE)
        m = rescale_crop_matrix(np.asarray(self.matrix, np.float64), self.face_size, face_size)
        return replace(self, matrix=_as_tuple_matrix(m), face_size=int(face_size))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (lists instead of tuples)."""
        d = asdict(self)
        return {k: _tuples_to_lists(v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FaceAlignment":
        """Inverse of :meth:`to_dict`; raises ValueError on missing or malformed fields."""
        if not isinstance(d, dict):
            raise ValueError(f"FaceAlignment.from_dict: expected a dict, got {type(d).__name__}")
        need = ("image_index", "box", "landmarks", "matrix", "face_size", "image_size")
        missing = [k for k in need if k not in d]
        if missing:
            raise ValueError(f"FaceAlignment.from_dict: missing field(s) {missing}")
        try:
            out = cls(
                image_index=int(d["image_index"]),
                box=tuple(float(v) for v in d["box"]),
                landmarks=tuple((float(x), float(y)) for x, y in d["landmarks"]),
                matrix=tuple(tuple(float(v) for v in row) for row in d["matrix"]),
                face_size=int(d["face_size"]),
                image_size=tuple(int(v) for v in d["image_size"]),
                score=float(d.get("score", 0.0)),
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"FaceAlignment.from_dict: malformed field ({e})") from None
        if len(out.box) != 4 or len(out.image_size) != 2 or len(out.matrix) != 2 or any(
            len(r) != 3 for r in out.matrix
        ):
            raise ValueError("FaceAlignment.from_dict: box needs 4 numbers, image_size 2, matrix 2x3")
        return out


def _tuples_to_lists(v):
    if isinstance(v, (tuple, list)):
        return [_tuples_to_lists(x) for x in v]
    return v


def _as_tuple_matrix(m: np.ndarray):
    return tuple(tuple(float(v) for v in row) for row in m[:2])


# ----------------------------------------------------------------------------------------------
# input checks


def check_images(x, name: str = "images", *, batched: bool | None = None) -> torch.Tensor:
    """Validate an RGB image tensor in [0, 1]; return it as float32 BCHW.

    ``batched``: True requires BCHW, False requires CHW, None accepts both. Values a hair outside
    [0, 1] (float rounding) are clamped; anything further out (e.g. 0..255 or -1..1) is an error.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    dims = {True: (4,), False: (3,), None: (3, 4)}[batched]
    shape_txt = {True: "[B, 3, H, W]", False: "[3, H, W]", None: "[3, H, W] or [B, 3, H, W]"}[batched]
    if x.dim() not in dims:
        raise ValueError(f"{name} must have shape {shape_txt}, got {list(x.shape)}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.shape[1] != 3:
        raise ValueError(f"{name} must have 3 (RGB) channels in dim 1, got shape {list(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {list(x.shape)}); need B >= 1, H >= 1, W >= 1")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}")
    x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf; values must be finite, in [0, 1]")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{name} values must be in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    return x.clamp(0.0, 1.0)


def check_detection(upsample=1, min_size=0.0, min_score=0.0) -> tuple[int, float, float]:
    """:func:`detect_faces`' options, checked (the command line checks them before any work)."""
    return (check_int("upsample", upsample, *UPSAMPLE_RANGE, hint="how often the detector doubles the image"),
            check_float("min_size", min_size, 0, math.inf, hint="px"),
            check_float("min_score", min_score, -math.inf, math.inf, hint="dlib HOG score, 0 = dlib's default"))


def _check_landmarks(landmarks) -> np.ndarray:
    pts = np.asarray(landmarks.detach().cpu() if isinstance(landmarks, torch.Tensor) else landmarks, dtype=np.float64)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        raise ValueError(f"landmarks must be 5 finite (x, y) points in dlib order, got shape {pts.shape}")
    return pts


# ----------------------------------------------------------------------------------------------
# dlib models (loaded lazily, once)


def dlib_model_path(filename: str) -> str:
    """Path of a model file shipped in the ``face_recognition_models`` package.

    The package's own ``__init__`` needs pkg_resources (gone from recent setuptools), so the file
    is found from the package spec without importing it.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the dlib face models are missing: pip install face-recognition-models (CC0 model files)"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", filename)
    if not os.path.isfile(path):
        raise RuntimeError(f"dlib model file not found: {path} (reinstall face-recognition-models)")
    return path


def import_dlib():
    """The dlib module, imported on first use so that importing this module stays fast."""
    try:
        import dlib
    except ImportError:
        raise RuntimeError("dlib is missing: pip install dlib-bin (prebuilt) or dlib") from None
    return dlib


@functools.lru_cache(maxsize=None)
def load_detector():
    """dlib's HOG frontal face detector (cached)."""
    return import_dlib().get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def load_shape_predictor():
    """dlib's 5-point landmark predictor (cached)."""
    return import_dlib().shape_predictor(dlib_model_path("shape_predictor_5_face_landmarks.dat"))


def to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """CHW float [0, 1] -> contiguous HWC uint8 numpy array, the layout dlib reads."""
    a = (image.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
    return np.ascontiguousarray(a.permute(1, 2, 0).cpu().numpy())


# ----------------------------------------------------------------------------------------------
# detection


def detect_faces(
    image: torch.Tensor, *, upsample: int = 1, min_size: float = 0.0, min_score: float = 0.0
) -> list[FaceDetection]:
    """Find faces in one CHW image; return them largest first.

    ``upsample``: how often dlib doubles the image before searching (0 finds faces from about
    80 px, 1 from about 40 px, each step ~4x slower). ``min_size``: drop boxes narrower than this
    (source px). ``min_score``: dlib's HOG score threshold (0 is dlib's default; real faces score
    about 0.2..3, a rare false positive on textured patches scores about 0.1).
    """
    x = check_images(image, "image", batched=False)[0]
    upsample, min_size, min_score = check_detection(upsample, min_size, min_score)
    rects, scores, _ = load_detector().run(to_uint8_hwc(x), upsample, min_score)
    faces = []
    for r, s in zip(rects, scores):
        box = (float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1))
        if box[2] - box[0] < min_size:
            continue
        faces.append(FaceDetection(box, predict_landmarks(x, box), float(s)))
    faces.sort(key=lambda f: -f.area)
    return faces


def predict_landmarks(image: torch.Tensor, box) -> tuple[tuple[float, float], ...]:
    """5 landmarks (dlib order, source px) for the face in ``box`` of a CHW image.

    dlib returns integer points, so the predictor runs on a patch resampled to put the box at
    ~192 px: sub-pixel landmarks for small faces, no wasted work on big ones.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0, 1.0)
    s = _LANDMARK_BOX_PX / side
    margin = 0.25 * side
    out = int(round((side + 2 * margin) * s))
    # source px -> patch px: (p - (corner - margin)) * s
    m = np.array([[s, 0.0, -(x0 - margin) * s], [0.0, s, -(y0 - margin) * s]])
    patch = warp_affine(image.unsqueeze(0), m, (out, out))[0]
    dlib = import_dlib()
    bx0, by0 = margin * s, margin * s
    rect = dlib.rectangle(
        int(round(bx0)), int(round(by0)),
        int(round(bx0 + (x1 - x0) * s)) - 1, int(round(by0 + (y1 - y0) * s)) - 1,
    )
    shape = load_shape_predictor()(to_uint8_hwc(patch), rect)
    return tuple(
        (float(p.x / s + x0 - margin), float(p.y / s + y0 - margin)) for p in shape.parts()
    )


# ----------------------------------------------------------------------------------------------
# alignment geometry


def alignment_matrix(landmarks, face_size: int = 512, padding: float = 0.0):
    """2x3 affine (source px -> crop px) of the FFHQ-style crop for 5 dlib landmarks.

    The FFHQ dataset recipe builds an oriented square from the eye centres and the mouth centre:
    side = 2 * max(2 |eye-to-eye|, 1.8 |eye-to-mouth|), centred 0.1 eye-to-mouth below the eye
    midpoint. dlib's 5 points have no mouth, so the mouth centre is estimated (see MOUTH_DEPTH):
    on the perpendicular through the eye midpoint, 1.5x the nose base's depth below the eye line.
    The square is thus upright along the eye line. ``padding`` widens the square by (1 + padding)
    around the same centre (0 = the FFHQ crop).
    """
    face_size = check_int("face_size", face_size, *FACE_SIZE_RANGE)
    padding = check_float("padding", padding, *PADDING_RANGE)
    p = _check_landmarks(landmarks)
    eye_img_left, eye_img_right = p[2:4].mean(0), p[0:2].mean(0)
    eye_mid = (eye_img_left + eye_img_right) / 2
    eye_to_eye = eye_img_right - eye_img_left
    eye_dist = float(np.hypot(*eye_to_eye))
    if eye_dist < 1e-6:
        raise ValueError("landmarks: the two eyes coincide; cannot align")
    u = eye_to_eye / eye_dist  # along the eye line, image left -> right
    down = np.array([-u[1], u[0]])  # perpendicular, towards the mouth for an upright face
    # depth of the nose base below the eye line; kept sane for odd landmark sets
    mouth_depth = MOUTH_DEPTH * max(float((p[4] - eye_mid) @ down), 0.3 * eye_dist)
    half = max(2.0 * eye_dist, 1.8 * mouth_depth) * (1.0 + padding)  # half the quad side
    centre = eye_mid + 0.1 * mouth_depth * down
    scale = face_size / (2.0 * half)  # crop px per source px
    rot = np.stack([u, down])  # rows: crop x and y axes in source coordinates
    a = scale * rot
    t = (face_size - 1) / 2.0 - a @ centre  # quad centre -> crop centre (pixel-centre convention)
    return _as_tuple_matrix(np.concatenate([a, t[:, None]], axis=1))


# ----------------------------------------------------------------------------------------------
# public crop


def warp_face(image: torch.Tensor, alignment: FaceAlignment, face_size: int | None = None) -> torch.Tensor:
    """Cut one aligned face (3, S, S) from a CHW image or from ``image[alignment.image_index]``.

    ``face_size`` defaults to the alignment's own; any other side rescales its matrix.
    """
    if not isinstance(alignment, FaceAlignment):
        raise ValueError(f"alignment must be a FaceAlignment, got {type(alignment).__name__}")
    x = check_images(image, "image")
    if image.dim() == 4:
        if not 0 <= alignment.image_index < x.shape[0]:
            raise ValueError(
                f"alignment.image_index {alignment.image_index} is out of range for a batch of {x.shape[0]}"
            )
        x = x[alignment.image_index : alignment.image_index + 1]
    check_image_size(x, alignment, "alignment")
    size = alignment.face_size if face_size is None else check_int("face_size", face_size, *FACE_SIZE_RANGE)
    m = rescale_crop_matrix(np.asarray(alignment.matrix, np.float64), alignment.face_size, size)
    return warp_affine(x, m, (size, size))[0]


def align_faces(
    images: torch.Tensor,
    *,
    face_size: int = 512,
    select: str = "largest",
    index: int = 0,
    padding: float = 0.0,
    upsample: int = 1,
    min_size: float = 0.0,
    min_score: float = 0.0,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[FaceAlignment]]:
    """Detect faces in every image and cut FFHQ-style crops.

    ``select``: 'largest' (one face per image), 'all' (every face, largest first) or 'index'
    (the ``index``-th largest, 0-based). Images without a (selected) face give no crop.
    ``mask``: optional (1 or B, H, W) weights in [0, 1], any size (resized to the images): only
    faces whose detection box lies mostly in the mask (mean weight >= 0.5) are taken, before
    ``select`` picks among them.
    Returns crops (N, 3, face_size, face_size) on the images' device and one FaceAlignment each,
    in image order; ``image_index`` says where each came from. The other keywords go to
    :func:`detect_faces`.
    """
    x = check_images(images, "images")
    face_size = check_int("face_size", face_size, *FACE_SIZE_RANGE)
    padding = check_float("padding", padding, *PADDING_RANGE)
    select = check_choice("select", select, SELECT_MODES)
    index = check_int("index", index, 0, hint="0 = the largest face")
    check_detection(upsample, min_size, min_score)  # before the first image is searched
    weights = None if mask is None else _check_mask(mask, x)
    crops, alignments = [], []
    for b in range(x.shape[0]):
        found = detect_faces(x[b], upsample=upsample, min_size=min_size, min_score=min_score)
        if weights is not None:
            found = [d for d in found if _box_weight(weights[min(b, weights.shape[0] - 1)], d.box) >= 0.5]
        if select == "largest":
            found = found[:1]
        elif select == "index":
            found = found[index : index + 1]
        for det in found:
            al = FaceAlignment.from_landmarks(
                det.landmarks, image_index=b, image_size=tuple(x.shape[-2:]), face_size=face_size,
                padding=padding, box=det.box, score=det.score,
            )
            crops.append(warp_affine(x[b : b + 1], np.asarray(al.matrix), (face_size, face_size)))
            alignments.append(al)
    if not crops:
        return x.new_zeros((0, 3, face_size, face_size)), []
    return torch.cat(crops), alignments


def _check_mask(mask, images: torch.Tensor) -> torch.Tensor:
    """A (1 or B, H, W) mask in [0, 1], resized to the images' size (bilinear)."""
    if not isinstance(mask, torch.Tensor) or not mask.is_floating_point():
        raise ValueError(f"mask must be a float tensor (B, H, W) in [0, 1], got {type(mask).__name__}")
    m = mask[None] if mask.dim() == 2 else mask
    if m.dim() != 3 or m.shape[0] not in (1, images.shape[0]) or min(m.shape[-2:]) < 1:
        raise ValueError(f"mask must have shape (1 or {images.shape[0]}, H, W) for {images.shape[0]} image(s), "
                         f"got {tuple(mask.shape)}")
    if m.numel() and (not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1):
        raise ValueError("mask values must lie in [0, 1]")
    if tuple(m.shape[-2:]) != tuple(images.shape[-2:]):
        m = torch.nn.functional.interpolate(m[:, None].float(), size=tuple(images.shape[-2:]), mode="bilinear",
                                            align_corners=False)[:, 0]
    return m.float().cpu()


def _box_weight(mask: torch.Tensor, box) -> float:
    """Mean mask weight inside a detection box (x0, y0, x1, y1), clipped to the image."""
    h, w = mask.shape
    x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x1, y1 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return float(mask[y0:y1, x0:x1].mean())


def check_image_size(x: torch.Tensor, al: FaceAlignment, name: str) -> None:
    """An alignment only fits the image size it was detected in."""
    if tuple(x.shape[-2:]) != tuple(al.image_size):
        raise ValueError(
            f"{name} was made for an image of size (H, W) = {tuple(al.image_size)}, "
            f"but the image is {tuple(x.shape[-2:])}"
        )
