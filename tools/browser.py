"""Drive ComfyUI's front end in a real headless Chromium: for the browser tests and the
screenshots of docs/nodes.md ("What the front end shows").

Uses Debian's ``chromium`` (``apt-get install chromium``; or ``$LPIP_CHROMIUM``) through Playwright
for Python with an explicit executable path: Playwright downloads no browser. :class:`ComfyPage`
opens a running :class:`tools.comfyui.ComfyServer`'s page, records console messages, page errors and
failed requests, and offers what a person does there: open a template from the Templates dialog,
press Run and wait, find a node on the canvas, take a screenshot of it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import requests

from .comfyui import PACK_NAME

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio"]
TEMPLATE_CATEGORY = "LPIP-Diff face restoration"  # locales/en/main.json


def chromium_path() -> str:
    path = os.environ.get("LPIP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("no Chromium found: apt-get install chromium (or set LPIP_CHROMIUM)")
    return path


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium (playwright Browser), closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class ComfyPage:
    """One browser tab on a ComfyUI server, with everything it logged."""

    def __init__(self, browser, url: str, viewport=(1400, 900)):
        self.url = url
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.page = self.context.new_page()
        self.messages: list[dict] = []  # {"kind": console type | "pageerror" | "http", "text", "url"}
        self.page.on("console", lambda m: self.messages.append(
            {"kind": m.type, "text": m.text, "url": (m.location or {}).get("url", "")}))
        self.page.on("pageerror", lambda e: self.messages.append(
            {"kind": "pageerror", "text": f"{e}\n{getattr(e, 'stack', '')}", "url": ""}))
        self.page.on("response", lambda r: r.status >= 400 and self.messages.append(
            {"kind": "http", "text": f"{r.status} {r.request.method} {r.url}", "url": r.url}))

    def close(self) -> None:
        self.context.close()

    # ------------------------------------------------------------------ what went wrong
    def pack_errors(self) -> list[dict]:
        """Console errors, page errors and failed requests that come from this pack: its scripts,
        its help pages and previews, or a message that names it."""
        def ours(m: dict) -> bool:
            text = m["text"] + " " + m["url"]
            return PACK_NAME in text or "LPIP" in text or "lpip-diff" in text
        return [m for m in self.messages if m["kind"] in ("error", "pageerror", "http") and ours(m)]

    # ------------------------------------------------------------------ the app
    def open(self, timeout: float = 90.0) -> "ComfyPage":
        """Load the page and wait until the app, the graph and this pack's extensions are ready."""
        self.page.goto(self.url)
        self.page.wait_for_function(
            "() => window.app?.graph && window.app.extensionManager && "
            "window.app.extensions?.some(e => e.name === 'LPIPDiff.Compare') && document.querySelector('canvas')",
            timeout=timeout * 1000)
        # A first visit opens the Templates dialog a little after the graph: close it, so that the
        # page starts without a dialog.
        with contextlib.suppress(Exception):
            self.page.locator(".p-dialog-mask").first.wait_for(state="visible", timeout=20000)
        self.close_dialogs()
        return self

    def close_dialogs(self) -> None:
        for _ in range(5):
            if not self.page.locator(".p-dialog-mask").count():
                return
            self.page.keyboard.press("Escape")
            self.page.wait_for_timeout(500)

    def show_templates(self) -> None:
        """Open the Templates dialog on the pack's category."""
        self.close_dialogs()
        self.page.get_by_role("button", name="Templates").first.click()
        self.page.get_by_text(TEMPLATE_CATEGORY).first.click()
        self.page.wait_for_timeout(500)

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def open_template(self, title: str, timeout: float = 60.0) -> None:
        """Open the Templates dialog (if it is not open), pick the pack's category and the card
        ``title``; wait until its graph is on the canvas."""
        page = self.page
        self.show_templates()
        before = self.js("() => window.app.graph.nodes.map(n => n.id).join()")
        page.get_by_text(title, exact=True).first.click()
        page.wait_for_function(
            "([before]) => window.app.graph.nodes.length && window.app.graph.nodes.map(n => n.id).join() !== before "
            "&& !document.querySelector('.p-dialog-mask')", arg=[before], timeout=timeout * 1000)
        page.wait_for_timeout(500)

    def open_help(self, node_type: str, timeout: float = 30.0) -> str:
        """Open a node's help page as a person does: select a node of that type and open the
        Info tab of the properties panel (the front end fetches docs/<node id>/<locale>.md first).
        Returns the text the panel shows; the node is removed again."""
        self.close_dialogs()
        node_id = self.js("""(type) => { const n = window.LiteGraph.createNode(type); n.pos = [100, 100];
            window.app.graph.add(n); window.app.canvas.deselectAll?.(); window.app.canvas.selectNode(n);
            return n.id; }""", node_type)
        info_tab = self.page.locator("[role=tab]", has_text="Info").first
        if not info_tab.is_visible():
            self.page.get_by_role("button", name="Toggle properties panel").first.click()
        info_tab.click()
        self.page.wait_for_function(  # this node's page, not the one shown before
            """(type) => document.querySelector('.markdown-content h1')?.textContent.trim() ===
                         window.LiteGraph.registered_node_types[type].nodeData.display_name""",
            arg=node_type, timeout=timeout * 1000)
        content = self.page.locator(".markdown-content").first.inner_text()
        self.js("(id) => window.app.graph.remove(window.app.graph.getNodeById(id))", node_id)
        return content

    def template_titles(self) -> list[str]:
        """The card titles the Templates dialog shows in the pack's category."""
        self.show_templates()
        titles = self.page.locator("[data-testid^='template-workflow-']").all_inner_texts()
        self.close_dialogs()
        return titles

    def run(self, timeout: float = 600.0) -> dict:
        """Press the Run button and wait until the prompt is done; returns its /history entry."""
        session = requests.Session()
        seen = set(session.get(f"{self.url}/history", timeout=30).json())
        self.page.get_by_role("button", name="Run", exact=True).first.click()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = session.get(f"{self.url}/history", timeout=30).json()
            new = [entry for pid, entry in history.items() if pid not in seen]
            if new and new[0].get("status", {}).get("completed") is not None:
                status = new[0]["status"]
                if status.get("status_str") == "success":
                    self.page.wait_for_timeout(1500)  # the front end loads the previews
                    return new[0]
                raise RuntimeError(f"the prompt failed: {status.get('messages')}")
            self.page.wait_for_timeout(500)
        raise TimeoutError(f"the prompt did not finish within {timeout:.0f} s")

    # ------------------------------------------------------------------ nodes on the canvas
    def node_ids(self, node_type: str) -> list[int]:
        return self.js("(t) => window.app.graph.nodes.filter(n => n.type === t).map(n => n.id)", node_type)

    def show_node(self, node_id: int) -> None:
        """Zoom to 100% and centre the canvas on a node."""
        self.js("""(id) => { const c = window.app.canvas, n = window.app.graph.getNodeById(id);
                   c.ds.scale = 1; c.centerOnNode(n); c.setDirty(true, true); }""", node_id)
        self.page.wait_for_timeout(400)

    def node_box(self, node_id: int) -> dict:
        """The node's rectangle on the page (title bar included), in CSS pixels."""
        return self.js("""(id) => {
            const c = window.app.canvas, n = window.app.graph.getNodeById(id);
            const r = c.canvas.getBoundingClientRect(), s = c.ds.scale, o = c.ds.offset;
            const title = window.LiteGraph.NODE_TITLE_HEIGHT;
            return {x: r.left + (n.pos[0] + o[0]) * s, y: r.top + (n.pos[1] - title + o[1]) * s,
                    width: n.size[0] * s, height: (n.size[1] + title) * s}; }""", node_id)

    def widget_box(self, node_id: int, widget: str) -> dict:
        """The page rectangle of a DOM widget's element (e.g. the compare view)."""
        return self.js("""([id, name]) => {
            const w = window.app.graph.getNodeById(id).widgets.find(w => w.name === name);
            const r = (w.element.querySelector('canvas') ?? w.element).getBoundingClientRect();
            return {x: r.x, y: r.y, width: r.width, height: r.height}; }""", [node_id, widget])

    def screenshot(self, box: dict, path: str | os.PathLike | None = None, margin: int = 6, **kw) -> bytes:
        clip = {"x": max(0, box["x"] - margin), "y": max(0, box["y"] - margin),
                "width": box["width"] + 2 * margin, "height": box["height"] + 2 * margin}
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return self.page.screenshot(clip=clip, path=None if path is None else str(path), **kw)
