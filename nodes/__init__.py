"""The pack's ComfyUI nodes (V3 API): thin adapters that convert IMAGE to lpip_core tensors and back.

Importing this registers the `lpip_diff` model folder; it loads no model.
"""
from __future__ import annotations

from .compare import Compare
from .degrade import DegradeFace
from .faces import FaceCropAlign, FacePasteBack
from .identity import FaceIdentityScore
from .models import LoadLPIPModel, register_model_folder
from .restore_faces import RestoreFaces
from .sampler import PatchFusedSampler

register_model_folder()

NODES = [LoadLPIPModel, PatchFusedSampler, RestoreFaces, DegradeFace, FaceCropAlign, FacePasteBack, Compare,
         FaceIdentityScore]

__all__ = ["NODES", "Compare", "DegradeFace", "FaceCropAlign", "FaceIdentityScore", "FacePasteBack", "LoadLPIPModel",
           "PatchFusedSampler", "RestoreFaces"]
