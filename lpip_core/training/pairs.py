"""The stream of (HQ, upsampled-LQ) patch pairs of Algorithm 1: faces augmented and degraded on the fly.

Sample k of the stream is a pure function of (seed, k): the same run gives the same pairs whatever
the number of loader workers or processes, and a resumed run continues the same stream. Faces are
stored larger than the training size (`load_faces(store_size=...)`) so that augmentation's warp loses
nothing; where a face carries an inside mask (`load_faces(masks=True)`), patches are cut inside the photo.
"""
from __future__ import annotations

import random

import torch

from ..checks import check_choice, check_float, check_int
from ..data.degrade import VARIANTS, degrade_one, random_params
from ..resize import resize
from .augment import NO_AUGMENTATION, Augmentation, augment_face

DEGRADATIONS = ("mix", *VARIANTS)  # the whole training mixture, or one of its variants


class PatchPairs(torch.utils.data.Dataset):
    """Item k: a face (seeded shuffle per epoch), augmented (or only flipped), resized to hq_size,
    degraded with a draw from the training mixture (or one of its variants; a `photo_share` of the draws
    posed as a photo holds the face), and cut into `patches_per_face`
    joint random crops, inside the photo where the face has a mask (unless anywhere=True). Returns
    (hq, lq_up), each [P, 3, m, m] in [-1, 1]."""

    def __init__(self, faces: torch.Tensor, *, scale: int, patch: int, hq_size: int | None = None,
                 patches_per_face: int = 4, seed: int = 0, augmentation: Augmentation | None = None,
                 degradation: str = "mix", photo_share: float = 0.0, anywhere: bool = False):
        size = hq_size or faces.shape[-1]
        check_int("patch", patch, 1, size)  # at most the face
        if size % scale:
            raise ValueError(f"hq size {size} must be divisible by scale {scale}")
        if faces.shape[-1] < size:
            raise ValueError(f"faces are stored at {faces.shape[-1]} px, smaller than hq_size {size}")
        check_choice("degradation", degradation, DEGRADATIONS)
        check_float("photo_share", photo_share, 0, 1)
        self.faces, self.scale, self.patch, self.size = faces, scale, patch, size
        self.patches_per_face, self.seed, self.anywhere = patches_per_face, seed, anywhere
        self.augmentation = augmentation or Augmentation(**{**NO_AUGMENTATION.to_dict(), "flip": 0.5})
        self.variant, self.photo_share = (None if degradation == "mix" else degradation), photo_share

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
        params = random_params(rng, size, lq_side, variant=self.variant, photo_share=self.photo_share)
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
