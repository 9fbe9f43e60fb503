"""Integration tests: real ComfyUI servers (0.3.75 and 0.28.2) with this pack, and a browser.

The server fixtures are in conftest.py; every test under this folder gets the ``integration``
marker from it. nodes/ holds one file per node of the pack.
"""
