"""Folders of face images: listing them, reading them (a corrupt file is skipped with a warning,
not fatal), and loading the faces of a folder at a size, as training and evaluation both do.

A folder may carry a MANIFEST.csv (per crop: `crop_side_in_source_px`, `outside_fraction`) and a
sibling `inside512/` folder of masks (white: the crop pixel lies inside the source photo; black: it
was filled by reflection). With masks=True faces are loaded with their mask as a fourth channel,
so that training cuts its patches where the mask is white and never learns the mirrored copies at
tight crops' edges. Faces are known by their path relative to their folder.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import torch

from ..checks import check_float, shown
from ..files import IMAGE_SUFFIXES, read_image
from ..resize import resize


def list_images(root: str | Path) -> list[Path]:
    """Every image under root (recursively, so FFHQ's numbered sub-folders work), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


MASK_FOLDER = "inside512"


def read_manifest(root: Path) -> dict[str, dict[str, float]]:
    """Per crop name, the numeric columns of a MANIFEST.csv beside the crops (none without one)."""
    manifest = root / "MANIFEST.csv"
    if not manifest.is_file():
        return {}
    rows = {}
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("crop"):
                rows[row["crop"]] = {key: _number(row.get(key)) for key in ("crop_side_in_source_px", "outside_fraction")}
    return rows


def _number(text: str | None) -> float:
    """A manifest cell as a float; NaN where it is empty or not a number."""
    try:
        return float(text or "nan")
    except ValueError:
        return float("nan")


def inside_mask(root: Path, name: str, like: torch.Tensor) -> torch.Tensor:
    """[1, 1, H, W] in [0, 1]: the crop's inside mask from ../inside512/<stem>.png, all ones without one."""
    path = root.parent / MASK_FOLDER / (Path(name).stem + ".png")
    if not path.is_file():
        return torch.ones_like(like[:, :1])
    return resize(read_image(path)[:, :1], like.shape[-2:])


def load_faces(root: str | Path | Iterable[str | Path], hq_size: int, *, exclude: Iterable[str] = (),
               include: Iterable[str] | None = None, min_face_size: int | None = None,
               max_outside: float | None = None, align: bool = False, store_size: int | None = None,
               masks: bool = False) -> tuple[torch.Tensor, list[str]]:
    """Faces of one folder or several as uint8 [N, 3, S, S] (resized with antialiasing; S =
    store_size, default hq_size), and their names: each file's path relative to its folder (its
    file name unless it lies in a sub-folder, so that two faces named alike stay two faces); with
    masks=True [N, 4, S, S]: RGB and the inside mask.

    exclude / include: file names (or paths relative to the folder) to leave out / keep (e.g. a
        held-out split).
    min_face_size: drop faces whose native side is smaller (default hq_size, so every training
        face is a genuine HQ target; the native side comes from MANIFEST.csv, else the detected
        face when align=True, else the image side).
    max_outside: drop faces whose MANIFEST.csv `outside_fraction` is larger (too little real photo).
    align: detect and FFHQ-align the largest face of each image first (for unaligned photos).
    """
    roots = [Path(root)] if isinstance(root, (str, Path)) else [Path(r) for r in root]
    if max_outside is not None:
        check_float("max_outside", max_outside, 0, 1)
    faces, names = [], []
    for folder in roots:
        folder_faces, folder_names = _load_folder(folder, hq_size, set(exclude), include, min_face_size,
                                                  max_outside, align, store_size, masks)
        faces += folder_faces
        names += folder_names
    if not faces:
        where = ", ".join(str(r) for r in roots)
        raise ValueError(f"no usable face images in {where} (hq_size {hq_size}, min_face_size {shown(min_face_size)})")
    return torch.stack(faces), names


def _load_folder(root, hq_size, exclude, include, min_face_size, max_outside, align, store_size, masks):
    include = set(include) if include is not None else None
    min_face_size = hq_size if min_face_size is None else min_face_size
    manifest = read_manifest(root)
    faces, names = [], []
    wanted = [p for p in list_images(root) if not listed(p, root, exclude) and (include is None or listed(p, root, include))]
    for path, image in readable_images(wanted):
        row = manifest.get(path.name, {})
        if max_outside is not None and row.get("outside_fraction", 0.0) > max_outside:
            continue
        native = row.get("crop_side_in_source_px", float("nan"))
        native = native if native == native else min(image.shape[-2:])
        mask = inside_mask(root, path.name, image) if masks else None
        if align:
            from ..faces.detect import align_faces

            crops, found = align_faces(image, face_size=store_size or hq_size, select="largest")
            if not found:
                continue
            x0, y0, x1, y1 = found[0].box
            native = min(native, max(x1 - x0, y1 - y0) * 2)  # the FFHQ crop spans about twice the box
            image, mask = crops, torch.ones_like(crops[:, :1]) if masks else None
        if native < min_face_size:
            continue
        face = resize(image if mask is None else torch.cat([image, mask], 1), (store_size or hq_size,) * 2)[0]
        face = face.clamp(0, 1)
        faces.append((face * 255).round().to(torch.uint8))
        names.append(relative_name(path, root))
    return faces, names


def relative_name(path: Path, root: Path) -> str:
    """A face's name: its path relative to the data folder, with forward slashes."""
    return path.relative_to(root).as_posix()


def listed(path: Path, root: Path, names) -> bool:
    """Whether a split names this face, by file name or by its path relative to the folder."""
    return path.name in names or relative_name(path, root) in names


def readable_images(paths: list[Path]) -> Iterator[tuple[Path, torch.Tensor]]:
    """(path, image) for every file that reads; the others (corrupt files, and pipes, devices or
    sockets, which are never opened) are skipped, counted and named in one warning at the end, so
    that one bad file does not stop a training run."""
    skipped = []
    for path in paths:
        try:
            image = read_image(path)
        except ValueError as e:
            skipped.append(str(e))
            continue
        yield path, image
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s): {'; '.join(skipped[:3])}"
                      + (" ..." if len(skipped) > 3 else ""), stacklevel=2)
