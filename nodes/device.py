"""Where node outputs live: ComfyUI's intermediate device and dtype."""
from __future__ import annotations

import comfy.model_management as mm
import torch


def output_device() -> torch.device:
    return mm.intermediate_device()


def output_dtype() -> torch.dtype:
    """ComfyUI's intermediate dtype (newer releases have one; 0.3.75 uses float32)."""
    return getattr(mm, "intermediate_dtype", lambda: torch.float32)()
