"""Algorithm 1: train the noise-prediction UNet on random patches of degraded/clean face pairs.

AdamW with linear warm-up and cosine decay, gradient clipping, an EMA of the weights (the EMA is
what gets shipped), bf16 autocast where the device computes bf16 natively, a step or time budget,
periodic checkpoints with exact resume, a CSV loss log and a PNG loss plot. Several GPUs (or CPU processes) through PyTorch DDP
under torchrun: each rank draws its own samples of the same seeded stream, rank 0 writes files.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import functools
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..checks import check_choice, check_float, check_int
from ..data.folders import load_faces
from ..data.split import read_split
from ..files import atomic_output
from ..method.checkpoint import load_model, save_model, write_safetensors
from ..method.model import LPIPModel, ModelConfig
from ..method.schedule import NoiseSchedule, ScheduleConfig
from ..method.unet import PRESETS
from ..outputs import Output, exclusive, plan_outputs
from .augment import Augmentation
from .pairs import DEGRADATIONS, PatchPairs, collate_pairs

PRECISIONS = ("auto", "bf16", "fp32")
MAX_FACES_PER_STEP = 1024  # memory: each face of a step is augmented and degraded at twice hq_size
MAX_PATCHES_PER_FACE = 256
MAX_STEPS = 2 ** 63 - 1  # steps, warmup and log interval: beyond any budget, within int64 and tqdm's floats


@dataclass
class TrainConfig:
    data: str | list[str]  # one folder of faces, or several
    out: str
    scale: int = 4
    hq_size: int = 64
    patch: int = 16
    preset: str = "small"
    steps: int | None = None  # stop after this many steps ...
    minutes: float | None = None  # ... or after this much wall time (whichever comes first)
    faces_per_step: int = 8  # per process; each face gives `patches_per_face` patches
    patches_per_face: int = 4
    lr: float = 2e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    holdout: str | list[str] | None = None  # file(s) of names never to train on
    min_face_size: int | None = None
    max_outside: float | None = None  # drop crops with more of their area outside the photo (MANIFEST.csv)
    anywhere: bool = False  # cut patches anywhere, not only inside the photo (inside512/ masks)
    precision: str = "auto"  # PRECISIONS: auto = bf16 autocast on CUDA and on CPUs with native bf16
    align: bool = False
    workers: int = 0
    threads: int | None = None  # torch CPU threads
    device: str = "auto"
    checkpoint_minutes: float = 10.0
    log_every: int = 25
    resume: bool = False
    init: str | None = None  # start from this checkpoint's weights (same architecture), not at random
    degradation: str = "mix"  # the training mixture, or one of its variants (pairs.DEGRADATIONS)
    photo_share: float = 0.0  # of the draws, posed as a photo holds the face (aligned after the shrink)
    augment: bool = True  # geometric and colour jitter (augment.Augmentation); False: flips only
    overwrite: bool = False  # start over an earlier run's model, log and state
    log_dir: str | None = None  # default: <out without suffix>-train/
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        check_choice("preset", self.preset, sorted(PRESETS))
        if self.steps is None and self.minutes is None:
            raise ValueError("give a budget: steps or minutes")
        if Path(self.out).suffix != ".safetensors":
            raise ValueError(f"out must be a .safetensors path, got {self.out!r}")
        check_int("scale", self.scale, 1, 64)
        check_int("hq_size", self.hq_size, 8, 4096)
        if self.hq_size % self.scale:
            raise ValueError(f"hq_size {self.hq_size} must be divisible by scale {self.scale}")
        check_int("patch", self.patch, 1, self.hq_size)
        if self.steps is not None:
            check_int("steps", self.steps, 1, MAX_STEPS)
        if self.minutes is not None:
            check_float("minutes", self.minutes, 0, math.inf, open_low=True)
        check_int("faces_per_step", self.faces_per_step, 1, MAX_FACES_PER_STEP)
        check_int("patches_per_face", self.patches_per_face, 1, MAX_PATCHES_PER_FACE)
        check_int("log_every", self.log_every, 1, MAX_STEPS)
        check_int("warmup_steps", self.warmup_steps, 0, MAX_STEPS)
        check_int("workers", self.workers, 0, 256)
        if self.threads is not None:
            check_int("threads", self.threads, 1, 1024)
        check_int("seed", self.seed, 0, 2 ** 31 - 1)
        check_float("lr", self.lr, 0, 1, open_low=True)
        for name in ("min_lr_ratio", "ema_decay"):
            check_float(name, getattr(self, name), 0, 1)
        check_float("weight_decay", self.weight_decay, 0, 1)
        check_float("grad_clip", self.grad_clip, 0, math.inf, open_low=True)
        check_float("checkpoint_minutes", self.checkpoint_minutes, 0, math.inf)
        if self.min_face_size is not None:
            check_int("min_face_size", self.min_face_size, 0)
        if self.max_outside is not None:
            check_float("max_outside", self.max_outside, 0, 1)
        check_choice("degradation", self.degradation, DEGRADATIONS)
        check_float("photo_share", self.photo_share, 0, 1)
        check_choice("precision", self.precision, PRECISIONS)
        if self.init is not None and not Path(self.init).is_file():
            raise ValueError(f"init checkpoint not found: {self.init}")

    @property
    def folders(self) -> list[str]:
        return [self.data] if isinstance(self.data, str) else list(self.data)

    @property
    def holdouts(self) -> list[str]:
        return [self.holdout] if isinstance(self.holdout, str) else list(self.holdout or ())

    @property
    def run_dir(self) -> Path:
        out = Path(self.out)
        return Path(self.log_dir) if self.log_dir else out.with_name(out.stem + "-train")


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over warmup_steps, then cosine from lr to lr * min_lr_ratio as progress goes 0 -> 1."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def ema_decay(cfg: TrainConfig, updates: int) -> float:
    """EMA warm-up (1 + n) / (10 + n): short runs average over their own length, not over init."""
    return min(cfg.ema_decay, (1 + updates) / (10 + updates))


class Distributed:
    """Rank, world size and the few collectives the loop needs; a no-op without torchrun."""

    def __init__(self, device: torch.device):
        self.enabled = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        self.rank = dist.get_rank() if self.enabled else 0
        self.world = dist.get_world_size() if self.enabled else 1
        self.device = device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision, for all ranks (so every rank stops at the same step)."""
        if not self.enabled:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.broadcast(t, 0)
        return bool(t.item())

    def mean(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], device=self.device)
        dist.all_reduce(t)
        return t.item() / self.world

    def close(self):
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bf16 autocast: asked for, or (auto) where the device computes bf16
    natively (CUDA; CPUs with AVX512-BF16 or AMX, where it is about 1.6x faster than fp32)."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return True
    return device.type == "cpu" and _cpu_has_bf16()


@functools.cache
def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def pick_device(name: str) -> torch.device:
    """auto: this process's GPU under torchrun (LOCAL_RANK), else the CPU. A bare "cuda" also means
    this process's GPU, so that DDP ranks never share one."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL collectives use the current device
    return device


def noise_generator(cfg: TrainConfig, rank: int, step: int, device: torch.device) -> torch.Generator:
    """The (t, noise) draws of one step of one rank: a pure function of (seed, step, rank), so a
    resumed run draws exactly what the uninterrupted run would have."""
    return torch.Generator(device=device).manual_seed(((cfg.seed * 1_000_003 + step) * 4096 + rank) % 2 ** 63)


def _state_path(cfg: TrainConfig) -> Path:
    return cfg.run_dir / "state.safetensors"


def check_run_start(cfg: TrainConfig) -> bool:
    """Whether this run resumes. Refuses to start over an earlier run's files (the model, its log,
    its resume state) unless told: resume continues it, overwrite replaces it."""
    state, log, out = _state_path(cfg), cfg.run_dir / "loss.csv", Path(cfg.out)
    if cfg.resume and cfg.overwrite:
        raise ValueError("--resume continues the earlier run and --overwrite replaces it: pass only one")
    if cfg.resume and state.is_file():
        return True
    earlier = [p for p in (out, state, log) if p.exists()]
    if cfg.resume and earlier:
        raise ValueError(f"--resume: no training state at {state} to continue, but {earlier[0]} exists; pass "
                         "--overwrite instead to start a new run that replaces it")
    if earlier and not cfg.overwrite:
        raise ValueError(f"{earlier[0]} exists from an earlier run: pass --resume to continue that run, or "
                         "--overwrite to start over and replace it")
    return False


def save_state(cfg, path, model, ema, optimizer, step, elapsed, model_config):
    """Weights, EMA and AdamW moments as tensors, counters as JSON metadata: no pickle anywhere."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    for i, s in optimizer.state_dict()["state"].items():
        for name, value in s.items():
            tensors[f"opt.{i}.{name}"] = value.reshape(-1) if value.ndim == 0 else value
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}
    meta = {"step": str(step), "elapsed": str(elapsed), "train_config": json.dumps(asdict(cfg)),
            "model_config": json.dumps(model_config.to_dict())}
    write_safetensors(tensors, path, meta)


def load_state(path, model, ema, optimizer, model_config: ModelConfig | None = None) -> tuple[int, float]:
    """Restore what save_state wrote; returns (step, elapsed seconds). Refuses a state saved for
    another model config (a clear error instead of a state-dict mismatch deep inside torch)."""
    from safetensors import SafetensorError, safe_open

    def unusable(reason):
        return ValueError(f"--resume: {path} is not a usable training state ({reason}); pass --overwrite "
                          "instead of --resume to start over")

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        step, elapsed = int(meta["step"]), float(meta["elapsed"])
        saved = json.loads(meta.get("model_config", "null"))
    except (SafetensorError, OSError, KeyError, ValueError, RecursionError) as e:
        raise unusable(f"{type(e).__name__}: {e}"[:200]) from None
    if step < 0 or not math.isfinite(elapsed) or elapsed < 0:
        raise unusable(f"step {step}, elapsed {elapsed}")
    if model_config is not None:
        saved = saved if isinstance(saved, dict) else {}
        wanted = json.loads(json.dumps(model_config.to_dict()))
        if saved != wanted:
            differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
            raise ValueError(f"resume: {path} was saved for another model ({', '.join(differ)} differ); "
                             "train with the same scale/hq_size/patch/preset, or use another out path")
    opt = optimizer.state_dict()
    params = list(model.parameters())
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        for i in range(len(opt["param_groups"][0]["params"])):
            names = {k.split(".", 2)[2] for k in tensors if k.startswith(f"opt.{i}.")}
            if names:
                moments = {n: tensors[f"opt.{i}.{n}"] for n in names - {"step"}}
                if names != {"step", "exp_avg", "exp_avg_sq"} or any(m.shape != params[i].shape
                                                                     for m in moments.values()):
                    raise ValueError(f"optimizer state {i} does not fit parameter {i}")
                opt["state"][i] = {"step": tensors[f"opt.{i}.step"].reshape(()), **moments}
        optimizer.load_state_dict(opt)
    except (RuntimeError, ValueError, KeyError, IndexError) as e:
        raise unusable(f"{type(e).__name__}: {e}"[:200]) from None
    return step, elapsed


def plot_loss(csv_path: Path, png_path: Path) -> None:
    """Loss against step (log scale), written atomically; skipped without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], lw=1)
    ax.set(xlabel="step", ylabel="eps MSE", yscale="log", title=png_path.parent.name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_output(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


RUN_FILES = ("loss.csv", "loss.png", "state.safetensors")


def plan_run(cfg: TrainConfig) -> None:
    """Refuse, before any work, outputs that would lose something (outputs.plan_outputs): the model
    and the run folder must not be an input or lie inside a data folder, the model must not be a
    folder, and both must be writable. Whether earlier files may be replaced is check_run_start's."""
    folder_option = "--log-dir" if cfg.log_dir else "-o"
    inputs = cfg.folders + cfg.holdouts + ([cfg.init] if cfg.init else [])
    plan_outputs([Output("-o", Path(cfg.out)), Output(folder_option, cfg.run_dir, folder=True),
                  *(Output(folder_option, cfg.run_dir / name) for name in RUN_FILES)], inputs, overwrite=True)


@contextlib.contextmanager
def _held(run_dir: Path, what: str, main: bool):
    """The run folder, created if need be and held by this process for the whole run (two runs
    writing one model would silently mix their logs and replace each other's model); a folder this
    run created is removed again if the run fails before writing anything into it."""
    if not main:  # under torchrun rank 0 holds the run for all
        yield
        return
    try:
        run_dir.mkdir(parents=True)
        created = True
    except FileExistsError:
        created = False
    try:
        with exclusive(run_dir, what):
            yield
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only if empty
        raise


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Run Algorithm 1 and write the EMA model to cfg.out; returns that path."""
    plan_run(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    ddp = Distributed(device)
    with _held(cfg.run_dir, f"-o {cfg.out}", ddp.main):
        return _train(cfg, device, ddp, progress)


def _train(cfg: TrainConfig, device: torch.device, ddp: Distributed, progress: bool) -> Path:
    """A run in named steps: its faces, its model (fresh, from --init or resumed), its patch stream, the
    loop, the outputs. torch's global RNG, seeded first, initialises the model; each step's samples and
    noise are pure functions of (seed, step, rank), so a resumed run draws what an uninterrupted one would."""
    torch.manual_seed(cfg.seed)
    resuming = check_run_start(cfg)
    exclude = set().union(*(read_split(path) for path in cfg.holdouts))
    faces, names = load_faces(cfg.folders, cfg.hq_size, exclude=exclude, min_face_size=cfg.min_face_size,
                              max_outside=cfg.max_outside, align=cfg.align,
                              store_size=2 * cfg.hq_size if cfg.augment else cfg.hq_size, masks=True)
    run = _setup(cfg, device, ddp, resuming)
    loader = _loader(cfg, faces, run.step, ddp)
    if ddp.main:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        if not resuming:  # --overwrite: an earlier run's state must not be resumed into this one
            _state_path(cfg).unlink(missing_ok=True)
        _start_log(cfg.run_dir / "loss.csv", run.step)
    elapsed = _loop(cfg, run, loader, device, ddp, names, progress)
    if ddp.main:
        _write_outputs(cfg, run.model, run.ema, run.optimizer, run.step, elapsed, run.model_config, names, device)
    ddp.close()
    return Path(cfg.out)


@dataclass
class _Run:
    """What the loop trains: the model, its EMA (what is shipped), the optimizer, and the step reached."""

    model_config: ModelConfig
    schedule: NoiseSchedule
    model: LPIPModel
    net: torch.nn.Module  # the model, or its DDP wrapper under torchrun
    ema: LPIPModel
    optimizer: torch.optim.Optimizer
    step: int = 0
    elapsed_before: float = 0.0  # seconds spent by the earlier runs this one resumes


def _setup(cfg: TrainConfig, device: torch.device, ddp: Distributed, resuming: bool) -> _Run:
    """The model (at random, or from cfg.init), its EMA and AdamW, resumed from the run's state if resuming."""
    model_config = ModelConfig(unet=PRESETS[cfg.preset], scale=cfg.scale, hq_size=cfg.hq_size, patch=cfg.patch,
                               stride=max(1, cfg.patch // 2), schedule=ScheduleConfig())
    schedule = NoiseSchedule(model_config.schedule)
    model = LPIPModel(model_config).to(device)
    if cfg.init:
        _load_init(model, cfg.init, model_config)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, elapsed_before = 0, 0.0
    if resuming:
        step, elapsed_before = load_state(_state_path(cfg), model, ema, optimizer, model_config)
    net = DistributedDataParallel(model) if ddp.enabled else model
    return _Run(model_config, schedule, model, net, ema, optimizer, step, elapsed_before)


def _loader(cfg: TrainConfig, faces: torch.Tensor, first_step: int, ddp: Distributed) -> torch.utils.data.DataLoader:
    """The patch stream from first_step on: step s of rank r takes samples (s * world + r) * faces_per_step
    onwards, so each rank draws its own part of one seeded stream and a resumed run continues it."""
    pairs = PatchPairs(faces, scale=cfg.scale, patch=cfg.patch, hq_size=cfg.hq_size,
                       patches_per_face=cfg.patches_per_face, seed=cfg.seed, degradation=cfg.degradation,
                       photo_share=cfg.photo_share,
                       augmentation=Augmentation() if cfg.augment else None, anywhere=cfg.anywhere)
    per_rank = cfg.faces_per_step

    def batch_indices():
        s = first_step
        while True:
            first = (s * ddp.world + ddp.rank) * per_rank
            yield list(range(first, first + per_rank))
            s += 1

    return torch.utils.data.DataLoader(pairs, batch_sampler=batch_indices(), collate_fn=collate_pairs,
                                       num_workers=cfg.workers, persistent_workers=cfg.workers > 0)


def _loop(cfg: TrainConfig, run: _Run, loader, device: torch.device, ddp: Distributed, names: list[str],
          progress: bool) -> float:
    """Train until the budget (steps or minutes) is spent: per step the learning rate, train_step and
    the EMA; every log_every steps a loss.csv row, every checkpoint_minutes the outputs. Returns the
    seconds spent, the earlier runs' included."""
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(cfg.precision, device))
    bar = None
    if progress and ddp.main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=run.step, unit="step", dynamic_ncols=True)
    start = time.monotonic() - run.elapsed_before
    last_checkpoint = time.monotonic()
    running, seen = 0.0, 0
    batches = iter(loader)
    while not ddp.agree(_budget_spent(cfg, run.step, start) >= 1.0):
        hq, lq_up = (t.to(device, non_blocking=True) for t in next(batches))
        lr = learning_rate(cfg, run.step, _budget_spent(cfg, run.step, start))
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        loss = train_step(run.net, run.optimizer, hq, lq_up, run.schedule,
                          noise_generator(cfg, ddp.rank, run.step, device), autocast, cfg.grad_clip)
        run.step += 1
        update_ema(run.ema, run.model, ema_decay(cfg, run.step))
        running += loss
        seen += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
        if run.step % cfg.log_every == 0:
            mean_loss = ddp.mean(running / seen)
            running, seen = 0.0, 0
            if ddp.main:
                with open(cfg.run_dir / "loss.csv", "a") as f:
                    f.write(f"{run.step},{time.monotonic() - start:.1f},{mean_loss:.6f},{lr:.6g}\n")
        if ddp.agree(time.monotonic() - last_checkpoint > cfg.checkpoint_minutes * 60):
            last_checkpoint = time.monotonic()
            if ddp.main:
                _write_outputs(cfg, run.model, run.ema, run.optimizer, run.step, time.monotonic() - start,
                               run.model_config, names, device)
    if bar is not None:
        bar.close()
    return time.monotonic() - start


def _budget_spent(cfg: TrainConfig, step: int, start: float) -> float:
    """The share of the budget spent (1 or more: stop): of the steps, of the minutes, whichever is further."""
    parts = []
    if cfg.steps:
        parts.append(step / cfg.steps)
    if cfg.minutes:
        parts.append((time.monotonic() - start) / (cfg.minutes * 60))
    return max(parts)


def train_step(net, optimizer, hq, lq_up, schedule: NoiseSchedule, generator: torch.Generator, autocast,
               grad_clip: float) -> float:
    """One step of Algorithm 1: noise the HQ patches to random timesteps, predict the noise from the
    noisy patches and the upsampled LQ, and take an AdamW step on the clipped gradient. Returns the loss."""
    t = torch.randint(0, schedule.timesteps, (hq.shape[0],), device=hq.device, generator=generator)
    noise = torch.randn(hq.shape, device=hq.device, generator=generator)
    with autocast:
        pred = net(schedule.q_sample(hq, t, noise), lq_up, t.float())
    loss = torch.nn.functional.mse_loss(pred.float(), noise)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)


def _load_init(model: LPIPModel, path: str, model_config: ModelConfig) -> None:
    """Copy a checkpoint's weights into the fresh model; its UNet and patch must match. The scale may
    differ: the UNet sees the LQ face already resized to the HQ size, so an x4 model can start an x2."""
    source = load_model(path)
    for field_name in ("unet", "patch"):
        if getattr(source.config, field_name) != getattr(model_config, field_name):
            raise ValueError(f"init: {path} has another {field_name} ({getattr(source.config, field_name)}) than "
                             f"this run ({getattr(model_config, field_name)})")
    model.load_state_dict(source.state_dict())


def _start_log(log_path: Path, step: int) -> None:
    """A fresh loss.csv at step 0; on resume keep the rows up to the resumed step (rows logged after
    the last checkpoint of an interrupted run are dropped, so the log never repeats a step)."""
    header = "step,seconds,loss,lr\n"
    if step == 0 or not log_path.is_file():
        log_path.write_text(header)
        return
    with open(log_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]
    with atomic_output(log_path) as tmp:
        tmp.write_text(header + "".join(f"{r['step']},{r['seconds']},{r['loss']},{r['lr']}\n" for r in rows))


def _write_outputs(cfg, model, ema, optimizer, step, elapsed, model_config, names, device):
    """The shipped EMA model (with its training summary), the resume state and the loss plot."""
    save_state(cfg, _state_path(cfg), model, ema, optimizer, step, elapsed, model_config)
    summary = {
        "data": _folder_names(cfg.folders),
        "faces": len(names), "holdout": ", ".join(Path(h).name for h in cfg.holdouts) or None,
        "precision": "bf16" if uses_bf16(cfg.precision, device) else "fp32",
        "masked_patches": not cfg.anywhere,
        "preset": cfg.preset, "steps": step, "minutes": round(elapsed / 60, 1), "device": _device_name(device),
        "processes": int(os.environ.get("WORLD_SIZE", "1")), "faces_per_step": cfg.faces_per_step,
        "patches_per_face": cfg.patches_per_face, "lr": cfg.lr, "ema_decay": cfg.ema_decay, "seed": cfg.seed,
        "degradation": cfg.degradation, "photo_share": cfg.photo_share,
        "augmentation": Augmentation().to_dict() if cfg.augment else "flips only",
        "init": Path(cfg.init).name if cfg.init else None,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), **cfg.extra,
    }
    shipped = LPIPModel(ModelConfig(**{**model_config.__dict__, "training": summary}))
    shipped.load_state_dict(ema.state_dict())
    save_model(shipped, cfg.out)
    plot_loss(cfg.run_dir / "loss.csv", cfg.run_dir / "loss.png")


def _folder_names(folders: list[str]) -> str:
    """The data folders relative to their common parent: "aligned512, pixabay/aligned512"."""
    paths = [Path(f).resolve() for f in folders]
    parent = Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent
    return ", ".join(str(p.relative_to(parent)) for p in paths)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"
