"""Image files as users have them: 16-bit, float, rotated by EXIF, transparent, palette, CMYK; and
hostile ones: bombs, truncated and bit-flipped files. read_image (the CLI, the training data and the
evaluation all use it) gives the picture as it is meant to be seen, or one ValueError."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from lpip_core.files import read_image

from .hostile import png_bomb

RAMP = np.linspace(0, 1, 24 * 32).reshape(24, 32)


def saved(tmp_path, image: Image.Image, name: str, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def test_16_bit_grey_png_keeps_its_scale_and_precision(tmp_path):
    path = saved(tmp_path, Image.fromarray((RAMP * 65535).round().astype(np.uint16)), "g16.png")
    x = read_image(path)
    assert x.shape == (1, 3, 24, 32)
    torch.testing.assert_close(x[0, 0].double(), torch.from_numpy(RAMP), rtol=0, atol=1e-5)  # not 8-bit steps
    assert torch.equal(x[0, 0], x[0, 2])


def test_float_tiff_is_taken_as_0_to_1(tmp_path):
    path = saved(tmp_path, Image.fromarray(RAMP.astype(np.float32), mode="F"), "f.tif")
    torch.testing.assert_close(read_image(path)[0, 1].double(), torch.from_numpy(RAMP), rtol=0, atol=1e-6)


def test_float_tiff_out_of_range_is_refused(tmp_path):
    path = saved(tmp_path, Image.fromarray((RAMP * 1000).astype(np.float32), mode="F"), "hdr.tif")
    with pytest.raises(ValueError, match="hdr.tif.*values in 0..1"):
        read_image(path)


def test_32_bit_integer_image_with_16_bit_values(tmp_path):
    path = saved(tmp_path, Image.fromarray((RAMP * 65535).astype(np.int32), mode="I"), "i32.tif")
    torch.testing.assert_close(read_image(path)[0, 0].double(), torch.from_numpy(RAMP), rtol=0, atol=2e-5)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    """A 40x20 image with a red top-left corner, stored with each EXIF orientation: read_image
    returns what a viewer shows (Pillow's exif_transpose is the reference)."""
    array = np.zeros((20, 40, 3), np.uint8)
    array[:5, :5] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = saved(tmp_path, Image.fromarray(array), "o.png", exif=exif)
    x = read_image(path)
    shown = np.asarray(Image.fromarray(array).transpose(_TRANSPOSE[orientation]) if orientation > 1 else array)
    assert x.shape[-2:] == shown.shape[:2]
    assert torch.equal((x[0].permute(1, 2, 0) * 255).round().byte(), torch.from_numpy(shown.copy()))


_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, :, 3] = 255  # the top row opaque red-ish, the rest fully transparent
    rgba[1, :, 3] = 128
    x = read_image(saved(tmp_path, Image.fromarray(rgba, "RGBA"), "a.png"))[0]
    assert torch.allclose(x[:, 0], torch.tensor([200 / 255, 0, 0])[:, None], atol=1e-6)
    assert torch.allclose(x[:, 2:], torch.ones(3, 2, 4))
    assert abs(x[1, 1, 0].item() - 127 / 255) < 2 / 255  # half transparent black over white
    la = read_image(saved(tmp_path, Image.fromarray(rgba[..., [0, 3]], "LA"), "la.png"))[0]
    assert torch.allclose(la[:, 2:], torch.ones(3, 2, 4))
    palette = Image.fromarray(rgba, "RGBA").convert("P")  # transparency kept as a palette entry
    assert read_image(saved(tmp_path, palette, "p.png")).shape == (1, 3, 4, 4)


@pytest.mark.parametrize("mode", ["1", "L", "P", "CMYK", "I;16", "RGB", "YCbCr"])
def test_every_common_mode_reads_as_rgb_in_range(tmp_path, mode):
    image = Image.fromarray((RAMP * 255).astype(np.uint8)).convert(mode)
    suffix = {"CMYK": "jpg", "YCbCr": "jpg"}.get(mode, "tif" if mode == "I;16" else "png")
    x = read_image(saved(tmp_path, image, f"m.{suffix}"))
    assert x.shape == (1, 3, 24, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    if mode in ("L", "RGB"):
        assert abs(x.mean().item() - RAMP.mean()) < 0.01  # no clipping to white or black


def test_decompression_bomb_is_one_clear_error(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb())
    with pytest.raises(ValueError, match="bomb.png is too large to read safely"):
        read_image(path)
    warning_size = tmp_path / "big.png"  # above Pillow's warning limit, below its error limit
    warning_size.write_bytes(png_bomb(10_000, 10_000))
    with pytest.raises(ValueError, match="too large"):
        read_image(warning_size)


def _good_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((12, 12, 3)) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _good_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(1).random((16, 16, 3)) * 255).astype(np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@given(base=st.sampled_from([_good_png(), _good_jpeg()]),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 2_000)))
def test_corrupted_files_read_or_fail_with_one_value_error(tmp_path_factory, base, flips, cut):
    data = bytearray(base)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    data = bytes(data[:cut] if cut is not None else data)
    path = tmp_path_factory.mktemp("corrupt") / "face.png"
    path.write_bytes(data)
    try:
        x = read_image(path)
    except ValueError as e:
        assert "face.png" in str(e) and "\n" not in str(e)
        return
    assert x.ndim == 4 and x.shape[:2] == (1, 3) and torch.isfinite(x).all() and 0 <= x.min() and x.max() <= 1


def test_from_pil_inverts_to_pil_and_reads_modes_as_read_image_does(tmp_path):
    from lpip_core.files import from_pil, to_pil

    x = torch.rand(1, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    back = from_pil(to_pil(x))
    assert back.shape == x.shape and back.dtype == torch.float32
    assert (back - x).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit rounding only
    grey16 = Image.fromarray((RAMP * 65535).round().astype(np.uint16))
    assert torch.equal(from_pil(grey16), read_image(saved(tmp_path, grey16, "g16.png")))
