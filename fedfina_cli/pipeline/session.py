"""One processing run: the lock, the ledger, the backends and the run's record.

Order matters: the lock is taken before the ledger is opened (opening
migrates, which writes), and storage is made ready before any conversation.
"""

from __future__ import annotations

import gc
import os
from typing import Callable

from fedfina_cli.services.backends import build_backends
from fedfina_cli.pipeline.batch import run_batch
from fedfina_cli.core.config import Settings
from fedfina_cli.core.errors import ExitCode
from fedfina_cli.ledger.ledger import Ledger
from fedfina_cli.pipeline.lock import RunLock
from fedfina_cli.pipeline.stages import Backends, Job, Outcome, Pipeline, RunOptions
from fedfina_cli.report.render_pool import renderer_for


class Session:
    def __init__(self, settings: Settings, command: str, concurrency: int = 1):
        self.settings = settings
        self.command = command
        self.concurrency = concurrency
        self.lock = RunLock(settings.db_path)
        self.warnings: list[str] = []
        self.interrupted = 0  # conversations a dead run had left `processing`
        self.ledger: Ledger | None = None
        self.backends: Backends | None = None
        self._run_id: int | None = None

    def __enter__(self) -> "Session":
        self.lock.acquire(self.command)
        try:
            self.ledger = Ledger(self.settings.db_path, self.settings.redact)
            self.interrupted = self.ledger.mark_interrupted()
            self.backends, self.warnings = build_backends(self.settings, self.ledger.record_api_call,
                                                          pool_size=max(self.concurrency, 4))
            self.backends.storage.prepare()
            self._run_id = self.ledger.start_run(self.command, self.backends.description, os.getpid())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def process(self, jobs: list[Job], options: RunOptions,
                on_done: Callable[[Outcome], None]) -> list[Outcome]:
        renderer = renderer_for(len(jobs), self.concurrency) if "report" in options.stages else None
        self.backends.render = renderer
        # Everything imported and built so far (openai's hundreds of models, the
        # clients) lives for the whole run: keep the garbage collector from
        # re-scanning it in every full collection of a long batch.
        gc.freeze()
        try:
            return run_batch(Pipeline(self.ledger, self.backends, options), jobs, self.concurrency, on_done)
        finally:
            if renderer is not None:
                renderer.close()

    def finish(self, outcomes: list[Outcome], invalid_inputs: int = 0) -> ExitCode:
        """Record the run's end; exit 1 when a conversation failed or an input row was invalid."""
        failed = sum(not o.ok for o in outcomes)
        code = ExitCode.FAILED if failed or invalid_inputs else ExitCode.OK
        self.ledger.finish_run(self._run_id, len(outcomes) - failed, failed, int(code))
        self._run_id = None
        return code

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.ledger is not None:
                if self._run_id is not None:  # ended without finish(): an error or an interrupt
                    self.ledger.finish_run(self._run_id, 0, 0, int(ExitCode.FAILED))
                self.ledger.close()
        finally:
            self.lock.release()
