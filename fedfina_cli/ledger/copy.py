"""`fedfina ledger copy --to postgresql://…`: move a SQLite ledger's history into PostgreSQL.

Idempotent, so it can be run again after a failure or after the SQLite ledger
grew: a conversation is matched by (account_id, conversation_id), a file by its
object key, an account by its id; audit lines, API calls and runs have no key of
their own and are matched by their whole content, counted. Row ids are the target's own (it
may already hold other hosts' work); the audit log follows its conversation's
new id; two identical lines stay two. Claims are not copied: they belong to
processes of the old ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fedfina_cli.ledger.database import quoted
from fedfina_cli.ledger.ledger import Ledger

_NOT_COPIED = {"processing_id", "id", "run_id", "claimed_by", "claim_expires_at", "claim_worker", "claim_token"}


@dataclass
class Copied:
    new: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)

    def count(self, table: str, inserted: bool) -> None:
        counts = self.new if inserted else self.present
        counts[table] = counts.get(table, 0) + 1


def copy_ledger(source: Ledger, target: Ledger) -> Copied:
    copied = Copied()
    ids: dict[int, int] = {}
    for row in source.sql.rows("select * from conversation_processing order by processing_id"):
        values = {k: v for k, v in row.items() if k not in _NOT_COPIED}
        inserted = target.insert("conversation_processing", values, ("account_id", "conversation_id"), if_new=True)
        copied.count("conversation_processing", inserted)
        found = target.rows_for(row["conversation_id"], row["account_id"])
        ids[row["processing_id"]] = found[0]["processing_id"]
    for row in source.sql.rows("select * from conversation_files order by id"):
        values = {k: v for k, v in row.items() if k not in _NOT_COPIED}
        copied.count("conversation_files", target.insert("conversation_files", values, "object_key", if_new=True))
    for table, order in (("processing_audit_log", "id"), ("api_usage_metrics", "id"), ("runs", "run_id")):
        seen: dict[tuple[object, ...], int] = {}
        for row in source.sql.rows(f"select * from {table} order by {order}"):
            values = {k: v for k, v in row.items() if k not in _NOT_COPIED}
            if "processing_id" in values:
                values["processing_id"] = ids.get(row["processing_id"], row["processing_id"])
            key = tuple(values.values())
            seen[key] = seen.get(key, 0) + 1
            copied.count(table, _insert_missing(target, table, values, seen[key]))
    for row in source.sql.rows("select * from account_settings order by account_id"):
        copied.count("account_settings", target.insert("account_settings", row, "account_id", if_new=True))
    for row in source.sql.rows("select * from sync_state order by agent_id"):
        before = target.watermark(row["agent_id"])
        target.set_watermark(row["agent_id"], row["watermark_unix"])
        copied.count("sync_state", before is None)
    return copied


def _insert_missing(target: Ledger, table: str, values: dict[str, Any], nth: int) -> bool:
    """Insert the ``nth`` copy of a row with no key of its own unless the target has that many
    already (two identical audit lines stay two; a second copy adds none)."""
    same = " and ".join(f"{quoted(c)} is not distinct from ?" for c in values)
    have = target.sql.rows(f"select count(*) as n from {quoted(table)} where {same}", list(values.values()))[0]["n"]
    return have < nth and target.insert(table, values)
