"""Where should sampling end? Scores of each step's estimate of the clean face, under every protocol.

    python -m studies.ending_early_study --model models/lpip_x4_64.safetensors \
        --data ../shared/faces/aligned512 --holdout models/holdout.txt --faces 12 --out DIR

Each held-out face is loaded, degraded by each protocol and scored as `lpip-diff evaluate` does
(its steps `held_out_faces`, `make_lq`, `score_face`; same seeds) and restored once with every
step: restore's callback hands over the x0 estimate after step k, exactly what restore returns
when `end_percent` rounds to k of the steps, so one run scores every end. PSNR / SSIM / ID Sim
(dlib, the ground truth's landmarks) of each step's estimate and of bicubic; writes
ending_early.md, ending_early.json and ending_early.png (each measure minus bicubic's, against
end_percent) to --out. Needs the face photos for its figures;
tests/studies/test_ending_early_study.py runs it on two fixture faces.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lpip_core import load_model, restore
from lpip_core.checks import seed_for
from lpip_core.evaluation.evaluate import held_out_faces, score_face
from lpip_core.evaluation.protocols import PROTOCOLS, make_lq
from lpip_core.files import atomic_output, quantize_8bit
from lpip_core.resize import resize

MEASURES = ("psnr", "ssim", "id_sim")


def study(model_path: Path, data: Path, holdout: Path | None, steps: int, limit: int | None, seed: int = 0) -> dict:
    """Per protocol, per end ("bicubic", then "1".."steps"): the mean PSNR / SSIM / ID Sim over the faces."""
    model = load_model(model_path)
    hq_size, lq_size = model.config.hq_size, model.config.hq_size // model.config.scale
    faces = held_out_faces(data, hq_size, holdout, faces_limit=limit)
    means = {}
    for protocol in PROTOCOLS:
        lq = make_lq(protocol, faces.hq, lq_size, seed)
        scores = {}
        for i in range(len(faces.names)):
            estimates = {"bicubic": resize(lq[i:i + 1], (hq_size, hq_size))}
            restore(model, lq[i:i + 1], steps=steps, seed=seed_for(seed, i), samples=1,
                    callback=lambda info: estimates.__setitem__(str(info["i"] + 1), info["denoised"]))
            for key, x in estimates.items():
                row = scores.setdefault(key, {m: [] for m in MEASURES})
                for m, value in score_face(quantize_8bit(x), faces, i)[0].items():
                    row[m].append(value)
        means[protocol] = {key: {m: statistics.fmean(v) for m, v in row.items()} for key, row in scores.items()}
    return {"model": model_path.name, "scale": model.config.scale, "faces": len(faces.names), "steps": steps,
            "seed": seed, "means": means}


def table(result: dict, shown: list[int]) -> str:
    lines = [f"Model `{result['model']}`, {result['faces']} held-out faces, {result['steps']} DDIM steps, seed "
             f"{result['seed']}. PSNR / SSIM / ID Sim (dlib) of the estimate after step k (`end_percent` k / "
             f"{result['steps']}) and of bicubic; ✓: all three above bicubic.", "",
             "| protocol | bicubic | " + " | ".join(f"end {k / result['steps']:g}" for k in shown) + " |",
             "|---|---|" + "---|" * len(shown)]
    for protocol, rows in result["means"].items():
        bic = rows["bicubic"]

        def cell(r):
            return f"{r['psnr']:.2f} / {r['ssim']:.4f} / {r['id_sim']:.4f}"

        cells = [cell(rows[str(k)]) + (" ✓" if all(rows[str(k)][m] > bic[m] for m in MEASURES) else "")
                 for k in shown]
        lines.append(f"| `{protocol}` | {cell(bic)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(path: Path, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, first = range(1, result["steps"] + 1), result["steps"] // 3  # the first third is far below: cut
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, measure, label in zip(axes, MEASURES, ("PSNR (dB)", "SSIM", "ID Sim (dlib)")):
        margins = {protocol: [rows[str(k)][measure] - rows["bicubic"][measure] for k in steps]
                   for protocol, rows in result["means"].items()}
        for protocol, margin in margins.items():
            ax.plot([k / result["steps"] for k in steps], margin, label=protocol)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel("end_percent")
        ax.set_title(f"{label} minus bicubic's")
        low = min(v for margin in margins.values() for k, v in zip(steps, margin) if k >= first)
        high = max(v for margin in margins.values() for v in margin)
        ax.set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))
        ax.set_xlim(first / result["steps"], 1)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"x{result['scale']}, {result['model']}, {result['faces']} held-out faces: "
                 "ending early, each step's estimate against bicubic (above 0 = better)")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--holdout", type=Path)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--faces", type=int, help="only the first N held-out faces (default all)")
    parser.add_argument("--show", default="10,13,15,17,20,25", help="end steps in the table (of --steps)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    result = study(args.model, args.data, args.holdout, args.steps, args.faces)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(result, [int(k) for k in args.show.split(",")])
    for name, content in (("ending_early.md", text), ("ending_early.json", json.dumps(result, indent=1))):
        with atomic_output(args.out / name) as tmp:
            tmp.write_text(content)
    plot(args.out / "ending_early.png", result)
    print(text)


if __name__ == "__main__":
    main()
