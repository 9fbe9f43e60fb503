"""lpip_core.outputs: a command's outputs are checked before any work, and a run is held by one process."""
from pathlib import Path

import pytest

from lpip_core.outputs import Output, exclusive, plan_outputs


def test_planning_creates_nothing_and_leaves_no_probe(tmp_path):
    plan_outputs([Output("-o", tmp_path / "new" / "deeper", folder=True), Output("-o", tmp_path / "new" / "a.png")])
    assert list(tmp_path.iterdir()) == []


def test_an_output_is_refused_inside_an_input_folder_but_not_beside_an_input_file(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    face = tmp_path / "face.png"
    face.write_bytes(b"x")
    plan_outputs([Output("-o", tmp_path, folder=True), Output("-o", tmp_path / "face_lq.png")], [face])
    for path, folder in ((data, True), (data / "sub", True), (data / "sub" / "m.safetensors", False)):
        with pytest.raises(ValueError, match="the input folder"):
            plan_outputs([Output("--log-dir", path, folder=folder)], [data])
    plan_outputs([Output("-o", tmp_path / "results", folder=True)], [data])  # a sibling is fine


def test_a_symlinked_path_to_an_input_is_the_input(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.safetensors").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ValueError, match="would replace the input"):
        plan_outputs([Output("-o", Path(tmp_path / "link" / "a.safetensors"))], [tmp_path / "real" / "a.safetensors"],
                     overwrite=True)


def test_exclusive_refuses_a_second_holder_until_the_first_lets_go(tmp_path):
    with exclusive(tmp_path, "-o m.safetensors"):
        with pytest.raises(ValueError, match="-o m.safetensors: another process is writing there now"):
            with exclusive(tmp_path, "-o m.safetensors"):
                pass
    with exclusive(tmp_path, "-o m.safetensors"):
        pass
