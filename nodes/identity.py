"""Face Identity Score: dlib's ID Sim between two faces, with dlib's same-person verdict."""
from __future__ import annotations

from comfy_api.latest import io

from ..lpip_core.checks import check_choice
from ..lpip_core.faces.identity import SAME_PERSON_DISTANCE, identity_scores
from .convert import image_to_core
from .inputs import core_names

FROM_REFERENCE, EACH_IMAGE = "from_reference", "each_image"


def verdict(distance: float) -> str:
    return "same person" if distance < SAME_PERSON_DISTANCE else "different person"


class FaceIdentityScore(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LPIPFaceIdentityScore",
            display_name="Face Identity Score (LPIP-Diff)",
            category="LPIP-Diff",
            description=(
                "Did the restoration keep the person? Compares two faces with dlib's face-recognition network "
                "(128-d descriptors, CC0 model) and shows, per face, ID Sim (the cosine of the two "
                "descriptors, the paper's identity metric) and dlib's verdict: the same person when the "
                "descriptors are closer than dlib's published threshold, 0.6. Give it aligned face crops: "
                "the low-quality face upscaled (or the original) as reference and the restored face. "
                "Outputs the mean ID Sim of the batch."),
            inputs=[
                io.Image.Input("reference", tooltip="The face as it should be: the original, or the low-quality "
                                                    "face upscaled. One image, or one per restored image."),
                io.Image.Input("restored", tooltip="The restored faces (e.g. the Patch-Fused Sampler's output); "
                                                   "any size, aligned like the reference."),
                io.Combo.Input("landmarks", options=[FROM_REFERENCE, EACH_IMAGE], default=FROM_REFERENCE,
                               tooltip="from_reference: cut both faces where the reference's landmarks are (the "
                                       "ID Sim metric; the faces are aligned crops of the same size ratio). "
                                       "each_image: find the landmarks in each image (unaligned photos)."),
            ],
            outputs=[io.Float.Output(display_name="id_sim",
                                     tooltip="Mean ID Sim (dlib) over the faces: 1 = the same descriptor; the "
                                             "same person typically scores above about 0.9.")],
            is_output_node=True,
        )

    @classmethod
    @core_names(a="restored", b="reference")
    def execute(cls, reference, restored, landmarks=FROM_REFERENCE) -> io.NodeOutput:
        # the node's own: the core takes shared_landmarks (a bool) and never sees this combo
        check_choice("landmarks", landmarks, (FROM_REFERENCE, EACH_IMAGE))
        # clamp: bicubic and Lanczos upscalers overshoot [0, 1] a little at edges
        ref, out = image_to_core(reference, "reference").clamp(0, 1), image_to_core(restored, "restored").clamp(0, 1)
        if ref.shape[0] == 1 and out.shape[0] > 1:
            ref = ref.expand(out.shape[0], -1, -1, -1)
        if ref.shape[0] != out.shape[0]:
            raise ValueError(f"reference has {ref.shape[0]} image(s) and restored {out.shape[0]}: give one "
                             "reference, or one per restored image")
        similarity, distance = identity_scores(out.cpu(), ref.cpu(), shared_landmarks=landmarks == FROM_REFERENCE)
        faces = [{"id_sim": round(float(s), 4), "distance": round(float(d), 4), "verdict": verdict(float(d))}
                 for s, d in zip(similarity, distance)]
        mean = float(similarity.mean())
        ui = {"lpip_identity": [{"faces": faces, "mean_id_sim": round(mean, 4), "threshold": SAME_PERSON_DISTANCE}]}
        return io.NodeOutput(mean, ui=ui)
