"""The ledger schema: migrations on a blank database give exactly these columns."""

import pytest

from fedfina_cli.ledger.ledger import Ledger

EXPECTED = {
    "conversation_processing": [
        "processing_id", "conversation_id", "account_id", "email_id", "status", "current_step",
        "error_message", "conversation_key", "transcript_key", "audio_key", "summary_key",
        "report_key", "email_message_id", "email_sent_at", "email_state", "model", "prompt_sha256",
        "summary_method", "retryable", "started_at", "completed_at", "created_at", "updated_at",
        "claimed_by", "claim_expires_at", "queued_at", "source", "redactions", "unsupported_figures",
        "claim_worker", "claim_token", "storage", "purged_at", "legal_hold", "applicant_name", "phone_last4",
    ],
    "conversation_files": [
        "id", "conversation_id", "account_id", "file_type", "object_key", "size_bytes", "sha256",
        "content_type", "created_at", "storage", "deleted_at",
    ],
    "processing_audit_log": [
        "id", "processing_id", "conversation_id", "step", "event", "status", "duration_ms",
        "attempt", "message", "created_at",
    ],
    "api_usage_metrics": [
        "id", "service", "operation", "status_code", "duration_ms", "bytes", "tokens",
        "conversation_id", "error", "created_at",
    ],
    "ledger_days": ["day", "kind", "key", "duration_ms", "calls", "errors", "tokens"],
    "console_links": ["token_sha256", "email", "created_at", "expires_at", "used_at"],
    "console_sessions": ["session_sha256", "email", "is_admin", "via", "client", "created_at", "expires_at",
                         "ended_at"],
    "console_signin_requests": ["id", "address_sha256", "client", "created_at"],
    "account_settings": [
        "account_id", "timezone", "cc_addresses", "bcc_addresses", "email_subject_template",
        "prompt_file", "summary_language", "link_expiry_seconds", "attachment_limit_bytes",
        "created_at", "updated_at", "redact", "retention_days",
    ],
    "runs": [
        "run_id", "command", "backends", "pid", "started_at", "finished_at", "succeeded", "failed",
        "exit_code",
    ],
    "sync_state": ["agent_id", "watermark_unix", "updated_at"],
    "workers": ["worker_id", "host", "pid", "process_started", "started_at", "heartbeat_at", "expires_at"],
    "incoming_audio": ["conversation_id", "object_key", "size_bytes", "received_at", "taken_by"],
}


def test_blank_database_gets_every_table_with_exact_columns(tmp_path):
    ledger = Ledger(tmp_path / "new.db")
    try:
        for table, columns in EXPECTED.items():
            assert [c.name for c in ledger.db[table].columns] == columns, table
        applied = [m["name"] for m in ledger.db["_sqlite_migrations"].rows]
        assert applied == ["m001_initial", "m002_runs", "m003_sync_state", "m004_lookup_indexes", "m005_claims",
                           "m006_queue", "m007_privacy_and_trust", "m008_workers", "m009_storage",
                           "m010_incoming_audio", "m011_retention", "m012_ledger_at_scale", "m013_console"]
        assert ledger.db.journal_mode == "wal"
    finally:
        ledger.close()


def test_migrating_twice_is_a_no_op(tmp_path):
    Ledger(tmp_path / "l.db").close()
    ledger = Ledger(tmp_path / "l.db")
    try:
        assert ledger.db["_sqlite_migrations"].count == 13
    finally:
        ledger.close()


def test_one_row_per_account_and_conversation(tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    try:
        first = ledger.open_conversation("conv_12345678", "acc1", "a@b.co")
        again = ledger.open_conversation("conv_12345678", "acc1", None)
        other = ledger.open_conversation("conv_12345678", "acc2", None)
        assert first["processing_id"] == again["processing_id"] != other["processing_id"]
        assert again["email_id"] == "a@b.co"
    finally:
        ledger.close()


def test_a_failure_before_the_account_was_known_is_adopted(tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    try:
        ledger.record_unresolved_failure("conv_12345678", None, "resolve", "no account id", False)
        row = ledger.open_conversation("conv_12345678", "acc1", "a@b.co")
        rows = ledger.rows_for("conv_12345678")
        assert [r["account_id"] for r in rows] == ["acc1"]
        assert [e["event"] for e in ledger.audit_log(row["processing_id"])] == ["failed"]
    finally:
        ledger.close()


def test_free_text_is_redacted_before_it_is_stored(tmp_path):
    ledger = Ledger(tmp_path / "l.db", redact=lambda s: s.replace("sekret-value", "***"))
    try:
        row = ledger.open_conversation("conv_12345678", "acc1", None)
        ledger.update(row["processing_id"], error_message="bad key sekret-value")
        ledger.audit(row, "fetch", "failed", "failed", "key=sekret-value")
        assert ledger.get(row["processing_id"])["error_message"] == "bad key ***"
        assert ledger.audit_log(row["processing_id"])[0]["message"] == "key=***"
    finally:
        ledger.close()


def test_a_re_stored_object_updates_its_file_row(tmp_path):
    from fedfina_cli.core.object_keys import StoredObject

    ledger = Ledger(tmp_path / "l.db")
    try:
        row = ledger.open_conversation("conv_12345678", "acc1", None)
        ledger.record_file(row, "report", StoredObject("acc1/reports/conv_12345678.pdf", 10, "aa", "application/pdf"))
        summary = StoredObject("acc1/summaries/conv_12345678.json", 5, "cc", "application/json")
        ledger.record_file(row, "summary", summary)
        first_id = ledger.files_for("conv_12345678", "acc1")[0]["id"]
        ledger.record_file(row, "report", StoredObject("acc1/reports/conv_12345678.pdf", 12, "bb", "application/pdf"))
        files = ledger.files_for("conv_12345678", "acc1")
        assert [(f["id"], f["file_type"], f["size_bytes"], f["sha256"]) for f in files] == [
            (first_id, "report", 12, "bb"), (first_id + 1, "summary", 5, "cc")]
    finally:
        ledger.close()


def test_lookups_by_conversation_use_an_index(tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    try:
        plans = {sql: " ".join(str(step[-1]) for step in ledger.db.conn.execute(f"explain query plan {sql}", args))
                 for sql, args in (
                     ("select * from conversation_processing where conversation_id = ?", ["c"]),
                     ("select * from conversation_files where conversation_id = ? and account_id = ? order by id",
                      ["c", "a"]),
                     ("select count(*) from processing_audit_log where processing_id = ? and step = ?", [1, "s"]))}
        assert all("USING INDEX" in plan and "SCAN" not in plan for plan in plans.values()), plans
    finally:
        ledger.close()


def _attempts_of_a_stage_run_three_times(ledger) -> list[tuple[str, str, int]]:
    row = ledger.open_conversation("conv_12345678", "acc1", "a@b.co")
    for outcome in ("fails", "fails", "succeeds"):
        try:
            with ledger.stage(row, "summarize") as stage:
                if outcome == "fails":
                    raise RuntimeError("the model timed out")
                stage.summary = "done"
        except RuntimeError:
            pass
    with ledger.stage(row, "report"):
        pass
    return [(line["step"], line["event"], line["attempt"]) for line in ledger.audit_log(row["processing_id"])]


EXPECTED_ATTEMPTS = [("summarize", "started", 1), ("summarize", "failed", 1),
                     ("summarize", "started", 2), ("summarize", "failed", 2),
                     ("summarize", "started", 3), ("summarize", "completed", 3),
                     ("report", "started", 1), ("report", "completed", 1)]


def test_each_start_of_a_stage_is_numbered_on_its_lines(tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    try:
        assert _attempts_of_a_stage_run_three_times(ledger) == EXPECTED_ATTEMPTS
    finally:
        ledger.close()


def test_each_start_of_a_stage_is_numbered_on_postgresql(postgres):
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.ledger.ledger import open_ledger

    ledger = open_ledger(load_settings())
    try:
        assert _attempts_of_a_stage_run_three_times(ledger) == EXPECTED_ATTEMPTS
    finally:
        ledger.close()


def _calls(n: int, error: str | None = None):
    from fedfina_cli.core.api_calls import ApiCall

    return [ApiCall("storage", f"put_object {i}", 200, i, error=error) for i in range(n)]


def _api_rows_are_batched(ledger, reader) -> None:
    """Rows wait (not one statement each), reach the table in order within about a second,
    a hundred at once, and every one by close()."""
    import time

    for call in _calls(3):
        ledger.record_api_call(call)
    assert reader() == []  # waiting: no statement per call
    deadline = time.monotonic() + 10
    while len(reader()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader() == ["put_object 0", "put_object 1", "put_object 2"]  # the background thread wrote them
    for call in _calls(100):
        ledger.record_api_call(call)
    assert len(reader()) == 103  # the hundredth row wrote the batch at once
    ledger.record_api_call(_calls(1)[0])
    ledger.close()


def test_a_stage_is_two_commits_its_start_and_its_completion_with_its_keys(tmp_path):
    """On SQLite each commit writes WAL frames and takes file locks: a stage's start (its step and
    its numbered line) is one transaction, and its completion with the keys it recorded another."""
    ledger = Ledger(tmp_path / "l.db")
    try:
        row = ledger.open_conversation("conv_12345678", "acc1", None)
        statements: list[str] = []
        ledger.sql.conn.set_trace_callback(statements.append)
        with ledger.stage(row, "report") as log:
            log.changes["report_key"] = "acc1/reports/conv_12345678.pdf"
        ledger.sql.conn.set_trace_callback(None)
        shape = [s.split()[0].lower() for s in statements]
        assert shape == ["begin", "update", "insert", "commit", "begin", "update", "insert", "commit"], statements
        assert log.completed_row is not None and log.completed_row["report_key"] == "acc1/reports/conv_12345678.pdf"
    finally:
        ledger.close()


def test_statements_together_are_seen_together_or_not_at_all(tmp_path):
    import sqlite3

    ledger = Ledger(tmp_path / "l.db")
    other = sqlite3.connect(tmp_path / "l.db")  # another process's view
    try:
        row = ledger.open_conversation("conv_12345678", "acc1", None)

        def lines() -> int:
            return other.execute("select count(*) from processing_audit_log").fetchone()[0]

        with ledger.sql.together():
            ledger.audit(row, "fetch", "note", "note", "one")
            with ledger.sql.together():  # inside a group: part of it
                ledger.audit(row, "fetch", "note", "note", "two")
            assert lines() == 0
        assert lines() == 2
        with pytest.raises(RuntimeError), ledger.sql.together():
            ledger.audit(row, "fetch", "note", "note", "three")
            raise RuntimeError("a failure half-way")
        assert lines() == 2  # neither half
        ledger.audit(row, "fetch", "note", "note", "four")  # the connection is usable after it
        assert lines() == 3
    finally:
        other.close()
        ledger.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_stage_whose_claim_was_taken_records_no_keys_and_fails(kind, tmp_path, request):
    from fedfina_cli.core.errors import ClaimLost

    from .conftest import ledger_for

    ledger = ledger_for(kind, tmp_path, request)
    try:
        row = ledger.open_conversation("conv_12345678", "acc1", None)
        processing_id = row["processing_id"]
        ledger.update(processing_id, claim_token="mine")
        with pytest.raises(ClaimLost), ledger.stage(row, "report", "mine") as log:
            log.changes["report_key"] = "acc1/reports/conv_12345678.pdf"
            ledger.update(processing_id, claim_token="another")  # a stalled process's claim, taken over
        events = [line["event"] for line in ledger.audit_log(processing_id)]
        assert (ledger.get(processing_id)["report_key"], events) == (None, ["started", "failed"])
    finally:
        ledger.close()


def test_api_call_rows_are_written_in_batches_and_all_at_close(tmp_path):
    import sqlite3

    path = tmp_path / "l.db"

    def reader() -> list[str]:  # another connection, as `stats` or another process reads
        with sqlite3.connect(path) as conn:
            return [r[0] for r in conn.execute("select operation from api_usage_metrics order by id")]

    _api_rows_are_batched(Ledger(path), reader)
    assert len(reader()) == 104


def test_api_call_rows_are_written_in_batches_on_postgresql(postgres):
    import psycopg

    from fedfina_cli.core.config import load_settings
    from fedfina_cli.ledger.ledger import open_ledger

    settings = load_settings()

    def reader() -> list[str]:
        with psycopg.connect(settings.database_url) as conn:
            return [r[0] for r in conn.execute("select operation from api_usage_metrics order by id")]

    _api_rows_are_batched(open_ledger(settings), reader)
    assert len(reader()) == 104


def test_api_call_rows_wait_while_the_ledger_refuses_them_and_are_written_after(caplog):
    """A database that refuses the rows fails no call: they wait, in order, said once in the log;
    the oldest beyond KEPT are dropped and counted."""
    from fedfina_cli.core.errors import LedgerError
    from fedfina_cli.ledger import api_calls
    from fedfina_cli.ledger.api_calls import ApiCallLog

    class Database:  # the Sql interface, refusing while down
        def __init__(self):
            self.down = True
            self.written: list[list] = []

        def run(self, sql, params=()):
            if self.down:
                raise LedgerError("the ledger is down")
            self.written.append(list(params))
            return 1

    database = Database()
    log = ApiCallLog(database, redact=lambda text: text.replace("sk-secret", "[redacted]"))
    for call in _calls(250, error="refused with sk-secret"):
        log.record(call)  # the 100th and 200th try to write, and keep the rows
    log.flush(quiet=True)
    assert database.written == [] and len(log._pending) == 250
    assert caplog.text.count("API-call rows wait to be written") == 1
    database.down = False
    log.close()
    operations = [params[i] for params in database.written for i in range(1, len(params), len(api_calls.COLUMNS))]
    assert operations == [f"put_object {i}" for i in range(250)]
    assert all("sk-secret" not in str(params) for params in database.written)
    assert "written to the ledger again" in caplog.text

    dropping = ApiCallLog(Database(), redact=str)
    for call in _calls(api_calls.KEPT + 5):
        dropping.record(call)
    dropping.flush(quiet=True)
    assert dropping.dropped == 5 and dropping._pending[0][1] == "put_object 5"
    dropping.close()
    assert "5 API-call rows dropped" in caplog.text
