"""Held-out splits: the lists of faces that training never sees and evaluation judges on (`read_split`
reads one), and how they are made, by person: faces that look like the same person (or the same photo)
are grouped, and a group is held out or trained on whole, so no held-out person is ever seen in training.

The descriptors and hashes come from the caller (dlib descriptors, `perceptual_hash`); the split is
a pure, seeded function of them, so the same data always gives the same split.
"""
from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from ..files import regular_file
from ..resize import resize


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


def perceptual_hash(image: torch.Tensor) -> torch.Tensor:
    """64-bit DCT hash of an image [1, 3, H, W] in [0, 1], as 64 bools: the low 8x8 DCT
    coefficients of its 32x32 grey version, each above or below their median."""
    grey = resize(image, (32, 32))[0].mean(0).double()
    n = torch.arange(32, dtype=torch.float64)
    basis = torch.cos(torch.pi * (2 * n[None] + 1) * n[:, None] / 64)  # DCT-II rows
    low = (basis @ grey @ basis.T)[:8, :8].flatten()
    return low > low[1:].median()


def person_groups(descriptors: torch.Tensor, hashes: torch.Tensor, *, max_distance: float = 0.45,
                  max_hamming: int = 8) -> list[list[int]]:
    """Indices grouped transitively: two faces join when their identity descriptors are closer than
    max_distance (dlib's own same-person threshold is 0.6; 0.45 keeps unrelated faces apart more
    often) or their hashes differ in at most max_hamming bits (a near-duplicate image)."""
    n = len(descriptors)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    close = torch.cdist(descriptors.double(), descriptors.double()) < max_distance
    close |= (hashes[:, None] != hashes[None]).sum(-1) <= max_hamming
    for i, j in close.triu(1).nonzero().tolist():
        parent[root(i)] = root(j)
    groups = defaultdict(list)
    for i in range(n):
        groups[root(i)].append(i)
    return sorted(groups.values())


def stratified_holdout(names: Sequence[str], groups: Iterable[list[int]], *, stratum: Callable[[str], str | None],
                       per_stratum: int, seed: int, forced: Iterable[str] = ()) -> set[str]:
    """Names to hold out: every group that holds a `forced` name, then whole groups drawn in a seeded
    order until each stratum (e.g. man / woman) has per_stratum drawn faces; a group that would
    overshoot its stratum is passed over. Groups whose first face has no stratum are never drawn."""
    groups = [sorted(g, key=lambda i: names[i]) for g in groups]
    forced = set(forced)
    held = {names[i] for g in groups if any(names[i] in forced for i in g) for i in g}
    order = sorted(groups, key=lambda g: names[g[0]])
    random.Random(seed).shuffle(order)
    counts = defaultdict(int)
    for group in order:
        kind = stratum(names[group[0]])
        members = {names[i] for i in group}
        if kind is None or members & held or counts[kind] + len(group) > per_stratum:
            continue
        held |= members
        counts[kind] += len(group)
    return held
