"""How often Python's cyclic garbage collector runs in fedfina's processes.

A conversation allocates tens of thousands of short-lived containers (parsed
JSON, pydantic models, HTTP headers, PDF objects), which reference counting
frees; the collector finds almost nothing. With the default threshold (a
young-generation collection every 700 allocations more than frees) a 400-call
bulk run's main process collected 352 times, for 0.19 s; at 10,000, 20 times,
for 0.10 s (bench/run.py's bulk scenario). Garbage in cycles waits at most
that many allocations longer to be freed.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 10)  # young; then middle and old, as Python's defaults


def collect_less() -> None:
    gc.set_threshold(*THRESHOLDS)
