"""Temporary preview images for the pack's front end (ComfyUI's temp/ folder, emptied at start-up:
nothing is saved unless a Save Image node asks)."""
from __future__ import annotations

import torch
from comfy_api.latest import io, ui


def temp_images(image: torch.Tensor, prefix: str, cls) -> list[dict]:
    """Write an IMAGE batch as PNGs to the temp folder; returns the entries /view serves
    ({"filename", "subfolder", "type": "temp"}), one per image."""
    saved = ui.ImageSaveHelper.save_images(image, filename_prefix=prefix, folder_type=io.FolderType.temp,
                                           cls=cls, compress_level=1)
    return [dict(entry) for entry in saved]
