"""The photo pipeline (lpip_core.photo) and its size limit: big faces are left alone, tiny ones restored."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

import lpip_core
from lpip_core.cli import main
from lpip_core.files import from_pil, read_image
from lpip_core.photo import AUTO, NO_LIMIT, face_limit, restore_photo, split_by_size, upscale_lanczos
from tests.helpers import FIXTURES, mixed_photo, tiny_model


def never(crops):
    raise AssertionError("no face should have been restored")


def grey(crops):
    return torch.full((crops.shape[0], 3, 64, 64), 0.5)


def test_the_automatic_limit_comes_from_the_models_face_size():
    assert face_limit(AUTO, 16) == 18 and face_limit(AUTO, 32) == 36
    assert face_limit(NO_LIMIT, 16) is None and face_limit(48, 16) == 48
    for bad in (-2, "20", True, float("nan")):
        with pytest.raises(ValueError, match="max_face_px"):
            face_limit(bad, 16)


@pytest.mark.parametrize("bad, message", [
    (dict(max_face_px=-2), "max_face_px must be a number in [0, inf)"),
    (dict(upscaled_by=0), "upscaled_by must be a number in [0.1, 64.0] (1 = the photo as taken), got 0"),
    (dict(upsample=4), "upsample must be an integer in 0..3"),
    (dict(min_score=float("inf")), "min_score must be a number in (-inf, inf)"),
    (dict(select="biggest"), "select must be one of largest, all, index"),
    (dict(crop_size=8), "crop_size must be an integer in 16..2048"),
    (dict(lq_size=0), "lq_size must be an integer in >= 1"),
    (dict(feather=0.6), "feather must be a number in [0.0, 0.5]"),
    (dict(color_match="hist"), "color_match must be one of none, mean_std"),
    (dict(strength=-1), "strength must be a number in [0, 1]"),
])
def test_restore_photo_checks_every_option_before_it_searches(monkeypatch, bad, message):
    """A bad option of the paste-back must not cost a detection and a restoration first."""
    from lpip_core.faces import detect

    monkeypatch.setattr(detect, "detect_faces", lambda *a, **k: pytest.fail("searched before the options were checked"))
    with pytest.raises(ValueError) as e:
        restore_photo(torch.full((1, 3, 32, 32), 0.5), never, **{"crop_size": 16, "lq_size": 16, **bad})
    assert str(e.value).startswith(message), str(e.value)


def test_a_photo_of_big_faces_changes_none():
    photo = read_image(FIXTURES / "faces" / "hopper.jpg")
    result = restore_photo(photo, never, crop_size=16, lq_size=16)
    assert torch.equal(result.images, photo) and result.masks.max() == 0
    assert result.restored == [] and len(result.skipped) == 1 and result.faces.shape[0] == 0
    assert "restored 0" in result.text and "left alone 1 bigger than 18 px" in result.text


def test_a_photo_mixing_tiny_and_big_faces_restores_only_the_tiny_ones():
    """As the demo: Lanczos x4, faces found at upsample 1, sizes counted in the photo's own pixels."""
    photo = upscale_lanczos(from_pil(mixed_photo()), 4)
    result = restore_photo(photo, grey, crop_size=16, lq_size=16, upscaled_by=4, upsample=1)
    assert len(result.restored) == 1 and len(result.skipped) == 1
    tiny, big = result.restored[0], result.skipped[0]
    assert tiny.source_side / 4 <= 18 < big.source_side / 4
    assert tiny.box[0] > 400 and big.box[2] < 400  # the tiny face is the one on the right
    changed = (result.images - photo).abs().amax(1)[0] > 1 / 255
    assert changed[:, 400:].any() and not changed[:, :400].any()  # the big face: every pixel as it was
    assert result.masks[0, :, :400].max() == 0 and result.masks[0, :, 400:].max() == 1
    # Without the limit both are restored; the upscale factor decides what "big" means.
    assert len(restore_photo(photo, grey, crop_size=16, lq_size=16, max_face_px=NO_LIMIT, upsample=1).restored) == 2
    assert split_by_size(result.restored + result.skipped, 18, upscaled_by=1) == ([], [0, 1])


def test_restore_photo_on_the_command_line(tmp_path, capsys):
    model = lpip_core.save_model(tiny_model(), tmp_path / "tiny.safetensors")
    mixed_photo().save(tmp_path / "mixed.png")
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "mixed.png"), "-o", str(out), "--model", str(model), "--photo",
                 "--upscale", "4", "--steps", "2", "-q"]) == 0
    text = capsys.readouterr()
    assert "restored 1" in text.out + text.err and "left alone 1" in text.out + text.err
    with Image.open(out / "mixed.png") as im:
        assert im.size == (800, 400)
    assert main(["restore", str(tmp_path / "mixed.png"), "-o", str(out), "--model", str(model), "--photo",
                 "--overwrite", "--scale", "8"]) == 2
    assert main(["restore", str(tmp_path / "mixed.png"), "-o", str(out), "--model", str(model), "--photo",
                 "--overwrite", "--upscale", "0"]) == 2
    assert "error: --upscale must be a number in [0.1, 64.0]" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "mixed.png"), "-o", str(out), "--model", str(model), "--photo",
                 "--overwrite", "--max-face-px", "-3"]) == 2
    assert "error: --max-face-px must be a number in [0, inf) (0 = automatic" in capsys.readouterr().err
    for option, value in (("--upsample", "4"), ("--min-score", "nan")):
        assert main(["restore", str(tmp_path / "mixed.png"), "-o", str(out), "--model", str(model), "--photo",
                     "--overwrite", option, value]) == 2
        assert f"error: {option} must be" in capsys.readouterr().err


def test_the_demo_lists_every_face_and_writes_the_side_by_side(tmp_path, capsys):
    """tools.demo's second half, without ComfyUI: on the bundled demo photo with the workflow's own
    settings, one line per face found and a side-by-side image (Lanczos x4 | restored)."""
    import json

    from tools.demo import PHOTO, WORKFLOW, show

    with Image.open(PHOTO) as im:
        w, h = im.size
        im.convert("RGB").resize((4 * w, 4 * h), Image.Resampling.LANCZOS).save(tmp_path / "restored.png")
    figure = show(PHOTO, tmp_path / "restored.png", json.loads(WORKFLOW.read_text()), tmp_path)
    lines = capsys.readouterr().out.splitlines()
    faces = [line for line in lines if line.startswith("face ")]
    assert len(faces) >= 25 and all(("restored" in f) != ("left alone" in f) for f in faces)
    assert f"{len(faces)} faces found" in lines[-1]
    with Image.open(figure) as im:  # the faces' region of both, side by side
        assert im.width % 2 == 0 and 4 * w < im.width <= 2 * 4 * w + 8 and 100 < im.height <= 4 * h + 18
