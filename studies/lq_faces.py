"""The figure of LQ faces in docs/training.md ("Degradation"): real 16 px faces next to draws of each
training variant, with the sharpness of each row (the number the degradation's mix was checked against).

    python -m studies.lq_faces --photos ../shared/faces/photos --att ../shared/faces/att \
        --faces ../shared/faces/aligned512 --holdout models/holdout.txt --out docs/lq_faces.png

Rows: faces cut at 16 px from real photos by the pack's own Face Crop & Align path (what a user
feeds the sampler); AT&T faces (stored at 23x28 px: genuinely tiny files) aligned to 16 px; and
training faces degraded by each variant of the mixture. Number: the high-frequency energy
(lpip_core.sharpness; median and 10..90th percentile over the row's faces). A noise estimator
(Immerkaer's) was tried and dropped: at 16 px it measures the face's own edges, not noise. Needs
the photos; never used by the tests.
"""
from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path

import torch

from lpip_core.data.degrade import VARIANTS, degrade_one, random_params
from lpip_core.data.folders import list_images, load_faces
from lpip_core.data.split import read_split
from lpip_core.faces.detect import align_faces
from lpip_core.files import atomic_output, read_image, to_pil
from lpip_core.sharpness import high_frequency_energy

PER_ROW = 12
LQ = 16


def real_faces(photos: Path, att: Path) -> dict[str, list[torch.Tensor]]:
    crops = []
    for path in list_images(photos):
        faces, _ = align_faces(read_image(path), face_size=LQ, select="all")
        crops += list(faces)
        if len(crops) >= 4 * PER_ROW:
            break
    att_faces = []
    for path in sorted(att.rglob("*.pgm"))[::10]:
        faces, _ = align_faces(read_image(path), face_size=LQ, select="largest", upsample=2)
        att_faces += list(faces)
    return {"photos, Face Crop & Align at 16 px": crops[::4][:PER_ROW],
            "AT&T (23x28 px files), aligned to 16 px": att_faces[:PER_ROW]}


def sampled_faces(faces_dir: Path, holdout: Path | None) -> dict[str, list[torch.Tensor]]:
    exclude = read_split(holdout) if holdout else set()
    faces, _ = load_faces(faces_dir, 64, exclude=exclude)
    rows = {}
    for variant in VARIANTS:
        row = []
        for i in range(PER_ROW):
            rng = random.Random(1000 * len(rows) + i)
            hq = faces[(i * 7) % len(faces)].float() / 255
            params = random_params(rng, 64, LQ, variant=variant)
            row.append(degrade_one(hq, params, lq_size=(LQ, LQ), generator=torch.Generator().manual_seed(i)))
        rows[f"training variant {variant}"] = row
    return rows


def draw(rows: dict[str, list[torch.Tensor]], out: Path, zoom: int = 4) -> list[str]:
    from PIL import Image, ImageDraw

    cell, label_h = LQ * zoom, 14
    canvas = Image.new("RGB", (PER_ROW * (cell + 2), len(rows) * (cell + label_h + 4)), "white")
    pen = ImageDraw.Draw(canvas)
    lines = []
    for r, (name, faces) in enumerate(rows.items()):
        y = r * (cell + label_h + 4)
        energy = sorted(high_frequency_energy(f) for f in faces)
        median, low, high = statistics.median(energy), energy[len(energy) // 10], energy[-1 - len(energy) // 10]
        pen.text((2, y + 1), f"{name}: high-frequency energy {median:.1f} ({low:.1f}..{high:.1f})", fill="black")
        lines.append(f"| {name} | {median:.1f} | {low:.1f}..{high:.1f} |")
        for c, face in enumerate(faces):
            tile = to_pil(face).resize((cell, cell), Image.Resampling.NEAREST)
            canvas.paste(tile, (c * (cell + 2), y + label_h))
    with atomic_output(out) as tmp:
        canvas.save(tmp, format="PNG", optimize=True)
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--att", type=Path, required=True)
    parser.add_argument("--faces", type=Path, required=True, help="aligned HQ training faces")
    parser.add_argument("--holdout", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = {**real_faces(args.photos, args.att), **sampled_faces(args.faces, args.holdout)}
    lines = draw(rows, args.out)
    print("| row | high-frequency energy, median | 10..90th percentile |\n|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
