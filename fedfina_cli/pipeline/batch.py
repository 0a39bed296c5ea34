"""Running many conversations with a bounded pool of worker threads.

The work is network-bound (ElevenLabs, OpenAI, MinIO, SMTP), so threads give
the parallelism; the ledger serialises its own writes. Even one conversation
runs in a worker thread: a signal (Ctrl-C, SIGTERM) then lands in the main
thread, which stops handing out work while the conversations in flight finish,
instead of cutting a conversation off between two of its writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed

from fedfina_cli.pipeline.conversation_pipeline import Pipeline
from fedfina_cli.pipeline.jobs import Job, Outcome
from fedfina_cli.pipeline.slots import threads_for


def run_batch(pipeline: Pipeline, jobs: Iterable[Job], concurrency: int,
              on_done: Callable[[Outcome], None]) -> list[Outcome]:
    jobs = list(jobs)
    outcomes: list[Outcome] = []
    # More threads than slots: the pipeline holds ``concurrency`` of them at the providers (slots.py).
    pool = ThreadPoolExecutor(max_workers=threads_for(max(1, concurrency)), thread_name_prefix="fedfina")
    try:
        futures = [pool.submit(pipeline.process_one, job) for job in jobs]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            on_done(outcome)
    except BaseException:
        # Ctrl-C or SIGTERM: let the conversations in flight finish, start no more.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return outcomes
