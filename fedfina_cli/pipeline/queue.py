"""The workers of `fedfina serve` and `fedfina worker`: they process the ledger's queue.

A conversation is queued in the ledger (pipeline/intake.py) by any process;
each worker thread claims the oldest queued one (one UPDATE, so no two workers
on any host take the same) and runs it through the pipeline of `run`. A worker
that dies leaves its claims to expire; ``queued_at`` stays set until the
conversation is finished, so another worker takes it over. Workers of this
process are woken at once when it queues something; others look every
``poll_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from fedfina_cli.core.conversation import FetchedConversation
from fedfina_cli.core.errors import FedfinaError
from fedfina_cli.core.jsonio import loads
from fedfina_cli.core.timefmt import utc_in
from fedfina_cli.ledger import daily
from fedfina_cli.ledger.queue import CHANNEL
from fedfina_cli.ledger.rows import ConversationRow
from fedfina_cli.pipeline import sync as syncing
from fedfina_cli.pipeline.intake import accept_conversation, discard_stale_audio, in_hand
from fedfina_cli.pipeline.jobs import Job, Outcome, RunOptions
from fedfina_cli.pipeline.purge import purge
from fedfina_cli.pipeline.run_context import RunContext
from fedfina_cli.pipeline.slots import threads_for

log = logging.getLogger("fedfina.worker")
purge_log = logging.getLogger("fedfina.purge")  # `serve --purge-every`: named for what it does

POLL_SECONDS = 1.0
# Sources whose conversation is in storage already (a webhook brought it; the sweep, or a request
# without its account, fetched it to read its variables): the worker reads it there, not from the API.
PREFETCHED = ("webhook", "sweep", "request")
# A conversation that failed for a passing reason is queued again this many times,
# after settings.queue_retry_seconds x 1, 4, 16, 64; then it stays failed for `run --failed`.
QUEUE_RETRIES = 4
# After the ledger itself failed (a database restart): wait this long, then try again.
LEDGER_RETRY_SECONDS = 2.0


class QueueWorkers:
    """Threads that process queued conversations, ``concurrency`` at the providers at once, until stopped."""

    def __init__(self, session: RunContext, concurrency: int, on_done: Callable[[Outcome], None] = lambda o: None,
                 poll_seconds: float = POLL_SECONDS):
        self.session = session
        self.concurrency = max(1, concurrency)
        self.on_done = on_done
        self.poll_seconds = poll_seconds
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pipeline_context = session.pipeline(RunOptions(), self.concurrency, once_per_run=False)
        self._pipeline = self._pipeline_context.__enter__()
        self._in_flight: set[str] = set()  # conversations being processed (for /metrics)
        self._listener: threading.Thread | None = None

    @property
    def busy(self) -> int:
        """Conversations in flight (set operations are atomic under the GIL; a count += is not)."""
        return len(self._in_flight)

    def start(self) -> QueueWorkers:
        for number in range(threads_for(self.concurrency)):  # the pipeline bounds them to its slots
            thread = threading.Thread(target=self._work, name=f"fedfina-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        sql = self.session.ledger.sql
        if sql.dialect == "postgresql":  # queued by any process, woken at once (no poll's wait)
            self._listener = threading.Thread(target=sql.listen, args=(CHANNEL, self._wake_all, self._stopping),
                                              name="fedfina-queue-listener", daemon=True)
            self._listener.start()
        return self

    def _wake_all(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def wake(self) -> None:
        """Something was queued by this process: a sleeping worker takes it now."""
        with self._wake:
            self._wake.notify()

    def stop(self) -> None:
        """Start no more conversations; return when those in flight have finished (their claims released)."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join()
        if self._listener is not None:
            self._listener.join()
        self._pipeline_context.__exit__(None, None, None)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                self._work_once()
            except Exception:
                log.exception("a worker thread failed; it goes on after %g s", LEDGER_RETRY_SECONDS)
                self._stopping.wait(LEDGER_RETRY_SECONDS)

    def _work_once(self) -> None:
        """Take a provider slot, then claim the next queued conversation and process it; wait when
        there is none. The slot first: a conversation claimed by a thread that must then wait for
        a slot sits idle here while other workers on the ledger have nothing to do."""
        slot = self._pipeline.slots.take(timeout=self.poll_seconds)
        if slot is None:
            return  # every slot busy: look again (and at _stopping)
        try:
            claimed = self.session.claims.claim_next_queued()
        except FedfinaError as exc:  # the ledger is away (a database restart), or the heartbeat is
            slot()
            log.error("cannot read the queue: %s", exc)
            self._stopping.wait(LEDGER_RETRY_SECONDS)
            return
        if claimed is None:
            slot()
            with self._wake:
                self._wake.wait(self.poll_seconds)
            return
        row, token = claimed
        job = Job(row["conversation_id"], row["email_id"], row["account_id"] or None, label="queue",
                  prefetched=row.get("source") in PREFETCHED)
        self._in_flight.add(job.conversation_id)
        try:
            outcome = self._pipeline.process_one(job, claim=(row, token), slot=slot)
        except FedfinaError as exc:  # the ledger failed mid-way: the claim expires, another takes it over
            log.error("%s: the ledger failed (%s); it stays queued", job.conversation_id, exc)
            self._stopping.wait(LEDGER_RETRY_SECONDS)
            return
        finally:
            slot()  # given back already by the pipeline, unless it failed before it took it over
            self._in_flight.discard(job.conversation_id)
            self._release(row, token)
        if outcome.status == "failed" and outcome.retryable and outcome.account_id == row["account_id"]:
            self._retry_later(row["processing_id"], outcome)
        self.on_done(outcome)

    def _release(self, row: ConversationRow, token: str) -> None:
        """The queue's claim, when the pipeline did not use it (it resolved another row) or could not
        release it; releasing twice changes nothing."""
        try:
            self.session.claims.release(row, token)
        except FedfinaError as exc:  # not renewed from now on: it expires
            log.error("%s: could not release its claim (%s); it expires", row["conversation_id"], exc)

    def _retry_later(self, processing_id: int, outcome: Outcome) -> None:
        ledger = self.session.ledger
        try:
            retries = ledger.queue.retries(processing_id)
            if retries >= QUEUE_RETRIES:
                return
            delay = self.session.settings.queue_retry_seconds * 4 ** retries
            not_before = utc_in(delay)
            ledger.queue.retry_later(processing_id, not_before, f"retry {retries + 1} of {QUEUE_RETRIES} in "
                                                          f"{delay:g} s after: {outcome.error}")
        except FedfinaError as exc:
            log.error("%s: could not queue it again (%s); `fedfina run --failed` will", outcome.conversation_id, exc)


class Periodic:
    """A daemon thread that runs ``round()`` now and then every ``every_seconds`` until stopped;
    a round that fails is logged and the next one tries again (the server stays up)."""

    name = "periodic"

    def __init__(self, every_seconds: float):
        self.every_seconds = every_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"fedfina-{self.name}", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def round(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.round()
            except Exception as exc:  # noqa: BLE001 - the next round tries again; the server stays up
                log.error("%s failed: %s", self.name, exc)
            self._stopping.wait(self.every_seconds)


class Housekeeper(Periodic):
    """Hourly, in `serve` and `worker`: recordings held a day with no transcription are deleted
    (pipeline/intake.discard_stale_audio), so the holding area does not grow for ever; complete
    days are rolled up into the ledger's per-day totals (ledger/daily.py), which `stats` reads;
    the console's used links, ended sessions and old sign-in requests are deleted a day on."""

    name = "housekeeping"

    def __init__(self, session: RunContext, every_seconds: float = 3600.0):
        super().__init__(every_seconds)
        self.session = session

    def round(self) -> None:
        discarded = discard_stale_audio(self.session.ledger, self.session.backends.storage)
        if discarded:
            log.info("deleted %d recordings held a day with no transcription", discarded)
        daily.roll_up(self.session.ledger)  # `stats` reads complete days from their totals
        self.session.ledger.console.prune()


class Purger(Periodic):
    """`serve --purge-every HOURS`: `fedfina purge` now and then (SPEC "Retention and legal hold");
    stopping the server stops it between two conversations."""

    name = "purge"

    def __init__(self, session: RunContext, every_seconds: float):
        super().__init__(every_seconds)
        self.session = session

    def round(self) -> None:
        result = purge(self.session.ledger, self.session.backends.storage, self.session.settings,
                       stopping=self._stopping.is_set)
        purge_log.info("purge: %d conversations past retention, %d files deleted", len(result.conversations),
                       result.objects)
        if result.failed:
            purge_log.warning("purge: %d conversations could not be purged (first: %s); the next purge tries again",
                              len(result.failed), result.failed[0])
        for stopped in result.stopped:
            purge_log.warning("purge: %s", stopped)
        if result.held_back:
            purge_log.warning("purge: %d files are in a bucket these settings do not reach (first: %s)",
                              len(result.held_back), result.held_back[0])


class Sweeper(Periodic):
    """`serve --sweep-agent-id`: a periodic sync that queues the calls whose webhook never came."""

    name = "sweep"

    def __init__(self, session: RunContext, agent_id: str, every_seconds: float, on_queued: Callable[[], None]):
        super().__init__(every_seconds)
        self.session = session
        self.agent_id = agent_id
        self.on_queued = on_queued

    def round(self) -> None:
        queued = self.sweep_once()
        log.info("sweep of %s: %d conversations queued", self.agent_id, queued)

    def sweep_once(self) -> int:
        """List the agent's calls since the watermark; queue those not yet done. Returns how many."""
        ledger, backends = self.session.ledger, self.session.backends
        source = backends.elevenlabs
        assert source is not None  # serve refuses --sweep-agent-id without ELEVENLABS_API_KEY
        previous = ledger.watermark(self.agent_id)
        after = syncing.listing_start(previous, first=syncing.first_start())
        plan = syncing.plan(source, ledger, self.agent_id, after, None, None)
        outcomes, queued = [], 0
        for job in plan.jobs:
            if self._stopping.is_set():
                break
            outcome = Outcome(job.conversation_id, status="failed", retryable=True)
            on_queue = next((r for r in ledger.rows_for(job.conversation_id) if in_hand(r)), None)
            if on_queue is not None:
                # Listed again (the listing restarts at the watermark's second) while the
                # queue works on it: asking the API for it again would change nothing.
                outcome.status, outcome.retryable = on_queue["status"], False
                outcomes.append(outcome)
                continue
            try:
                intake = accept_conversation(ledger, backends.storage,
                                             _raw(source.get_conversation(job.conversation_id)), "sweep")
            except FedfinaError as exc:
                log.warning("sweep: %s: %s", job.conversation_id, exc)
            else:
                # Queued (or done, or failed for a reason a retry cannot mend): the queue has it now.
                outcome.status, outcome.retryable = intake.status, False
                queued += intake.queued_now
            outcomes.append(outcome)
        if queued:
            self.on_queued()
        watermark = syncing.next_watermark(plan, outcomes, previous, now=time.time())
        if watermark is not None and watermark != previous:
            ledger.set_watermark(self.agent_id, watermark)
        return queued


def _raw(fetched: FetchedConversation) -> dict[str, Any]:

    raw: dict[str, Any] = loads(fetched.raw)  # a conversation the API answered: an object
    return raw
