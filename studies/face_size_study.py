"""Faces bigger than the model's 16 px input: which path restores them best?

    python -m studies.face_size_study --model models/lpip_x4_64.safetensors \
        --data ../shared/faces/aligned512 --holdout models/holdout.txt --sizes 24,32,48 --out DIR

Each held-out face is shown at N px (its aligned crop shrunk with antialiasing, as Face Crop &
Align cuts it from a photo; optionally with noise and JPEG at N px, `--degradation lq-noise-jpeg`)
and brought to the model's output size by:
  (a) resize to the model's LQ size, restore (low_resolution input, the paper's path),
  (b) bicubic to the output size, restore in place (already_upscaled) at each `--denoise`,
  (c) Lanczos to the output size; and bicubic as the reference.
PSNR / SSIM / ID Sim (dlib) against the ground truth at the output size, scored as `lpip-diff
evaluate` scores (`score_face`); writes face_size.md and face_size.json to --out. Needs the face
photos for its figures; tests/studies/test_face_size_study.py runs it on two fixture faces.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from lpip_core import load_model, restore
from lpip_core.data.degrade import DegradeParams, degrade
from lpip_core.data.folders import load_faces
from lpip_core.data.split import read_split
from lpip_core.evaluation.evaluate import Faces, score_face
from lpip_core.files import atomic_output, from_pil, quantize_8bit, to_pil
from lpip_core.method.plan import ALREADY_UPSCALED
from lpip_core.method.restoration import RECOMMENDED_END_PERCENT
from lpip_core.resize import resize


def lanczos(x: torch.Tensor, size: int) -> torch.Tensor:
    return from_pil(to_pil(x).resize((size, size), Image.Resampling.LANCZOS))


def shown_at(hq: torch.Tensor, n: int, degradation: str, seed: int) -> torch.Tensor:
    """The face as a photo shows it at n px (8-bit)."""
    if degradation == "clean":
        small = resize(hq, (n, n))
    else:  # lq-noise-jpeg: the `medium` protocol's noise and JPEG, at n px
        small, _ = degrade(hq, DegradeParams(downscale=hq.shape[-1] / n, noise_sigma=10, jpeg_quality=70), seed=seed,
                           lq_size=(n, n))
    return (small * 255).round() / 255


def study(model_path: Path, data: Path, holdout: Path | None, sizes: list[int], denoises: list[float],
          degradation: str, steps: int, limit: int | None = None, seed: int = 0,
          end_percent: float = RECOMMENDED_END_PERCENT) -> dict:
    model = load_model(model_path)
    out_size, lq_size = model.config.hq_size, model.config.hq_size // model.config.scale
    include = read_split(holdout) if holdout else None
    faces, names = load_faces(data, 512 if out_size <= 512 else out_size, include=include, min_face_size=out_size)
    faces = faces[:limit].float() / 255
    truths = Faces.of(resize(faces, (out_size, out_size)), names[:limit])  # the ground truths at the output size
    rows = []
    for i, face in enumerate(faces):
        for n in sizes:
            seen = shown_at(face[None], n, degradation, seed + i)
            methods = {
                "bicubic": resize(seen, (out_size, out_size)),
                "Lanczos": lanczos(seen, out_size),
                f"a: resize to {lq_size} px, restore": restore(
                    model, resize(seen, (lq_size, lq_size)), steps=steps, seed=seed + i, end_percent=end_percent),
            }
            for d in denoises:
                methods[f"b: upscale, restore in place, denoise {d:g}"] = restore(
                    model, resize(seen, (out_size, out_size)), input_is=ALREADY_UPSCALED, steps=steps, seed=seed + i,
                    denoise=d, end_percent=end_percent)
            for key, out in methods.items():
                scores, _ = score_face(quantize_8bit(out), truths, i)
                rows.append({"face": truths.names[i], "size": n, "method": key, **scores})
    return {"model": model_path.name, "output_size": out_size, "faces": len(truths.names), "sizes": sizes,
            "degradation": degradation, "steps": steps, "end_percent": end_percent, "rows": rows}


def table(result: dict) -> str:
    lines = [f"Model `{result['model']}` ({result['output_size']} px out), {result['faces']} held-out faces shown "
             f"at N px ({result['degradation']}), {result['steps']} steps ending at "
             f"{result['end_percent']:g} of them. Mean PSNR / SSIM / ID Sim (dlib) "
             "against the ground truth at the output size; best per size in bold.", ""]
    methods = list(dict.fromkeys(r["method"] for r in result["rows"]))
    lines += ["| method | " + " | ".join(f"{n} px" for n in result["sizes"]) + " |",
              "|---|" + "---|" * len(result["sizes"])]
    means = {(m, n): [statistics.fmean(r[k] for r in result["rows"] if r["method"] == m and r["size"] == n)
                      for k in ("psnr", "ssim", "id_sim")] for m in methods for n in result["sizes"]}
    best = {n: [max(means[(m, n)][j] for m in methods) for j in range(3)] for n in result["sizes"]}
    for m in methods:
        cells = []
        for n in result["sizes"]:
            p, s, q = means[(m, n)]
            parts = [f"{p:.2f}", f"{s:.3f}", f"{q:.3f}"]
            parts = [f"**{t}**" if v == best[n][j] else t for j, (t, v) in enumerate(zip(parts, (p, s, q)))]
            cells.append(" / ".join(parts))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--holdout", type=Path)
    parser.add_argument("--sizes", default="24,32,48")
    parser.add_argument("--denoise", default="0.3,0.5,0.7", help="in-place restorations to add ('': none)")
    parser.add_argument("--degradation", choices=("clean", "lq-noise-jpeg"), default="clean")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--end-percent", type=float, default=RECOMMENDED_END_PERCENT,
                        help=f"as restore's (default {RECOMMENDED_END_PERCENT:g}, the node's and the CLI's; "
                             "1: the paper)")
    parser.add_argument("--faces", type=int, help="only the first N held-out faces (default all)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    result = study(args.model, args.data, args.holdout, [int(s) for s in args.sizes.split(",")],
                   [float(d) for d in args.denoise.split(",") if d], args.degradation, args.steps, args.faces,
                   end_percent=args.end_percent)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(result)
    for name, content in (("face_size.md", text), ("face_size.json", json.dumps(result, indent=1))):
        with atomic_output(args.out / name) as tmp:
            tmp.write_text(content)
    print(text)


if __name__ == "__main__":
    main()
