"""Speed where users run it: ms per face with the shipped models, side by side in one run.

GPU (one command on a CUDA machine with torch and this repository; no network):
    python bench/gpu.py [--steps 25] [--rounds 3]
  x4 (16 -> 64 px) and x8 (16 -> 128 px), both patch 16, the shipped weights in models/ sampled once
  per face (lpip_x8_128's default of 2 samples would double its times), on the bundled 16 px
  faces (examples/lq, repeated; face i with seed i):
  - speed: 1, 12 and 64 faces per `restore` call (one pass), fp32 / bf16 / fp16 weights, eager and
    (bf16; --compile-dtypes) torch.compile, ms per face and peak memory (variants interleaved round
    by round after a warm-up that also compiles, median kept);
  - the patch chunk: 64, 512 (the default) and 4096 patches per UNet call, x8 bf16, 64 faces;
  - fused vs whole-image (x the grid's area factor) vs a literal per-patch loop (Algorithm 2 as
    written, one UNet call per patch; fp32 eager, one face);
  - precision: PSNR of every variant's faces against fp32 eager (target > 40 dB);
  - out-of-memory for real: torch.cuda.set_per_process_memory_fraction leaves room for about 100
    patches per call; with the memory guard off, the node's halving (nodes/memory.py) must meet
    real OOM errors and finish; with the guard on, restore must pick a chunk that fits.
CPU (`make bench`; the same script's CPU half):
    python bench/gpu.py --cpu [--steps 10] [--rounds 3] [--busy 2] [--threads 1,2,0] [--no-cpu-bf16] [--cpu-compile]
  the faces the demo workflow restores in examples/photos/solvay_1927.jpg (x2, Face Crop & Align at 16 px),
  the shipped x4 model: one `restore` call per face vs all faces in one call, with 1 and 2 torch
  threads, on the machine as it is ("quiet") and with --busy processes spinning beside it ("busy").

Prints markdown tables; writes the numbers as JSON to --json, or to $OUT/bench_gpu.json when $OUT is
set. Without CUDA (and without --cpu) it says so and exits 0: the script is ready for the GPU machine.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lpip_core import load_model as load_shipped, restore  # noqa: E402
from lpip_core.evaluation.metrics import psnr  # noqa: E402
from lpip_core.files import read_image  # noqa: E402
from lpip_core.method import memory as core_memory  # noqa: E402
from lpip_core.method import runtime  # noqa: E402
from lpip_core.method.runtime import compile_problem, compile_unet  # noqa: E402

MODELS = {"x4": ROOT / "models" / "lpip_x4_64.safetensors", "x8": ROOT / "models" / "lpip_x8_128.safetensors"}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def load_model(path: Path, **kwargs):
    """A shipped model set to one sample per face: the benches time the sampler's unit of work."""
    model = load_shipped(path, **kwargs)
    model.config = replace(model.config, samples=1)
    return model


def load_file(path: Path):
    """A module from a file (bench/sampler.py, and nodes/memory.py without the nodes package, which
    imports ComfyUI)."""
    spec = importlib.util.spec_from_file_location(path.stem + "_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bundled_faces(n: int) -> torch.Tensor:
    """The bundled 16 px faces (examples/lq), repeated to n."""
    faces = torch.cat([read_image(p) for p in sorted((ROOT / "examples" / "lq").glob("*.png"))])
    return faces[torch.arange(n) % len(faces)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[float, torch.Tensor, int | None]:
    """(seconds, output, peak bytes allocated above the start, on CUDA)."""
    peak = None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start_bytes = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - start_bytes
    return seconds, out, peak


def side_by_side(fns: dict, rounds: int, device: torch.device, warmup: bool = True) -> dict:
    """Warm every variant up (compiling, for compiled ones), then time the variants interleaved,
    round by round; the median time, the first round's peak memory and the output of each."""
    result = {}
    for key, fn in fns.items():
        seconds = timed(fn, device)[0] if warmup else 0.0
        result[key] = {"warmup_s": seconds, "times": []}
    for r in range(rounds):
        for key, fn in fns.items():
            seconds, out, peak = timed(fn, device)
            result[key]["times"].append(seconds)
            if r == 0:
                result[key]["peak_bytes"], result[key]["out"] = peak, out.float().cpu()
    for entry in result.values():
        entry["seconds"] = statistics.median(entry["times"])
    return result


def min_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(psnr(a, b).min())


def mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 2 ** 20:.0f}"


# ---------------------------------------------------------------------------------------------- GPU

def gpu_bench(args) -> dict:
    """The GPU half: speed, the patch chunk, fused vs whole vs loop, and out of memory for real."""
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # fixed shapes within a run: let cuDNN pick its kernels
    report = {"speed": [], "chunk": [], "methods": [], "precision": [], "oom": None,
              "compile_problem": compile_problem(device)}
    compiled = [] if report["compile_problem"] else args.compile_dtypes
    for name in args.models:
        models = {}
        for dt in args.dtypes:
            for mode in ["eager"] + (["compiled"] if dt in compiled else []):
                model = load_model(MODELS[name], device=device, dtype=DTYPES[dt])
                models[(dt, mode)] = compile_unet(model, device) if mode == "compiled" else model
        for n in args.faces:
            lq = bundled_faces(n).to(device)
            fns = {k: (lambda m=m, lq=lq: restore(m, lq, steps=args.steps, seed=0)) for k, m in models.items()}
            runs = side_by_side(fns, args.rounds, device)
            reference = runs[("fp32", "eager")]["out"] if ("fp32", "eager") in runs else None
            for (dt, mode), r in runs.items():
                row = {"model": name, "faces": n, "dtype": dt, "mode": mode, "ms_per_face": 1000 * r["seconds"] / n,
                       "warmup_s": r["warmup_s"],
                       "peak_mb": None if r["peak_bytes"] is None else r["peak_bytes"] / 2 ** 20,
                       "psnr_vs_fp32_eager": None if reference is None or (dt, mode) == ("fp32", "eager")
                       else min_psnr(r["out"], reference)}
                report["speed"].append(row)
                print(f"  {name} {n:3d} faces {dt} {mode:8s} {row['ms_per_face']:9.2f} ms/face "
                      f"(warm-up {row['warmup_s']:.1f} s, peak {mb(r['peak_bytes'])} MB)", flush=True)
        del models
        torch.cuda.empty_cache()

    # the patch chunk, at the goal's setting: x8, bf16, 64 faces
    if "x8" in args.models and "bf16" in args.dtypes and 64 in args.faces:
        model = load_model(MODELS["x8"], device=device, dtype=torch.bfloat16)
        lq = bundled_faces(64).to(device)
        fns = {c: (lambda c=c, m=model: restore(m, lq, steps=args.steps, seed=0, max_patch_batch=c))
               for c in (64, 512, 4096)}
        for chunk, r in side_by_side(fns, args.rounds, device).items():
            report["chunk"].append({"max_patch_batch": chunk, "ms_per_face": 1000 * r["seconds"] / 64,
                                    "peak_mb": None if r["peak_bytes"] is None else r["peak_bytes"] / 2 ** 20})
        torch.cuda.empty_cache()

    loop = load_file(ROOT / "bench" / "sampler.py").literal_loop
    for name in args.models:
        model = load_model(MODELS[name], device=device)
        cfg = model.config
        area = 49 * cfg.patch ** 2 / cfg.hq_size ** 2
        for n in (1, max(args.faces)):
            lq = bundled_faces(n).to(device)
            fns = {"fused": lambda m=model, lq=lq: restore(m, lq, steps=args.steps, seed=0),
                   "whole": lambda m=model, lq=lq: restore(m, lq, steps=args.steps, seed=0, whole_image=True)}
            if n == 1:
                fns["loop"] = lambda m=model, lq=lq: loop(m, lq, args.steps, m.config.patch, m.config.stride)[0]
            r = side_by_side(fns, args.rounds, device)
            row = {"model": name, "faces": n, "area_factor": area,
                   **{f"{k}_ms_per_face": 1000 * v["seconds"] / n for k, v in r.items()}}
            row["fused_over_whole_x_area"] = r["fused"]["seconds"] / (r["whole"]["seconds"] * area)
            if "loop" in r:
                row["loop_over_fused"] = r["loop"]["seconds"] / r["fused"]["seconds"]
                row["loop_vs_fused_max_abs_diff"] = float((r["loop"]["out"] - r["fused"]["out"]).abs().max())
            report["methods"].append(row)
        torch.cuda.empty_cache()
    report["oom"] = oom_check(device, args.steps) if device.type == "cuda" else None
    return report


def oom_check(device: torch.device, steps: int) -> dict:
    """Out of memory for real: cap this process's share of the GPU so that about 100 x8 patches fit
    per call, then (1) the guard off: the node's halving meets real torch.cuda.OutOfMemoryError
    and finishes with the reference result; (2) the guard on: restore plans a chunk that fits."""
    memory = load_file(ROOT / "nodes" / "memory.py")
    model = load_model(MODELS["x8"], device=device)
    lq = bundled_faces(12).to(device)
    reference = restore(model, lq, steps=steps, seed=0, max_patch_batch=64)
    peaks = {}
    for chunk in (64, 512):
        torch.cuda.empty_cache()
        _, _, peaks[chunk] = timed(lambda c=chunk: restore(model, lq, steps=steps, seed=0, max_patch_batch=c),
                                 device)
    per_patch = max(1, (peaks[512] - peaks[64]) // 448)
    fixed = max(0, peaks[64] - 64 * per_patch)
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.empty_cache()
    allowed = torch.cuda.memory_allocated(device) + fixed + 100 * per_patch + 64 * 2 ** 20
    fraction = min(1.0, allowed / total)
    tried, errors = [], []
    free_memory = core_memory.available_memory
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    try:
        def run(chunk):
            tried.append(chunk)
            try:
                return restore(model, lq, steps=steps, seed=0, max_patch_batch=chunk)
            except torch.cuda.OutOfMemoryError as e:
                errors.append(str(e).splitlines()[0][:200])
                raise

        core_memory.available_memory = lambda device: None  # the guard off: only the halving protects
        try:
            out, worked = memory.run_halving_batch(run, 588, oom_type=torch.cuda.OutOfMemoryError,
                                                   empty_cache=torch.cuda.empty_cache)
            halving = {"tried": tried, "worked": worked, "real_oom_errors": len(errors), "first_error": errors[:1],
                       "max_abs_diff_vs_reference": float((out - reference).abs().max())}
        except torch.cuda.OutOfMemoryError as e:
            halving = {"tried": tried, "failed": str(e)[:300]}
        finally:
            core_memory.available_memory = free_memory
        torch.cuda.empty_cache()
        try:
            out, planned = restore(model, lq, steps=steps, seed=0, max_patch_batch=588, return_plan=True)
            guarded = {"planned_chunk": planned.max_patch_batch, "images_per_pass": planned.images_per_pass,
                       "oom": False, "max_abs_diff_vs_reference": float((out - reference).abs().max())}
        except (torch.cuda.OutOfMemoryError, ValueError) as e:  # a real OOM, or the guard's refusal
            guarded = {"oom": isinstance(e, torch.cuda.OutOfMemoryError),
                       "error": str(e)[:300]}
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    return {"fraction": fraction, "measured_bytes_per_patch": per_patch, "halving": halving, "guard": guarded}


def print_gpu(report: dict, steps: int) -> None:
    print(f"\n### GPU: ms per face, {steps} steps (one restore call per row; peak = memory above the weights)\n")
    print("| model | faces per call | dtype | mode | ms / face | peak MB | PSNR vs fp32 eager (dB) | warm-up s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in report["speed"]:
        p = "-" if r["psnr_vs_fp32_eager"] is None else f"{r['psnr_vs_fp32_eager']:.1f}"
        peak = "-" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        print(f"| {r['model']} | {r['faces']} | {r['dtype']} | {r['mode']} | {r['ms_per_face']:.2f} | {peak} | {p} | "
              f"{r['warmup_s']:.1f} |")
    if report["chunk"]:
        print("\n| x8 bf16, 64 faces: patches per UNet call | ms / face | peak MB |\n|---|---|---|")
        for r in report["chunk"]:
            peak = mb(r["peak_mb"] and r["peak_mb"] * 2 ** 20)
            print(f"| {r['max_patch_batch']} | {r['ms_per_face']:.2f} | {peak} |")
    print("\n| model | faces | fused ms/face | whole ms/face | loop ms/face | fused / (whole x area) | loop / fused |")
    print("|---|---|---|---|---|---|---|")
    for r in report["methods"]:
        loop = f"{r['loop_ms_per_face']:.1f}" if "loop_ms_per_face" in r else "-"
        ratio = f"{r['loop_over_fused']:.1f}" if "loop_over_fused" in r else "-"
        print(f"| {r['model']} | {r['faces']} | {r['fused_ms_per_face']:.2f} | {r['whole_ms_per_face']:.2f} | {loop} | "
              f"{r['fused_over_whole_x_area']:.2f} (area {r['area_factor']:.2f}) | {ratio} |")
    print(f"\nout of memory, for real: {json.dumps(report['oom'])}")
    if report["compile_problem"]:
        print(f"torch.compile was skipped: {report['compile_problem']}")
    print("\ngoals: x8 bf16 64 faces <= 20 ms/face; fused / (whole x area) <= 1.2; loop / fused >= 20; "
          "PSNR vs fp32 > 40 dB")


# ---------------------------------------------------------------------------------------------- CPU

def spin() -> None:
    while True:
        pass


def photo_faces() -> torch.Tensor:
    """The faces the demo workflow restores: the photo upscaled x2 (lanczos), then Face Crop & Align
    with select all, upsample 2, 16 px crops."""
    from PIL import Image

    from lpip_core.faces.detect import align_faces
    from lpip_core.files import from_pil, read_image, to_pil

    im = to_pil(read_image(ROOT / "examples" / "photos" / "solvay_1927.jpg"))
    photo = from_pil(im.resize((im.width * 2, im.height * 2), Image.Resampling.LANCZOS))
    crops, _ = align_faces(photo, face_size=16, select="all", upsample=2)
    return crops


def cpu_bench(args) -> dict:
    """The CPU half: the demo photo's faces one by one vs in one pass, per thread count, on the machine
    as it is and kept busy; then bf16 weights and torch.compile where asked."""
    device = torch.device("cpu")
    faces = photo_faces()
    model = load_model(MODELS["x4"])
    n = faces.shape[0]

    clock = {"unet": 0.0, "start": 0.0}  # seconds inside UNet calls: what one pass cannot save on a CPU
    model.unet.register_forward_pre_hook(lambda m, a: clock.update(start=time.perf_counter()))
    model.unet.register_forward_hook(lambda m, a, o: clock.update(unet=clock["unet"] + time.perf_counter()
                                                                  - clock["start"]))
    unet_share = {}

    def clocked(key, fn):
        clock["unet"], start = 0.0, time.perf_counter()
        out = fn()
        unet_share[key] = clock["unet"] / (time.perf_counter() - start)
        return out

    def one_by_one(threads):
        return torch.cat([restore(model, faces[i:i + 1], steps=args.steps, seed=i, threads=threads) for i in range(n)])

    def one_pass(threads):
        return restore(model, faces, steps=args.steps, seed=0, threads=threads)

    torch.set_num_threads(max(t for t in args.threads if t))  # what "auto" (threads=None) may lower

    rows, auto, others = [], {}, {}
    for load in ("quiet", "busy") if args.busy else ("quiet",):
        hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy if load == "busy" else 0)]
        for h in hogs:
            h.start()
        try:
            time.sleep(1.0)
            runtime._busy_cache = (-runtime.BUSY_CACHE_S, None)  # measure this load afresh
            auto[load] = runtime.pick_threads(torch.get_num_threads(), os.cpu_count() or 1, runtime.busy_cpus())
            others[load] = runtime.busy_cpus()
            fns = {}
            for threads in args.threads:
                for how, fn in (("one by one", one_by_one), ("one pass", one_pass)):
                    key = (load, threads, how)
                    fns[(threads, how)] = lambda fn=fn, t=threads, k=key: clocked(k, lambda: fn(t or None))
            quiet = load == "quiet"  # busy: one round, no warm-up (two threads can be 10x slower there)
            runs = side_by_side(fns, args.rounds if quiet else 1, device, warmup=quiet and args.rounds > 1)
        finally:
            for h in hogs:
                h.terminate()
                h.join()
        for threads in args.threads:
            a, b = runs[(threads, "one by one")], runs[(threads, "one pass")]
            diff = (a["out"] - b["out"]).abs()
            rows.append({"load": load, "threads": threads, "faces": n,
                         "one_by_one_ms_per_face": 1000 * a["seconds"] / n,
                         "one_pass_ms_per_face": 1000 * b["seconds"] / n, "speed_up": a["seconds"] / b["seconds"],
                         "max_abs_diff": float(diff.max()),
                         "unet_share_one_by_one": unet_share[(load, threads, "one by one")],
                         "unet_share_one_pass": unet_share[(load, threads, "one pass")],
                         "same_8bit": float(((a["out"] * 255).round() == (b["out"] * 255).round()).float().mean())})
            r = rows[-1]
            print(f"  {load} {threads} thread(s): one by one {r['one_by_one_ms_per_face']:.0f} ms/face, one pass "
                  f"{r['one_pass_ms_per_face']:.0f} ms/face, x{r['speed_up']:.2f}, max |diff| {r['max_abs_diff']:.1e}",
                  flush=True)
    top = max(t for t in args.threads if t)
    bf16 = cpu_bf16(model, faces, rows, top, args.steps) if args.cpu_bf16 else None
    compiled = cpu_compiled(model, faces, top, args.steps) if args.cpu_compile else None
    return {"faces": n, "rows": rows, "auto_threads": auto, "busy_cpus": others, "bf16": bf16, "compiled": compiled}


def cpu_bf16(model, faces: torch.Tensor, rows: list[dict], threads: int, steps: int) -> dict:
    """Precision on the CPU: bf16 weights, one pass, against fp32 (emulated on most CPUs: slow)."""
    n, device = faces.shape[0], torch.device("cpu")
    reference = next(r for r in rows if r["load"] == "quiet" and r["threads"] == threads)
    low = load_model(MODELS["x4"], dtype=torch.bfloat16)
    seconds, out, _ = timed(lambda: restore(low, faces, steps=steps, seed=0, threads=threads), device)
    fp32 = restore(model, faces, steps=steps, seed=0, threads=threads)
    bf16 = {"threads": threads, "ms_per_face": 1000 * seconds / n,
            "fp32_ms_per_face": reference["one_pass_ms_per_face"],
            "psnr_min": min_psnr(out, fp32), "psnr_mean": float(psnr(out, fp32).mean())}
    print(f"  bf16 one pass: {bf16['ms_per_face']:.0f} ms/face, PSNR vs fp32 >= {bf16['psnr_min']:.1f} dB", flush=True)
    return bf16


def cpu_compiled(model, faces: torch.Tensor, threads: int, steps: int) -> dict:
    """torch.compile on the CPU: the first call compiles (minutes here), then timed against eager."""
    n, device = faces.shape[0], torch.device("cpu")
    fp32 = restore(model, faces, steps=steps, seed=0, threads=threads)
    fast = compile_unet(load_model(MODELS["x4"]), device)
    first, _, _ = timed(lambda: restore(fast, faces, steps=steps, seed=0, threads=threads), device)
    seconds, out, _ = timed(lambda: restore(fast, faces, steps=steps, seed=0, threads=threads), device)
    eager, _, _ = timed(lambda: restore(model, faces, steps=steps, seed=0, threads=threads), device)
    compiled = {"threads": threads, "first_call_s": first, "ms_per_face": 1000 * seconds / n,
                "eager_ms_per_face": 1000 * eager / n, "max_abs_diff": float((out - fp32).abs().max()),
                "psnr_min": min_psnr(out, fp32)}
    print(f"  compiled one pass: {compiled['ms_per_face']:.0f} ms/face (eager {compiled['eager_ms_per_face']:.0f})",
          flush=True)
    return compiled


def print_cpu(report: dict, steps: int, busy: int) -> None:
    print(f"\n### CPU: the demo photo's {report['faces']} faces (x4, 16 -> 64 px, {steps} steps), ms per face\n")
    print("| machine | threads | one by one | one pass | one pass speed-up | time in UNet calls (by one / pass) "
          "| max abs diff | same 8-bit values |")
    print("|---|---|---|---|---|---|---|---|")
    for r in report["rows"]:
        cpus = report["busy_cpus"].get(r["load"])
        seen = "" if cpus is None else f"; other processes kept {cpus:.1f} CPUs busy"
        load = ("as found" if r["load"] == "quiet" else f"busy: {busy} spinning processes added") + seen
        threads = r["threads"] or f"auto ({report['auto_threads'].get(r['load'], '?')})"
        print(f"| {load} | {threads} | {r['one_by_one_ms_per_face']:.0f} | {r['one_pass_ms_per_face']:.0f} | "
              f"x{r['speed_up']:.2f} | {100 * r['unet_share_one_by_one']:.0f} % / "
              f"{100 * r['unet_share_one_pass']:.0f} % | "
              f"{r['max_abs_diff']:.1e} | {100 * r['same_8bit']:.2f} % |")
    b = report["bf16"]
    if b:
        print(f"\nbf16 weights, one pass, {b['threads']} thread(s), quiet: {b['ms_per_face']:.0f} ms/face (fp32: "
              f"{b['fp32_ms_per_face']:.0f}); PSNR against fp32: min {b['psnr_min']:.1f} dB, "
              f"mean {b['psnr_mean']:.1f} dB")
    c = report["compiled"]
    if c:
        print(f"torch.compile, one pass, {c['threads']} thread(s): {c['ms_per_face']:.0f} ms/face (eager "
              f"{c['eager_ms_per_face']:.0f}; first call, compiling: {c['first_call_s']:.0f} s); against eager: max "
              f"|diff| {c['max_abs_diff']:.1e}, PSNR >= {c['psnr_min']:.1f} dB")


# ---------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="the CPU half (demo photo, threads, busy machine)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default 25 on the GPU, 10 on the CPU)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="x4,x8")
    parser.add_argument("--dtypes", default="fp32,bf16,fp16")
    parser.add_argument("--faces", default="1,12,64", help="faces per restore call (GPU)")
    parser.add_argument("--compile-dtypes", default="bf16",
                        help="dtypes also timed under torch.compile ('' for none; each compiles for a minute or two)")
    parser.add_argument("--threads", default="1,2,0",
                        help="torch CPU threads to compare (CPU half); 0 = restore's automatic choice")
    parser.add_argument("--no-cpu-bf16", dest="cpu_bf16", action="store_false",
                        help="CPU half: skip the bf16 row (emulated on CPUs without native bf16: slow)")
    parser.add_argument("--cpu-compile", action="store_true",
                        help="CPU half: also time torch.compile (minutes to compile)")
    parser.add_argument("--busy", type=int, default=2, help="spinning processes for the busy case (0: none)")
    parser.add_argument("--device", default="cuda",
                        help="where the GPU half runs; cpu: a smoke test of the script (slow; no out-of-memory check)")
    parser.add_argument("--json", default=None, help="write the numbers here (default: $OUT/bench_gpu.json)")
    args = parser.parse_args()
    args.models, args.dtypes = args.models.split(","), args.dtypes.split(",")
    args.compile_dtypes = [d for d in args.compile_dtypes.split(",") if d]
    args.faces = [int(f) for f in args.faces.split(",")]
    args.threads = [int(t) for t in args.threads.split(",")]
    machine = {"torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
               "cpu": platform.processor() or platform.machine()}
    if args.cpu:
        args.steps = args.steps or 10
        report = {"machine": machine, "steps": args.steps, "cpu": cpu_bench(args)}
        print_cpu(report["cpu"], args.steps, args.busy)
    else:
        if args.device == "cuda" and not torch.cuda.is_available():
            print("no CUDA device here: the GPU half did not run (run this script on the GPU machine; "
                  "`--cpu` runs the CPU half)")
            return
        args.steps = args.steps or 25
        machine["gpu"] = torch.cuda.get_device_name() if args.device == "cuda" else args.device
        print(f"{machine['gpu']}, torch {torch.__version__}, {args.steps} steps, median of {args.rounds} rounds")
        report = {"machine": machine, "steps": args.steps, "gpu": gpu_bench(args)}
        print_gpu(report["gpu"], args.steps)
    path = args.json or (os.path.join(os.environ["OUT"], "bench_gpu.json") if os.environ.get("OUT") else None)
    if path:
        Path(path).write_text(json.dumps(report, indent=1))
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
