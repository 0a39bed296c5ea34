"""Operations at 2 a.m. (issue 23): the ledger where people type it, storage the
ledger remembers, spreadsheets' CSV, 80-column screens."""

from __future__ import annotations

import pytest

from .conftest import HINDI, HINDI_ID, load_sample, read_eml, words


def test_db_is_accepted_after_the_command_in_either_spelling(cli, workspace, tmp_path):
    ledger = tmp_path / "elsewhere.db"
    assert cli("run", "--from-file", HINDI, "--db", ledger).exit_code == 0
    assert ledger.exists() and not workspace.db.exists()
    for args in (("status", "--db", ledger), ("status", f"--db={ledger}"), ("show", HINDI_ID, "--db", ledger),
                 ("accounts", "list", "--db", ledger), ("status", "--limit", "1", "--db", ledger, "--debug")):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
        assert str(ledger) in result.stdout, args


def test_an_explicit_db_wins_over_database_url_and_the_help_says_so(cli, workspace, tmp_path):
    ledger = tmp_path / "explicit.db"
    nowhere = {"DATABASE_URL": "postgresql://fedfina:pw1234@127.0.0.1:1/none"}  # nothing listens on port 1
    assert cli("--db", ledger, "run", "--from-file", HINDI, env=nowhere).exit_code == 0
    status = cli("status", "--db", ledger, env=nowhere)
    assert status.exit_code == 0 and f"1 conversation in {ledger}" in status.stdout
    # Without --db the URL is the ledger: it is not silently the file.
    assert cli("status", env=nowhere).exit_code == 2
    assert "Wins over DATABASE_URL" in " ".join(cli("--help").stdout.split())


def test_db_takes_a_postgresql_url_and_checks_it(cli, workspace):
    result = cli("status", "--db", "postgresql://fedfina:pw1234@127.0.0.1:1/none")
    assert result.exit_code == 2 and "pw1234" not in result.output and "127.0.0.1" in result.output


def test_global_options_after_a_double_dash_stay_where_they_are():
    from fedfina_cli.cli.app import hoisted

    assert hoisted(["status", "--db", "x", "--limit", "2"]) == ["--db", "x", "status", "--limit", "2"]
    assert hoisted(["--db", "x", "status"]) == ["--db", "x", "status"]
    assert hoisted(["run", "--debug", "--", "--db"]) == ["--debug", "run", "--", "--db"]


def test_doctor_warns_when_the_ledgers_files_are_elsewhere_than_the_settings_point(cli, workspace, tmp_path):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    assert "files " not in cli("doctor").stdout  # where the settings point: nothing to say
    other = tmp_path / "other"
    result = cli("doctor", env={"FEDFINA_DATA_DIR": str(other), "COLUMNS": "200"})
    assert result.exit_code == 0, result.output  # a warning: the backends themselves are fine
    row = next(line for line in result.stdout.splitlines() if line.startswith("files "))
    assert row.split()[1:3] == [str(tmp_path / "data"), "warning"]
    assert f"files of 1 conversation are here; the settings now store into {other}" in words(result.stdout)


def test_show_of_an_unknown_id_names_the_ledger_searched(cli, workspace):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    result = cli("show", "conv_nothere123")
    assert result.exit_code == 1 and f"not in the ledger {workspace.db}" in result.stderr


# --- CSV from a spreadsheet -------------------------------------------------------------



@pytest.mark.parametrize("content, encoding", [
    # Excel, comma-decimal locale, "CSV UTF-8": a byte-order mark, semicolons, headers as people write them.
    (f"Conversation ID;Email;Account\r\n{HINDI_ID};officer@example.com;acc123\r\n", "utf-8-sig"),
    (f"conversation-id,E-mail,Account ID\n{HINDI_ID},officer@example.com,acc123\n", "utf-8"),
    # Excel's "Unicode text": UTF-16 with its mark, tab-separated.
    (f"Conversation ID\tEmail ID\tAccount\r\n{HINDI_ID}\tofficer@example.com\tacc123\r\n", "utf-16"),
    (f'"Conversation ID"|" Email "|account\n{HINDI_ID}|officer@example.com|acc123\n', "utf-8"),
])
def test_a_spreadsheets_csv_is_read_as_meant(cli, workspace, tmp_path, elevenlabs, content, encoding):
    elevenlabs.add(load_sample(HINDI))
    sheet = tmp_path / "calls.csv"
    sheet.write_bytes(content.encode(encoding))
    result = cli("run", "--csv", sheet)
    assert result.exit_code == 0, result.output
    eml = workspace.data / "outbox" / "acc123" / f"{HINDI_ID}.eml"
    assert read_eml(eml)["To"] == "officer@example.com"


def test_a_header_that_still_does_not_fit_is_shown_as_read(cli, workspace, tmp_path):
    sheet = tmp_path / "calls.csv"
    sheet.write_text("\ufeffCall;Officer;Branch\nconv_1;a@b.c;x\n", encoding="utf-8")
    result = cli("run", "--csv", sheet)
    assert result.exit_code == 2
    assert words(result.stderr) == (f"error: --csv {sheet}: the header row has no conversation_id column (it "
                                    "reads 'Call', 'Officer', 'Branch'); name the columns conversation_id, "
                                    "email_id or email, account_id")
