"""Per-face sampling time: batched fused sampler vs a literal per-patch loop vs whole-image sampling.

Run: python bench/sampler.py [--steps 5] [--rounds 3] [--threads N] [--device cpu|cuda]

For the paper's three settings (x4: 64 px, patch 16, stride 8; x8: 128/32/16; x16: 256/64/32) it
times, side by side in one run (rounds interleaved, median kept):
  batched   lpip_core.restore: the patches of a step in as few UNet calls as suit the device
            (on the CPU, chunks of about 16k patch pixels, which oneDNN runs fastest)
  loop      Algorithm 2 as written: one UNet call per patch, crops and sums in Python
  whole     whole-image sampling (one patch = the image), the SR3 baseline
and prints the ratios the project targets: loop / batched >= 5, and
batched / (whole x patch-area factor) <= 1.3, where the factor = patches x m^2 / (H x W) is the
extra pixels the overlapping grid makes the UNet process. Untrained weights: speed only.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lpip_core import PRESETS, LPIPModel, ModelConfig, restore  # noqa: E402
from lpip_core.method.patches import patch_starts  # noqa: E402
from lpip_core.method.sampler import sample_ddim  # noqa: E402
from lpip_core.method.schedule import NoiseSchedule  # noqa: E402
from lpip_core.resize import resize  # noqa: E402

SETTINGS = [  # name, scale, hq size, patch, stride, preset
    ("x4", 4, 64, 16, 8, "small"),
    ("x8", 8, 128, 32, 16, "base"),
    ("x16", 16, 256, 64, 32, "base"),
]


def literal_loop(model, lq, steps, patch, stride, seed=0):
    """Algorithm 2 line by line: per step, per patch, crop, predict, add into the canvas, divide."""
    scale = model.config.scale
    h, w = lq.shape[-2] * scale, lq.shape[-1] * scale
    lq_up = resize(lq, (h, w)) * 2 - 1
    schedule = NoiseSchedule(model.config.schedule)
    kept = schedule.ddim_timesteps(steps)
    corners = [(y, x) for y in patch_starts(h, patch, stride) for x in patch_starts(w, patch, stride)]

    def eps(x_t, t):
        total = torch.zeros_like(x_t)
        count = torch.zeros_like(x_t[:, :1])
        timestep = torch.full((x_t.shape[0],), float(t), device=x_t.device)
        for y, x in corners:
            window = (..., slice(y, y + patch), slice(x, x + patch))
            total[window] += model(x_t[window], lq_up[window], timestep)
            count[window] += 1
        return total / count

    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(1, 3, h, w, generator=g).to(lq.device)
    with torch.inference_mode():
        x = sample_ddim(eps, x_T, schedule.ddim_coefficients(kept), kept)
    return ((x + 1) / 2).clamp(0, 1), len(corners)


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="DDIM steps per face (time scales linearly)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--settings", default="x4,x8,x16")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    wanted = args.settings.split(",")
    print(f"device {device}, {torch.get_num_threads()} threads, {args.steps} steps, median of {args.rounds} rounds")
    header = (f"{'setting':8} {'patches':>7} {'area x':>6} {'batched s':>9} {'loop s':>8} {'whole s':>8} "
              f"{'loop/batched':>12} {'batched/(whole*area)':>20} {'max |diff|':>10}")
    print(header)
    rows = []
    for name, scale, size, patch, stride, preset in SETTINGS:
        if name not in wanted:
            continue
        torch.manual_seed(0)
        config = ModelConfig(unet=PRESETS[preset], scale=scale, hq_size=size, patch=patch, stride=stride)
        model = LPIPModel(config).to(device, memory_format=torch.channels_last).eval()  # as load_model does
        lq = torch.rand(1, 3, size // scale, size // scale, device=device)
        runs = {
            "batched": lambda: restore(model, lq, steps=args.steps),  # automatic patch chunks
            "loop": lambda: literal_loop(model, lq, args.steps, patch, stride)[0],
            "whole": lambda: restore(model, lq, steps=args.steps, whole_image=True),
        }
        for fn in runs.values():  # warm-up
            fn()
        times = {k: [] for k in runs}
        outputs = {}
        for _ in range(args.rounds):
            for k, fn in runs.items():
                seconds, outputs[k] = timed(fn, device)
                times[k].append(seconds)
        t = {k: statistics.median(v) for k, v in times.items()}
        patches = len(patch_starts(size, patch, stride)) ** 2
        area = patches * patch * patch / (size * size)
        diff = (outputs["batched"] - outputs["loop"]).abs().max().item()
        rows.append((name, patches, area, t, diff))
        print(f"{name:8} {patches:7d} {area:6.2f} {t['batched']:9.3f} {t['loop']:8.3f} {t['whole']:8.3f} "
              f"{t['loop'] / t['batched']:12.1f} {t['batched'] / (t['whole'] * area):20.2f} {diff:10.1e}", flush=True)
    print("targets: loop/batched >= 5; batched/(whole*area) <= 1.3; max |diff| (batched vs loop output) ~ float rounding")


if __name__ == "__main__":
    main()
