"""The command line: `lpip-diff restore | degrade` (also `python -m lpip_core`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from . import __version__
from .patches import FUSIONS

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "lpip_x4_64.safetensors"


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as e:
        raise CliError(f"--device {name} is not available here ({e})") from None
    return device


def _read_all(paths: list[str]):
    """Read every input before any work starts, so a bad file fails fast and writes nothing."""
    from .files import read_image

    images = []
    for p in paths:
        try:
            images.append((Path(p), read_image(p)))
        except ValueError as e:
            raise CliError(str(e)) from None
    return images


def cmd_restore(args) -> None:
    from tqdm import tqdm

    from .checkpoint import load_model
    from .files import write_image
    from .restoration import restore

    model_path = Path(args.model) if args.model else DEFAULT_MODEL
    if not model_path.is_file():
        raise CliError(f"model not found: {model_path} (pass --model PATH to a .safetensors checkpoint)")
    images = _read_all(args.inputs)
    model = load_model(model_path, device=_device(args.device))
    out_dir = Path(args.out)
    bar = tqdm(total=len(images) * args.steps, unit="step", disable=args.quiet, dynamic_ncols=True)
    for path, lq in images:
        bar.set_description(path.name)
        hq = restore(model, lq, steps=args.steps, eta=args.eta, patch=args.patch, stride=args.stride,
                     fusion=args.fusion, max_batch=args.max_batch, seed=args.seed, whole_image=args.whole_image,
                     upsampled=args.upsampled, callback=lambda i, n, x0: bar.update(1))
        target = write_image(hq, out_dir / f"{path.stem}.png")
        bar.write(str(target))
    bar.close()


def cmd_degrade(args) -> None:
    from .degrade import DegradeParams, degrade
    from .files import write_image

    manual = any(v is not None for v in (args.blur, args.downscale, args.noise, args.jpeg))
    out_dir = Path(args.out)
    for i, (path, hq) in enumerate(_read_all(args.inputs)):
        if manual:
            params = DegradeParams(blur_sigma=args.blur or 0.0, downscale=args.downscale or float(args.scale),
                                   noise_sigma=args.noise or 0.0, jpeg_quality=args.jpeg)
            lq_size = None
        else:
            params = None
            lq_size = (max(1, hq.shape[-2] // args.scale), max(1, hq.shape[-1] // args.scale))
        lq, lq_up = degrade(hq, params, seed=args.seed + i, lq_size=lq_size)
        print(write_image(lq, out_dir / f"{path.stem}_lq.png"))
        if args.save_upsampled:
            print(write_image(lq_up, out_dir / f"{path.stem}_lq_up.png"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpip-diff", description="LPIP-Diff identity-preserving face restoration")
    parser.add_argument("--version", action="version", version=f"lpip-diff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("restore", help="restore low-quality face images")
    r.add_argument("inputs", nargs="+", help="LQ face images (e.g. 16x16 for the x4 model)")
    r.add_argument("-o", "--out", required=True, help="output folder (written atomically, one PNG per input)")
    r.add_argument("--model", help=f"a .safetensors checkpoint (default: {DEFAULT_MODEL.name} in models/)")
    r.add_argument("--steps", type=int, default=25, help="DDIM steps (default 25)")
    r.add_argument("--eta", type=float, default=0.0, help="DDIM eta, 0 = deterministic (default 0)")
    r.add_argument("--patch", type=int, help="patch size (default: the model's training patch)")
    r.add_argument("--stride", type=int, help="patch stride (default: half the patch)")
    r.add_argument("--fusion", choices=FUSIONS, default="mean", help="how overlapping estimates combine")
    r.add_argument("--whole-image", action="store_true", help="the SR3 baseline: one patch = the whole image")
    r.add_argument("--upsampled", action="store_true", help="inputs are already at the output size")
    r.add_argument("--max-batch", type=int, default=64, help="patches per UNet call (memory)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps, ...")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_restore)

    d = sub.add_parser("degrade", help="make LQ faces with the GFPGAN degradation (random unless a knob is set)")
    d.add_argument("inputs", nargs="+", help="HQ face images")
    d.add_argument("-o", "--out", required=True, help="output folder")
    d.add_argument("--scale", type=int, default=4, help="LQ side = HQ side / scale (default 4)")
    d.add_argument("--blur", type=float, help="manual: blur sigma in HQ pixels")
    d.add_argument("--downscale", type=float, help="manual: downscale factor (default: --scale)")
    d.add_argument("--noise", type=float, help="manual: noise sigma in 0..255 units")
    d.add_argument("--jpeg", type=int, help="manual: JPEG quality 1..100")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--save-upsampled", action="store_true", help="also write the LQ upsampled to the HQ size")
    d.set_defaults(func=cmd_degrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (CliError, ValueError) as e:
        print(f"lpip-diff: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lpip-diff: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
