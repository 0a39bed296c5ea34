"""Where reports are rendered: in this process, or in a pool of worker processes.

Rendering is CPU-bound pure Python (fpdf2, fontTools, HarfBuzz calls) and holds
the GIL, so in a bulk run the worker threads would queue behind one another on
one core. A pool of processes, one per core, lets a batch use every core; a
single conversation renders in-process (starting workers would cost more).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from fedfina_cli.core.collector import collect_less
from fedfina_cli.core.errors import StageError


def _render(data):
    from fedfina_cli.report.layout import render

    return render(data)


def _start_worker() -> None:
    # Ctrl-C reaches the whole process group; the parent decides what stops
    # (a KeyboardInterrupt here would only print a traceback).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker outlives a parent killed with SIGKILL (cron's timeout, the OOM
    # killer): it would wait on its queue forever, holding ~90 MB. It leaves
    # when the parent does.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    from fedfina_cli.report.layout import load_fonts

    load_fonts()
    # The modules and parsed fonts (about 85,000 objects) live as long as the worker: out of the
    # collector's sight, a render spends 0.3 ms in garbage collection instead of 0.7 ms.
    gc.collect()
    gc.freeze()
    collect_less()


def _exit_with(parent) -> None:
    parent.join()  # returns when the parent process has ended
    os._exit(0)


class InProcessRenderer:
    def __call__(self, data):  # -> report.Rendered
        return _render(data)

    def close(self) -> None:
        pass


class PoolRenderer:
    def __init__(self, workers: int):
        self.workers = workers
        # "spawn": forking a process that runs threads is unsafe, and spawned
        # workers are this process's own children (their CPU time is counted).
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker)
        # Start every worker now: importing fpdf2 and parsing the fonts (about
        # 0.7 s of CPU) then overlaps the first conversations' downloads and
        # summaries instead of delaying their reports.
        for _ in range(workers):
            self._pool.submit(int)

    def __call__(self, data):  # -> report.Rendered
        try:
            return self._pool.submit(_render, data).result()
        except BrokenProcessPool:
            raise StageError("a report worker process died; run again to redo the report",
                             retryable=True) from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# A report costs about 15 ms of CPU; a conversation spends over a second waiting
# on the APIs. One worker keeps up with this many concurrent conversations, and
# each worker costs about 0.7 s of CPU to start (fpdf2, fonts).
CONVERSATIONS_PER_WORKER = 32


def renderer_for(jobs: int, concurrency: int):
    cores = os.cpu_count() or 1
    if jobs < 2 or concurrency < 2 or cores < 2:
        return InProcessRenderer()
    return PoolRenderer(min(cores - 1, jobs, -(-concurrency // CONVERSATIONS_PER_WORKER)))
