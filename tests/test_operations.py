"""Operations at 2 a.m. (issue 23): the ledger where people type it, storage the
ledger remembers, spreadsheets' CSV, 80-column screens."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest
import typer

from fedfina_cli.core.config_names import VARIABLES

from .conftest import HINDI, HINDI_ID, load_sample, read_eml, words
from .fakes.smtp import free_port


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
    assert "wins over DATABASE_URL and FEDFINA_DB" in " ".join(cli("--help").stdout.split())


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
    assert row.split()[1:3] == ["warning", str(tmp_path / "data")]
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


# --- serving, followed literally --------------------------------------------------------

@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (Debian's curl package)")
def test_demo_serve_prints_curl_commands_that_work_as_printed(fedfina_exe, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}  # the demo ignores them anyway
    server = subprocess.Popen([fedfina_exe, "demo", "--serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = []
        while not printed or "/api/v1/postprocess/conversation/" not in printed[-1]:  # the last command
            line = server.stdout.readline()
            assert line, server.stderr.read()
            printed.append(line.rstrip("\n"))
        assert all(len(line) <= 80 for line in printed), printed
        commands = []  # as a shell reads them: a line ending in a backslash goes on on the next
        for i, line in enumerate(printed):
            if line.startswith("  curl "):
                command = line
                while command.endswith("\\"):
                    i += 1
                    command = command[:-1] + printed[i]
                commands.append(command)
        assert len(commands) == 2, printed
        delivered = subprocess.run(["bash", "-c", commands[0]], cwd=tmp_path, capture_output=True, text=True)
        assert delivered.returncode == 0 and json.loads(delivered.stdout)["success"] is True, (commands, delivered)
        for _ in range(100):
            answer = subprocess.run(["bash", "-c", commands[1]], cwd=tmp_path, capture_output=True, text=True)
            status = json.loads(answer.stdout)["data"]["status"]
            if status in ("completed", "failed"):
                break
            time.sleep(0.1)
        assert status == "completed", answer.stdout
        assert len(list((tmp_path / "fedfina-demo" / "outbox" / "acc123").glob("conv_demo*.eml"))) == 1
        # The console is on, at the address printed.
        while not printed[-1].endswith("/console"):
            printed.append(server.stdout.readline().rstrip("\n"))
        assert all(len(line) <= 80 for line in printed), printed
        console = printed[-1].strip()
        with urllib.request.urlopen(console + "/login", timeout=10) as page:
            assert page.status == 200 and b"Email me a sign-in link" in page.read()
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=30)
    assert server.returncode == 0
    started = next(json.loads(line) for line in log.splitlines() if "serving on" in line)
    assert started["logger"] == "fedfina.server" and "ledger fedfina-demo/fedfina.db" in started["message"]
    assert "with 1 worker;" in started["message"]


def test_a_sigterm_as_the_server_starts_stops_it(fedfina_exe, tmp_path):
    """Between the check for an early signal and uvicorn's own handlers, a SIGTERM reached
    only fedfina's handler, and uvicorn served on for ever."""
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    server = subprocess.Popen([fedfina_exe, "demo", "--serve", "--port", str(free_port())], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout.readline().startswith("fedfina demo server on")  # printed just before uvicorn starts
    server.send_signal(signal.SIGTERM)
    server.communicate(timeout=30)
    assert server.returncode == 0


# --- 80 columns -------------------------------------------------------------------------

def _failures(cli, n):
    from .conftest import ENGLISH

    for _ in range(n):  # no account, no recipient: a long error each time (one row, re-failed)
        assert cli("run", "--from-file", ENGLISH).exit_code == 1


def test_status_of_failures_at_80_columns_gives_the_error_room(cli, workspace):
    _failures(cli, 1)
    result = cli("status", "--status", "failed", env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines[1:]) and "…" not in result.stdout, result.stdout
    [row] = json.loads(cli("status", "--status", "failed", "--json").stdout)
    start = next(line for line in lines if line.startswith("conversation")).index("error")
    shown = " ".join(line[start:].strip() for line in lines[3:] if not line.startswith("not shown"))
    assert " ".join(shown.split()) == " ".join(row["error_message"].split())  # whole; it was cut to 12
    assert lines[0].startswith("1 conversation failed in ") and " status " not in lines[1]


def test_status_with_a_limit_says_how_many_of_how_many(cli, workspace, tmp_path):
    from .conftest import ENGLISH

    assert cli("run", "--from-file", HINDI).exit_code == 0
    assert cli("run", "--from-file", ENGLISH, "-a", "acc9", "-e", "x@example.com").exit_code == 0
    assert cli("status", "--limit", "1").stdout.startswith("1 of 2 conversations in ")
    assert cli("status", "--limit", "2").stdout.startswith("2 conversations in ")
    assert cli("status", "--status", "completed", "--limit", "5").stdout.startswith("2 conversations completed in ")


def test_piped_tables_have_no_trailing_spaces(cli, workspace):
    _failures(cli, 1)
    assert cli("run", "--from-file", HINDI).exit_code == 0
    for args in (("status",), ("show", HINDI_ID), ("stats",), ("accounts", "list"), ("doctor",)):
        out = cli(*args).stdout
        assert out and all(line == line.rstrip() for line in out.splitlines()), (args, out)


def test_show_at_80_columns_keeps_audit_messages_and_the_message_id_whole(cli, workspace):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    message_id = workspace.rows("select email_message_id from conversation_processing")[0]["email_message_id"]
    out = cli("show", HINDI_ID, env={"COLUMNS": "80"}).stdout
    assert all(len(line) <= 80 for line in out.splitlines()[1:] if not line.startswith("files in "))  # paths
    assert "…" not in out
    audit = out[out.index("audit log"):]
    start = next(line for line in audit.splitlines() if line.startswith("time")).index("message")
    folded = "".join(line[start:].strip() for line in audit.splitlines()[2:])
    assert message_id in folded  # whole, though folded over lines: a person looks it up in the mail log


def test_doctor_breaks_a_postgresql_url_between_its_parts_not_mid_host(cli, workspace):
    url = "postgresql://fedfina:pw1234@db-primary.internal.fedfina.example.com:5432/fedfina_production"
    result = cli("doctor", env={"COLUMNS": "80", "DATABASE_URL": url})
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines) and "pw1234" not in result.output
    assert any(line.strip() == "@db-primary.internal.fedfina.example.com:5432/" for line in lines), result.stdout


# --- smaller ----------------------------------------------------------------------------

def test_one_failure_among_several_gets_the_closing_failures_table(cli, workspace, tmp_path):
    from .conftest import ENGLISH, ENGLISH_ID

    result = cli("run", "--from-file", HINDI, "--from-file", ENGLISH)
    assert result.exit_code == 1
    closing = result.stdout[result.stdout.index("Failures"):]
    assert ENGLISH_ID in closing and HINDI_ID not in closing
    alone = cli("run", "--from-file", ENGLISH)  # the one line above says it all
    assert "Failures" not in alone.stdout


@pytest.mark.parametrize("pasted", [
    "7201k4b3qz9fe8st0m5xkcw2hj4n",
    "https://elevenlabs.io/app/conversational-ai/history?conversation_id=conv_7201k4b3qz9fe8st0m5xkcw2hj4n",
    " conv_7201k4b3qz9fe8st0m5xkcw2hj4n ",
])
def test_a_pasted_id_gets_a_did_you_mean(cli, workspace, pasted):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    for args in (("run", "-c", pasted), ("show", pasted)):
        result = cli(*args)
        assert result.exit_code == 2
        assert result.stderr.rstrip().endswith("did you mean conv_7201k4b3qz9fe8st0m5xkcw2hj4n?"), result.stderr


def test_the_migration_lock_is_exclusive_and_leaves_no_file(tmp_path):
    import threading

    from fedfina_cli.ledger.migrations import migration_lock

    ledger = tmp_path / "fedfina.db"
    inside, overlaps = [], []

    def take(times: int) -> None:
        for _ in range(times):
            with migration_lock(ledger):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.0005)
                inside.pop()

    threads = [threading.Thread(target=take, args=(60,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [] and list(tmp_path.iterdir()) == []


def test_processes_opening_a_new_ledger_together_leave_only_the_ledger(fedfina_exe, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    runs = [subprocess.Popen([fedfina_exe, "--db", "fedfina.db", "run", "--from-file", str(HINDI), "-a", f"a{i}"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for i in range(6)]
    assert [run.wait(timeout=120) for run in runs] == [0] * 6
    assert not (tmp_path / "fedfina.db.migrate.lock").exists()  # it was left in the working folder


def _commands(group=None, prefix=()):
    from fedfina_cli.cli.app import app

    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_example_in_help_is_on_one_line_at_80_columns_and_options_are_grouped(cli):
    found = 0
    for path, command in _commands():
        help_text = command.help or ""
        examples = [line.strip() for line in help_text.splitlines()
                    if line.strip().startswith(("fedfina ", "*/15", "AGENT="))]
        shown = cli(*path, "--help", env={"COLUMNS": "80"}).stdout.splitlines()
        for example in examples:
            found += 1
            assert any(line.strip() == example for line in shown), (path, example)  # not wrapped mid-command
    assert found >= 15
    run_help = cli("run", "--help", env={"COLUMNS": "80"}).stdout
    for heading in ("Which conversations", "How the run goes", "Account settings"):
        assert f"─ {heading}" in run_help
    top = cli("--help", env={"COLUMNS": "80"}).stdout
    for heading in ("Process calls", "Read the ledger", "Serve", "Set up and check"):
        assert f"─ {heading} " in top
