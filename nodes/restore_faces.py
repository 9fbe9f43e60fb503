"""LPIP-Diff Restore Faces: crop -> restore -> paste back in one node, where a FaceRestore or
CodeFormer node sits in existing graphs (IMAGE + model -> IMAGE)."""
from __future__ import annotations

import logging

from comfy_api.latest import io, ui

from ..lpip_core.faces.detect import SELECT_MODES
from ..lpip_core.faces.paste import COLOR_MATCH_MODES
from ..lpip_core.method.model import MAX_SAMPLES
from ..lpip_core.method.plan import DEVICE_PATCHES_PER_CALL, INPUT_KINDS, LOW_RESOLUTION, input_face_size
from ..lpip_core.method.restoration import RECOMMENDED_DENOISE, RECOMMENDED_END_PERCENT
from ..lpip_core.photo import AUTO, restore_photo
from ..lpip_core.resize import resize
from .convert import core_to_image, image_to_core
from .device import output_device, output_dtype
from .faces import detection_and_limit_inputs
from .sampler import check_model, sample_faces
from .types import MAX_SEED, LPIPModel

log = logging.getLogger("LPIP-Diff")


class RestoreFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LPIPRestoreFaces",
            display_name="LPIP-Diff Restore Faces",
            category="LPIP-Diff",
            description=(
                "Restores every face of a photo in one node: Face Crop & Align -> Patch-Fused Sampler -> Face "
                "Paste Back with their usual settings. A drop-in where a FaceRestore or CodeFormer node sits: "
                "image in, image of the same size out, plus the restored face crops and a mask of where they "
                "were pasted. Images without a face pass through unchanged, and so do faces bigger than the size "
                "limit (max_face_px; automatic from the model): the node's text says which faces were left "
                "alone, and the mask is 0 on them."),
            inputs=[
                LPIPModel.Input("model", tooltip="From Load LPIP-Diff Model."),
                io.Image.Input("image", tooltip="Photos or video frames with faces (a batch)."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Seed of the starting noise; face i of the batch uses seed + i."),
                io.Int.Input("steps", default=25, min=1, max=1000, tooltip="DDIM steps per face."),
                io.Float.Input("denoise", default=RECOMMENDED_DENOISE, min=0.0, max=1.0, step=0.05,
                               tooltip="As in KSampler and the Patch-Fused Sampler: 1.0 starts from pure noise "
                                       "(the paper); lower values keep more of the upscaled face."),
                io.Combo.Input("input_is", options=list(INPUT_KINDS), default=LOW_RESOLUTION,
                               tooltip="low_resolution: faces are cut at the model's low-resolution size (16 px) "
                                       "and restored to its output size (64 px for x4): for tiny faces, about "
                                       "8-10 px wide in the photo. already_upscaled: faces are cut at the model's "
                                       "output size and restored in place: for larger faces, or after an upscaler."),
                io.Combo.Input("select", options=list(SELECT_MODES), default="all",
                               tooltip="all: every face; largest: one face per image; index: the index-th "
                                       "largest (with the index of Face Crop & Align, 0)."),
                io.Int.Input("upsample", default=1, min=0, max=3,
                             tooltip="Detector upsampling: 0 finds faces from about 80 px wide, 1 from 40 px, "
                                     "2 from 20 px, 3 from 10 px; each step is about 4x slower."),
                io.Float.Input("feather", default=0.1, min=0.0, max=0.5, step=0.01,
                               tooltip="Soft edge of the pasted faces, as a fraction of the crop side."),
                io.Combo.Input("color_match", options=list(COLOR_MATCH_MODES), default="none",
                               tooltip="mean_std: match each restored face's colour to the original first."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.05,
                               tooltip="As in Face Paste Back: 1 = the restored face, 0.5 = half restored, half "
                                       "original, 0 = the original image."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional: restore only faces that lie mostly inside this mask."),
                io.Int.Input("samples", default=0, min=0, max=MAX_SAMPLES, optional=True,
                             tooltip="As in the Patch-Fused Sampler: the mean of this many restorations of "
                                     "each face (more faithful, a little softer, `samples` times the time); "
                                     "0 = the model's default (2 for lpip_x8_128, else 1)."),
                io.Float.Input("end_percent", default=RECOMMENDED_END_PERCENT, min=0.01, max=1.0, step=0.01,
                               optional=True,
                               tooltip="As in the Patch-Fused Sampler: stop after this share of the steps and "
                                       "return that step's estimate of the clean face (more faithful, softer, "
                                       "faster). 1.0 = every step (the paper)."),
                *detection_and_limit_inputs("the model's face size", AUTO),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The images with the restored faces pasted back."),
                io.Image.Output(display_name="faces", tooltip="The restored face crops, all faces in one batch "
                                                              "(a thumbnail of each image when none was found)."),
                io.Mask.Output(display_name="mask", tooltip="Where the faces were pasted (feathered): for "
                                                            "ImageCompositeMasked and other masked nodes."),
            ],
        )

    @classmethod
    def execute(cls, model, image, seed, steps, denoise, input_is, select, upsample, feather, color_match,
                strength, mask=None, samples=0, end_percent=RECOMMENDED_END_PERCENT, min_score=0.0,
                max_face_px=AUTO, upscaled_by=1.0) -> io.NodeOutput:
        config = check_model(model).config
        crop_size = input_face_size(config, input_is)  # checks input_is; restore_photo's detector checks upsample
        x = image_to_core(image)

        def restore_crops(crops):
            return sample_faces(model, crops, seed=seed, steps=steps, eta=0.0, patch_size=0, stride=0, fusion="mean",
                                max_patch_batch=DEVICE_PATCHES_PER_CALL, input_is=input_is,
                                denoise=denoise, samples=samples, end_percent=end_percent)[0]

        result = restore_photo(x, restore_crops, crop_size=crop_size, lq_size=config.lq_size, max_face_px=max_face_px,
                               upscaled_by=upscaled_by, select=select, upsample=upsample, min_score=min_score,
                               mask=mask, feather=feather, color_match=color_match, strength=strength)
        log.info("LPIP-Diff: Restore Faces: %s", result.text)
        device, dtype = output_device(), output_dtype()
        masks = result.masks.to(device)
        if not result.restored:  # no face, or every face left alone: the image as it was
            thumbs = core_to_image(resize(x, (config.hq_size, config.hq_size)), device, dtype)
            return io.NodeOutput(image, thumbs, masks, ui=ui.PreviewText(result.text))
        return io.NodeOutput(core_to_image(result.images, device, dtype), core_to_image(result.faces, device, dtype),
                             masks, ui=ui.PreviewText(result.text))
