"""How many of a photo's faces does the pack's detector find once the faces are tiny?

    python -m studies.detection_study --photo ../shared/faces/photos/solvay_conference_1927.jpg \
        --widths 10,12,14,16,24 --out DIR

The ground truth is what the detector finds in the full-size photo (faces 70-110 px wide: dlib
finds them all at upsample 1; check the count). The photo is then shrunk with Lanczos until the
median ground-truth box is N px wide, optionally enlarged again by Lanczos (`pre-upscale`, as an
upscale node before Face Crop & Align does), and searched with `detect_faces` at each `upsample`.
A detection counts as found when its centre lies in a ground-truth box and that box's centre lies
in it (one detection per face); other detections are false positives. For each found face the
eye error is the distance of its two eye centres (from the 5 landmarks) to the ground truth's,
over the ground truth's eye distance: what the FFHQ alignment is built from. Writes
detection.md and detection.json to --out. Needs the face photos; never used by the tests.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lpip_core.faces.detect import FaceDetection, detect_faces
from lpip_core.files import atomic_output, from_pil, read_image, to_pil

# (pre-upscale, upsample) pairs tried; only those that bring the faces to 40..400 px for dlib run.
SETTINGS = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (4, 0), (4, 1), (4, 2)]


def eye_centres(landmarks) -> np.ndarray:
    """(2, 2): the two eye centres (dlib order: points 0-1 and 2-3)."""
    p = np.asarray(landmarks, np.float64)
    return np.stack([p[0:2].mean(0), p[2:4].mean(0)])


def match(found: list[FaceDetection], truth: list[FaceDetection], scale: float) -> list[tuple[int, int]]:
    """(truth index, found index) pairs; ``found`` is in a photo ``scale`` times the truth's size."""
    pairs, used = [], set()
    for t, gt in enumerate(truth):
        gx0, gy0, gx1, gy1 = gt.box
        gc = ((gx0 + gx1) / 2, (gy0 + gy1) / 2)
        best, best_d = None, None
        for f, det in enumerate(found):
            if f in used:
                continue
            x0, y0, x1, y1 = (v / scale for v in det.box)
            c = ((x0 + x1) / 2, (y0 + y1) / 2)
            if gx0 <= c[0] <= gx1 and gy0 <= c[1] <= gy1 and x0 <= gc[0] <= x1 and y0 <= gc[1] <= y1:
                d = (c[0] - gc[0]) ** 2 + (c[1] - gc[1]) ** 2
                if best is None or d < best_d:
                    best, best_d = f, d
        if best is not None:
            used.add(best)
            pairs.append((t, best))
    return pairs


def shrink(photo: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(photo.width * factor)), max(1, round(photo.height * factor)))
    return photo.resize(size, Image.Resampling.LANCZOS)


def measure(photo: Image.Image, truth: list[FaceDetection], width: float, settings, min_score: float = 0.0) -> list:
    """One row per (pre-upscale, upsample) at face width ``width`` px; ``min_score``: dlib's threshold."""
    median_box = statistics.median(f.box[2] - f.box[0] for f in truth)
    small = shrink(photo, width / median_box)
    rows = []
    for pre, up in settings:
        if not 40 <= width * pre * 2 ** up <= 400:
            continue
        image = small if pre == 1 else small.resize((small.width * pre, small.height * pre), Image.Resampling.LANCZOS)
        scale = image.width / photo.width
        started = time.perf_counter()
        found = detect_faces(from_pil(image)[0], upsample=up, min_score=min_score)
        seconds = time.perf_counter() - started
        pairs = match(found, truth, scale)
        errors = []
        for t, f in pairs:
            gt_eyes = eye_centres(truth[t].landmarks)
            eyes = eye_centres(found[f].landmarks) / scale
            eye_distance = np.linalg.norm(gt_eyes[0] - gt_eyes[1])
            errors.append(float(np.linalg.norm(eyes - gt_eyes, axis=1).mean() / eye_distance))
        rows.append({"width": width, "photo_px": list(small.size), "pre_upscale": pre, "upsample": up,
                     "min_score": min_score,
                     "found": len(pairs), "faces": len(truth), "false_positives": len(found) - len(pairs),
                     "eye_error_median": statistics.median(errors) if errors else None,
                     "eye_error_max": max(errors) if errors else None, "seconds": round(seconds, 2),
                     "missed": sorted(set(range(len(truth))) - {t for t, _ in pairs})})
    return rows


def table(name: str, rows: list, faces: int) -> str:
    widths = sorted({r["width"] for r in rows})
    settings = list(dict.fromkeys((r["pre_upscale"], r["upsample"]) for r in rows))
    cell = {(r["width"], r["pre_upscale"], r["upsample"]): r for r in rows}
    lines = [f"**{name}** ({faces} faces). Found / false positives (median eye error, % of the eye distance):", "",
             "| pre-upscale, upsample | " + " | ".join(f"{w:g} px" for w in widths) + " |",
             "|---|" + "---|" * len(widths)]
    for pre, up in settings:
        cells = []
        for w in widths:
            r = cell.get((w, pre, up))
            if r is None:
                cells.append("")
                continue
            err = "" if r["eye_error_median"] is None else f" ({100 * r['eye_error_median']:.0f} %)"
            cells.append(f"{r['found']}/{r['faces']} / {r['false_positives']}{err}")
        lines.append(f"| x{pre}, {up} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, action="append", required=True, help="repeatable")
    parser.add_argument("--widths", default="10,12,14,16,24", help="face widths in px (median box)")
    parser.add_argument("--min-score", type=float, default=0.0,
                        help="dlib's HOG threshold for the reduced photos (0: the pack's default)")
    parser.add_argument("--truth-upsample", type=int, default=1, help="upsample for the full-size ground truth")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    widths = [float(w) for w in args.widths.split(",")]
    result, text = {}, []
    for path in args.photo:
        photo = to_pil(read_image(path)[0])
        truth = detect_faces(from_pil(photo)[0], upsample=args.truth_upsample)
        truth.sort(key=lambda f: (f.box[1] // 200, f.box[0]))  # rows, then left to right
        boxes = [round(f.box[2] - f.box[0]) for f in truth]
        print(f"{path.name}: {len(truth)} faces at full size, boxes {min(boxes)}-{max(boxes)} px", flush=True)
        rows = []
        for w in widths:
            rows += measure(photo, truth, w, SETTINGS, args.min_score)
            print(json.dumps(rows[-1]), flush=True)
        result[path.name] = {"truth_boxes": [list(f.box) for f in truth],
                             "truth_landmarks": [[list(p) for p in f.landmarks] for f in truth], "rows": rows}
        text.append(table(f"{path.name}, min_score {args.min_score:g}", rows, len(truth)))
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out / "detection.md") as tmp:
        tmp.write_text("\n".join(text))
    with atomic_output(args.out / "detection.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    print("\n".join(text))


if __name__ == "__main__":
    main()
