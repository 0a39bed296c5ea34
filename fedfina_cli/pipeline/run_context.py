"""One processing run: the ledger, this process's claims, the backends and the run's record.

Storage is made ready before any conversation. Other processes may use the
same ledger at the same time: each conversation is claimed before it is
processed (pipeline/claims.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager

from fedfina_cli.core import accounts
from fedfina_cli.core.api_calls import ApiCall, Metrics
from fedfina_cli.core.config import Settings
from fedfina_cli.core.errors import ExitCode, LedgerError
from fedfina_cli.ledger import daily
from fedfina_cli.ledger.ledger import Ledger, open_ledger
from fedfina_cli.pipeline.backends import Backends, build_backends
from fedfina_cli.pipeline.batch import run_batch
from fedfina_cli.pipeline.claims import Claims
from fedfina_cli.pipeline.conversation_pipeline import Pipeline
from fedfina_cli.pipeline.jobs import Job, Outcome, RunOptions
from fedfina_cli.pipeline.slots import threads_for
from fedfina_cli.report.render_pool import renderer_for

log = logging.getLogger("fedfina.run")


class RunContext:
    def __init__(self, settings: Settings, command: str, concurrency: int = 1,
                 on_api_call: Metrics | None = None):
        """``on_api_call``: told of every external call too (the server's metrics)."""
        self.settings = settings
        self.on_api_call = on_api_call
        self.command = command
        self.concurrency = concurrency
        self.warnings: list[str] = []
        self.interrupted = 0  # conversations a dead process had left `processing`
        self._run_id: int | None = None
        self._stack = ExitStack()  # what __exit__ closes: the ledger, the run's record, the claims

    # Set by __enter__: a RunContext is used only inside its `with` block.
    ledger: Ledger
    claims: Claims
    backends: Backends

    def __enter__(self) -> RunContext:
        with ExitStack() as stack:  # on a failure half-way, what was opened is closed, last first
            # Connections for each worker, the claims' heartbeat and (serve) the HTTP handlers.
            self.ledger = stack.enter_context(closing(open_ledger(
                self.settings, pool_size=threads_for(self.concurrency) + 4)))
            stack.callback(self._end_run)  # before the ledger closes
            # Registered first: its pruning frees the claims of a run that died on this host,
            # which the next line then marks interrupted.
            self.claims = stack.enter_context(Claims(self.ledger, self.settings.claim_seconds))
            self.interrupted = self.ledger.queue.mark_interrupted()
            self.backends, self.warnings = build_backends(self.settings, self._record_api_call,
                                                          pool_size=max(threads_for(self.concurrency), 4))
            stack.callback(self.backends.mailer.close)  # its kept SMTP connections
            self.backends.storage.prepare()
            self._run_id = self.ledger.start_run(self.command, self.backends.description, os.getpid())
            self._stack = stack.pop_all()
        return self

    def process_batch(self, jobs: list[Job], options: RunOptions,
                on_done: Callable[[Outcome], None]) -> list[Outcome]:
        with self.pipeline(options, len(jobs)) as pipeline:
            return run_batch(pipeline, jobs, self.concurrency, on_done)

    @contextmanager
    def pipeline(self, options: RunOptions, jobs: int, *, once_per_run: bool = True) -> Iterator[Pipeline]:
        """A pipeline on this session, with a report renderer sized for ``jobs`` conversations."""
        renderer = renderer_for(jobs, self.concurrency) if "report" in options.stages else None
        try:
            yield Pipeline(self.ledger, self.backends, options, self.claims, render=renderer,
                           once_per_run=once_per_run, defaults=accounts.defaults(self.settings),
                           provider_slots=self.concurrency)
        finally:
            if renderer is not None:
                renderer.close()

    def _record_api_call(self, call: ApiCall) -> None:
        self.ledger.record_api_call(call)
        if self.on_api_call is not None:
            self.on_api_call(call)

    def finish(self, outcomes: list[Outcome], invalid_inputs: int = 0) -> ExitCode:
        """Record the run's end; exit 1 when a conversation failed or an input row was invalid."""
        failed = sum(not o.ok for o in outcomes)
        code = ExitCode.FAILED if failed or invalid_inputs else ExitCode.OK
        if self._run_id is not None:
            self.ledger.finish_run(self._run_id, len(outcomes) - failed, failed, int(code))
        self._run_id = None
        try:
            # Complete days into the ledger's per-day totals, which `stats` reads (a cron ledger
            # that never sees `serve` or `purge` would scan every raw row: 4.7 s at a million).
            daily.roll_up(self.ledger)
        except LedgerError as exc:  # the run's work is done and recorded: a roll-up can wait
            log.warning("per-day totals not brought up to date: %s", exc)
        return code

    def _end_run(self) -> None:
        if self._run_id is not None:  # ended without finish(): an error or an interrupt
            self.ledger.finish_run(self._run_id, 0, 0, int(ExitCode.FAILED))
            self._run_id = None

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()
