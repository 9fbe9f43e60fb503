"""The demo photo's faces side by side: the Lanczos-upscaled photo vs the restored photo. Is any
restored face softer than the photo around it?

    python -m studies.demo_crops --photo examples/photos/solvay_1927.jpg \
        --restored "x2"=outputs/demo/restored_photo_00001_.png ... --out docs/demo_crops.png

For each restored photo (any upscale of --photo), the photo is upscaled with Lanczos to the same
size; the faces are found in it (dlib, as Face Crop & Align with upsample 2) and each face's
detection box is cut from both. One table row per face gives each crop's high-frequency energy
(mean absolute difference of neighbouring pixels, in 8-bit levels: the number behind "softer").
Never used by the tests.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from PIL import Image, ImageDraw

from lpip_core.faces.detect import detect_faces
from lpip_core.files import atomic_output, from_pil, read_image, to_pil
from lpip_core.sharpness import high_frequency_energy

CELL = 112


def energy(crop: Image.Image) -> float:
    return high_frequency_energy(from_pil(crop)[0])


def face_boxes(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """Detection boxes, left to right."""
    found = detect_faces(from_pil(image)[0], upsample=2, min_score=0.2)
    return sorted((tuple(round(v) for v in f.box) for f in found), key=lambda b: (b[0], b[1]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--restored", nargs="+", required=True, metavar="LABEL=PATH")
    parser.add_argument("--out", type=Path, required=True, help="the figure (.jpg or .png)")
    args = parser.parse_args(argv)

    photo = to_pil(read_image(args.photo)[0])
    pairs = []  # (label, lanczos, restored, boxes)
    for item in args.restored:
        label, path = item.split("=", 1)
        restored = to_pil(read_image(path)[0])
        lanczos = photo.resize(restored.size, Image.Resampling.LANCZOS)
        pairs.append((label, lanczos, restored, face_boxes(lanczos)))

    rows = max(len(boxes) for *_, boxes in pairs)
    canvas = Image.new("RGB", (2 * len(pairs) * (CELL + 4), rows * (CELL + 4) + 16), "white")
    pen = ImageDraw.Draw(canvas)
    for p, (label, lanczos, restored, boxes) in enumerate(pairs):
        x0 = 2 * p * (CELL + 4)
        pen.text((x0 + 2, 2), f"{label}: Lanczos", fill="black")
        pen.text((x0 + CELL + 6, 2), f"{label}: LPIP-Diff", fill="black")
        print(f"\n{label} ({restored.width}x{restored.height} px)\n")
        print("| face | box side (px) | Lanczos | restored | restored / Lanczos |")
        print("|---|---|---|---|---|")
        ratios = []
        for r, box in enumerate(boxes):
            a, b = lanczos.crop(box), restored.crop(box)
            ea, eb = energy(a), energy(b)
            ratios.append(eb / ea)
            print(f"| {r + 1} | {box[2] - box[0]} | {ea:.1f} | {eb:.1f} | {eb / ea:.2f} |")
            for c, crop in enumerate((a, b)):
                canvas.paste(crop.resize((CELL, CELL), Image.Resampling.LANCZOS),
                             (x0 + c * (CELL + 4), 16 + r * (CELL + 4)))
        softer = sum(q < 1 for q in ratios)
        print(f"\nmedian ratio {statistics.median(ratios):.2f}; {softer} of {len(ratios)} restored faces softer "
              "than Lanczos")
    with atomic_output(args.out) as tmp:
        jpeg = args.out.suffix.lower() in (".jpg", ".jpeg")
        canvas.save(tmp, format="JPEG" if jpeg else "PNG", quality=88, optimize=True)


if __name__ == "__main__":
    main()
