import itertools

import pytest
import torch

from lpip_core.method.patches import PatchGrid, gaussian_window, pad_to, patch_grid, patch_starts


@pytest.mark.parametrize("length,patch,stride", [
    (L, m, c) for L, m, c in itertools.product([16, 17, 31, 64, 65, 100, 128], [1, 4, 16, 32], [1, 3, 8, 16, 32])
    if m <= L and c <= m
])
def test_starts_cover_every_pixel_and_end_on_the_border(length, patch, stride):
    starts = patch_starts(length, patch, stride)
    covered = torch.zeros(length, dtype=torch.bool)
    for s in starts:
        covered[s:s + patch] = True
    assert covered.all()
    assert starts[0] == 0 and starts[-1] == length - patch
    assert list(starts) == sorted(set(starts))
    regular = starts[:-1] if (length - patch) % stride else starts
    assert all(b - a == stride for a, b in zip(regular, regular[1:]))


def test_paper_settings_patch_counts():
    assert len(patch_starts(64, 16, 8)) == 7  # x4: 7 x 7 = 49 patches
    assert len(patch_starts(128, 32, 16)) == 7
    assert len(patch_starts(256, 64, 32)) == 7
    assert patch_starts(20, 16, 8) == (0, 4)  # non-divisible: a border-aligned final start


@pytest.mark.parametrize("bad", [dict(patch=0, stride=1), dict(patch=5, stride=0), dict(patch=5, stride=6),
                                 dict(patch=11, stride=1)])
def test_invalid_patch_or_stride_is_refused(bad):
    with pytest.raises(ValueError, match="patch|stride"):
        patch_starts(10, bad["patch"], bad["stride"])


@pytest.mark.parametrize("h,w,m,c", [(64, 64, 16, 8), (37, 50, 16, 8), (33, 33, 32, 16), (40, 24, 8, 3), (16, 16, 16, 16)])
@pytest.mark.parametrize("fusion", ["mean", "median", "gaussian"])
def test_extract_then_fuse_unchanged_patches_reproduces_the_image(h, w, m, c, fusion):
    grid = PatchGrid(h, w, (m, m), (c, c))
    image = torch.rand(2, 3, h, w)
    patches = grid.extract(image)
    assert patches.shape == (2 * grid.num_patches, 3, m, m)
    fused = grid.fuse(patches, fusion)
    if fusion == "mean" or fusion == "median":
        assert torch.equal(fused, image)  # exact: every contributor carries the same value
    else:
        torch.testing.assert_close(fused, image, rtol=0, atol=1e-6)


def test_extract_is_a_plain_crop():
    grid = PatchGrid(20, 30, (8, 8), (5, 5))
    image = torch.arange(2 * 3 * 20 * 30, dtype=torch.float32).reshape(2, 3, 20, 30)
    patches = grid.extract(image).reshape(2, grid.num_patches, 3, 8, 8)
    for b in range(2):
        for n, (y, x) in enumerate(itertools.product(grid.ys, grid.xs)):
            assert torch.equal(patches[b, n], image[b, :, y:y + 8, x:x + 8])


def test_mean_fusion_averages_the_contributors():
    grid = PatchGrid(1, 3, (1, 2), (1, 1))  # patches cover columns {0,1} and {1,2}
    patches = torch.tensor([[1.0, 3.0], [5.0, 9.0]]).reshape(2, 1, 1, 2)
    assert grid.fuse(patches, "mean").flatten().tolist() == [1.0, 4.0, 9.0]


@pytest.mark.parametrize("values,expected", [
    ([7.0, 1.0], 4.0),  # two contributors: mean of both
    ([5.0, 100.0, 1.0], 5.0),  # three: the middle one
    ([8.0, 1.0, 4.0, 100.0], 6.0),  # four: mean of the two middle values (4, 8)
])
def test_median_fusion_with_two_three_and_four_contributors(values, expected):
    k = len(values)
    grid = PatchGrid(1, 2 * k - 1, (1, k), (1, 1))  # the middle pixel is covered by exactly k patches
    counts = grid.tables(torch.device("cpu"))["counts"]
    assert counts[k - 1] == k
    patches = torch.zeros(grid.num_patches, 1, 1, k)
    for n in range(grid.num_patches):
        patches[n, 0, 0, (k - 1) - n] = values[n]  # patch n covers the middle pixel at its column k-1-n
    fused = grid.fuse(patches, "median").flatten()
    assert fused[k - 1].item() == expected


def test_median_is_robust_to_one_outlier_where_mean_is_not():
    grid = PatchGrid(16, 16, (8, 8), (4, 4))
    image = torch.rand(1, 3, 16, 16)
    patches = grid.extract(image).clone()
    patches[0] += 10.0  # one patch goes wrong
    centre = (slice(None), slice(None), slice(4, 8), slice(4, 8))  # 4 patches, one of them the outlier
    assert torch.equal(grid.fuse(patches, "median")[centre], image[centre])
    torch.testing.assert_close(grid.fuse(patches, "mean")[centre], image[centre] + 2.5)


def test_gaussian_weights_normalise_and_are_symmetric():
    w = gaussian_window(16, 4.0)
    assert torch.equal(w, w.flip(0))
    assert w.dtype == torch.float32
    grid = PatchGrid(40, 40, (16, 16), (8, 8))
    t = grid.tables(torch.device("cpu"))
    ones = torch.ones(grid.num_patches, 1, 16, 16)
    torch.testing.assert_close(grid.fuse(ones, "gaussian"), torch.ones(1, 1, 40, 40), rtol=0, atol=1e-6)
    assert (t["weight_sum"] > 0).all()
    # centre pixels of a patch weigh more than its corners
    assert t["weights"][:256].reshape(16, 16)[7, 7] > t["weights"][:256].reshape(16, 16)[0, 0]


def test_grid_tables_are_built_once_per_size():
    assert patch_grid(64, 64, (16, 16), (8, 8)) is patch_grid(64, 64, (16, 16), (8, 8))
    grid = patch_grid(64, 64, (16, 16), (8, 8))
    assert grid.tables(torch.device("cpu")) is grid.tables(torch.device("cpu"))


def test_pad_to_reflects_and_crops_back():
    x = torch.rand(1, 3, 10, 12)
    padded = pad_to(x, 16, 16)
    assert padded.shape[-2:] == (16, 16)
    assert torch.equal(padded[..., :10, :12], x)
    assert torch.equal(padded[..., 10, :12], x[..., 8, :])  # reflection, not zeros
    tiny = torch.rand(1, 3, 3, 3)
    assert pad_to(tiny, 16, 16).shape[-2:] == (16, 16)  # too small to reflect: replicate
    assert pad_to(x, 5, 5) is x
