"""`make demo`: run the example workflow *Restore the faces in a photo* headless on the bundled
photo, then show what it did: one side-by-side image (Lanczos x4 | restored, the faces marked) and
one line per face found, with the time taken.

    python -m tools.demo --out outputs/demo [--photo examples/photos/solvay_1927_tiny.jpg]

The faces are listed by the pack's own photo pipeline with the workflow's Face Crop & Align
settings (lpip_core.photo: the same detection and size limit as the node), so the lines name the
faces the workflow restored and those it left alone. Network-free: ComfyUI comes from the local
cache (tools.comfyui), the model from models/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

from lpip_core.faces.detect import align_faces
from lpip_core.files import atomic_output, read_image, to_pil
from lpip_core.method.checkpoint import read_config
from lpip_core.photo import describe_faces, face_limit, split_by_size, upscale_lanczos
from tools.comfyui import REPO_ROOT, find_node, run_workflow

WORKFLOW = REPO_ROOT / "example_workflows" / "api" / "Restore the faces in a photo.json"
PHOTO = REPO_ROOT / "examples" / "photos" / "solvay_1927_tiny.jpg"
MODEL = "lpip_x4_64.safetensors"
RESTORED, LEFT_ALONE = (40, 200, 60), (255, 150, 0)


def faces_of(photo: Path, workflow: dict) -> tuple:
    """(alignments, restored indices, left-alone indices, limit, upscaled_by, the upscaled photo) as the workflow's
    Upscale and Face Crop & Align nodes see the photo."""
    scale = workflow[find_node(workflow, "ImageScaleBy")]["inputs"]
    crop = workflow[find_node(workflow, "LPIPFaceCropAlign")]["inputs"]
    model = workflow[find_node(workflow, "LoadLPIPModel")]["inputs"]["model_name"]
    lq_size = read_config(REPO_ROOT / "models" / model).lq_size
    upscale = float(scale["scale_by"])
    image = upscale_lanczos(read_image(photo), upscale)
    _, alignments = align_faces(image, face_size=lq_size, select=crop["select"], upsample=crop["upsample"],
                                min_score=crop.get("min_score", 0.0))
    upscaled_by = crop.get("upscaled_by", 1.0)
    limit = face_limit(crop.get("max_face_px", 0), lq_size)
    keep, skip = split_by_size(alignments, limit, upscaled_by)
    return alignments, keep, skip, limit, upscaled_by, image


def side_by_side(lanczos: Image.Image, restored: Image.Image, alignments, keep: list[int]) -> Image.Image:
    """Lanczos x4 | restored, cut to where the faces are, each face's detection box drawn on both
    (green: restored, orange: left alone)."""
    if alignments:  # the faces' region, with a margin of two faces
        boxes = [al.box for al in alignments]
        side = max(b[2] - b[0] for b in boxes)
        region = (max(0, int(min(b[0] for b in boxes) - 2 * side)), max(0, int(min(b[1] for b in boxes) - 2 * side)),
                  min(lanczos.width, int(max(b[2] for b in boxes) + 2 * side)),
                  min(lanczos.height, int(max(b[3] for b in boxes) + 2 * side)))
    else:
        region = (0, 0, *lanczos.size)
    left, right = lanczos.convert("RGB").crop(region), restored.convert("RGB").crop(region)
    w, h = left.size
    canvas = Image.new("RGB", (2 * w + 8, h + 18), "white")
    canvas.paste(left, (0, 18))
    canvas.paste(right, (w + 8, 18))
    pen = ImageDraw.Draw(canvas)
    pen.text((4, 3), "Lanczos x4", fill="black")
    pen.text((w + 12, 3), "LPIP-Diff x4 (green: restored, orange: left alone)", fill="black")
    for i, al in enumerate(alignments):
        x0, y0, x1, y1 = al.box[0] - region[0], al.box[1] - region[1], al.box[2] - region[0], al.box[3] - region[1]
        colour = RESTORED if i in keep else LEFT_ALONE
        for dx in (0, w + 8):
            pen.rectangle((x0 + dx - 2, y0 + 16, x1 + dx + 2, y1 + 20), outline=colour, width=2)
        pen.text((x0 + 1, y1 + 21), str(i), fill=colour)
    return canvas


def show(photo: Path, restored_path: Path, workflow: dict, out: Path) -> Path:
    """Print one line per face and write out/side_by_side.jpg; returns its path."""
    alignments, keep, skip, limit, upscaled_by, image = faces_of(photo, workflow)
    for i, al in enumerate(alignments):
        x0, y0, x1, y1 = (v / upscaled_by for v in al.box)
        what = "restored" if i in keep else f"left alone (bigger than {limit:.0f} px)"
        print(f"face {i:2d}: at ({(x0 + x1) / 2:.0f}, {(y0 + y1) / 2:.0f}) in the photo, {x1 - x0:.0f} px wide, "
              f"its crop {al.source_side / upscaled_by:.1f} px: {what}")
    print(describe_faces(alignments, keep, skip, limit, upscaled_by))
    with Image.open(restored_path) as restored:
        figure = side_by_side(to_pil(image[0]), restored, alignments, keep)
    target = out / "side_by_side.jpg"
    with atomic_output(target) as tmp:
        figure.save(tmp, format="JPEG", quality=90)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--model", default=MODEL, help="a model in models/ (the workflow's loader)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sets = [f"LoadImage.image=@{args.photo}", f"LoadLPIPModel.model_name={args.model}"]
    paths = run_workflow(WORKFLOW, args.out, sets, log=lambda s: print(s, file=sys.stderr))
    workflow = json.loads(WORKFLOW.read_text())
    workflow[find_node(workflow, "LoadLPIPModel")]["inputs"]["model_name"] = args.model
    photo_out = next(p for p in paths if p.name.startswith("restored_photo"))
    figure = show(args.photo, photo_out, workflow, args.out)
    print(f"restored photo: {photo_out}\nside by side:   {figure}\n"
          f"time taken: {time.perf_counter() - started:.0f} s (ComfyUI's start, the faces, the figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
