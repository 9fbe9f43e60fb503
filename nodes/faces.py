"""FaceCropAlign and FacePasteBack: dlib detection + FFHQ alignment, and the inverse warp back."""
from __future__ import annotations

import logging

from comfy_api.latest import io, ui
from comfy_execution.graph_utils import ExecutionBlocker

from ..lpip_core.checks import check_choice
from ..lpip_core.faces.detect import FACE_SIZE_RANGE, PADDING_RANGE, SELECT_MODES, UPSAMPLE_RANGE
from ..lpip_core.faces.paste import COLOR_MATCH_MODES, FEATHER_RANGE, check_paste, face_masks, paste_faces
from ..lpip_core.photo import MAX_FACE_FACTOR, NO_LIMIT, UPSCALED_BY_RANGE, find_faces
from .convert import core_to_image, image_to_core
from .device import output_device, output_dtype
from .inputs import core_names
from .types import FaceAlign, FaceAlignBatch

log = logging.getLogger("LPIP-Diff")

ERROR, PASS_THROUGH = "error", "pass_through"
SMALLEST_FACE = {0: 80, 1: 40, 2: 20, 3: 10}  # px wide that dlib's HOG finds, per upsample step


def detection_and_limit_inputs(of_what: str, limit_default: int) -> list:
    """The optional inputs for tiny and big faces, shared by Face Crop & Align and Restore Faces: the
    detector's threshold and the size limit (automatic in Restore Faces, which restores what it cuts;
    off in Face Crop & Align, whose crops may be references or feed other restorers, so that saved
    workflows cutting big faces keep working)."""
    return [
        io.Float.Input("min_score", default=0.0, min=-2.0, max=3.0, step=0.05, optional=True,
                       tooltip="The detector's threshold (dlib HOG score; 0 = dlib's default). Lower finds more "
                               "tiny faces: -0.4 after an x4 upscale found 28 of 29 faces 12 px wide (docs/"
                               "detection.md), with at most one false face; real faces score about 0.2..3."),
        io.Int.Input("max_face_px", default=limit_default, min=NO_LIMIT, max=4096, optional=True,
                     tooltip=f"Leave bigger faces alone: a face whose aligned crop spans more than this many px of "
                             f"the photo is passed through untouched (the model takes nothing from detail beyond "
                             f"its face size, and Lanczos keeps more). 0 = automatic: {MAX_FACE_FACTOR:g} x "
                             f"{of_what} (18 px for the x4 model: faces up to about 10 px wide); -1 = no limit."),
        io.Float.Input("upscaled_by", default=1.0, min=UPSCALED_BY_RANGE[0], max=UPSCALED_BY_RANGE[1], step=0.05,
                       optional=True,
                       tooltip="How much the image was enlarged before this node (4 after an x4 upscale), so that "
                               "the size limit counts the photo's own pixels. 1 = the photo as taken."),
    ]


def _images(indices) -> str:
    indices = list(indices)
    return f"image {indices[0]}" if len(indices) == 1 else "images " + ", ".join(map(str, indices))


class FaceCropAlign(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LPIPFaceCropAlign",
            display_name="Face Crop & Align (LPIP-Diff)",
            category="LPIP-Diff",
            description=(
                "Finds faces (dlib HOG detector + 5 landmarks) in every image of the batch and cuts "
                "FFHQ-style aligned square crops: eyes level, face centred, the crop about twice the "
                "face. Set face_size to the model's LQ face size (16 for the shipped models, or link "
                "Load LPIP-Diff Model's face_size): each face becomes a 16 px crop that the sampler "
                "restores to 64 px (x4), and Face Paste Back warps it back into the photo (upscale the photo "
                "x4 first, so that it pastes back 1:1). face_align remembers where every crop came from. "
                "With a size limit (max_face_px: 0 = automatic from face_size; off by default) faces bigger "
                "than it are left alone: "
                "not cut, not in the mask, and the node's text names them."),
            inputs=[
                io.Image.Input("image", tooltip="Photos or video frames (a batch) with faces."),
                io.Int.Input("face_size", default=16, min=FACE_SIZE_RANGE[0], max=FACE_SIZE_RANGE[1],
                             tooltip="Side of the aligned crops in px. Use the model's LQ size (16 for the "
                                     "x4 and x8 models; Load LPIP-Diff Model outputs it as face_size)."),
                io.Combo.Input("select", options=list(SELECT_MODES), default="largest",
                               tooltip="largest: one face per image; all: every face, largest first; "
                                       "index: only the index-th largest face of each image."),
                io.Int.Input("index", default=0, min=0, max=1000,
                             tooltip="With select = index: which face, 0 = the largest."),
                io.Float.Input("padding", default=0.0, min=PADDING_RANGE[0], max=PADDING_RANGE[1], step=0.05,
                               tooltip="Widen the crop around the same centre by this fraction "
                                       "(0 = the FFHQ crop, about twice the face)."),
                io.Int.Input("upsample", default=1, min=UPSAMPLE_RANGE[0], max=UPSAMPLE_RANGE[1],
                             tooltip="How often the detector doubles the image: 0 finds faces from about "
                                     "80 px wide, 1 from 40 px, 2 from 20 px, 3 from 10 px; each step is "
                                     "about 4x slower."),
                io.Combo.Input("if_no_face", options=[ERROR, PASS_THROUGH], default=ERROR,
                               tooltip="When no face is found in the whole batch: error stops the workflow "
                                       "with a message; pass_through goes on with face count 0: the nodes fed "
                                       "by faces (the sampler, a preview) are skipped, and Face Paste Back "
                                       "returns the image unchanged."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional: only faces whose box lies mostly inside this mask (white) are "
                                      "taken, e.g. to restore one person. One mask for the batch or one per "
                                      "image; any size (it is stretched to the image)."),
                *detection_and_limit_inputs("face_size", NO_LIMIT),
            ],
            outputs=[
                io.Image.Output(display_name="faces",
                                tooltip="The aligned face crops (face_size x face_size), all faces of all "
                                        "images in one batch, image by image."),
                FaceAlign.Output(display_name="face_align",
                                 tooltip="Where each crop came from: connect it to Face Paste Back."),
                io.Int.Output(display_name="face_count", tooltip="How many faces were cut (0 when passed "
                                                                 "through; faces left alone by the size limit are "
                                                                 "not counted)."),
                io.Mask.Output(display_name="mask",
                               tooltip="Where the crops were cut from, per image (1 inside a crop, 0 outside, and "
                                       "0 on faces left alone by the size limit): for ImageCompositeMasked and "
                                       "other masked nodes."),
            ],
        )

    @classmethod
    @core_names(images="image", crop_size="face_size", lq_size="face_size")
    def execute(cls, image, face_size, select, index, padding, upsample=1, if_no_face=ERROR,
                mask=None, min_score=0.0, max_face_px=NO_LIMIT, upscaled_by=1.0) -> io.NodeOutput:
        check_choice("if_no_face", if_no_face, (ERROR, PASS_THROUGH))  # the node's own: no core function sees it
        x = image_to_core(image)
        count, _, h, w = x.shape
        found = find_faces(x, crop_size=face_size, lq_size=face_size, max_face_px=max_face_px,
                           upscaled_by=upscaled_by, select=select, index=index, padding=padding, upsample=upsample,
                           min_score=min_score, mask=mask)
        text, skip = found.text, found.skip
        if skip:
            log.info("LPIP-Diff: Face Crop & Align: %s", text)
        crops, alignments = found.crops[found.keep], found.kept
        device, dtype = output_device(), output_dtype()
        with_faces = {a.image_index for a in alignments}
        if not alignments:
            where = "the image" if count == 1 else f"any of the {count} images"
            what = f"face #{index} (select = index)" if select == "index" else "face"
            what += " inside the mask" if mask is not None else ""
            if if_no_face == ERROR and not skip:
                raise ValueError(
                    f"no {what} found in {where} ({w}x{h} px). The detector (upsample = {upsample}) finds "
                    f"frontal faces from about {SMALLEST_FACE[upsample]} px wide: raise upsample for smaller "
                    f"faces, or set if_no_face to pass_through to go on without faces.")
            if not skip:
                log.info("LPIP-Diff: no %s found in %s; passing it through", what, where)
            # No faces: the nodes fed by `faces` (the sampler, a preview) are skipped, not run on a stand-in.
            empty = FaceAlignBatch((), count, (h, w), face_size)
            none = face_masks([], count, (h, w)).to(device)
            return io.NodeOutput(ExecutionBlocker(None), empty, 0, none, ui=ui.PreviewText(text))
        if len(with_faces) < count:
            log.info("LPIP-Diff: no face in %s of the batch", _images(sorted(set(range(count)) - with_faces)))
        batch = FaceAlignBatch(tuple(alignments), count, (h, w), face_size)
        masks = face_masks(alignments, count, (h, w)).to(device)
        return io.NodeOutput(core_to_image(crops, device, dtype), batch, len(alignments), masks,
                             ui=ui.PreviewText(text))


class FacePasteBack(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LPIPFacePasteBack",
            display_name="Face Paste Back (LPIP-Diff)",
            category="LPIP-Diff",
            description=(
                "Warps restored face crops back into the images they were cut from (the inverse of Face "
                "Crop & Align), blended with a feathered mask so that no seam shows. The crops may have "
                "any size: a 64 px restoration of a 16 px crop lands exactly where the 16 px crop came "
                "from. Pixels outside the faces' crops are left unchanged."),
            inputs=[
                io.Image.Input("image", tooltip="The images that went into Face Crop & Align (same size and "
                                                "batch)."),
                io.Image.Input("faces", lazy=True,
                               tooltip="The restored face crops, one per face of face_align, any "
                                       "square size (e.g. the Patch-Fused Sampler's output)."),
                FaceAlign.Input("face_align", tooltip="From Face Crop & Align."),
                io.Float.Input("feather", default=0.1, min=FEATHER_RANGE[0], max=FEATHER_RANGE[1], step=0.01,
                               tooltip="Width of the soft edge as a fraction of the crop side (0 = hard edge; "
                                       "the crop is about twice the face, so 0.1 fades outside the face)."),
                io.Combo.Input("color_match", options=list(COLOR_MATCH_MODES), default="none",
                               tooltip="mean_std: give each restored face the per-channel mean and spread of "
                                       "the original crop first (fixes colour or brightness shifts)."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.05,
                               tooltip="How much of each restored face to blend in: 1 = the restored face, "
                                       "0.5 = half restored, half original, 0 = the original image.",
                               optional=True),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The images with the faces pasted back."),
                io.Mask.Output(display_name="mask",
                               tooltip="Where the faces were pasted, with the same feathered edge (1 = the "
                                       "restored face): for ImageCompositeMasked and other masked nodes."),
            ],
        )

    @classmethod
    def check_lazy_status(cls, faces=None, face_align=None, **_) -> list[str]:
        """faces is only wanted when face_align holds faces: without, the sampler never runs."""
        wanted = faces is None and not (isinstance(face_align, FaceAlignBatch) and len(face_align) == 0)
        return ["faces"] if wanted else []

    @classmethod
    @core_names(images="image")
    def execute(cls, image, faces, face_align, feather, color_match, strength=1.0) -> io.NodeOutput:
        if not isinstance(face_align, FaceAlignBatch):  # the link's type: no core function sees it
            raise ValueError(f"face_align must come from a Face Crop & Align node, got {type(face_align).__name__}")
        check_paste(feather, color_match, strength)  # the core's check, also when there is nothing to paste
        x = image_to_core(image)
        count, _, h, w = x.shape
        ah, aw = face_align.image_size
        if count != face_align.image_count or (h, w) != (ah, aw):
            raise ValueError(
                f"image is {count} image(s) of {w}x{h} px, but face_align was made from {face_align.image_count} "
                f"image(s) of {aw}x{ah} px: paste back into the image that went into Face Crop & Align")
        if len(face_align) == 0:  # nothing was found upstream (pass_through): the image as it was
            return io.NodeOutput(image, face_masks([], count, (h, w)).to(output_device()))
        f = image_to_core(faces, "faces")
        if f.shape[0] != len(face_align):  # the core says "alignments"; this names the link and the fix
            raise ValueError(f"faces has {f.shape[0]} crop(s) but face_align has {len(face_align)} face(s): "
                             "connect the restored crops of the same Face Crop & Align")
        out = paste_faces(x, f, list(face_align.faces), feather=feather, color_match=color_match,
                          strength=strength)
        masks = face_masks(list(face_align.faces), count, (h, w), feather=feather, strength=strength)
        return io.NodeOutput(core_to_image(out, output_device(), output_dtype()), masks.to(output_device()))
