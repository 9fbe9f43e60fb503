"""The paper's evaluation (LPIP-Diff Tables I-III) of one checkpoint on held-out faces, under
one or more degradation protocols (`protocols`), with an identity-retrieval score and a denoise sweep.

Held-out HQ faces are resized (antialiased) to the model's hq_size and degraded by each protocol
at a fixed seed (face b uses seed + b); LQ faces and results are rounded to 8 bits, as saved files
would be (BasicSR scores 8-bit images too). Every method restores every face; PSNR / SSIM (BasicSR
conventions: RGB, crop_border 0) and ID Sim (dlib) compare each result with its ground truth (and
per_face.csv and results.json add PSNR inside the source photo where the crops carry masks), and
retrieval top-1 asks whether the result's nearest ground truth (dlib embeddings, over all
evaluated faces) is its own: dlib's ID Sim is compressed (about 0.8 for strangers), retrieval is not.

Methods, each timed per face: bicubic upsampling; whole-image diffusion (the same model, one patch
= the image: the SR3 baseline); LPIP-Diff with mean, median and Gaussian fusion at the model's
patch and stride (Table I, every protocol); LPIP-Diff (mean) at patches m/4, m/2, m, 2m (Table II,
first protocol only); mean vs median (Table III); LPIP-Diff (mean) at each denoise of the sweep.
A setting shared by two tables is run once. Outputs (each written atomically): table1.md,
table2.md, table3.md, protocols.md, denoise.md + denoise.png (with a sweep), per_face.csv,
results.json and grid.png (first protocol).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import torch

from ..checks import MAX_SIDE, check_float, check_int, check_output_scale, seed_for
from ..data.folders import list_images, listed, load_faces, relative_name
from ..data.split import read_split
from ..files import atomic_output, quantize_8bit, to_pil
from ..method.checkpoint import load_model
from ..method.patches import FUSIONS, patch_starts
from ..method.restoration import RECOMMENDED_END_PERCENT, restore
from ..method.schedule import steps_until_end
from ..outputs import Output, plan_outputs
from ..resize import resize
from .metrics import psnr, ssim
from .protocols import KNOWN_PROTOCOLS, check_protocols, make_lq

TABLE2_FACTORS = (0.25, 0.5, 1.0, 2.0)  # patch m/4, m/2, m, 2m (the paper's Table II, at our scale)
DENOISE_SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
METRICS = ("psnr", "ssim", "id_sim", "top1", "seconds")  # the tables' columns
EXTRA_METRICS = ("psnr_inside",)  # in per_face.csv and results.json only
OUTPUT_FILES = ("per_face.csv", "table1.md", "table2.md", "table3.md", "protocols.md", "results.json")
SWEEP_FILES = ("denoise.md", "denoise.png")


@dataclass(frozen=True)
class Method:
    """One way to get an HQ face from an LQ face; `key` names it in per_face.csv and results.json."""

    key: str
    label: str
    kind: str  # "bicubic", "whole", "patch"
    patch: int | None = None
    stride: int | None = None
    fusion: str = "mean"
    denoise: float = 1.0
    samples: int = 1  # restore(samples=...): the mean of this many samples

    @property
    def setting(self) -> tuple:
        diffusion = self.kind != "bicubic"
        return (self.kind, self.patch, self.stride, self.fusion if self.kind == "patch" else None,
                self.denoise if diffusion else None, self.samples if diffusion else None)


@dataclass(frozen=True)
class MethodPlan:
    """What to run and what each table shows: the methods (each setting once) and, by method key,
    the rows of Tables I-III and of the denoise sweep."""

    methods: list[Method]
    table1: list[str]  # bicubic, whole-image, then LPIP-Diff per fusion (mean first)
    table2: list[dict]  # per patch factor: factor, patch, stride, method (None if not run) and note
    table3: list[str]  # mean and median at the model's patch (Table I's rows); empty without median
    sweep: list[str]  # LPIP-Diff (mean) per denoise of the sweep

    @property
    def tables(self) -> dict:
        return {"table1": self.table1, "table2": self.table2, "table3": self.table3, "sweep": self.sweep}


def plan_methods(patch: int, stride: int, factor: int, patch_factors: Sequence[float] = TABLE2_FACTORS,
                 denoise: float = 1.0, denoise_sweep: Sequence[float] = (), fusions: Sequence[str] = FUSIONS,
                 samples: int = 1) -> MethodPlan:
    """The methods to run and the rows of the tables. A Table II row names the method that gives it,
    or says why it was not run (a patch the UNet cannot take: not a positive multiple of its
    down-sampling factor)."""
    methods: dict[tuple, Method] = {}

    def add(method: Method) -> str:
        return methods.setdefault(method.setting, method).key

    k = "" if samples == 1 else f"-k{samples}"
    of_k = "" if samples == 1 else f", mean of {samples} samples"
    at = ("" if denoise == 1 else f", denoise {denoise:g}") + of_k
    suffix = ("" if denoise == 1 else f"-d{denoise:g}") + k
    table1 = [
        add(Method("bicubic", "Bicubic upsampling", "bicubic")),
        add(Method(f"whole-image{suffix}", f"Whole-image diffusion (SR3 baseline, same model{at})", "whole",
                   denoise=denoise, samples=samples)),
    ]
    for fusion in fusions:
        table1.append(add(Method(f"lpip-{fusion}{suffix}",
                                 f"LPIP-Diff, {fusion} fusion (patch {patch}, stride {stride}{at})",
                                 "patch", patch, stride, fusion, denoise, samples)))
    table2 = []
    for f in patch_factors:
        check_float("patch_factors item", f, 0, MAX_SIDE / patch, open_low=True)  # the patch at most MAX_SIDE
        p = max(1, round(patch * f))
        s = max(1, p // 2)
        row = {"factor": f, "patch": p, "stride": s, "method": None, "note": ""}
        if p < factor or p % factor:
            row["note"] = f"not run: patch {p} is not a multiple of {factor} (the UNet's down-sampling)"
        else:
            row["method"] = add(Method(f"lpip-mean-p{p}-s{s}{suffix}",
                                       f"LPIP-Diff, mean fusion (patch {p}, stride {s}{at})",
                                       "patch", p, s, "mean", denoise, samples))
        table2.append(row)
    table3 = table1[2:4] if "median" in fusions else []  # mean vs median at the model's patch: Table I's rows
    sweep = [add(Method(f"lpip-mean-d{d:g}{k}", f"LPIP-Diff, mean fusion, denoise {d:g}{of_k}", "patch", patch,
                        stride, "mean", d, samples)) for d in denoise_sweep]
    return MethodPlan(list(methods.values()), table1, table2, table3, sweep)


def evaluate(model_path: str | os.PathLike, data_dir: str | os.PathLike, *, out_dir: str | os.PathLike,
             protocols: Sequence[str] | str = ("gfpgan512",), denoise: float = 1.0,
             denoise_sweep: Sequence[float] = (), samples: int | None = None,
             end_percent: float = RECOMMENDED_END_PERCENT, scale: int | None = None,
             holdout: str | os.PathLike | None = None, steps: int = 25, seed: int = 0,
             faces_limit: int | None = None, grid_faces: int = 6, patch_factors: Sequence[float] = TABLE2_FACTORS,
             fusions: Sequence[str] = FUSIONS,
             min_face_size: int | None = None, align: bool = False, max_patch_batch: int | None = None,
             overwrite: bool = False, device: str | torch.device = "cpu", progress: bool = True,
             command: str | None = None) -> dict:
    """Evaluate a checkpoint on the faces of `data_dir` (those listed in `holdout`, else all) under
    each protocol, and write the tables, per-face CSV, results JSON and comparison grid to `out_dir`.
    Returns the results dict that results.json holds.

    protocols: names from `protocols.KNOWN_PROTOCOLS`, or "all" (the six of PROTOCOLS). Table II runs under
    the first only.
    denoise: the denoise of every diffusion method of Tables I-III (1 = the paper).
    denoise_sweep: extra LPIP-Diff (mean) runs at these denoise values, under every protocol.
    samples: every diffusion method restores as the mean of this many samples (1 = the paper;
        None: the model's config.samples, what a user gets).
    end_percent: every diffusion method stops after this share of the steps (restore's meaning;
        default: the node's and the CLI's, so that the scores are what a user gets; 1 = the paper).
    scale: the model's (default) or a multiple of it: the faces are judged at lq_size x scale, every
        diffusion result resized there by bicubic (a cascade: x4 then x2 bicubic is an x8 restorer)
        while bicubic goes there from the LQ face in one step.
    faces_limit: evaluate only the first N faces (sorted by path). grid_faces: faces in grid.png.
    patch_factors: Table II's patches as multiples of the training patch (() skips Table II).
    fusions: the LPIP-Diff fusions of Table I, mean first (without median there is no Table III).
    min_face_size, align: as in lpip_core.data.folders.load_faces (default: faces at least hq_size natively).
    overwrite: replace results that exist in out_dir (else refused before any work, as is an out_dir
        that is or lies inside data_dir, where the results would be read as faces by the next run).
    Faces are known by their path relative to data_dir: two faces of one file name in different
    sub-folders are two faces in every row, retrieval and margin.
    """
    started = time.perf_counter()
    protocols, denoise, denoise_sweep, fusions = _check_arguments(protocols, steps, seed, grid_faces, denoise,
                                                                  denoise_sweep, samples, end_percent, fusions,
                                                                  max_patch_batch, faces_limit)
    model_path, data_dir, out_dir = Path(model_path), Path(data_dir), Path(out_dir)
    _plan_files(model_path, data_dir, out_dir, holdout, bool(denoise_sweep), grid_faces, overwrite)
    model = load_model(model_path, device=device)
    config = model.config
    samples = config.samples if samples is None else samples
    scale = check_output_scale(scale, config.scale)
    lq_size = config.hq_size // config.scale
    hq_size = lq_size * scale
    faces = held_out_faces(data_dir, hq_size, holdout, min_face_size=min_face_size, align=align,
                           faces_limit=faces_limit)
    plans = [plan_methods(config.patch, config.stride, config.unet.downsample_factor, factors, denoise,
                          denoise_sweep, fusions, samples) for factors in (patch_factors, ())]  # Table II: first only
    grid = _Grid(_grid_indices(len(faces.names), grid_faces), tuple(plans[0].table1[:3]))
    restorer = _Restorer(model, hq_size, steps, seed, end_percent, max_patch_batch)
    rows, per_protocol = _run_protocols(restorer, faces, protocols, plans, lq_size, grid, progress)
    results = {
        "command": command or _python_call(model_path, data_dir, out_dir, scale, holdout, steps, seed, faces_limit,
                                           protocols, denoise, samples, end_percent),
        "settings": {"model": str(model_path), "data": str(data_dir), "holdout": str(holdout) if holdout else None,
                     "out_dir": str(out_dir), "scale": scale, "hq_size": hq_size, "lq_size": lq_size,
                     "protocols": list(protocols), "denoise": denoise, "denoise_sweep": list(denoise_sweep),
                     "samples": samples, "end_percent": end_percent,
                     "steps": steps, "seed": seed, "faces_limit": faces_limit, "grid_faces": grid_faces,
                     "patch_factors": list(patch_factors), "min_face_size": min_face_size, "align": align,
                     "max_patch_batch": max_patch_batch, "device": str(device)},
        "model": {"file": model_path.name, "config": config.to_dict()},
        "faces": {"count": len(faces.names), "names": faces.names, "skipped_too_small_or_no_face": faces.skipped,
                  "grid": [faces.names[i] for i in grid.index]},
        "machine": _machine(device),
        "protocols": per_protocol,
        "tables": plans[0].tables,
        "statistic": "mean and sample standard deviation over faces; top1 is a fraction of faces",
    }
    _write_reports(out_dir, results, rows, grid, faces.hq)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    _write_text(out_dir / "results.json", json.dumps(results, indent=1) + "\n")
    return results


# --- the steps of evaluate: check, load, run methods -> score -> retrieval, reports --------------------

def _check_arguments(protocols, steps, seed, grid_faces, denoise, denoise_sweep, samples, end_percent, fusions,
                     max_patch_batch, faces_limit) -> tuple[tuple[str, ...], float, tuple[float, ...], tuple[str, ...]]:
    """Every argument checked before any work; returns (protocols, denoise, denoise_sweep, fusions) as
    evaluate uses them."""
    protocols = check_protocols(protocols)
    check_int("steps", steps, 1, 1000)
    check_int("seed", seed, 0)
    check_int("grid_faces", grid_faces, 0, 64)
    denoise = check_float("denoise", denoise, 0, 1, open_low=True)  # 1 = from pure noise
    if samples is not None:
        check_int("samples", samples, 1, 16)
    steps_until_end(steps, end_percent)  # checks end_percent
    fusions = tuple(fusions)
    if not fusions or fusions[0] != "mean" or len(set(fusions)) < len(fusions) or not set(fusions) <= set(FUSIONS):
        raise ValueError(f"fusions must start with mean and name each of {', '.join(FUSIONS)} at most once, "
                         f"got {', '.join(map(str, fusions)) or 'none'}")
    denoise_sweep = tuple(check_float("denoise_sweep item", d, 0, 1, open_low=True) for d in denoise_sweep)
    if max_patch_batch is not None:
        check_int("max_patch_batch", max_patch_batch, 1)
    if faces_limit is not None:
        check_int("faces_limit", faces_limit, 1)
    return protocols, denoise, denoise_sweep, fusions


def _plan_files(model_path: Path, data_dir: Path, out_dir: Path, holdout, sweep: bool, grid_faces: int,
                overwrite: bool) -> None:
    """Refuse, before any work, a missing data folder and outputs that would lose something (outputs.plan_outputs)."""
    if not data_dir.is_dir():
        raise ValueError(f"data folder not found: {data_dir}")
    files = OUTPUT_FILES + (SWEEP_FILES if sweep else ()) + (("grid.png",) if grid_faces else ())
    plan_outputs([Output("-o", out_dir, folder=True), *(Output("-o", out_dir / f) for f in files)],
                 [model_path, data_dir, *([holdout] if holdout is not None else [])], overwrite=overwrite)


@dataclass
class Faces:
    """The evaluated faces and their ground truth for ID Sim and retrieval (`score_face`)."""

    hq: torch.Tensor  # [N, 3, S, S] in [0, 1], on 8-bit levels
    names: list[str]  # paths relative to data_dir
    skipped: list[str]  # wanted, but smaller than hq_size natively or without a face
    landmarks: torch.Tensor  # dlib's 5 landmarks of each ground truth: every result is cut with its face's
    embeddings: torch.Tensor  # dlib embeddings of the ground truths
    inside: torch.Tensor  # [N, 1, S, S]: 1 where the crop lies inside its source photo (inside512/), else 0

    @classmethod
    def of(cls, hq: torch.Tensor, names: Sequence[str], skipped: Sequence[str] = (),
           inside: torch.Tensor | None = None) -> Faces:
        """Ground truths [N, 3, S, S] in [0, 1] with their landmarks and embeddings; inside: their masks
        (default: every pixel inside the photo)."""
        from ..faces.identity import face_embedding, face_landmarks

        landmarks = face_landmarks(hq)
        inside = torch.ones_like(hq[:, :1]) if inside is None else inside
        return cls(hq, list(names), list(skipped), landmarks, face_embedding(hq, landmarks), inside)


def held_out_faces(data_dir: str | os.PathLike, hq_size: int, holdout: str | os.PathLike | None = None, *,
                   min_face_size: int | None = None, align: bool = False, faces_limit: int | None = None) -> Faces:
    """The faces of data_dir listed in holdout (else all) at hq_size, with their landmarks, embeddings
    and inside masks (a pixel is inside where at least half of what it covers is, as training cuts patches);
    a face that holdout lists but data_dir lacks is an error, one too small to evaluate is skipped.
    evaluate's first step, public for the studies (studies/)."""
    data_dir = Path(data_dir)
    include = None
    images = list_images(data_dir)  # faces are known by their path relative to data_dir
    if holdout is not None:
        include = read_split(holdout)
        present = {p.name for p in images} | {relative_name(p, data_dir) for p in images}
        missing = sorted(include - present)
        if missing:
            raise ValueError(f"{len(missing)} face(s) listed in {Path(holdout).name} are not in {data_dir}: "
                             + ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else ""))
    faces, names = load_faces(data_dir, hq_size, include=include, min_face_size=min_face_size, align=align,
                              masks=True)
    wanted = {relative_name(p, data_dir) for p in images if include is None or listed(p, data_dir, include)}
    skipped = sorted(wanted - set(names))
    if faces_limit is not None:
        faces, names = faces[:faces_limit], names[:faces_limit]
    return Faces.of(faces[:, :3].float() / 255, names, skipped, inside=(faces[:, 3:] >= 128).float())


def score_face(out: torch.Tensor, faces: Faces, i: int) -> tuple[dict, torch.Tensor]:
    """PSNR, SSIM and ID Sim of a result [1, 3, S, S] (on 8-bit levels) against ground truth i, as every
    table scores it, and the result's dlib embedding (cut with the ground truth's landmarks; retrieval's)."""
    from ..faces.identity import face_embedding

    hq_i = faces.hq[i:i + 1]
    embedding = face_embedding(out, faces.landmarks[i:i + 1])[0]
    scores = {"psnr": float(psnr(out, hq_i)[0]), "ssim": float(ssim(out, hq_i)[0]),
              "id_sim": float(embedding @ faces.embeddings[i])}
    return scores, embedding


@dataclass(frozen=True)
class _Restorer:
    """One method on one LQ face, as every method of the tables runs: timed, at hq_size, on 8-bit levels."""

    model: torch.nn.Module
    hq_size: int
    steps: int
    seed: int  # face i samples with seed + i
    end_percent: float
    max_patch_batch: int | None

    def __call__(self, method: Method, lq: torch.Tensor, i: int) -> tuple[torch.Tensor, float]:
        """(the result [1, 3, hq_size, hq_size], the seconds it took)."""
        tic = time.perf_counter()
        size = (self.hq_size, self.hq_size)
        if method.kind == "bicubic":
            out = resize(lq, size)
        else:
            out = restore(self.model, lq, steps=self.steps, seed=seed_for(self.seed, i), max_patch_batch=self.max_patch_batch,
                          whole_image=method.kind == "whole", patch_size=method.patch, stride=method.stride,
                          fusion=method.fusion, denoise=method.denoise, samples=method.samples,
                          end_percent=self.end_percent)
            out = resize(out, size)  # the rest of `scale` by bicubic (else a no-op)
        seconds = time.perf_counter() - tic
        return quantize_8bit(out), seconds


@dataclass
class _Grid:
    """grid.png: a few faces (`index`), each as LQ | bicubic | whole-image | LPIP-Diff (mean) | ground truth,
    from the first protocol."""

    index: list[int]
    keys: tuple[str, ...]  # the methods shown: bicubic, whole-image, LPIP-Diff (mean)
    results: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    lq: torch.Tensor | None = None

    def keep(self, i: int, key: str, out: torch.Tensor) -> None:
        if i in self.index and key in self.keys:
            self.results.setdefault(i, {})[key] = out

    def write(self, path: Path, hq: torch.Tensor) -> None:
        _write_grid(path, [self.lq[i:i + 1] for i in self.index],
                    [[self.results[i][k] for k in self.keys] for i in self.index], [hq[i:i + 1] for i in self.index])


def _run_protocols(restorer: _Restorer, faces: Faces, protocols: Sequence[str], plans: list[MethodPlan],
                   lq_size: int, grid: _Grid, progress: bool) -> tuple[list[dict], dict]:
    """Protocol by protocol: make the LQ faces, run the methods (the first plan's under the first
    protocol, the second's under the others) and score them. Returns the per-face rows and each
    protocol's summary for results.json."""
    from tqdm import tqdm

    first, rest = plans
    rows, per_protocol = [], {}
    total = len(faces.names) * (len(first.methods) + (len(protocols) - 1) * len(rest.methods))
    with tqdm(total=total, unit="restoration", disable=not progress, dynamic_ncols=True) as bar:
        for n, protocol in enumerate(protocols):
            methods = (first if n == 0 else rest).methods
            lq = make_lq(protocol, faces.hq, lq_size, restorer.seed)
            if n == 0:
                grid.lq = lq
            protocol_rows = _run_methods(restorer, faces, protocol, methods, lq, bar, grid if n == 0 else None)
            rows += protocol_rows
            per_protocol[protocol] = _summary(protocol, methods, protocol_rows, first.table1)
    return rows, per_protocol


def _run_methods(restorer: _Restorer, faces: Faces, protocol: str, methods: list[Method], lq: torch.Tensor,
                 bar, grid: _Grid | None) -> list[dict]:
    """Every method on every face, scored against the ground truth (PSNR, SSIM, ID Sim) and by
    retrieval: one row per face and method."""
    embeddings = {m.key: [] for m in methods}
    rows = []
    for i, name in enumerate(faces.names):
        bar.set_description(f"{protocol} {name}")
        for method in methods:  # faces outer, methods inner: machine-load drift hits every method alike
            out, seconds = restorer(method, lq[i:i + 1], i)
            scores, embedding = score_face(out, faces, i)
            scores["psnr_inside"] = float(psnr(out, faces.hq[i:i + 1], mask=faces.inside[i:i + 1])[0])
            embeddings[method.key].append(embedding)
            rows.append({"protocol": protocol, "face": name, "method": method.key, **scores, "seconds": seconds})
            if grid is not None:
                grid.keep(i, method.key, out)
            bar.update(1)
    _retrieval(rows, embeddings, faces.embeddings)
    return rows


def _retrieval(rows: list[dict], embeddings: dict[str, list[torch.Tensor]], truth: torch.Tensor) -> None:
    """Each row's top1: whether the nearest ground truth of its result is its own face."""
    for key, found in embeddings.items():
        nearest = (torch.stack(found) @ truth.T).argmax(dim=1).tolist()
        for i, (r, j) in enumerate(zip((r for r in rows if r["method"] == key), nearest)):
            r["top1"] = float(i == j)  # by index: two faces may share a file name


def _summary(protocol: str, methods: list[Method], rows: list[dict], table1: list[str]) -> dict:
    """One protocol in results.json: each method's means and spreads, and LPIP-Diff (mean)'s
    face-by-face margins over bicubic and whole-image diffusion."""
    return {"description": KNOWN_PROTOCOLS[protocol].description,
            "methods": {m.key: {"label": m.label, "setting": asdict(m),
                                **_aggregate([r for r in rows if r["method"] == m.key])} for m in methods},
            "against_bicubic": _paired(rows, table1[2], table1[0]),
            "against_whole_image": _paired(rows, table1[2], table1[1])}


def _write_reports(out_dir: Path, results: dict, rows: list[dict], grid: _Grid, hq: torch.Tensor) -> None:
    """per_face.csv, the markdown tables, the denoise sweep's table and plot, and grid.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(out_dir / "per_face.csv", rows)
    caption = _caption(results)
    _write_text(out_dir / "table1.md", _table1(results, caption))
    _write_text(out_dir / "table2.md", _table2(results, caption))
    _write_text(out_dir / "table3.md", _table3(results, caption))
    _write_text(out_dir / "protocols.md", _protocols_table(results, caption))
    if results["tables"]["sweep"]:
        _write_text(out_dir / "denoise.md", _denoise_table(results, caption))
        _plot_denoise(out_dir / "denoise.png", results)
    if grid.index:
        grid.write(out_dir / "grid.png", hq)


def _grid_indices(n: int, k: int) -> list[int]:
    """k faces spread evenly over the n evaluated ones (all of them if k >= n)."""
    if k <= 0 or n == 0:
        return []
    if k >= n:
        return list(range(n))
    return sorted({round(j * (n - 1) / (k - 1)) for j in range(k)}) if k > 1 else [0]


def _aggregate(rows: list[dict]) -> dict:
    out = {}
    for metric in METRICS + EXTRA_METRICS:
        values = [r[metric] for r in rows]
        finite = [v for v in values if math.isfinite(v)]
        out[metric] = {"mean": statistics.fmean(finite) if finite else float("nan"),
                       "std": statistics.stdev(finite) if len(finite) > 1 else 0.0}
    return out


def _paired(rows: list[dict], key: str, reference: str) -> dict:
    """Per metric, the face-by-face difference key - reference: its mean and standard error (for
    retrieval, the difference of two hits: -1, 0 or 1). With a few faces the means of two methods
    can differ by less than this error, a verdict the faces cannot settle."""
    by_face = {(r["face"], r["method"]): r for r in rows}
    faces = list(dict.fromkeys(r["face"] for r in rows))
    out = {}
    for metric in QUALITY + EXTRA_METRICS:
        diffs = [by_face[f, key][metric] - by_face[f, reference][metric] for f in faces]
        diffs = [d for d in diffs if math.isfinite(d)]
        se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
        out[metric] = {"mean": statistics.fmean(diffs) if diffs else float("nan"), "se": se}
    return out


def _machine(device) -> dict:
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "processor": platform.machine(),
            "device": str(device) if str(device) == "cpu" or not torch.cuda.is_available()
            else torch.cuda.get_device_name(torch.device(device)),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _python_call(model_path, data_dir, out_dir, scale, holdout, steps, seed, faces_limit, protocols, denoise,
                 samples, end_percent) -> str:
    args = [f"{str(model_path)!r}", f"{str(data_dir)!r}", f"out_dir={str(out_dir)!r}",
            f"protocols={list(protocols)!r}", f"denoise={denoise:g}", f"samples={samples}", f"steps={steps}",
            f"seed={seed}", f"end_percent={end_percent:g}"] + (
        [f"scale={scale}"] if scale else []) + ([f"holdout={str(holdout)!r}"] if holdout else []) + (
        [f"faces_limit={faces_limit}"] if faces_limit else [])
    return f"lpip_core.evaluation.evaluate.evaluate({', '.join(args)})"


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["protocol", "face", "method", *METRICS, *EXTRA_METRICS])
    for r in rows:
        writer.writerow([r["protocol"], r["face"], r["method"], f"{r['psnr']:.4f}", f"{r['ssim']:.5f}",
                         f"{r['id_sim']:.5f}", f"{r['top1']:.0f}", f"{r['seconds']:.4f}", f"{r['psnr_inside']:.4f}"])
    _write_text(path, buffer.getvalue())


# --- markdown tables ---------------------------------------------------------------------------------

def _fmt(stats: dict, metric: str) -> str:
    mean, std = stats[metric]["mean"], stats[metric]["std"]
    if metric == "seconds" and mean < 0.001:
        return "< 0.001"
    if metric == "top1":
        return f"{mean:.0%}"
    digits = {"psnr": 2, "ssim": 4, "id_sim": 4, "seconds": 3}[metric]
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


HEADER = "| PSNR ↑ | SSIM ↑ | ID Sim (dlib) ↑ | Retrieval top-1 ↑ | s / face ↓ |"
QUALITY = ("psnr", "ssim", "id_sim", "top1")
FLOOR = QUALITY[:3]  # what LPIP-Diff must win over bicubic under every protocol (the project's floor)
MARGIN_COLUMNS = {"psnr": ("PSNR (dB)", 1, 2), "ssim": ("SSIM", 1, 4), "id_sim": ("ID Sim (dlib)", 1, 4),
                  "top1": ("Retrieval top-1 (points)", 100, 1)}  # heading, scale, digits


def _metric_cells(stats: dict, best: dict | None = None) -> str:
    cells = []
    for metric in METRICS:
        text = _fmt(stats, metric)
        if best is not None and metric != "seconds" and stats[metric]["mean"] == best.get(metric):
            text = f"**{text}**"
        cells.append(text)
    return " | ".join(cells)


def _best(methods: dict, keys: list[str]) -> dict:
    return {m: max(methods[k][m]["mean"] for k in keys) for m in QUALITY}


def _caption(results: dict) -> str:
    s, f, mach, model = results["settings"], results["faces"], results["machine"], results["model"]
    training = model["config"].get("training") or {}
    trained = (f"trained {training.get('steps', '?')} steps / {training.get('minutes', '?')} min on "
               f"{training.get('faces', '?')} faces" if training else "untrained")
    skipped = f" ({len(f['skipped_too_small_or_no_face'])} skipped: smaller than hq_size natively or no face)" \
        if f["skipped_too_small_or_no_face"] else ""
    which = f"held-out faces ({Path(s['holdout']).name})" if s["holdout"] else "faces (every image of the folder)"
    averaged = "" if s["samples"] == 1 else f", each diffusion result the mean of {s['samples']} samples"
    end = s.get("end_percent", 1)
    run = steps_until_end(s["steps"], end)
    ended = "" if run >= s["steps"] else f", ending at {end:g} of the steps (step {run}: its estimate of the clean face)"
    model_scale = model["config"]["scale"]
    cascade = "" if model_scale == s["scale"] else \
        f"; each diffusion result: the x{model_scale} model's, then bicubic x{s['scale'] // model_scale}"
    return (
        f"x{s['scale']} ({s['lq_size']} → {s['hq_size']} px{cascade}), {f['count']} {which}{skipped}, "
        f"seed {s['seed']}, "
        f"{s['steps']} DDIM steps (eta 0), denoise {s['denoise']:g}{ended}{averaged}. "
        f"Model `{model['file']}` ({trained}). Each cell: mean ± standard deviation over faces. "
        f"PSNR / SSIM: BasicSR conventions (RGB, 8-bit, crop_border 0). ID Sim (dlib): cosine of dlib ResNet "
        f"face embeddings (not ArcFace) of result and ground truth, both cut with the ground truth's 5 landmarks "
        f"(dlib falls back to the canonical FFHQ face box when its detector finds no face, so every face is "
        f"scored). Retrieval top-1: share of results whose nearest ground-truth embedding among the "
        f"{f['count']} faces is their own. s / face: wall time of one face's restoration on {mach['processor']} with "
        f"{mach['torch_threads']} torch thread(s) ({mach['cpu_count']} CPUs, device {mach['device']}, "
        f"torch {mach['torch']}), {mach['date'][:10]}.\n\nCommand: `{results['command']}`\n"
    )


def _protocol_heading(results: dict, protocol: str) -> str:
    return f"## Protocol `{protocol}`: {results['protocols'][protocol]['description']}"


def _table1(results: dict, caption: str) -> str:
    keys = results["tables"]["table1"]
    lines = ["# Table I: comparison with the baselines", "", caption]
    for protocol, entry in results["protocols"].items():
        best = _best(entry["methods"], keys)
        lines += ["", _protocol_heading(results, protocol), "", "| Method " + HEADER, "|---|---|---|---|---|---|"]
        lines += [f"| {entry['methods'][k]['label']} | {_metric_cells(entry['methods'][k], best)} |" for k in keys]
    return "\n".join(lines) + "\n"


def _table2(results: dict, caption: str) -> str:
    rows = results["tables"]["table2"]
    size = results["settings"]["hq_size"]
    m = results["model"]["config"]["patch"]
    protocol = next(iter(results["protocols"]))
    methods = results["protocols"][protocol]["methods"]
    lines = ["# Table II: patch size (mean fusion, stride = patch / 2)", "",
             caption, f"Training patch m = {m}. Protocol `{protocol}`.", "",
             "| Patch | Stride | Patches per step " + HEADER, "|---|---|---|---|---|---|---|---|"]
    if not rows:
        lines.append("| (not run: no patch sizes requested) | | | | | | | |")
    keys = [r["method"] for r in rows if r["method"]]
    best = _best(methods, keys) if keys else None
    for r in rows:
        label = f"{r['patch']} (m × {r['factor']:g})"
        if r["method"] is None:
            lines.append(f"| {label} | {r['stride']} | – | {r['note']} | | | | |")
            continue
        n = len(patch_starts(max(size, r["patch"]), r["patch"], r["stride"])) ** 2
        padded = " (image padded to the patch)" if r["patch"] > size else ""
        lines.append(f"| {label} | {r['stride']} | {n}{padded} | {_metric_cells(methods[r['method']], best)} |")
    return "\n".join(lines) + "\n"


def _table3(results: dict, caption: str) -> str:
    keys = results["tables"]["table3"]
    lines = ["# Table III: fusion of the overlapping estimates", "", caption]
    if not keys:
        return "\n".join(lines + ["", "Not run: median fusion was not among the evaluated fusions."]) + "\n"
    for protocol, entry in results["protocols"].items():
        best = _best(entry["methods"], keys)
        lines += ["", _protocol_heading(results, protocol), "", "| Fusion " + HEADER, "|---|---|---|---|---|---|"]
        for k in keys:
            m = entry["methods"][k]
            lines.append(f"| {m['setting']['fusion']} (patch {m['setting']['patch']}, stride {m['setting']['stride']})"
                         f" | {_metric_cells(m, best)} |")
    return "\n".join(lines) + "\n"


def _protocols_table(results: dict, caption: str) -> str:
    """One row per protocol: LPIP-Diff (mean) against bicubic and whole-image diffusion, metric by
    metric, with the verdict the project's floor asks for (beats bicubic in PSNR, SSIM and ID Sim)."""
    bicubic, whole, lpip = results["tables"]["table1"][:3]
    lines = ["# LPIP-Diff (mean fusion) under every protocol", "", caption,
             "Each cell: LPIP-Diff / bicubic / whole-image diffusion (means). ✓: LPIP-Diff beats bicubic.", "",
             "| Protocol | PSNR | SSIM | ID Sim (dlib) | Retrieval top-1 | beats bicubic in PSNR, SSIM and ID Sim |",
             "|---|---|---|---|---|---|"]
    for protocol, entry in results["protocols"].items():
        m = entry["methods"]
        cells, wins = [], []
        for metric in QUALITY:
            a, b, c = (m[k][metric]["mean"] for k in (lpip, bicubic, whole))
            text = (f"{a:.0%} / {b:.0%} / {c:.0%}" if metric == "top1" else
                    f"{a:.2f} / {b:.2f} / {c:.2f}" if metric == "psnr" else f"{a:.4f} / {b:.4f} / {c:.4f}")
            cells.append(text + (" ✓" if a > b else ""))
            if metric in FLOOR:
                wins.append(a > b)
        verdict = "yes" if all(wins) else "**no**"
        lines.append(f"| `{protocol}` | {' | '.join(cells)} | {verdict} |")
    lines += _margins_table(results, "against_bicubic", "LPIP-Diff minus bicubic", FLOOR)
    lines += _margins_table(results, "against_whole_image", "LPIP-Diff minus whole-image diffusion (the paper's "
                            "claim: higher ID Sim and retrieval)", QUALITY)
    return "\n".join(lines) + "\n"


def _margins_table(results: dict, field: str, title: str, metrics: Sequence[str]) -> list[str]:
    """Lines of a table of face-by-face margins (`_paired`), one row per protocol; retrieval in
    percentage points."""
    lines = ["", f"{title}, face by face: mean ± standard error over the faces. A margin smaller than twice "
             "its standard error is one these faces cannot settle (marked ~).", "",
             "| Protocol | " + " | ".join(MARGIN_COLUMNS[m][0] for m in metrics) + " |",
             "|---" * (len(metrics) + 1) + "|"]
    for protocol, entry in results["protocols"].items():
        cells = []
        for metric in metrics:
            _, scale, digits = MARGIN_COLUMNS[metric]
            mean, se = entry[field][metric]["mean"] * scale, entry[field][metric]["se"] * scale
            settled = mean != 0 and abs(mean) >= 2 * se
            cells.append(f"{mean:+.{digits}f} ± {se:.{digits}f}" + ("" if settled else " ~"))
        lines.append(f"| `{protocol}` | {' | '.join(cells)} |")
    return lines


def _denoise_table(results: dict, caption: str) -> str:
    keys = results["tables"]["sweep"]
    bicubic = results["tables"]["table1"][0]
    lines = ["# Denoise sweep: LPIP-Diff (mean fusion) against denoise", "", caption]
    for protocol, entry in results["protocols"].items():
        m = entry["methods"]
        lines += ["", _protocol_heading(results, protocol), "", "| Denoise " + HEADER, "|---|---|---|---|---|---|",
                  f"| bicubic (reference) | {_metric_cells(m[bicubic])} |"]
        best = _best(m, keys)
        lines += [f"| {m[k]['setting']['denoise']:g} | {_metric_cells(m[k], best)} |" for k in keys]
    return "\n".join(lines) + "\n"


def _plot_denoise(path: Path, results: dict) -> None:
    """PSNR, SSIM and ID Sim against denoise, one line per protocol, bicubic dashed; skipped
    without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    keys, bicubic = results["tables"]["sweep"], results["tables"]["table1"][0]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), dpi=100)
    for ax, metric, label in zip(axes, ("psnr", "ssim", "id_sim"), ("PSNR (dB)", "SSIM", "ID Sim (dlib)")):
        for n, (protocol, entry) in enumerate(results["protocols"].items()):
            m, colour = entry["methods"], f"C{n}"
            xs = [m[k]["setting"]["denoise"] for k in keys]
            ax.plot(xs, [m[k][metric]["mean"] for k in keys], "o-", color=colour, ms=3, label=protocol)
            ax.axhline(m[bicubic][metric]["mean"], color=colour, ls="--", lw=0.8)
        ax.set(xlabel="denoise", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    s = results["settings"]
    fig.suptitle(f"{results['model']['file']}: x{s['scale']}, {results['faces']['count']} held-out faces, "
                 f"{s['steps']} steps (dashed: bicubic)", fontsize=9)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# --- grid ----------------------------------------------------------------------------------------------

GRID_COLUMNS = ("LQ (nearest)", "Bicubic", "Whole-image", "LPIP-Diff (mean)", "Ground truth")


def _write_grid(path: Path, lqs: list[torch.Tensor], results: list[list[torch.Tensor]],
                truths: list[torch.Tensor]) -> None:
    """One row per face: LQ (nearest upsampling) | bicubic | whole-image | LPIP-Diff mean | ground truth."""
    from PIL import Image, ImageDraw

    size = truths[0].shape[-1]
    cell = size * max(1, math.ceil(128 / size))  # small faces are shown enlarged (nearest)
    header, gap = 18, 2
    width = len(GRID_COLUMNS) * (cell + gap) - gap
    canvas = Image.new("RGB", (width, header + len(truths) * (cell + gap) - gap), "white")
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(GRID_COLUMNS):
        x = c * (cell + gap)
        text_width = draw.textlength(label)
        draw.text((x + max(0, (cell - text_width) / 2), 3), label, fill="black")
    for r, (lq, outs, truth) in enumerate(zip(lqs, results, truths)):
        for c, image in enumerate([lq, *outs, truth]):
            tile = to_pil(image).resize((cell, cell), Image.Resampling.NEAREST)
            canvas.paste(tile, (c * (cell + gap), header + r * (cell + gap)))
    with atomic_output(path) as tmp:
        canvas.save(tmp, format="PNG")


__all__ = ["evaluate", "plan_methods", "Method", "MethodPlan", "TABLE2_FACTORS", "Faces", "held_out_faces",
           "score_face"]
