"""Training throughput on the CPU (or a GPU): where a step's time goes, fp32 against bf16 autocast.

Run: python bench/train.py [--data DIR ...] [--preset small] [--scale 4 --hq-size 64 --patch 16] [--steps 60]

Side by side in one run (rounds interleaved, median kept), with the real training code
(lpip_core.training: PatchPairs, train_step, update_ema) on faces stored as training stores them:
  data        cutting a step's patch pairs (augment, degrade, upsample, crop) from the in-memory faces
  fp32 step   data + UNet forward/backward + AdamW + EMA, full precision
  bf16 step   the same under bf16 autocast (train --precision auto picks it where the CPU has native bf16)
and prints steps/s and patches/s for each, and the bf16 / fp32 ratio. Without --data, random faces
(speed only).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lpip_core import PRESETS, LPIPModel, ModelConfig  # noqa: E402
from lpip_core.data.folders import load_faces  # noqa: E402
from lpip_core.method.schedule import NoiseSchedule  # noqa: E402
from lpip_core.training.augment import Augmentation  # noqa: E402
from lpip_core.training.pairs import PatchPairs, collate_pairs  # noqa: E402
from lpip_core.training.train import train_step, update_ema  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", help="face folder(s); default: 64 random faces")
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--hq-size", type=int, default=64)
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--faces-per-step", type=int, default=8)
    parser.add_argument("--patches-per-face", type=int, default=4)
    parser.add_argument("--steps", type=int, default=60, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    store = 2 * args.hq_size
    if args.data:
        start = time.perf_counter()
        faces, _ = load_faces(args.data, args.hq_size, store_size=store, masks=True)
        print(f"loaded {len(faces)} faces at {store} px in {time.perf_counter() - start:.1f} s "
              f"({faces.numel() / 2 ** 20:.0f} MiB as uint8)")
    else:
        faces = torch.randint(0, 256, (64, 4, store, store), dtype=torch.uint8)
        faces[:, 3] = 255
    pairs = PatchPairs(faces, scale=args.scale, patch=args.patch, hq_size=args.hq_size,
                       patches_per_face=args.patches_per_face, augmentation=Augmentation())
    per_step = args.faces_per_step
    batch_of = lambda k: collate_pairs([pairs[k * per_step + j] for j in range(per_step)])  # noqa: E731

    config = ModelConfig(unet=PRESETS[args.preset], scale=args.scale, hq_size=args.hq_size, patch=args.patch,
                         stride=args.patch // 2)
    model = LPIPModel(config)
    schedule = NoiseSchedule(config.schedule)
    runs = {}
    for name, bf16 in (("fp32 step", False), ("bf16 step", True)):
        m = copy.deepcopy(model)
        runs[name] = (m, copy.deepcopy(m).requires_grad_(False), torch.optim.AdamW(m.parameters(), lr=1e-4),
                      torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16))

    def time_data(k0):
        start = time.perf_counter()
        for k in range(k0, k0 + args.steps):
            batch_of(k)
        return time.perf_counter() - start

    def time_steps(name, k0):
        m, ema, opt, autocast = runs[name]
        start = time.perf_counter()
        for k in range(k0, k0 + args.steps):
            hq, lq = batch_of(k)
            train_step(m, opt, hq, lq, schedule, torch.Generator().manual_seed(k), autocast, 1.0)
            update_ema(ema, m, 0.999)
        return time.perf_counter() - start

    time_steps("fp32 step", 0), time_steps("bf16 step", 0)  # warm-up
    seconds = {"data": [], "fp32 step": [], "bf16 step": []}
    for r in range(args.rounds):
        k0 = (r + 1) * args.steps
        seconds["data"].append(time_data(k0))
        for name in ("fp32 step", "bf16 step"):
            seconds[name].append(time_steps(name, k0))
    patches = per_step * args.patches_per_face
    print(f"{args.preset} x{args.scale}, {args.hq_size} px, patch {args.patch}, {patches} patches per step, "
          f"{args.threads} thread(s), median of {args.rounds} rounds of {args.steps} steps")
    rate = {}
    for name, values in seconds.items():
        rate[name] = args.steps / statistics.median(values)
        print(f"  {name:10s} {rate[name]:7.2f} steps/s  {rate[name] * patches:8.0f} patches/s")
    print(f"  bf16 / fp32 steps/s: {rate['bf16 step'] / rate['fp32 step']:.2f}; "
          f"data share of a bf16 step: {rate['bf16 step'] / rate['data']:.0%}")


if __name__ == "__main__":
    main()
