"""lpip_core.data.split and the shipped held-out lists it wrote (models/holdout*.txt)."""

import torch

from lpip_core.data.split import perceptual_hash, person_groups, read_split, stratified_holdout
from lpip_core.files import read_image
from lpip_core.resize import resize
from tests.helpers import REPO

MODELS = REPO / "models"


def test_perceptual_hash_survives_resizing_and_jpeg_but_tells_faces_apart(fixtures, tmp_path):
    from PIL import Image

    hopper = read_image(fixtures / "hopper_aligned_128.png")
    small = (resize(hopper, (64, 64))[0].permute(1, 2, 0) * 255).round().byte().numpy()
    Image.fromarray(small).save(tmp_path / "small.jpg", quality=40)
    again = read_image(tmp_path / "small.jpg")
    others = [read_image(fixtures / f"{n}_aligned_128.png") for n in ("astronaut", "obama")]
    h = perceptual_hash(hopper)
    assert h.shape == (64,) and h.dtype == torch.bool and 20 < h.sum() < 44
    assert (h != perceptual_hash(again)).sum() <= 4
    assert all((h != perceptual_hash(o)).sum() > 12 for o in others)


def test_groups_join_transitively_by_descriptor_or_hash():
    d = torch.tensor([[0.0, 0], [0.3, 0], [0.6, 0], [5, 0], [9, 0]])  # 0-1-2 chain within 0.45
    h = torch.zeros(5, 64, dtype=torch.bool)
    h[4, :5] = True  # 4 differs from 3 by 5 bits: a near-duplicate image
    for i in range(3):
        h[i, 10 + 10 * i:20 + 10 * i] = True  # 0, 1, 2: different images (10-20 bits from each other and 3)
    assert person_groups(d, h) == [[0, 1, 2], [3, 4]]
    assert person_groups(d, h, max_distance=0.2, max_hamming=2) == [[0], [1], [2], [3], [4]]


def sex(name):
    return {"m": "man", "w": "woman"}.get(name.split("_")[0])


def test_holdout_is_seeded_stratified_and_keeps_groups_whole():
    names = [f"{s}_{i}" for s in ("m", "w") for i in range(30)] + ["old_a", "old_b"]
    groups = [[0, 1, 61]] + [[i, i + 1] for i in range(2, 60, 2)] + [[60]]  # old_b is m_0's and m_1's person
    held = stratified_holdout(names, groups, stratum=sex, per_stratum=6, seed=0, forced={"old_b"})
    assert held == stratified_holdout(names, groups, stratum=sex, per_stratum=6, seed=0, forced={"old_b"})
    assert held != stratified_holdout(names, groups, stratum=sex, per_stratum=6, seed=1, forced={"old_b"})
    assert {"old_b", "m_0", "m_1"} <= held and "old_a" not in held  # forced, with its whole group
    for g in groups:
        assert len({names[i] in held for i in g}) == 1  # no person on both sides
    drawn = held - {"old_b", "m_0", "m_1"}
    assert sum(n.startswith("m_") for n in drawn) == 6 and sum(n.startswith("w_") for n in drawn) == 6


def test_a_group_that_would_overshoot_its_stratum_is_passed_over():
    names = ["m_big1", "m_big2", "m_big3", "m_a", "m_b"]
    groups = [[0, 1, 2], [3], [4]]
    for seed in range(10):
        held = stratified_holdout(names, groups, stratum=sex, per_stratum=2, seed=seed)
        assert held == {"m_a", "m_b"}


# --- the shipped split -----------------------------------------------------------------------------

def test_shipped_split_holds_out_the_demo_photo_and_80_pixabay_faces_by_sex():
    old, pixabay, excluded = (read_split(MODELS / f) for f in ("holdout.txt", "holdout-pixabay.txt",
                                                               "excluded-pixabay.txt"))
    earlier = read_split(REPO / "tools" / "holdout_2026-11.txt")
    assert earlier <= old and len(earlier) == 24
    assert {f"solvay_conference_1927_{i}.png" for i in range(29)} <= old  # every face of the demo photo
    men, women = (sum(n.startswith(p) for n in pixabay) for p in ("m_", "w_"))
    assert 38 <= men <= 44 and 38 <= women <= 44
    assert not pixabay & excluded and len(excluded) == 7

