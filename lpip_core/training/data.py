"""Training data: folders of face images, and the stream of (HQ, upsampled-LQ) patch pairs of
Algorithm 1, degraded on the fly.

A folder may carry a MANIFEST.csv (per crop: `crop_side_in_source_px`, `outside_fraction`) and a
sibling `inside512/` folder of masks (white: the crop pixel lies inside the source photo; black: it
was filled by reflection). Faces are stored with their mask as a fourth channel, and patches are
cut where the mask is white, so the model never learns the mirrored copies at tight crops' edges.

Sample k of the stream is a pure function of (seed, k): the same run gives the same pairs whatever
the number of loader workers or processes, and a resumed run continues the same stream. Faces are
stored larger than the training size (`store_size`) so that augmentation's warp loses nothing.
"""
from __future__ import annotations

import csv
import random
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import torch

from ..checks import check_float, shown
from ..files import IMAGE_SUFFIXES, read_image, regular_file
from ..resize import resize
from .augment import NO_AUGMENTATION, Augmentation, augment_face
from .degrade import VARIANTS, degrade_one, random_params

DEGRADATIONS = ("mix", *VARIANTS)  # the whole training mixture, or one of its variants


def list_images(root: str | Path) -> list[Path]:
    """Every image under root (recursively, so FFHQ's numbered sub-folders work), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def read_split(path: str | Path) -> set[str]:
    """File names listed one per line ('#' starts a comment); a file that is not UTF-8 text is a
    ValueError that names it."""
    path = regular_file(path, "holdout file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"holdout file {path} is not a text file of names (byte {e.start} is not UTF-8)") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return {line for line in lines if line}


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


class PatchPairs(torch.utils.data.Dataset):
    """Item k: a face (seeded shuffle per epoch), augmented (or only flipped), resized to hq_size,
    degraded with a draw from the training mixture (or one of its variants), and cut into `patches_per_face`
    joint random crops, inside the photo where the face has a mask (unless anywhere=True). Returns
    (hq, lq_up), each [P, 3, m, m] in [-1, 1]."""

    def __init__(self, faces: torch.Tensor, *, scale: int, patch: int, hq_size: int | None = None,
                 patches_per_face: int = 4, seed: int = 0, augmentation: Augmentation | None = None,
                 degradation: str = "mix", anywhere: bool = False):
        size = hq_size or faces.shape[-1]
        if not 1 <= patch <= size:
            raise ValueError(f"patch must be in 1..{size} (the face size), got {patch}")
        if size % scale:
            raise ValueError(f"hq size {size} must be divisible by scale {scale}")
        if faces.shape[-1] < size:
            raise ValueError(f"faces are stored at {faces.shape[-1]} px, smaller than hq_size {size}")
        if degradation not in DEGRADATIONS:
            raise ValueError(f"degradation must be one of {DEGRADATIONS}, got {degradation!r}")
        self.faces, self.scale, self.patch, self.size = faces, scale, patch, size
        self.patches_per_face, self.seed, self.anywhere = patches_per_face, seed, anywhere
        self.augmentation = augmentation or Augmentation(**{**NO_AUGMENTATION.to_dict(), "flip": 0.5})
        self.variant = None if degradation == "mix" else degradation

    def __len__(self) -> int:
        return 2 ** 62  # an endless stream, indexed by sample number

    def face_index(self, k: int) -> int:
        epoch, j = divmod(k, len(self.faces))
        order = torch.randperm(len(self.faces), generator=torch.Generator().manual_seed(self.seed + epoch))
        return int(order[j])

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = random.Random(self.seed * 1_000_003 + k)
        size, lq_side = self.size, self.size // self.scale
        face = augment_face(self.faces[self.face_index(k)].float() / 255, rng, size, self.augmentation)
        hq, inside = face[:3], face[3:]
        params = random_params(rng, size, lq_side, variant=self.variant)
        lq = degrade_one(hq, params, lq_size=(lq_side, lq_side),
                         generator=torch.Generator().manual_seed(rng.getrandbits(62)))
        lq_up = resize(lq[None], (size, size))[0]
        m = self.patch
        corners = self.corners(inside, rng)
        hq_patches = torch.stack([hq[:, y:y + m, x:x + m] for y, x in corners])
        lq_patches = torch.stack([lq_up[:, y:y + m, x:x + m] for y, x in corners])
        return hq_patches * 2 - 1, lq_patches * 2 - 1

    def corners(self, inside: torch.Tensor, rng: random.Random) -> list[tuple[int, int]]:
        """Top-left corners (y, x) of the patches: uniform over the patches that lie inside the photo
        (every pixel's mask >= 0.5), or over all patches when the face has no mask, anywhere=True, or
        no patch fits inside."""
        m, span = self.patch, self.size - self.patch + 1
        if not self.anywhere and len(inside) and inside.min() < 0.5:
            fits = torch.nn.functional.max_pool2d(1 - inside[None], m, stride=1)[0, 0] < 0.5
            positions = fits.flatten().nonzero().flatten().tolist()
            if positions:
                return [divmod(positions[rng.randrange(len(positions))], span) for _ in range(self.patches_per_face)]
        return [(rng.randrange(span), rng.randrange(span)) for _ in range(self.patches_per_face)]


def collate_pairs(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    hq, lq = zip(*items)
    return torch.cat(hq), torch.cat(lq)
