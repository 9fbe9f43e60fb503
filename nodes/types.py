"""The pack's link types (LPIP_MODEL, FACE_ALIGN) and the seed range every node shares."""
from __future__ import annotations

from dataclasses import dataclass

from comfy_api.latest import io

from ..lpip_core.faces.detect import FaceAlignment

LPIPModel = io.Custom("LPIP_MODEL")
FaceAlign = io.Custom("FACE_ALIGN")
MAX_SEED = 0xFFFFFFFFFFFFFFFF  # KSampler's; image i of a batch uses (seed + i) mod 2**64


@dataclass(frozen=True)
class FaceAlignBatch:
    """What flows along a FACE_ALIGN link: where each crop of a FaceCropAlign came from.

    ``faces[i]`` belongs to crop i of the faces IMAGE and to image ``faces[i].image_index`` of
    the analysed batch (``image_count`` images of ``image_size`` = (H, W)). No faces means
    nothing to paste back (FaceCropAlign's pass-through when no face was found).
    """

    faces: tuple[FaceAlignment, ...]
    image_count: int
    image_size: tuple[int, int]
    face_size: int

    def __len__(self) -> int:
        return len(self.faces)
