"""The ledger's side of retention and legal hold (SPEC "Retention and legal hold").

Every statement is safe to run twice (a reply lost, a purge killed and run again): a file
row is marked deleted only once, a conversation is marked purged only while it is not
held, a hold is set or cleared whatever it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedfina_cli.core.timefmt import utc_now
from fedfina_cli.ledger.database import one
from fedfina_cli.ledger.rows import ConversationRow, Row, conversation, conversations

if TYPE_CHECKING:
    from fedfina_cli.ledger.ledger import Ledger

# A conversation a purge may take: finished (completed, or failed and left), not purged, not
# held, and not claimed by a live process (a retry in progress).
_FINISHED = ("status in ('completed', 'failed') and purged_at is null and coalesce(legal_hold, 0) = 0 "
             "and (claim_expires_at is null or claim_expires_at < ?)")


class Retention:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger
        self.sql = ledger.sql

    def due(self, cutoffs: dict[str, str | None], default_cutoff: str | None, limit: int = 500,
            account_id: str | None = None) -> list[ConversationRow]:
        """Conversations whose files are past retention, oldest first, at most ``limit``.

        ``cutoffs``: each account with a retention of its own -> the time before which its
        conversations are due (None: it keeps them); ``default_cutoff``: for every other
        account (None: keep). A completed conversation counts from completed_at, a failed
        one from its last change."""
        picks: list[tuple[str, list[object], str]] = []  # (which accounts, their arguments, cutoff)
        for account, cutoff in cutoffs.items():
            if cutoff is not None and account_id in (None, account):
                picks.append(("account_id = ?", [account], cutoff))
        if default_cutoff is not None and account_id not in cutoffs:
            if account_id is not None:
                picks.append(("account_id = ?", [account_id], default_cutoff))
            elif cutoffs:
                picks.append((f"account_id not in ({', '.join('?' * len(cutoffs))})", list(cutoffs), default_cutoff))
            else:
                picks.append(("1 = 1", [], default_cutoff))
        now = utc_now()
        found: list[Row] = []
        for accounts, args, cutoff in picks:
            found += self.sql.rows(
                f"select * from conversation_processing where {accounts} and {_FINISHED} "
                "and coalesce(completed_at, updated_at) < ? order by completed_at limit ?",
                [*args, now, cutoff, limit])
        found.sort(key=lambda row: row.get("completed_at") or row.get("updated_at") or "")
        return conversations(found[:limit])

    def still_purgeable(self, processing_id: int) -> bool:
        """Checked before each object: a hold placed while a purge runs stops it there."""
        return one(self.sql, f"select 1 as yes from conversation_processing where processing_id = ? "
                             f"and {_FINISHED}", [processing_id, utc_now()]) is not None

    def files_left(self, conversation_id: str, account_id: str) -> list[Row]:
        return self.sql.rows("select * from conversation_files where conversation_id = ? and account_id = ? "
                             "and deleted_at is null order by id", [conversation_id, account_id])

    def audit_once(self, row: ConversationRow, event: str, message: str) -> None:
        """A purge's audit line, written unless the same line is there already: written before
        the file row is marked, so a purge killed between the two writes it once, not never."""
        message = self._ledger.scrubbed(message)
        self.sql.run(
            "insert into processing_audit_log (processing_id, conversation_id, step, event, status, message, "
            "created_at) select ?, ?, 'purge', ?, ?, ?, ? where not exists (select 1 from processing_audit_log "
            "where processing_id = ? and step = 'purge' and event = ? and message = ?)",
            [row["processing_id"], row["conversation_id"], event, event, message, utc_now(),
             row["processing_id"], event, message])

    def mark_file_deleted(self, file_id: int) -> bool:
        return self.sql.run("update conversation_files set deleted_at = ? where id = ? and deleted_at is null",
                            [utc_now(), file_id]) == 1

    def mark_purged(self, processing_id: int) -> ConversationRow | None:
        """Set purged_at, unless a hold came first or it is set already: the row, or None."""
        row = one(self.sql, "update conversation_processing set purged_at = ? "
                            "where processing_id = ? and purged_at is null and coalesce(legal_hold, 0) = 0 "
                            "returning *", [utc_now(), processing_id])
        return conversation(row) if row else None

    def set_hold(self, processing_id: int, held: bool) -> ConversationRow:
        row = one(self.sql, "update conversation_processing set legal_hold = ? where processing_id = ? "
                            "returning *", [1 if held else None, processing_id])
        assert row is not None
        return conversation(row)
