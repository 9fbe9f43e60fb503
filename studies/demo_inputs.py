"""Why the x4 model trails Lanczos on the demo photo: the same faces, their 16 px input made several ways.

    python -m studies.demo_inputs --photo ../shared/faces/photos/solvay_conference_1927.jpg \
        --crop 0,560,3000,1700 --inputs pipeline,oracle,area,lanczos --out DIR

Every face the demo's pipeline finds (`studies.demo_score`: the photo shrunk with Lanczos until its
faces are ``--face-px`` wide, JPEG 92, Lanczos x4, dlib at upsample 2) is restored from a 16 px input
made one of these ways, and scored at 64 px against the full-size photo cut with the same alignment,
beside the baseline each input comes with:

- ``pipeline``: the demo's own input (cut from the Lanczos x4 photo with the detected landmarks);
  baseline: the Lanczos x4 photo's crop (what the demo scores against).
- ``oracle``: the same, with landmarks found on the full-size photo and mapped down (perfect alignment).
- ``direct``: the detected alignment, cut from the shrunk photo itself rather than its x4 upscale.
- ``blurS``: the pipeline's input blurred (Gaussian, sigma S LQ px), e.g. ``blur0.5``.
- ``area`` / ``lanczos``: the truth's 64 px crop shrunk to 16 px (area; PIL Lanczos) as the
  evaluation's protocols make LQ faces; baseline: it upscaled again (bicubic; Lanczos).

``--lowpass S`` also scores each result with its low frequencies (Gaussian, sigma S px at 64 px)
replaced by the baseline's: how much of the loss is tone rather than detail. Needs the full-size
photo; never used by the tests.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

from lpip_core import load_model, restore
from lpip_core.evaluation.evaluate import Faces, score_face
from lpip_core.faces.detect import FaceAlignment, detect_faces, warp_face
from lpip_core.files import atomic_output, from_pil, quantize_8bit, read_image, to_pil
from lpip_core.method.restoration import RECOMMENDED_END_PERCENT
from lpip_core.photo import upscale_lanczos
from lpip_core.sharpness import high_frequency_energy
from studies.demo_score import mapped, shrunk_photo

LQ, HQ, UPSCALE = 16, 64, 4
KEYS = ("psnr", "ssim", "id_sim")


def low_frequencies_from(restored: torch.Tensor, baseline: torch.Tensor, sigma: float) -> torch.Tensor:
    """``restored``'s detail on ``baseline``'s low frequencies (Gaussian split at ``sigma`` px)."""
    k = int(4 * sigma) | 1
    return quantize_8bit(restored - TF.gaussian_blur(restored, k, sigma) + TF.gaussian_blur(baseline, k, sigma))


def make_input(way: str, lanczos: torch.Tensor, small: torch.Tensor, truth64: torch.Tensor,
               detected: FaceAlignment, oracle: FaceAlignment) -> tuple[torch.Tensor, torch.Tensor]:
    """One face's 16 px input made ``way`` and the 64 px baseline it is judged against."""
    if way in ("area", "lanczos"):
        if way == "area":
            lq = quantize_8bit(F.interpolate(truth64, size=LQ, mode="area"))
            return lq, quantize_8bit(F.interpolate(lq, size=HQ, mode="bicubic", align_corners=False))
        lq = from_pil(to_pil(truth64[0]).resize((LQ, LQ), Image.Resampling.LANCZOS))
        return lq, from_pil(to_pil(lq[0]).resize((HQ, HQ), Image.Resampling.LANCZOS))
    al = oracle if way == "oracle" else detected
    baseline = quantize_8bit(warp_face(lanczos[0], al, HQ))[None]
    if way == "direct":
        k = 1 / UPSCALE
        al_small = FaceAlignment.from_landmarks(mapped(al.landmarks, k, k), image_size=tuple(small.shape[-2:]),
                                                face_size=LQ)
        return quantize_8bit(warp_face(small[0], al_small))[None], baseline
    lq = warp_face(lanczos[0], al)[None]
    if way.startswith("blur"):
        lq = TF.gaussian_blur(lq, 5, float(way[4:]))
    elif way not in ("pipeline", "oracle"):
        raise ValueError(f"--inputs: unknown way {way!r}")
    return quantize_8bit(lq), baseline


def margins(rows: list[dict], name: str) -> str:
    """Means of the result and its baseline, and result minus baseline (mean ± standard error)."""
    cells = []
    for key in KEYS:
        d = [r[name]["result"][key] - r[name]["baseline"][key] for r in rows]
        se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
        result = statistics.fmean(r[name]["result"][key] for r in rows)
        base = statistics.fmean(r[name]["baseline"][key] for r in rows)
        digits = 2 if key == "psnr" else 3
        cells.append(f"{result:.{digits}f} / {base:.{digits}f} / {statistics.fmean(d):+.{digits}f} ± {se:.{digits}f}")
    return " | ".join(cells)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, required=True, help="the full-size photo (the truth)")
    parser.add_argument("--crop", help="x0,y0,x1,y1: the region of the full-size photo to keep (default: all)")
    parser.add_argument("--face-px", type=float, default=10, help="median face box width of the shrunk photo")
    parser.add_argument("--no-jpeg", action="store_true", help="keep the shrunk photo as it is (no JPEG 92)")
    parser.add_argument("--model", type=Path, default=Path("models/lpip_x4_64.safetensors"))
    parser.add_argument("--inputs", default="pipeline,oracle,area,lanczos")
    parser.add_argument("--lowpass", default="", help="comma-separated sigmas (px at 64 px), e.g. 2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    full = read_image(args.photo)
    if args.crop:
        x0, y0, x1, y1 = (int(v) for v in args.crop.split(","))
        full = full[..., y0:y1, x0:x1]
    truth = detect_faces(full[0], upsample=1)
    widths = [f.box[2] - f.box[0] for f in truth]
    shrunk = shrunk_photo(to_pil(full[0]), args.face_px, widths, quality=None if args.no_jpeg else 92)
    small = from_pil(Image.open(io.BytesIO(shrunk)))
    lanczos = upscale_lanczos(small, UPSCALE)
    size = tuple(lanczos.shape[-2:])
    kx, ky = full.shape[-1] / lanczos.shape[-1], full.shape[-2] / lanczos.shape[-2]

    def centre(points):
        return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)

    oracles = [mapped(t.landmarks, 1 / kx, 1 / ky) for t in truth]  # on the Lanczos x4 photo
    faces = []  # (detected, oracle) alignments; a detection more than 10 px from every truth face is dropped
    for d in detect_faces(lanczos[0], upsample=2, min_score=-0.4):
        cx, cy = centre(d.landmarks)
        distance, oracle = min((math.dist((cx, cy), centre(o)), o) for o in oracles)
        if distance <= 10:
            faces.append(tuple(FaceAlignment.from_landmarks(points, image_size=size, face_size=LQ)
                               for points in (d.landmarks, oracle)))
    model = load_model(args.model)
    rows = [{"crop_px": d.source_side / UPSCALE} for d, _ in faces]
    for way in args.inputs.split(","):
        lqs, baselines, truths = [], [], []
        for detected, oracle in faces:
            al = oracle if way == "oracle" else detected
            al_full = FaceAlignment.from_landmarks(mapped(al.landmarks, kx, ky), image_size=tuple(full.shape[-2:]),
                                                   face_size=HQ)
            truths.append(quantize_8bit(warp_face(full[0], al_full))[None])
            lq, baseline = make_input(way, lanczos, small, truths[-1], detected, oracle)
            lqs.append(lq)
            baselines.append(baseline)
        results = quantize_8bit(restore(model, torch.cat(lqs), steps=25, seed=args.seed, samples=args.samples,
                                    end_percent=RECOMMENDED_END_PERCENT))
        judged = Faces.of(torch.cat(truths), [str(i) for i in range(len(faces))])
        for i, row in enumerate(rows):
            baseline = score_face(baselines[i], judged, i)[0]
            row[way] = {"result": score_face(results[i:i + 1], judged, i)[0], "baseline": baseline,
                        "lq_sharpness": high_frequency_energy(lqs[i])}
            for sigma in filter(None, args.lowpass.split(",")):
                fixed = low_frequencies_from(results[i:i + 1], baselines[i], float(sigma))
                row[f"{way}+lowpass{sigma}"] = {"result": score_face(fixed, judged, i)[0], "baseline": baseline}
    names = [k for k in rows[0] if k != "crop_px"] if rows else []
    lines = [f"`{args.model.name}`, {len(faces)} faces, shrunk to {args.face_px:g} px"
             f"{' (no JPEG)' if args.no_jpeg else ''}, seed {args.seed}, {args.samples} sample(s); "
             f"{(time.perf_counter() - started) / 60:.1f} min.", "",
             "| input | faces | PSNR: result / baseline / difference | SSIM | ID Sim |", "|---|---|---|---|---|"]
    for label, subset in (("all", rows), ("crop <= 18 px (restored by the demo)", [r for r in rows if r["crop_px"] <= 18])):
        for name in names:
            lines.append(f"| {name}, {label} | {len(subset)} | {margins(subset, name)} |")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in (("demo_inputs.md", "\n".join(lines) + "\n"), ("demo_inputs.json", json.dumps(rows, indent=1))):
        with atomic_output(args.out / name) as tmp:
            tmp.write_text(content)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
