"""The nodes' one translation of lpip_core's errors into their input names.

lpip_core checks every value it is given (lpip_core.checks) and names the argument in its message:
"images values must be in [0, 1]". A node passes its inputs on unchecked; where an input feeds a
core argument of another name, ``core_names`` on its ``execute`` rewrites the start of the message
("image values must be in [0, 1]"), so that the error names what the user sees on the node. A
node checks a value itself only where no core function sees it (a combo that picks what the node
does), with the same lpip_core.checks functions.
"""
from __future__ import annotations

import functools

from ..lpip_core.checks import renamed


def core_names(**names: str):
    """Decorate a node's ``execute`` (under @classmethod): core argument name -> node input name."""
    def decorate(execute):
        @functools.wraps(execute)
        def run(cls, *args, **kwargs):
            with renamed(names):
                return execute(cls, *args, **kwargs)
        return run
    return decorate
