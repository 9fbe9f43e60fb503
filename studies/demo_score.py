"""The demo with ground truth: the 1927 photo shrunk until its faces are N px wide, restored by the
demo's pipeline, each face scored against the full-size photo's face.

    python -m studies.demo_score --photo ../shared/faces/photos/solvay_conference_1927.jpg \
        --face-px 12 --out DIR [--write-photo examples/photos/solvay_1927_small.jpg] [--max-face-px -1]

The pipeline is the example workflow's (and `lpip-diff restore --photo --upscale 4`'s):
lpip_core.photo: Lanczos x4, find the faces (dlib, `--upsample`), cut them at the model's 16 px,
restore (25 steps, the defaults), paste back. Every face found (restored or left alone by the size
limit: then its LPIP-Diff crop is the Lanczos one, as in the photo the pipeline returns) is cut with the same
alignment at the model's output size (64 px) from the Lanczos x4 photo, the restored photo and the
full-size photo (the truth, shrunk with antialiasing to the same 64 px), and scored: PSNR, SSIM,
ID Sim (dlib) against the truth as `lpip-diff evaluate` scores (`score_face`), and sharpness
(high-frequency energy over the truth's). The shrunk photo is saved as JPEG (quality 92) and read
back before the run, so that the score is the score of the file `--write-photo` writes. Writes
demo.md, demo.json and demo.jpg (per face: Lanczos x4 | LPIP-Diff | original) to --out. Needs the
full-size photo; never used by the tests.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from lpip_core import load_model, restore
from lpip_core.evaluation.evaluate import Faces, score_face
from lpip_core.faces.detect import FaceAlignment, detect_faces, warp_face
from lpip_core.files import atomic_output, from_pil, read_image, to_pil
from lpip_core.method.restoration import RECOMMENDED_END_PERCENT
from lpip_core.photo import restore_photo, upscale_lanczos
from lpip_core.sharpness import high_frequency_energy

CELL = 96
METHODS = ("Lanczos x4", "LPIP-Diff")


def shrunk_photo(photo: Image.Image, face_px: float, truth_widths: list[float], quality: int | None = 92) -> bytes:
    """The photo shrunk with Lanczos until the median face box is ``face_px`` wide, as JPEG bytes
    (``quality`` None: lossless PNG bytes)."""
    f = face_px / statistics.median(truth_widths)
    small = photo.resize((round(photo.width * f), round(photo.height * f)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if quality is None:
        small.save(buf, format="PNG")
    else:
        small.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def mapped(points, kx: float, ky: float) -> list[tuple[float, float]]:
    """Points scaled by (kx, ky) with pixel centres on integers: x' = (x + 0.5) * kx - 0.5."""
    return [((x + 0.5) * kx - 0.5, (y + 0.5) * ky - 0.5) for x, y in points]


def score(full: torch.Tensor, lanczos: torch.Tensor, restored: torch.Tensor, faces: list[FaceAlignment],
          out_size: int, upscale: float, left_alone: list[FaceAlignment] = ()) -> list[dict]:
    """Per face: the three 64 px crops and each method's PSNR / SSIM / ID Sim / sharpness. Faces in
    ``left_alone`` were left alone by the size limit: their LPIP-Diff crop is the Lanczos one."""
    if not faces:
        return []
    kx, ky = full.shape[-1] / lanczos.shape[-1], full.shape[-2] / lanczos.shape[-2]
    truths = []
    for al in faces:
        truth_al = FaceAlignment.from_landmarks(mapped(al.landmarks, kx, ky),
                                                image_size=tuple(full.shape[-2:]), face_size=out_size)
        truths.append(warp_face(full[0], truth_al)[None])
    truth = Faces.of(torch.cat(truths), [str(i) for i in range(len(faces))])
    rows = []
    for i, al in enumerate(faces):
        row = {"face": i, "left_alone": any(al is a for a in left_alone),
               "box": [round(v / upscale, 1) for v in al.box], "crop_px": round(al.source_side / upscale, 1),
               "crops": {"original": truths[i]}}
        for name, image in zip(METHODS, (lanczos, restored)):
            crop = warp_face(image[0], al, out_size)[None]
            row["crops"][name] = crop
            scores, _ = score_face(crop, truth, i)
            sharpness = high_frequency_energy(crop[0]) / high_frequency_energy(truths[i][0])
            row[name] = {**scores, "sharpness": sharpness}
        rows.append(row)
    return rows


def table(rows: list[dict], found: int, truth: int, note: str) -> str:
    lines = [note, "", "| face | crop (px in the photo) | " + " | ".join(
        f"{m}: PSNR / SSIM / ID Sim / sharpness" for m in METHODS) + " |", "|---|---|---|---|"]
    for r in rows:
        cells = [f"{r[m]['psnr']:.2f} / {r[m]['ssim']:.3f} / {r[m]['id_sim']:.3f} / {r[m]['sharpness']:.2f}"
                 for m in METHODS]
        alone = " (left alone)" if r["left_alone"] else ""
        lines.append(f"| {r['face']}{alone} | {r['crop_px']:.0f} | " + " | ".join(cells) + " |")
    if rows:
        means = []
        for m in METHODS:
            mean = [statistics.fmean(r[m][key] for r in rows) for key in ("psnr", "ssim", "id_sim")]
            med = statistics.median(r[m]["sharpness"] for r in rows)
            means.append(f"**{mean[0]:.2f} / {mean[1]:.3f} / {mean[2]:.3f} / {med:.2f}** (median)")
        lines.append("| mean | | " + " | ".join(means) + " |")
        ratio = statistics.median(r["LPIP-Diff"]["sharpness"] / r["Lanczos x4"]["sharpness"] for r in rows)
        wins = {key: sum(r["LPIP-Diff"][key] > r["Lanczos x4"][key] for r in rows)
                for key in ("psnr", "ssim", "id_sim")}
        alone = sum(r["left_alone"] for r in rows)
        lines += ["", f"{found} of {truth} faces found and scored, {len(rows) - alone} restored, {alone} left alone "
                      "by the size limit (their LPIP-Diff column is the Lanczos photo). LPIP-Diff beats Lanczos x4 "
                      f"on {wins['psnr']} / {wins['ssim']} / {wins['id_sim']} of {len(rows)} faces in PSNR / SSIM / "
                      f"ID Sim; median sharpness LPIP-Diff over Lanczos x4: {ratio:.2f}."]
    return "\n".join(lines) + "\n"


def figure(rows: list[dict]) -> Image.Image:
    """Per face: Lanczos x4 | LPIP-Diff | original (64 px crops shown at CELL px), two faces a row."""
    per_row, names = 2, (*METHODS, "original")
    width = per_row * (3 * (CELL + 2) + 12)
    canvas = Image.new("RGB", (width, 16 + ((len(rows) + per_row - 1) // per_row) * (CELL + 14)), "white")
    pen = ImageDraw.Draw(canvas)
    for c in range(per_row):
        for j, name in enumerate(names):
            pen.text((c * (3 * (CELL + 2) + 12) + j * (CELL + 2) + 2, 2), name, fill="black")
    for n, r in enumerate(rows):
        x0, y0 = (n % per_row) * (3 * (CELL + 2) + 12), 16 + (n // per_row) * (CELL + 14)
        for j, name in enumerate(names):
            crop = to_pil(r["crops"][name][0]).resize((CELL, CELL), Image.Resampling.LANCZOS)
            canvas.paste(crop, (x0 + j * (CELL + 2), y0))
        pen.text((x0 + 2, y0 + CELL), f"face {r['face']}: {r['LPIP-Diff']['psnr'] - r['Lanczos x4']['psnr']:+.2f} dB, "
                                      f"ID {r['LPIP-Diff']['id_sim'] - r['Lanczos x4']['id_sim']:+.3f}"
                 + (" (left alone)" if r["left_alone"] else ""), fill="black")
    return canvas


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, required=True, help="the full-size photo (the truth)")
    parser.add_argument("--face-px", type=float, default=10, help="median face box width of the demo photo")
    parser.add_argument("--crop", help="x0,y0,x1,y1: the region of the full-size photo to keep (default: all)")
    parser.add_argument("--model", type=Path, default=Path("models/lpip_x4_64.safetensors"))
    parser.add_argument("--upscale", type=int, default=4)
    parser.add_argument("--upsample", type=int, default=1)
    parser.add_argument("--min-score", type=float, default=-0.4, help="the detector's threshold (dlib HOG)")
    parser.add_argument("--max-face-px", type=float, default=0, help="as lpip-diff restore's (0 auto, -1 none)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--write-photo", type=Path, help="also save the shrunk photo here (the bundled demo photo)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    full = read_image(args.photo)
    if args.crop:  # a region of the photo (the rows of people), cut before anything else
        x0, y0, x1, y1 = (int(v) for v in args.crop.split(","))
        full = full[..., y0:y1, x0:x1]
    truth = detect_faces(full[0], upsample=1)
    jpeg = shrunk_photo(to_pil(full[0]), args.face_px, [f.box[2] - f.box[0] for f in truth])
    small = from_pil(Image.open(io.BytesIO(jpeg)))
    lanczos = upscale_lanczos(small, args.upscale)
    model = load_model(args.model)
    config = model.config

    def restore_crops(crops):
        return restore(model, crops, steps=args.steps, seed=0, end_percent=RECOMMENDED_END_PERCENT)

    result = restore_photo(lanczos, restore_crops, crop_size=config.lq_size, lq_size=config.lq_size,
                           max_face_px=args.max_face_px, upscaled_by=args.upscale, upsample=args.upsample,
                           min_score=args.min_score)
    found = len(result.restored) + len(result.skipped)
    rows = score(full, lanczos, result.images, result.found, config.hq_size, args.upscale, result.skipped)
    seconds = time.perf_counter() - started
    region = f" (region {args.crop})" if args.crop else ""
    note = (f"`{args.photo.name}`{region} shrunk to {small.shape[-1]}x{small.shape[-2]} px (faces {args.face_px:g} px wide, "
            f"JPEG 92), Lanczos x{args.upscale}, faces found at upsample {args.upsample} and min_score "
            f"{args.min_score:g}, restored by "
            f"`{args.model.name}` ({args.steps} steps ending at {RECOMMENDED_END_PERCENT:g}), pasted back; each face "
            f"cut at {config.hq_size} px from both and from the full-size photo (the truth). "
            f"Pipeline: {result.text}. {seconds / 60:.1f} min.")
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(rows, found, len(truth), note)
    clean = [{k: v for k, v in r.items() if k != "crops"} for r in rows]
    for name, content in (("demo.md", text), ("demo.json", json.dumps({"note": note, "rows": clean}, indent=1))):
        with atomic_output(args.out / name) as tmp:
            tmp.write_text(content)
    with atomic_output(args.out / "demo.jpg") as tmp:
        figure(rows).save(tmp, format="JPEG", quality=88)
    if args.write_photo:
        with atomic_output(args.write_photo) as tmp:
            tmp.write_bytes(jpeg)
    print(text)


if __name__ == "__main__":
    main()
