"""Integration tests: a real ComfyUI 0.3.75 server with this pack (see conftest.py).

A package, so that its conftest is imported as ``integration.conftest`` and never shadows
tests/conftest.py, which the unit tests import as ``conftest``.
"""
