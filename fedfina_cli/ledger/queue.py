"""Claims, the workers that own them, and the queue (SPEC "Many processes, one ledger", "Serving").

The design of the mature database-backed queues (Solid Queue's claimed
executions tied to a registered process, Procrastinate's heartbeat and pruning
of stalled workers), in SQL both SQLite and PostgreSQL run:

- every process that claims work registers a row in ``workers`` and beats a
  heartbeat into it; its row says until when it counts as alive (``expires_at``);
- a claim names its worker (``claim_worker``), the process for people
  (``claimed_by``: host and pid) and carries a token of its own (``claim_token``).
  The heartbeat renews exactly the claims whose tokens the process holds in
  memory: a claim it lost track of (a release that failed) expires;
- a worker whose heartbeat is stale, or whose process is gone from this host, is
  pruned by any process, and its claims are released at once;
- every statement here may be run twice (PostgresSql runs a statement again on a
  new connection when the reply was lost): a claim finds its own token the second
  time instead of claiming another row;
- the email's "sending" mark holds only while the claim is the sender's: one
  statement checks the token and marks, so a process that stalled past its claim
  sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fedfina_cli.core.timefmt import utc_now
from fedfina_cli.ledger.database import one, value
from fedfina_cli.ledger.rows import ConversationRow, Row, conversation_or_none

if TYPE_CHECKING:
    from fedfina_cli.ledger.ledger import Ledger

# The columns a claim sets, and clears when it is released.
_CLAIM = "claimed_by = ?, claim_worker = ?, claim_token = ?, claim_expires_at = ?"
_UNCLAIM = "claimed_by = null, claim_worker = null, claim_token = null, claim_expires_at = null"
# Free to claim: nobody holds it, or its holder stopped renewing.
_UNCLAIMED = "(claimed_by is null or claim_expires_at < ?)"
CHANNEL = "fedfina_queue"  # PostgreSQL's NOTIFY channel: something was queued


class Queue:
    """The claim and queue statements of one ledger (``ledger.queue``)."""

    def __init__(self, ledger: Ledger):
        self._ledger = ledger
        self.sql = ledger.sql

    # --- workers ---------------------------------------------------------------

    def register(self, host: str, pid: int, process_started: int | None, expires_at: str) -> int:
        """A new worker row for this process; its id. (A row repeated after a lost reply goes stale.)"""
        now = utc_now()
        return int(value(self.sql, "insert into workers (host, pid, process_started, started_at, heartbeat_at, "
                                   "expires_at) values (?, ?, ?, ?, ?, ?) returning worker_id",
                         [host, pid, process_started, now, now, expires_at]))

    def unregister(self, worker_id: int) -> None:
        """A process that ends cleanly: its row goes, with any claim it still names."""
        self._release_worker(worker_id, "its process ended")
        self.sql.run("delete from workers where worker_id = ?", [worker_id])

    def beat(self, worker_id: int, expires_at: str, tokens: list[str]) -> bool:
        """The heartbeat: the worker row and exactly the claims ``tokens`` renewed until ``expires_at``.

        False when the worker row is gone: another process pruned it (this one stalled
        past its lifetime) and released its claims.
        """
        if not self.sql.run("update workers set heartbeat_at = ?, expires_at = ? where worker_id = ?",
                            [utc_now(), expires_at, worker_id]):
            return False
        if tokens:
            self.sql.run(f"update conversation_processing set claim_expires_at = ? where claim_worker = ? "
                         f"and claim_token in ({', '.join('?' * len(tokens))})", [expires_at, worker_id, *tokens])
        return True

    def prune(self, host: str, me: int | None, alive: Callable[[int, int | None], bool]) -> list[Row]:
        """Remove the workers whose heartbeat is stale, or whose process is gone from ``host`` (this
        host, asked with ``alive(pid, process_started)``), and release their claims. The removed rows."""
        now = utc_now()
        candidates = self.sql.rows(
            "select * from workers where worker_id != ? and (expires_at < ? or host = ?)", [me or 0, now, host])
        gone = [w for w in candidates
                if w["expires_at"] < now or not alive(int(w["pid"]), w["process_started"])]
        pruned = []
        for worker in gone:
            # Unless it beat meanwhile (a process that was stopped and has just gone on).
            if self.sql.run("delete from workers where worker_id = ? and heartbeat_at = ?",
                            [worker["worker_id"], worker["heartbeat_at"]]):
                reason = ("its process is gone" if worker["expires_at"] >= now
                          else f"its heartbeat stopped at {worker['heartbeat_at']}")
                self._release_worker(worker["worker_id"], reason)
                pruned.append(worker)
        return pruned

    def _release_worker(self, worker_id: int, reason: str) -> None:
        released = self.sql.rows(f"update conversation_processing set {_UNCLAIM} where claim_worker = ? "
                                 "returning processing_id, conversation_id, claimed_by", [worker_id])
        for row in released:
            self._ledger.audit(row, "claim", "released", "released",
                               f"claim released: {reason} (worker {worker_id})")

    # --- claims ----------------------------------------------------------------

    def claim(self, conversation_id: str, account_id: str, email_id: str | None, owner: str, worker_id: int,
              token: str, expires_at: str) -> tuple[ConversationRow, bool]:
        """Claim the conversation with ``token`` until ``expires_at``: (its row, claimed?).

        One conditional UPDATE takes the row when nobody holds it, its claim expired,
        or this worker holds it already (a claim whose release failed). When another
        live process holds it, the row is returned unchanged, naming the holder.
        """
        processing_id = self._ledger.row_id(conversation_id, account_id)
        now = utc_now()
        email, recipient = _recipient(email_id)
        changed = self.sql.run(
            f"update conversation_processing set {_CLAIM}, status = 'processing', started_at = ?, updated_at = ?, "
            f"error_message = null, retryable = null{email} "
            f"where processing_id = ? and ({_UNCLAIMED} or claim_token = ? or claim_worker = ?)",
            [owner, worker_id, token, expires_at, now, now, *recipient, processing_id, now, token, worker_id])
        return self._ledger.get(processing_id), changed == 1

    def claim_as_is(self, processing_id: int, condition: str, owner: str, worker_id: int, token: str,
                    expires_at: str) -> bool:
        """Claim the conversation with ``token`` until ``expires_at`` when nobody holds it and
        ``condition`` is true of its row, leaving its status and times as they are (a purge's
        claim: the conversation stays completed or failed). True when claimed; run again with
        the same token (a lost reply), True again."""
        now = utc_now()
        return self.sql.run(f"update conversation_processing set {_CLAIM} where processing_id = ? "
                            f"and ({_UNCLAIMED} or claim_token = ?) and ({condition})",
                            [owner, worker_id, token, expires_at, processing_id, now, token]) == 1

    def claim_next(self, owner: str, worker_id: int, token: str, expires_at: str) -> ConversationRow | None:
        """Claim the oldest queued conversation with ``token`` (None: the queue is empty).

        A conversation a dead worker held (its claim expired or released, ``queued_at``
        still set) is taken over like a queued one. One UPDATE picks and claims, so two
        workers never take the same row; on PostgreSQL the pick skips rows another
        worker is claiming at that moment. Run again with the same token (a lost
        reply), it returns the row it claimed the first time.
        """
        now = utc_now()
        return conversation_or_none(one(self.sql,
                   f"update conversation_processing set {_CLAIM}, status = 'processing', started_at = ?, "
                   "updated_at = ?, error_message = null, retryable = null "
                   "where processing_id = coalesce("
                   f"(select processing_id from conversation_processing where claim_token = ?), {self._pick()}) "
                   f"and (claim_token = ? or {_UNCLAIMED}) returning *",
                   [owner, worker_id, token, expires_at, now, now, token, *self._pick_args(now), token, now]))

    def _pick(self) -> str:
        """The oldest conversation to take: queued, or left `processing` by a dead worker."""
        if self.sql.dialect == "postgresql":
            # One walk of the queued_at index; the pick skips rows another worker is claiming.
            return ("(select processing_id from conversation_processing "
                    "where queued_at is not null and queued_at <= ? and status in ('queued', 'processing') "
                    f"and {_UNCLAIMED} order by queued_at, processing_id limit 1 for update skip locked)")
        # SQLite sorted every queued row for `status in (…) order by queued_at` (19 ms at 10,000
        # queued): the oldest of each status instead, each the first entry of an index walk.
        oldest = ("select processing_id, queued_at from conversation_processing where status = '{0}' "
                  f"and queued_at <= ? and {_UNCLAIMED} order by queued_at, processing_id limit 1")
        return (f"(select processing_id from (select * from ({oldest.format('queued')}) "
                f"union all select * from ({oldest.format('processing')})) order by queued_at, processing_id limit 1)")

    def _pick_args(self, now: str) -> list[str]:
        return [now, now] if self.sql.dialect == "postgresql" else [now, now, now, now]

    def mark_sending(self, processing_id: int, token: str, message_id: str,
                     resend: bool) -> ConversationRow | None:
        """Mark the email "sending" only while ``token`` holds the claim, and never over another's
        "sent" (unless ``resend``): the row, or None when the claim is lost (send nothing)."""
        now = utc_now()
        not_sent = "" if resend else " and (email_state is null or email_state != 'sent')"
        return conversation_or_none(one(self.sql,
                   "update conversation_processing set email_state = 'sending', email_message_id = ?, "
                   f"updated_at = ? where processing_id = ? and claim_token = ? and claim_expires_at >= ?{not_sent} "
                   "returning *", [message_id, now, processing_id, token, now]))

    def unmark_sending(self, processing_id: int, token: str) -> ConversationRow | None:
        """The server refused the message outright: nothing was delivered, "sending" is taken back."""
        return conversation_or_none(one(
            self.sql, "update conversation_processing set email_state = null, updated_at = ? "
                      "where processing_id = ? and claim_token = ? and email_state = 'sending' returning *",
            [utc_now(), processing_id, token]))

    def release(self, processing_id: int, token: str) -> None:
        self.sql.run(f"update conversation_processing set {_UNCLAIM} where processing_id = ? and claim_token = ?",
                     [processing_id, token])

    def mark_interrupted(self) -> int:
        """Mark conversations left `processing` by a process that died as failed and retryable.

        Only those whose claim expired or was released (or that have none: a ledger
        from before claims): a live claim is another process at work. Queued work a
        dead worker held is not marked: the queue's workers take it over
        (claim_next). `run --failed` and `status --status failed` then find them;
        the stages they finished are kept and skipped when they are resumed.
        """
        now = utc_now()
        return self.sql.run(
            f"update conversation_processing set status = 'failed', retryable = 1, updated_at = ?, {_UNCLAIM}, "
            "error_message = 'interrupted: the process working on it stopped before finishing; "
            "run again to resume (finished stages are kept)' "
            f"where status = 'processing' and queued_at is null and {_UNCLAIMED}",
            [now, now])

    # --- the queue (serve, worker) ------------------------------------------------

    def enqueue(self, conversation_id: str, account_id: str, email_id: str | None,
                source: str) -> tuple[ConversationRow, bool]:
        """Queue the conversation for the workers: (its row, whether it was queued now).

        A conversation already completed, queued, or being processed is left as it is
        (a duplicate webhook or request is processed once); any other is queued,
        a failed one included (asking again is how a failure is retried).
        """
        processing_id = self._ledger.row_id(conversation_id, account_id)
        now = utc_now()
        email, recipient = _recipient(email_id)
        changed = self.sql.run(
            f"update conversation_processing set status = 'queued', queued_at = ?, source = ?, "
            f"updated_at = ?, error_message = null, retryable = null{email} "
            "where processing_id = ? and status not in ('completed', 'queued') "
            "and not (status = 'processing' and claimed_by is not null and claim_expires_at >= ?)",
            [now, source, now, *recipient, processing_id, now])
        if changed:
            self.tell_workers()
        return self._ledger.get(processing_id), changed == 1

    def tell_workers(self) -> None:
        """On PostgreSQL, wake the workers of every process at once (QueueWorkers listens); they
        otherwise find new work by polling, up to a second late for each conversation queued."""
        self.sql.notify(CHANNEL)

    def retry_later(self, processing_id: int, not_before: str, reason: str) -> None:
        """Put a conversation that failed for a passing reason back on the queue, not before then."""
        changed = self.sql.run(
            "update conversation_processing set status = 'queued', queued_at = ?, updated_at = ? "
            "where processing_id = ? and status = 'failed'", [not_before, utc_now(), processing_id])
        if changed:
            self._ledger.audit(self._ledger.get(processing_id), "queue", "retry", "queued", reason)

    def retries(self, processing_id: int) -> int:
        return int(value(self.sql, "select count(*) as n from processing_audit_log where processing_id = ? "
                                   "and step = 'queue' and event = 'retry'", [processing_id]))

    def depth(self) -> int:
        """Conversations queued and not yet claimed by a worker."""
        return int(value(self.sql, "select count(*) as n from conversation_processing where status = 'queued'"))


def _recipient(email_id: str | None) -> tuple[str, list[str]]:
    """The SET clause and parameter that record the recipient, when the job names one."""
    return (", email_id = ?", [email_id]) if email_id else ("", [])
