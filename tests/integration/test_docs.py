"""The pack's documentation as ComfyUI serves it: help pages, the English locale, pyproject metadata.

The English locale (locales/en/nodeDefs.json) is the nodes' own display names, descriptions and
tooltips, the base that translators copy. Regenerate it after changing a node:
    LPIP_WRITE_LOCALE=1 .venv/bin/python -m pytest tests/integration/test_docs.py -k locale
"""
from __future__ import annotations

import json
import os
import re

import pytest

from tools.comfyui import PACK_NAME, REPO_ROOT

NODE_IDS = ["LoadLPIPModel", "LPIPPatchFusedSampler", "LPIPRestoreFaces", "LPIPDegradeFace", "LPIPFaceCropAlign",
            "LPIPFacePasteBack", "LPIPCompare", "LPIPFaceIdentityScore"]
LOCALE = REPO_ROOT / "locales" / "en" / "nodeDefs.json"
# Texts built from the model folder's contents at each /object_info call: a locale entry would
# replace them with a stale copy in the frontend, so they stay out of it.
DYNAMIC = {("LoadLPIPModel", "description"), ("LoadLPIPModel", "model_name")}


def expected_node_defs(object_info: dict) -> dict:
    defs = {}
    for node_id in NODE_IDS:
        info = object_info[node_id]
        entry = {"display_name": info["display_name"]}
        if (node_id, "description") not in DYNAMIC:
            entry["description"] = info["description"]
        inputs = {}
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                inputs[name] = {"name": name}
                if (node_id, name) not in DYNAMIC:
                    inputs[name]["tooltip"] = spec[1]["tooltip"]
        entry["inputs"] = inputs
        entry["outputs"] = {str(i): {"name": name, "tooltip": tip}
                            for i, (name, tip) in enumerate(zip(info["output_name"], info["output_tooltips"]))}
        defs[node_id] = entry
    return defs


def test_english_locale_matches_the_nodes(comfy_server):
    expected = expected_node_defs(comfy_server.object_info())
    if os.environ.get("LPIP_WRITE_LOCALE") == "1":
        LOCALE.parent.mkdir(parents=True, exist_ok=True)
        LOCALE.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert json.loads(LOCALE.read_text(encoding="utf-8")) == expected, \
        "locales/en/nodeDefs.json is out of date: regenerate it (see this module's docstring)"
    served = comfy_server._get("/i18n").json()["en"]["nodeDefs"]
    for node_id in NODE_IDS:
        assert served[node_id] == expected[node_id]


def test_help_pages_are_served_and_cover_every_input(comfy_server):
    """Each node's page lies where the front end asks first (docs/<node id>/<locale>.md: no 404
    in the browser), starts with the node's name and names every input and output."""
    info = comfy_server.object_info()
    assert sorted(node_id for node_id, node in info.items() if node["category"] == "LPIP-Diff") == sorted(NODE_IDS)
    for node_id in NODE_IDS:
        r = comfy_server.session.get(f"{comfy_server.url}/extensions/{PACK_NAME}/docs/{node_id}/en.md", timeout=30)
        assert r.status_code == 200, node_id
        text = r.text
        assert text.startswith(f"# {info[node_id]['display_name']}\n"), node_id
        for section in ("required", "optional"):
            for name in info[node_id]["input"].get(section, {}):
                assert f"**{name}**" in text, f"{node_id}/en.md does not document {name}"
        for name in info[node_id]["output_name"]:
            assert f"**{name}**" in text, f"{node_id}/en.md does not document output {name}"


def test_front_end_extension_is_served(comfy_server):
    """The pack's JavaScript (web/js/) is listed for the front end to load, and served."""
    scripts = sorted(js for js in comfy_server._get("/extensions").json() if f"/{PACK_NAME}/" in js)
    expected = sorted(f"/extensions/{PACK_NAME}/js/{p.name}" for p in (REPO_ROOT / "web" / "js").glob("*.js"))
    assert scripts == expected and len(expected) >= 4
    for js in scripts:
        r = comfy_server.session.get(comfy_server.url + js, timeout=30)
        assert r.status_code == 200 and "import" in r.text


def test_templates_have_titles_and_thumbnails(comfy_server):
    """The Templates dialog shows a custom pack's workflow under its file name (title, and with
    -/_ as spaces, description): so the files are named as titles, each with a .jpg thumbnail, and
    the pack's category has an English name (locales/en/main.json)."""
    listed = comfy_server._get("/workflow_templates").json()[PACK_NAME]
    files = sorted(p.stem for p in (REPO_ROOT / "example_workflows").glob("*.json"))
    assert sorted(listed) == files and len(files) == 4
    for name in files:
        assert " " in name and "_" not in name and name[0].isupper(), name
        r = comfy_server.session.get(f"{comfy_server.url}/api/workflow_templates/{PACK_NAME}/{name}.jpg", timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", name
    category = comfy_server._get("/i18n").json()["en"]["templateWorkflows"]["category"][PACK_NAME]
    assert category == "LPIP-Diff face restoration"


def test_pyproject_has_registry_metadata():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    project, comfy = meta["project"], meta["tool"]["comfy"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["name"] == "comfyui-lpip-diff"
    assert comfy["PublisherId"] and comfy["DisplayName"] and comfy["Icon"]
    assert "web" not in comfy  # WEB_DIRECTORY already serves web/; both would list its files twice
    assert (REPO_ROOT / comfy["Icon"]).is_file() or comfy["Icon"].startswith("https://")
