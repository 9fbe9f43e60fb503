"""The packaging facts a user and the Comfy Registry rely on."""
import ast
from pathlib import Path

import tomllib

import lpip_core

ROOT = Path(__file__).resolve().parent.parent


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_one_version_everywhere():
    assert pyproject()["project"]["version"] == lpip_core.__version__


def test_registry_metadata_is_complete():
    comfy = pyproject()["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert (ROOT / comfy["Icon"]).is_file()
    assert "web" not in comfy  # WEB_DIRECTORY already serves web/; ComfyUI would load it twice


def test_runtime_requirements_agree_and_leave_the_big_three_unpinned():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    requirements = sorted(line for line in lines if line)
    assert requirements == sorted(pyproject()["project"]["dependencies"])
    for name in ("torch", "torchvision", "numpy"):
        assert not any(r.startswith(f"{name}==") for r in requirements)


def test_lpip_core_never_imports_comfyui():
    for path in (ROOT / "lpip_core").rglob("*.py"):
        source = path.read_text()
        for module in ("comfy", "folder_paths", "server", "comfy_api"):
            assert f"import {module}" not in source and f"from {module}" not in source, (str(path), module)


def test_the_import_graph_reads_method_then_data_then_training_and_evaluation():
    """method <- data <- training, evaluation: a layer imports only from the layers before it, so the
    degradations and face folders that evaluation uses never pull in training (and the reverse)."""
    forbidden = {"method": {"data", "training", "evaluation"}, "data": {"training", "evaluation"},
                 "training": {"evaluation"}, "evaluation": {"training"}}
    seen = set()
    for layer, others in forbidden.items():
        for path in (ROOT / "lpip_core" / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
                    seen.add((layer, node.module.split(".")[0]))
                    assert node.module.split(".")[0] not in others, (path.name, node.module)
    assert {("data", "method"), ("training", "data"), ("evaluation", "data")} <= seen  # the edges that should be
