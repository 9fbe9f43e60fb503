"""The pack's ComfyUI nodes (V3 API): thin adapters that convert IMAGE to lpip_core tensors and back.

Importing this registers the `lpip_diff` model folder; it loads no model.
"""
from __future__ import annotations

from .degrade import DegradeFace
from .faces import FaceCropAlign, FacePasteBack
from .models import LoadLPIPModel, register_model_folder
from .sampler import PatchFusedSampler

register_model_folder()

NODES = [LoadLPIPModel, PatchFusedSampler, DegradeFace, FaceCropAlign, FacePasteBack]

__all__ = ["NODES", "DegradeFace", "FaceCropAlign", "FacePasteBack", "LoadLPIPModel", "PatchFusedSampler"]
