"""Running many conversations with a bounded pool of worker threads.

The work is network-bound (ElevenLabs, OpenAI, MinIO, SMTP), so threads give
the parallelism; the ledger serialises its own writes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Iterable

from .pipeline import Job, Outcome, Pipeline

DEFAULT_CONCURRENCY = 8


def run_batch(pipeline: Pipeline, jobs: Iterable[Job], concurrency: int,
              on_done: Callable[[Outcome], None]) -> list[Outcome]:
    jobs = list(jobs)
    outcomes: list[Outcome] = []
    if concurrency <= 1 or len(jobs) <= 1:
        for job in jobs:
            outcome = pipeline.process(job)
            outcomes.append(outcome)
            on_done(outcome)
        return outcomes
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fedfina")
    try:
        futures = [pool.submit(pipeline.process, job) for job in jobs]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            on_done(outcome)
    except BaseException:
        # Ctrl-C: let the conversations in flight finish their stage, start no more.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return outcomes
