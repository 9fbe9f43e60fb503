"""Face identity embeddings for the "ID Sim (dlib)" metric.

dlib's ``dlib_face_recognition_resnet_model_v1`` (128-d, CC0 via ``face-recognition-models``) on
the face chip dlib itself would cut (5 landmarks, 150 px, padding 0.25): the network was trained
on exactly that geometry. Inputs are aligned face crops (N, 3, H, W) in [0, 1], any size from
16 px (64 px still works well); each is resampled to a 300 px working image first, so a 64 px
restoration and its 512 px ground truth go through the same pipeline.

Landmarks on a crop: dlib's HOG detector finds the face box (the largest); if it finds none,
as happens on small or blurry crops, the box where faces sit in an FFHQ-style crop
(``CANONICAL_BOX``) is used instead. The 5-point predictor then places the landmarks in that box.
We do not fall back to "the whole crop as the chip": that has another scale and position than
dlib's chip, so such embeddings would not be comparable with the detected ones.

:func:`id_similarity` aligns both images of a pair with the *reference's* landmarks by default,
so the score measures identity, not whether the detector happened to fire on the restoration.

Scale: dlib embeddings are not zero-centred, so cosines run high. On the test portraits the same
person scores about 0.95-0.97, different people about 0.80-0.88, and a crop shrunk to 64 px
against its 256 px original 0.99 (report it as "ID Sim (dlib)", not ArcFace).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .detect import (
    check_images,
    detect_faces,
    dlib_model_path,
    import_dlib,
    predict_landmarks,
    to_uint8_hwc,
)

__all__ = ["face_landmarks", "face_descriptor", "face_embedding", "id_similarity", "identity_scores",
           "EMBEDDING_DIM", "SAME_PERSON_DISTANCE"]

EMBEDDING_DIM = 128
# dlib's published threshold for dlib_face_recognition_resnet_model_v1: descriptors closer than 0.6
# (Euclidean, as the network outputs them) belong to the same person (99.38% on LFW).
SAME_PERSON_DISTANCE = 0.6
WORK_SIZE = 300  # px side of the working image every crop is resampled to
MIN_SIDE = 16
# Median dlib HOG box in our FFHQ-style crops, as fractions of the crop side (x0, y0, x1, y1).
CANONICAL_BOX = (0.18, 0.31, 0.78, 0.91)


@functools.lru_cache(maxsize=None)
def load_face_recognizer():
    """dlib's ResNet face recognition model (cached)."""
    return import_dlib().face_recognition_model_v1(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat"))


def _check_faces(faces, name: str) -> torch.Tensor:
    x = check_images(faces, name, batched=True)
    if min(x.shape[-2:]) < MIN_SIDE:
        raise ValueError(f"{name} crops must be at least {MIN_SIDE} px on each side, got {tuple(x.shape[-2:])}")
    return x


def _work_images(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 3, WORK_SIZE, WORK_SIZE), antialiased when shrinking."""
    if tuple(x.shape[-2:]) == (WORK_SIZE, WORK_SIZE):
        return x
    return F.interpolate(x, size=(WORK_SIZE, WORK_SIZE), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def face_landmarks(faces: torch.Tensor) -> torch.Tensor:
    """5 dlib landmarks per face crop, (N, 5, 2), as fractions of the crop's width and height.

    Fractions (pixel ``p`` of a side ``S`` is ``(p + 0.5) / S``) make the landmarks of a 512 px
    ground truth usable on its 64 px restoration. Order as in :mod:`lpip_core.faces.detect`.
    """
    x = _work_images(_check_faces(faces, "faces"))
    out = np.empty((x.shape[0], 5, 2), np.float64)
    for i, img in enumerate(x.cpu()):
        found = detect_faces(img, upsample=0)
        box = found[0].box if found else tuple(v * WORK_SIZE for v in CANONICAL_BOX)
        out[i] = (np.asarray(predict_landmarks(img, box)) + 0.5) / WORK_SIZE
    return torch.from_numpy(out).float()


def face_embedding(faces: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
    """Unit-norm 128-d dlib identity embeddings (N, 128), float32 on the faces' device.

    ``landmarks``: optional (N, 5, 2) fractions from :func:`face_landmarks` (e.g. of the ground
    truth); by default each crop's own.
    """
    return F.normalize(face_descriptor(faces, landmarks), dim=1)


def face_descriptor(faces: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
    """dlib's 128-d face descriptors (N, 128) as the network outputs them (not unit-norm; the
    scale that :data:`SAME_PERSON_DISTANCE` refers to); arguments as :func:`face_embedding`."""
    x = _check_faces(faces, "faces")
    if landmarks is None:
        landmarks = face_landmarks(x)
    lm = torch.as_tensor(landmarks).detach().cpu().double()
    if lm.shape != (x.shape[0], 5, 2) or not torch.isfinite(lm).all():
        raise ValueError(
            f"landmarks must be finite with shape ({x.shape[0]}, 5, 2) (fractions of the crop), got {tuple(lm.shape)}"
        )
    dlib = import_dlib()
    work = _work_images(x).cpu()
    images, shapes = [], []
    for img, pts in zip(work, lm.numpy() * WORK_SIZE - 0.5):
        parts = [dlib.point(int(round(px)), int(round(py))) for px, py in pts]
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        rect = dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
        dets = dlib.full_object_detections()
        dets.append(dlib.full_object_detection(rect, parts))
        images.append(to_uint8_hwc(img))
        shapes.append(dets)
    vecs = load_face_recognizer().compute_face_descriptor(images, shapes)
    return torch.tensor(np.array([np.asarray(v[0]) for v in vecs]), dtype=torch.float32).to(faces.device)


def id_similarity(a: torch.Tensor, b: torch.Tensor, *, shared_landmarks: bool = True) -> torch.Tensor:
    """Cosine similarity (N,) of dlib identity embeddings, pair by pair.

    ``b`` is the reference (ground truth). With ``shared_landmarks`` (default) both crops are cut
    into dlib chips with ``b``'s landmarks, which suits restorations aligned like their ground
    truth; False finds landmarks on each crop separately. Crop sizes may differ between a and b.
    """
    return identity_scores(a, b, shared_landmarks=shared_landmarks)[0]


def identity_scores(a: torch.Tensor, b: torch.Tensor, *,
                    shared_landmarks: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(ID Sim, dlib distance), each (N,), pair by pair: the cosine of the embeddings as
    :func:`id_similarity`, and the Euclidean distance of dlib's descriptors, which dlib calls the
    same person below :data:`SAME_PERSON_DISTANCE`. Arguments as :func:`id_similarity`."""
    xa, xb = _check_faces(a, "a"), _check_faces(b, "b")
    if xa.shape[0] != xb.shape[0]:
        raise ValueError(f"a and b must hold the same number of faces, got {xa.shape[0]} and {xb.shape[0]}")
    lm_b = face_landmarks(xb)
    lm_a = lm_b if shared_landmarks else None
    da, db = face_descriptor(xa, lm_a), face_descriptor(xb, lm_b)
    similarity = (F.normalize(da, dim=1) * F.normalize(db, dim=1)).sum(dim=1)
    return similarity, (da - db).norm(dim=1)
