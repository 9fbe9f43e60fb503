"""The command line: `lpip-diff restore | degrade | train | average | evaluate` (also `python -m lpip_core`)."""
from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import warnings
from pathlib import Path

import torch

from . import __version__
from .checks import MAX_SIDE, check_float, check_int, renamed, shown
from .data.degrade import MAX_DOWNSCALE, MIN_DOWNSCALE, RESAMPLE_KERNELS
from .method.patches import FUSIONS
from .method.plan import ALREADY_UPSCALED, INPUT_KINDS, LOW_RESOLUTION
from .method.restoration import RECOMMENDED_DENOISE, RECOMMENDED_END_PERCENT, SAMPLE_SEED_STRIDE

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "lpip_x4_64.safetensors"
# The options whose lpip_core argument has another name: errors of the core's checks say the option.
PHOTO_OPTIONS = {"max_face_px": "--max-face-px", "upscaled_by": "--upscale", "upsample": "--upsample",
                 "min_score": "--min-score"}
DEGRADE_OPTIONS = {"blur_sigma": "--blur", "downscale": "--downscale", "noise_sigma": "--noise",
                   "jpeg_quality": "--jpeg", "resample": "--resample", "seed": "--seed"}


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block), like every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
        (torch.zeros(1, device=device) + 1).cpu()  # computes there and gives the result back (not "meta")
    except (RuntimeError, AssertionError, NotImplementedError, TypeError, ImportError) as e:
        raise CliError(f"--device {name} is not available here ({str(e).splitlines()[0][:160]})") from None
    return device


def _read_all(paths: list[str]) -> list[tuple[Path, tuple[int, int]]]:
    """Read every input before any work starts, so that a bad file fails fast and writes nothing;
    returns each path with its (height, width). The images are read again one at a time when their
    turn comes (memory holds one at a time)."""
    from .files import read_image

    return [(Path(p), tuple(read_image(p).shape[-2:])) for p in paths]  # a ValueError that names the file


def _plan_outputs(inputs: list[Path], out_dir: Path, suffixes: list[str], overwrite: bool) -> list[list[Path]]:
    """out_dir/<input stem><suffix> for every input and suffix, refusing up front whatever would
    lose work (outputs.plan_outputs) and two inputs with the same output."""
    from .outputs import Output, plan_outputs

    plan = [[out_dir / f"{p.stem}{suffix}" for suffix in suffixes] for p in inputs]
    writers: dict[Path, Path] = {}
    for src, outs in zip(inputs, plan):
        for out in outs:
            key = out.resolve()
            if key in writers:
                raise CliError(f"{writers[key]} and {src} would both be written to {out}; write inputs with the "
                               "same name to separate -o folders")
            writers[key] = src
    plan_outputs([Output("-o", out_dir, folder=True)] + [Output("-o", out) for outs in plan for out in outs], inputs,
                 overwrite=overwrite)
    return plan


def _check_side(option: str, value, path: Path, size: tuple[int, int], factor: float) -> None:
    """Refuse an option that would make an image of `path` larger than MAX_SIDE a side (memory)."""
    h, w = round(size[0] * factor), round(size[1] * factor)
    if max(h, w) > MAX_SIDE:
        raise CliError(f"{option} {shown(value)}: {path.name} ({size[1]}x{size[0]} px) would become "
                       f"{shown(w)}x{shown(h)} px; at most {MAX_SIDE} px a side")


def _write(image, target: Path) -> Path:
    """write_image, with a full disk or a lost permission as one line that names the file."""
    from .files import write_image

    try:
        return write_image(image, target)
    except OSError as e:
        raise CliError(f"cannot write {target}: {e.strerror or e}") from None


def _warn_if_not_a_face(path: Path, lq, config, upscaled: bool) -> None:
    """A photo given where a face crop is expected runs for minutes: say so before it starts."""
    h, w = lq.shape[-2:]
    if not upscaled and min(h, w) > 4 * config.lq_size:
        print(f"lpip-diff: warning: {path.name} is {w}x{h} px, but the model restores {config.lq_size} px faces "
              f"(x{config.scale}): the {w * config.scale}x{h * config.scale} px result will take long; crop the "
              "faces first (ComfyUI's Face Crop & Align)", file=sys.stderr)


def cmd_restore(args) -> None:
    from tqdm import tqdm

    from .checks import check_output_scale
    from .files import read_image
    from .method.checkpoint import load_model
    from .method.restoration import restore
    from .method.schedule import steps_until_end
    from .resize import resize

    model_path = Path(args.model) if args.model else DEFAULT_MODEL
    if not model_path.is_file():
        raise CliError(f"model not found: {model_path} (pass --model PATH to a .safetensors checkpoint)")
    sized = _read_all(args.inputs)
    inputs = [p for p, _ in sized]
    plan = _plan_outputs(inputs, Path(args.out), [".png"], args.overwrite)
    run = steps_until_end(args.steps, args.end_percent)  # checks --end-percent before loading
    upscaled = args.input_is == ALREADY_UPSCALED
    if args.photo and (upscaled or args.whole_image or args.scale is not None):
        raise CliError("--photo: faces are cut from each photo, restored and pasted back at the photo's size; "
                       "leave out --scale, --input-is already_upscaled and --whole-image")
    if args.photo:
        from .faces.detect import check_detection
        from .photo import check_upscaled_by, face_limit

        with renamed(PHOTO_OPTIONS):  # before the model loads
            face_limit(args.max_face_px, 16)
            check_upscaled_by(args.upscale)
            check_detection(upsample=args.upsample, min_score=args.min_score)
    device = _device(args.device)
    model = load_model(model_path, device=device)
    samples = model.config.samples if args.samples is None else args.samples
    check_int("samples", samples, 1, SAMPLE_SEED_STRIDE)  # before the progress bar counts with it
    total = len(inputs) * run * samples
    scale = check_output_scale(args.scale, model.config.scale)
    if upscaled and scale != model.config.scale:
        raise CliError("--scale: already upscaled inputs (--input-is already_upscaled) are restored at their own "
                       "size, so --scale must be left out")
    for path, size in sized:
        _check_side("--scale", scale, path, size, 1 if upscaled else scale)
    bar = tqdm(total=total, unit="step", disable=args.quiet, dynamic_ncols=True)
    if args.photo:
        return _restore_photos(args, model, samples, inputs, plan, bar)
    for path, (target,) in zip(inputs, plan):
        lq = read_image(path)
        _warn_if_not_a_face(path, lq, model.config, upscaled)
        bar.set_description(path.name)
        hq = restore(model, lq, steps=args.steps, eta=args.eta, denoise=args.denoise, samples=samples,
                     end_percent=args.end_percent, patch_size=args.patch_size, stride=args.stride, fusion=args.fusion,
                     max_patch_batch=args.max_patch_batch, seed=args.seed, whole_image=args.whole_image,
                     input_is=args.input_is, callback=lambda info: bar.update(1))
        if scale != model.config.scale:  # the rest of --scale by bicubic
            hq = resize(hq, (lq.shape[-2] * scale, lq.shape[-1] * scale))
        bar.write(str(_write(hq, target)))
    bar.close()


def _restore_photos(args, model, samples, inputs, plan, bar) -> None:
    """--photo: the photo pipeline of the Restore Faces node (lpip_core.photo), faces bigger than the
    size limit left alone; one line per photo says which."""
    from .files import read_image
    from .method.restoration import restore
    from .photo import restore_photo, upscale_lanczos

    config = model.config
    for path, (target,) in zip(inputs, plan):
        bar.set_description(path.name)
        photo = upscale_lanczos(read_image(path), args.upscale)

        def restore_crops(crops):
            return restore(model, crops, steps=args.steps, eta=args.eta, denoise=args.denoise, samples=samples,
                           end_percent=args.end_percent, patch_size=args.patch_size, stride=args.stride,
                           fusion=args.fusion, max_patch_batch=args.max_patch_batch, seed=args.seed,
                           callback=lambda info: bar.update(1))

        result = restore_photo(photo, restore_crops, crop_size=config.lq_size, lq_size=config.lq_size,
                               max_face_px=args.max_face_px, upscaled_by=args.upscale, upsample=args.upsample,
                               min_score=args.min_score)
        bar.write(f"{path.name}: {result.text}")
        bar.write(str(_write(result.images, target)))
    bar.close()


def _degrade_params(args):
    """The manual degradation of the options (None: a random draw, no knob set), checked by
    DegradeParams itself: its ranges are the command's."""
    from .data.degrade import DegradeParams

    if all(v is None for v in (args.blur, args.downscale, args.noise, args.jpeg, args.resample)):
        return None
    with renamed(DEGRADE_OPTIONS):
        return DegradeParams(blur_sigma=args.blur or 0.0,
                             downscale=args.downscale if args.downscale is not None else float(args.scale),
                             noise_sigma=args.noise or 0.0, jpeg_quality=args.jpeg,
                             resample=args.resample or "bicubic-aa")


def cmd_degrade(args) -> None:
    from .checks import check_seed, seed_for
    from .data.degrade import degrade
    from .files import read_image

    check_float("--scale", args.scale, 1, 64)
    params = _degrade_params(args)
    manual = params is not None
    with renamed(DEGRADE_OPTIONS):
        check_seed(args.seed, len(args.inputs))
    sized = _read_all(args.inputs)
    inputs = [p for p, _ in sized]
    for path, size in sized:
        if manual and args.downscale is not None:
            _check_side("--downscale", args.downscale, path, size, 1 / args.downscale)
        elif min(size) < args.scale:
            raise CliError(f"--scale {args.scale}: {path.name} is {size[1]}x{size[0]} px, smaller than the scale; "
                           "its LQ would be less than one pixel")
    plan = _plan_outputs(inputs, Path(args.out), ["_lq.png"] + (["_lq_up.png"] if args.save_upsampled else []),
                         args.overwrite)
    for i, (path, targets) in enumerate(zip(inputs, plan)):
        hq = read_image(path)
        lq_size = None if manual else (max(1, hq.shape[-2] // args.scale), max(1, hq.shape[-1] // args.scale))
        lq, lq_up = degrade(hq, params, seed=seed_for(args.seed, i), lq_size=lq_size)
        for image, target in zip((lq, lq_up), targets):
            print(_write(image, target))


def _check_device_name(name: str) -> None:
    """Validate a --device without touching the device (under torchrun every rank would open GPU 0)."""
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise CliError(f"--device {name}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CliError(f"--device {name} is not available here (no CUDA device)")
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise CliError(f"--device {name}: training runs on cpu, cuda, mps or xpu")


def _check_model_out(out: str) -> None:
    """Refuse a model path that is not .safetensors before any work starts."""
    if Path(out).suffix != ".safetensors":
        raise CliError(f"--out {out}: the model is written as .safetensors; give a path ending in .safetensors")


def cmd_train(args) -> None:
    from .files import regular_file
    from .training.train import TrainConfig, train

    if args.steps is None and args.minutes is None:
        raise CliError("give a budget: --minutes N (wall time) or --steps N (or both: whichever comes first)")
    for folder in args.data:
        if not Path(folder).is_dir():
            raise CliError(f"--data {folder}: folder not found")
    for path in args.holdout or ():
        regular_file(path, "--holdout")
    _check_model_out(args.out)
    _check_device_name(args.device)
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    values["patch"] = args.patch if args.patch is not None else max(1, args.hq_size // 4)
    cfg = TrainConfig(**values)
    out = train(cfg, progress=not args.quiet)
    if _rank() == 0:
        print(out)


def cmd_average(args) -> None:
    from .method.checkpoint import save_model
    from .outputs import Output, plan_outputs
    from .training.average import average_models

    _check_model_out(args.out)
    plan_outputs([Output("-o", Path(args.out))], args.models, overwrite=args.overwrite)
    print(save_model(average_models(args.models, args.weights), args.out))


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))  # torchrun's process rank


def cmd_evaluate(args) -> None:
    from .evaluation.evaluate import evaluate
    from .files import regular_file

    model_path = Path(args.model) if args.model else DEFAULT_MODEL
    if not model_path.is_file():
        raise CliError(f"model not found: {model_path} (pass --model PATH to a .safetensors checkpoint)")
    if not Path(args.data).is_dir():
        raise CliError(f"--data {args.data}: folder not found")
    if args.holdout:
        regular_file(args.holdout, "--holdout")
    try:
        factors = tuple(float(f) for f in args.table2.split(",") if f.strip()) if args.table2 else ()
    except ValueError:
        raise CliError(f"--table2 {args.table2!r}: give comma-separated patch multiples, e.g. 0.25,0.5,1,2") from None
    if args.threads is not None:
        torch.set_num_threads(check_int("threads", args.threads, 1, 1024))
    protocols = "all" if args.protocol == "all" else [n.strip() for n in args.protocol.split(",") if n.strip()]
    try:
        sweep = tuple(float(d) for d in args.denoise_sweep.split(",") if d.strip()) if args.denoise_sweep else ()
    except ValueError:
        raise CliError(f"--denoise-sweep {args.denoise_sweep!r}: give comma-separated values in (0, 1]") from None
    evaluate(model_path, args.data, out_dir=args.out, protocols=protocols, denoise=args.denoise,
             denoise_sweep=sweep, samples=args.samples, end_percent=args.end_percent, scale=args.scale,
             holdout=args.holdout, steps=args.steps,
             seed=args.seed, faces_limit=args.faces, grid_faces=args.grid_faces, patch_factors=factors,
             fusions=[f.strip() for f in args.fusions.split(",") if f.strip()], min_face_size=args.min_face_size,
             align=args.align, max_patch_batch=args.max_patch_batch, overwrite=args.overwrite,
             device=_device(args.device), progress=not args.quiet, command=args.command_line)
    print(Path(args.out) / "protocols.md")
    if not args.quiet:
        print((Path(args.out) / "protocols.md").read_text().rsplit("\n\n", 1)[-1], end="")  # the table, no caption


def _train_parser(sub) -> None:
    from .method.unet import PRESETS
    from .training.pairs import DEGRADATIONS
    from .training.train import MAX_FACES_PER_STEP, MAX_PATCHES_PER_FACE, PRECISIONS, TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    t = sub.add_parser("train", help="train a model (Algorithm 1); under torchrun: one process per GPU (DDP)",
                       description="Train LPIP-Diff on random patches of degraded/clean face pairs. Several GPUs: "
                                   "torchrun --nproc_per_node N -m lpip_core train ...")
    t.add_argument("--data", required=True, action="append", help="folder of face images (searched recursively; "
                   "FFHQ layout works); repeat for several folders (a folder named twice is drawn twice as often)")
    t.add_argument("-o", "--out", required=True, help="the EMA model to write (.safetensors); the run's log, loss "
                                                      "plot and resume state go to <out without suffix>-train/")
    t.add_argument("--scale", type=int, default=defaults["scale"], help="2, 4, 8 or 16 (LQ side = hq-size / scale)")
    t.add_argument("--hq-size", type=int, default=defaults["hq_size"],
                   help="HQ face side in px, a multiple of scale (the paper: 64, 128, 256)")
    t.add_argument("--patch", type=int, help="training patch m (default hq-size / 4: the paper's 16/32/64)")
    t.add_argument("--preset", choices=sorted(PRESETS), default=defaults["preset"], help="UNet size")
    t.add_argument("--minutes", type=float, help="budget: stop after this much wall time (a resumed run counts "
                                                 "the time already spent)")
    t.add_argument("--steps", type=int, help="budget: stop after this many steps (with --minutes: whichever first)")
    t.add_argument("--resume", action="store_true", help="continue the earlier run from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="start over an earlier run (its model, log and state "
                                                           "are replaced); without it or --resume, train refuses")
    t.add_argument("--init", help="start from this checkpoint's weights (same preset and patch; any scale): fine-tuning")
    t.add_argument("--degradation", choices=DEGRADATIONS, default=defaults["degradation"],
                   help="mix (default): the training mixture of docs/training.md, 'Degradation'; or one of its variants")
    t.add_argument("--photo-share", type=float, default=defaults["photo_share"],
                   help="0..1: the share of the draws posed as a photo holds the face, degraded at that size and "
                        "aligned after, as Face Crop & Align cuts a face from a real photo (default 0)")
    t.add_argument("--no-augment", dest="augment", action="store_false",
                   help="flips only (default: flips, small scale/shift/rotation, colour jitter, random greyscale)")
    t.add_argument("--holdout", action="append", help="file of face names never to train on (e.g. "
                   "models/holdout.txt); repeat for several files")
    t.add_argument("--min-face-size", type=int, help="drop faces smaller than this natively (default hq-size)")
    t.add_argument("--max-outside", type=float, help="drop crops whose MANIFEST.csv outside_fraction is larger")
    t.add_argument("--patches-anywhere", dest="anywhere", action="store_true",
                   help="cut patches anywhere in the crop (default: inside the photo, where inside512/ masks say)")
    t.add_argument("--precision", choices=PRECISIONS, default=defaults["precision"],
                   help="auto (default): bf16 autocast on CUDA and on CPUs with native bf16, else fp32")
    t.add_argument("--align", action="store_true", help="detect and FFHQ-align the largest face of each image")
    t.add_argument("--faces-per-step", type=int, default=defaults["faces_per_step"],
                   help=f"faces per step and process, 1..{MAX_FACES_PER_STEP}")
    t.add_argument("--patches-per-face", type=int, default=defaults["patches_per_face"],
                   help=f"1..{MAX_PATCHES_PER_FACE}")
    t.add_argument("--lr", type=float, default=defaults["lr"], help="peak AdamW learning rate")
    t.add_argument("--warmup-steps", type=int, default=defaults["warmup_steps"])
    t.add_argument("--min-lr-ratio", type=float, default=defaults["min_lr_ratio"], help="cosine decays to lr * this")
    t.add_argument("--weight-decay", type=float, default=defaults["weight_decay"])
    t.add_argument("--grad-clip", type=float, default=defaults["grad_clip"], help="gradient norm clip")
    t.add_argument("--ema-decay", type=float, default=defaults["ema_decay"], help="EMA decay (warmed up)")
    t.add_argument("--workers", type=int, default=defaults["workers"], help="data loader processes (0 = inline)")
    t.add_argument("--threads", type=int, help="torch CPU threads per process")
    t.add_argument("--device", default=defaults["device"], help="auto, cpu, cuda (under torchrun: each rank's GPU)")
    t.add_argument("--seed", type=int, default=defaults["seed"])
    t.add_argument("--checkpoint-minutes", type=float, default=defaults["checkpoint_minutes"],
                   help="write the model and the resume state this often")
    t.add_argument("--log-every", type=int, default=defaults["log_every"], help="steps per loss.csv row")
    t.add_argument("--log-dir", help="where loss.csv, loss.png and the resume state go")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)


def _evaluate_parser(sub) -> None:
    from .evaluation.protocols import EXTRA_PROTOCOLS, PROTOCOLS

    e = sub.add_parser("evaluate", help="the paper's Tables I-III on held-out faces, under degradation protocols",
                       description="Degrade held-out HQ faces by each protocol (fixed seed), restore them with "
                                   "bicubic, whole-image diffusion and LPIP-Diff (mean/median/gaussian fusion, several "
                                   "patch sizes, a denoise sweep), and write table1.md, table2.md, table3.md, "
                                   "protocols.md, denoise.md/.png, per_face.csv, results.json and grid.png.")
    e.add_argument("--model", help=f"a .safetensors checkpoint (default: {DEFAULT_MODEL.name} in models/)")
    e.add_argument("--data", required=True, help="folder of aligned HQ faces")
    e.add_argument("--holdout", help="file listing the faces to evaluate (default: every image of --data)")
    e.add_argument("--scale", type=int, help="the model's scale (default) or a multiple of it: judge the model "
                   "followed by bicubic to that scale, e.g. --scale 8 with the x4 model")
    e.add_argument("-o", "--out", required=True, help="output folder")
    e.add_argument("--protocol", default="gfpgan512",
                   help=f"'all' (the six: {', '.join(PROTOCOLS)}) or comma-separated names of those or of "
                        f"{', '.join(EXTRA_PROTOCOLS)} (default gfpgan512)")
    e.add_argument("--steps", type=int, default=25, help="DDIM steps (default 25)")
    e.add_argument("--denoise", type=float, default=1.0, help="denoise of the diffusion methods (default 1: the paper)")
    e.add_argument("--denoise-sweep", default="",
                   help="also run LPIP-Diff (mean) at these comma-separated denoise values, e.g. 0.3,0.5,0.7,1")
    e.add_argument("--samples", type=int,
                   help="each diffusion method restores as the mean of this many samples (default: the model's, "
                        "1 = the paper, 2 for lpip_x8_128)")
    e.add_argument("--end-percent", type=float, default=RECOMMENDED_END_PERCENT,
                   help="the diffusion methods stop after this share of the steps and return that step's "
                        f"estimate (default {RECOMMENDED_END_PERCENT:g}, as restore; 1: every step, the paper)")
    e.add_argument("--seed", type=int, default=0, help="degradation and sampling seed (face b uses seed + b)")
    e.add_argument("--faces", type=int, help="evaluate only the first N faces")
    e.add_argument("--grid-faces", type=int, default=6, help="faces in grid.png (default 6)")
    e.add_argument("--table2", default="0.25,0.5,1,2",
                   help="Table II patches as multiples of the training patch m (default 0.25,0.5,1,2; '' skips)")
    e.add_argument("--fusions", default="mean,median,gaussian",
                   help="Table I's fusions, mean first (default mean,median,gaussian; without median no Table III)")
    e.add_argument("--min-face-size", type=int, help="skip faces smaller than this natively (default: hq size)")
    e.add_argument("--align", action="store_true", help="detect and align faces first (for unaligned photos)")
    e.add_argument("--max-patch-batch", type=int, help="patches per UNet call (memory; default: automatic)")
    e.add_argument("--max-batch", dest="max_patch_batch", type=int, help=argparse.SUPPRESS)  # the old name
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    e.add_argument("--threads", type=int, help="torch CPU threads (timings depend on it)")
    e.add_argument("--overwrite", action="store_true", help="replace results that exist in -o (default: refuse)")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_evaluate)


def _restore_parser(sub) -> None:
    r = sub.add_parser("restore", help="restore low-quality face images")
    r.add_argument("inputs", nargs="+", help="LQ face images (e.g. 16x16 for the x4 model), or photos with --photo")
    r.add_argument("-o", "--out", required=True, help="output folder (written atomically, one PNG per input)")
    r.add_argument("--model", help=f"a .safetensors checkpoint (default: {DEFAULT_MODEL.name} in models/)")
    r.add_argument("--steps", type=int, default=25, help="DDIM steps (default 25)")
    r.add_argument("--eta", type=float, default=0.0, help="DDIM eta, 0 = deterministic (default 0)")
    r.add_argument("--denoise", type=float, default=RECOMMENDED_DENOISE,
                   help=f"1 = from pure noise (the paper); lower keeps more of the input (default {RECOMMENDED_DENOISE})")
    r.add_argument("--samples", type=int,
                   help="return the mean of this many samples: higher PSNR/SSIM, a little softer, N times "
                        "the time (default: the model's, 1 = the paper, 2 for lpip_x8_128)")
    r.add_argument("--end-percent", type=float, default=RECOMMENDED_END_PERCENT,
                   help="stop after this share of the steps and return that step's estimate of the clean face "
                        f"(default {RECOMMENDED_END_PERCENT:g}: the most faithful, measured; 1: every step, the "
                        "paper, sharper and more invented)")
    r.add_argument("--patch-size", type=int, help="patch size (default: the model's training patch)")
    r.add_argument("--patch", dest="patch_size", type=int, help=argparse.SUPPRESS)  # the old name
    r.add_argument("--stride", type=int, help="patch stride (default: half the patch)")
    r.add_argument("--fusion", choices=FUSIONS, default="mean", help="how overlapping estimates combine")
    r.add_argument("--whole-image", action="store_true", help="the SR3 baseline: one patch = the whole image")
    r.add_argument("--input-is", choices=INPUT_KINDS, default=LOW_RESOLUTION,
                   help=f"{LOW_RESOLUTION} (default): enlarged by the model's scale; {ALREADY_UPSCALED}: "
                        "already at the output size, restored in place")
    r.add_argument("--upsampled", dest="input_is", action="store_const", const=ALREADY_UPSCALED,
                   help=argparse.SUPPRESS)  # the old name of --input-is already_upscaled
    r.add_argument("--scale", type=int, help="the model's scale (default) or a multiple of it, the rest by bicubic: "
                   "--scale 8 with the x4 model restores 16 px faces to 128 px (models/lpip_x4_64.md, "
                   f"'x8 through x4'); the result is at most {MAX_SIDE} px a side")
    r.add_argument("--max-patch-batch", type=int, help="patches per UNet call (memory; default: automatic)")
    r.add_argument("--max-batch", dest="max_patch_batch", type=int, help=argparse.SUPPRESS)  # the old name
    r.add_argument("--photo", action="store_true",
                   help="inputs are photos: find the faces, restore them, paste them back at the photo's size")
    r.add_argument("--upscale", type=float, default=1.0,
                   help="--photo: enlarge each photo with Lanczos first (the result is this much bigger; tiny "
                        "faces are found more often; default 1)")
    r.add_argument("--upsample", type=int, default=1, help="--photo: detector upsampling 0..3 (default 1)")
    r.add_argument("--min-score", type=float, default=0.0,
                   help="--photo: the detector's threshold (dlib HOG score, default 0); -0.4 finds more tiny faces "
                        "(docs/detection.md)")
    r.add_argument("--max-face-px", type=float, default=0,
                   help="--photo: leave alone faces whose aligned crop spans more than this many px of the photo "
                        "as given (before --upscale); 0: automatic, 1.125 x the model's face size (18 px for x4, "
                        "faces up to about 10 px wide); -1: no limit")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps, ...")
    r.add_argument("--overwrite", action="store_true", help="replace outputs that exist (default: refuse)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_restore)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lpip-diff", description="LPIP-Diff identity-preserving face restoration")
    parser.add_argument("--version", action="version", version=f"lpip-diff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    _restore_parser(sub)

    d = sub.add_parser("degrade", help="make LQ faces: a draw from the training mixture, or manual if a knob is set")
    d.add_argument("inputs", nargs="+", help="HQ face images")
    d.add_argument("-o", "--out", required=True, help="output folder")
    d.add_argument("--scale", type=int, default=4, help="LQ side = HQ side / scale (default 4)")
    d.add_argument("--blur", type=float, help="manual: blur sigma in HQ pixels")
    d.add_argument("--downscale", type=float, help=f"manual: downscale factor, {MIN_DOWNSCALE}..{MAX_DOWNSCALE} "
                   f"(default: --scale); below 1 it enlarges, to at most {MAX_SIDE} px a side")
    d.add_argument("--noise", type=float, help="manual: noise sigma in 0..255 units")
    d.add_argument("--jpeg", type=int, help="manual: JPEG quality 1..100")
    d.add_argument("--resample", choices=RESAMPLE_KERNELS, help="manual: the downsampling kernel (default bicubic-aa)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--save-upsampled", action="store_true", help="also write the LQ upsampled to the HQ size")
    d.add_argument("--overwrite", action="store_true", help="replace outputs that exist (default: refuse)")
    d.set_defaults(func=cmd_degrade)

    a = sub.add_parser("average", help="average the weights of fine-tunes of one model (a model soup)")
    a.add_argument("models", nargs="+", help="two or more .safetensors checkpoints of one architecture")
    a.add_argument("-o", "--out", required=True, help="the averaged model (.safetensors, written atomically)")
    a.add_argument("--weights", type=float, nargs="+", help="one per model, summing to 1 (default: equal)")
    a.add_argument("--overwrite", action="store_true", help="replace an existing -o (default: refuse)")
    a.set_defaults(func=cmd_average)

    _train_parser(sub)
    _evaluate_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line in the command's own words, not Python's `file:line: UserWarning:`."""
    print(f"lpip-diff: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command_line = "lpip-diff " + shlex.join(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            args.func(args)
    except (CliError, ValueError) as e:
        print(f"lpip-diff: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a folder without write permission, ...
        print(f"lpip-diff: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lpip-diff: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
