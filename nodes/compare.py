"""LPIP-Diff Compare: two images side by side under a before/after slider (drawn by web/js/compare.js)."""
from __future__ import annotations

from comfy_api.latest import io

from .convert import image_to_core
from .preview import temp_images


class Compare(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LPIPCompare",
            display_name="LPIP-Diff Compare",
            category="LPIP-Diff",
            description=(
                "Shows two images in the node under a before/after slider: drag across the picture to move "
                "the split. Any two images: the bicubic upscale and the restored face, this pack against "
                "another restorer, the photo before and after Restore Faces. Batches page through with the "
                "arrows (image i of before against image i of after). The previews are temporary files: "
                "nothing is saved unless you add a Save Image node."),
            inputs=[
                io.Image.Input("before", tooltip="Left of the slider, e.g. the bicubic upscale or the original."),
                io.Image.Input("after", tooltip="Right of the slider, e.g. the restored image. Shown at the "
                                                "size of before when the sizes differ."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, before, after) -> io.NodeOutput:
        image_to_core(before, "before"), image_to_core(after, "after")  # clear errors for non-images
        return io.NodeOutput(ui={"lpip_before": temp_images(before[..., :3], "lpip-diff.compare.before", cls),
                                 "lpip_after": temp_images(after[..., :3], "lpip-diff.compare.after", cls)})
