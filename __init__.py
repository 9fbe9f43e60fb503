"""ComfyUI-LPIP-Diff: identity-preserving diffusion face restoration (LPIP-Diff) as ComfyUI nodes.

ComfyUI imports this folder as a custom-node pack and calls ``comfy_entrypoint`` (V3 node API).
Importing it loads no model: checkpoints are read when a Load LPIP-Diff Model node runs.
The method itself lives in ``lpip_core`` (pure PyTorch, usable without ComfyUI).

ComfyUI's modules are imported inside ``comfy_entrypoint``, not at import time: the repository
root is this package, and pytest imports it while collecting the tests, where no ComfyUI exists.
"""
from __future__ import annotations

# Served at /extensions/<pack folder>/: the help pages in web/docs/<node id>.md
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from comfy_api.latest import ComfyExtension

    from .nodes import NODES

    class LPIPDiffExtension(ComfyExtension):
        async def get_node_list(self):
            return list(NODES)

    return LPIPDiffExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
