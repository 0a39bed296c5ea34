"""Loading libraries without their optional heavy companions."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without(*names: str) -> Iterator[None]:
    """Inside the block, `import name` fails for these modules unless already loaded.

    For libraries that import numpy or pandas only when present, for features
    fedfina never uses: they load faster and smaller, and fall back to plain
    Python. Modules imported after the block get them as usual.
    """
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes `import name` raise ImportError
    try:
        yield
    finally:
        for name in hidden:
            del sys.modules[name]
