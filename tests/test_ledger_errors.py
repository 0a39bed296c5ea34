"""A ledger that cannot be used: one line naming the file and what to do, exit 2, no traceback."""

import sqlite3

import pytest

from fedfina_cli.ledger.ledger import Ledger, explain

from .conftest import HINDI


def _one_line_exit_2(result, *phrases):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in error_lines[0], error_lines[0]


@pytest.mark.parametrize("command", [("run", "--from-file", HINDI), ("status",), ("stats",)])
def test_a_corrupt_ledger(cli, workspace, command):
    workspace.db.write_bytes(b"this is not an SQLite database, it is a spreadsheet" * 100)
    _one_line_exit_2(cli(*command), str(workspace.db), "damaged", "restore it from a backup")


def test_an_unwritable_ledger_folder(cli, workspace, monkeypatch):
    blocker = workspace.root / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    monkeypatch.setenv("FEDFINA_DB", str(blocker / "fedfina.db"))
    _one_line_exit_2(cli("run", "--from-file", HINDI), str(blocker), "FEDFINA_DB")


def test_a_ledger_locked_by_another_program(cli, workspace, monkeypatch):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    monkeypatch.setattr(Ledger, "busy_timeout_ms", 200)
    holder = sqlite3.connect(workspace.db, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        _one_line_exit_2(cli("run", "--from-file", HINDI, "--force"), str(workspace.db), "locked",
                         "try again")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_full_and_a_read_only_ledger_are_explained(tmp_path):
    # Real sqlite errors of each kind (root, as CI runs, ignores file modes, so
    # these are made with SQLite's own switches), through the same translation.
    path = tmp_path / "ledger.db"
    Ledger(path).close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        read_only.execute("insert into runs (command) values ('x')")
    assert "read-only" in str(explain(caught.value, path)) and str(path) in str(explain(caught.value, path))

    full = sqlite3.connect(path)
    full.execute("PRAGMA max_page_count = 1")  # below the file's size: every growth fails as "full"
    with pytest.raises(sqlite3.Error) as caught:
        full.executemany("insert into processing_audit_log (message) values (?)", [("x" * 4000,)] * 100)
        full.commit()
    message = str(explain(caught.value, path))
    assert "free some space" in message and str(path) in message


def test_a_ledger_failing_mid_run_stops_the_run_cleanly(cli, workspace, monkeypatch):
    """A write that fails after the run started (the disk fills up): the run stops with the
    ledger's message, exit 2. The failure is SQLite's own, translated where the ledger runs SQL."""
    original = Ledger.record_file

    def filling_up(self, *args, **kwargs):
        self.sql.run("PRAGMA max_page_count = 1")  # below the file's size: every growth fails as "full"
        self.sql.run("insert into processing_audit_log (message) values (?)", ["x" * 100_000])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "record_file", filling_up)
    result = cli("run", "--from-file", HINDI)
    monkeypatch.setattr(Ledger, "record_file", original)
    _one_line_exit_2(result, str(workspace.db), "free some space")
