"""Developer tools (not part of the ComfyUI node pack)."""
