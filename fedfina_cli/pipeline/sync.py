"""`fedfina sync`: process an agent's new conversations, for cron.

Pages through the conversation list from the agent's watermark, runs the
pipeline on those that are `done` and not yet completed, and moves the
watermark forward only over a run of conversations that are finished, so a
conversation that was not ready (or failed for a reason that may pass) is
listed again by the next sync.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fedfina_cli.core.conversation import NOT_READY_STATUSES
from fedfina_cli.ledger.ledger import Ledger
from fedfina_cli.pipeline.jobs import Job, Outcome
from fedfina_cli.services.elevenlabs import ElevenLabsClient, ListedConversation

PAGE_SIZE = 100
# A list that never ends (has_more forever, with ever new cursors) stops here:
# 2,000 pages are 200,000 calls, more than an agent makes between two syncs.
MAX_PAGES = 2000
NOT_READY = NOT_READY_STATUSES
# Without a watermark (the first sync or sweep of an agent) and without --since, calls older than
# this are history, not missed ones: processing them would email officers a year of calls at once.
# `fedfina sync --since DATE` reaches further back on purpose.
FIRST_LOOKBACK_SECONDS = 24 * 3600


@dataclass
class SyncPlan:
    listed: list[ListedConversation]  # oldest first
    jobs: list[Job]
    already_completed: set[str]
    not_ready: set[str]
    final_failed: set[str]  # ElevenLabs says "failed": nothing to process, ever
    warnings: list[str] = field(default_factory=list)


def plan(client: ElevenLabsClient, ledger: Ledger, agent_id: str, after_unix: int | None,
         email: str | None, account_id: str | None) -> SyncPlan:
    listed: dict[str, ListedConversation] = {}
    warnings: list[str] = []
    cursor, seen_cursors = None, set()
    for _ in range(MAX_PAGES):
        page = client.list_conversations(agent_id, cursor=cursor, after_unix=after_unix, page_size=PAGE_SIZE)
        warnings += [f"the conversation list had an unusable item, left out: {why}" for why in page.rejected]
        for item in page.conversations:
            listed.setdefault(item.conversation_id, item)
        if not page.has_more or not page.next_cursor or not page.conversations:
            break
        if page.next_cursor in seen_cursors:
            warnings.append("the conversation list repeated a page cursor; stopped paging there")
            break
        seen_cursors.add(page.next_cursor)
        cursor = page.next_cursor
    else:
        warnings.append(f"the conversation list did not end after {MAX_PAGES} pages; "
                        "stopped there, the next sync goes on")
    ordered = sorted(listed.values(), key=lambda c: (c.start_time_unix_secs or 0, c.conversation_id))
    result = SyncPlan(ordered, [], set(), set(), set(), warnings)
    for item in ordered:
        if item.status in NOT_READY:
            result.not_ready.add(item.conversation_id)
        elif item.status == "failed":
            result.final_failed.add(item.conversation_id)
        elif any(r["status"] == "completed" for r in ledger.rows_for(item.conversation_id)):
            result.already_completed.add(item.conversation_id)
        else:
            result.jobs.append(Job(item.conversation_id, email, account_id, label="sync"))
    return result


def first_start(now: float | None = None) -> int:
    """Where the first listing of an agent starts: FIRST_LOOKBACK_SECONDS ago."""
    return int(time.time() if now is None else now) - FIRST_LOOKBACK_SECONDS


def listing_start(previous: int | None, first: int | None = None) -> int | None:
    """Where the next listing starts: the watermark's own second again (calls that started
    in it may have been unfinished), or ``first`` when there is no watermark yet."""
    return previous - 1 if previous is not None else first


def next_watermark(sync: SyncPlan, outcomes: list[Outcome], previous: int | None,
                   now: float | None = None) -> int | None:
    """The start time of the last conversation in the finished prefix of the listing.

    Never later than now: a call dated in the future (a wrong clock, a hostile
    list) would otherwise hide every call made before that date.
    """
    by_id = {o.conversation_id: o for o in outcomes}
    ceiling = int(time.time() if now is None else now)
    watermark = previous
    for item in sync.listed:
        outcome = by_id.get(item.conversation_id)
        finished = (item.conversation_id in sync.already_completed
                    or item.conversation_id in sync.final_failed
                    or (outcome is not None and (outcome.ok or not outcome.retryable)))
        if not finished or item.start_time_unix_secs is None or item.start_time_unix_secs > ceiling:
            break
        watermark = max(watermark or 0, item.start_time_unix_secs)
    return watermark
