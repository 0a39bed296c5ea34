"""The ledger's side of retention and legal hold (SPEC "Retention and legal hold").

Every statement is safe to run twice (a reply lost, a purge killed and run again): a file
row is marked deleted only once, a conversation is marked purged only while it is not
held, a hold is set or cleared whatever it was.

A purge claims each conversation as a run does (SPEC "Many processes, one ledger"), leaving
its status as it is, and marks files and the conversation only while that claim holds: a
`run --force` or a retry waits for it ("in progress elsewhere") instead of storing files
again between a delete and its mark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedfina_cli.core.timefmt import utc_now
from fedfina_cli.ledger.database import one, value
from fedfina_cli.ledger.rows import ConversationRow, Row, conversation, conversations

if TYPE_CHECKING:
    from fedfina_cli.ledger.ledger import Ledger

# A conversation a purge may delete: finished (completed, or failed and left), not purged, not held.
_PURGEABLE = "status in ('completed', 'failed') and purged_at is null and coalesce(legal_hold, 0) = 0"
# ...and one it may take: not claimed by a live process either (a retry in progress).
_FINISHED = f"{_PURGEABLE} and (claim_expires_at is null or claim_expires_at < ?)"


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

    def claim(self, processing_id: int, owner: str, worker_id: int, token: str, expires_at: str) -> bool:
        """Claim a conversation for the purge, its status left as it is: True when taken (nobody
        else holds it, and it is still finished, not purged and not held)."""
        return self._ledger.queue.claim_as_is(processing_id, _PURGEABLE, owner, worker_id, token, expires_at)

    def still_purgeable(self, processing_id: int, token: str) -> bool:
        """Checked before each object: a hold placed, or a retry queued, while a purge runs stops
        it there; so does the claim ``token`` lost (this purge stalled past its lifetime)."""
        return one(self.sql, f"select 1 as yes from conversation_processing where processing_id = ? "
                             f"and {_PURGEABLE} and claim_token = ?", [processing_id, token]) is not None

    def why_not_purgeable(self, processing_id: int, token: str) -> str:
        """Why still_purgeable said no, in words for the audit log and the terminal."""
        row = one(self.sql, "select legal_hold, status, claim_token from conversation_processing "
                            "where processing_id = ?", [processing_id])
        if row is None:
            return "its ledger row is gone"
        if row["legal_hold"]:
            return "a legal hold was placed"
        if row["claim_token"] != token:
            return "a run took it over (this purge's claim ran out, or was lost in a database fail-over)"
        return f"it was {row['status']} again"

    def files_deleted(self, conversation_id: str, account_id: str) -> int:
        return int(value(self.sql, "select count(*) as n from conversation_files where conversation_id = ? "
                                   "and account_id = ? and deleted_at is not null", [conversation_id, account_id]))

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

    def mark_file_deleted(self, file: Row, processing_id: int, token: str) -> bool:
        """Mark a file's row deleted while the purge's claim ``token`` holds: a run that took the
        conversation over may have stored the file again (its row says so, and stays). And only
        the file as the purge listed it (its created_at): a post_call_audio webhook, which takes
        no claim, may have stored the recording again since, and its row stays for the next purge."""
        return self.sql.run("update conversation_files set deleted_at = ? where id = ? and created_at = ? "
                            "and deleted_at is null and exists (select 1 from conversation_processing "
                            "where processing_id = ? and claim_token = ?)",
                            [utc_now(), file["id"], file["created_at"], processing_id, token]) == 1

    def mark_purged(self, processing_id: int, token: str) -> ConversationRow | None:
        """Set purged_at while the purge's claim ``token`` holds, unless a hold came first or it is
        set already: the row, or None. The applicant's name and the phone's last four digits go
        with the files: they are kept for the console's search, which has nothing left to open.

        Nor while a file of it is recorded and not deleted: a post_call_audio webhook (which takes
        no claim) may store the recording after the purge listed the files. Left unmarked, the
        conversation is still due, and the next purge deletes it; marked, none would look again."""
        row = one(self.sql, "update conversation_processing set purged_at = ?, applicant_name = null, "
                            "phone_last4 = null "
                            "where processing_id = ? and purged_at is null and coalesce(legal_hold, 0) = 0 "
                            "and claim_token = ? and not exists (select 1 from conversation_files f "
                            "where f.conversation_id = conversation_processing.conversation_id "
                            "and f.account_id = conversation_processing.account_id and f.deleted_at is null) "
                            "returning *", [utc_now(), processing_id, token])
        return conversation(row) if row else None

    def set_hold(self, processing_id: int, held: bool) -> ConversationRow:
        row = one(self.sql, "update conversation_processing set legal_hold = ? where processing_id = ? "
                            "returning *", [1 if held else None, processing_id])
        assert row is not None
        return conversation(row)
