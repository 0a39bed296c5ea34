"""What a new user and a loan officer tripped over (issue 10), each through the CLI."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess

import pytest

from .conftest import HINDI, HINDI_ID, words

# --- failing early and clearly --------------------------------------------------------


def test_a_run_that_needs_the_api_without_its_key_stops_before_writing_anything(cli, workspace, tmp_path):
    rows = "".join(f"conv_{i:08d},a@example.com,acc1\n" for i in range(200))
    sheet = tmp_path / "calls.csv"
    sheet.write_text("conversation_id,email_id,account_id\n" + rows)
    result = cli("run", "--csv", sheet)
    assert result.exit_code == 2
    assert "ELEVENLABS_API_KEY is not set" in result.output and "200 of the 200" in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not workspace.db.exists() and not workspace.data.exists()


def test_without_the_key_a_fetched_conversation_can_still_be_rerun(cli, workspace):
    assert cli("fetch", "--from-file", HINDI).exit_code == 0
    result = cli("run", "-c", HINDI_ID)  # every stage after fetch works from storage
    assert result.exit_code == 0, result.output


def test_the_openai_warning_is_given_only_where_a_summary_is_written(cli):
    fetched = cli("fetch", "--from-file", HINDI)
    assert fetched.exit_code == 0 and "OPENAI_API_KEY" not in fetched.output
    summarized = cli("summarize", "-c", HINDI_ID)
    assert summarized.exit_code == 0 and "OPENAI_API_KEY is not set" in summarized.stderr
    for command in ("report", "email"):
        result = cli(command, "-c", HINDI_ID)
        assert result.exit_code == 0 and "OPENAI_API_KEY" not in result.output, command


def test_a_csv_with_only_a_header_is_not_an_error(cli, workspace, tmp_path):
    sheet = tmp_path / "export.csv"
    sheet.write_text("conversation_id,email_id,account_id\n")
    result = cli("run", "--csv", sheet)
    assert result.exit_code == 0
    assert "the file has a header but no rows" in result.output and "pass --csv" not in result.output
    assert not workspace.db.exists() and not workspace.data.exists()


def test_an_empty_csv_file_says_so(cli, workspace, tmp_path):
    sheet = tmp_path / "export.csv"
    sheet.write_bytes(b"")
    result = cli("run", "--csv", sheet)
    assert result.exit_code == 0 and "the file is empty" in result.output
    assert not workspace.db.exists()


def test_a_repeated_row_with_another_recipient_is_flagged(cli, workspace, tmp_path):
    sheet = tmp_path / "calls.csv"
    sheet.write_text(f"conversation_id,email_id,account_id\n"
                     f"{HINDI_ID},first@example.com,acc123\n"
                     f"{HINDI_ID},second@example.com,acc123\n"
                     f"{HINDI_ID},first@example.com,acc123\n")
    assert cli("fetch", "--from-file", HINDI).exit_code == 0
    result = cli("summarize", "--csv", sheet)
    assert result.exit_code == 1  # the conflict is an invalid row, not a harmless repeat
    assert "conflicts with" in result.output and "second@example.com" in result.output
    assert "1 invalid rows skipped" in result.output


@pytest.mark.parametrize("command, offered, not_offered", [
    ("fetch", ["--from-file"], ["--failed"]),
    ("email", ["--conversation-id", "--csv"], ["--failed", "--from-file"]),
    ("summarize", ["--conversation-id", "--csv"], ["--failed", "--from-file"]),
    ("run", ["--from-file", "--failed"], []),
])
def test_the_nothing_selected_hint_names_only_options_the_command_takes(cli, command, offered, not_offered):
    result = cli(command)
    assert result.exit_code == 2 and "nothing to process" in result.output
    for option in offered:
        assert option in result.output
    for option in not_offered:
        assert option not in result.output
        # ...and what is offered is accepted by the command.
    for option in offered:
        assert "No such option" not in cli(command, option, "--help").output




# --- finding things ---------------------------------------------------------------------


def test_db_names_the_ledger_and_every_read_command_says_which_it_read(cli, workspace, tmp_path):
    elsewhere = tmp_path / "elsewhere" / "ledger.db"
    elsewhere.parent.mkdir()
    assert cli("--db", elsewhere, "run", "--from-file", HINDI).exit_code == 0
    assert elsewhere.exists() and not workspace.db.exists()  # --db wins over FEDFINA_DB

    status = cli("--db", elsewhere, "status")
    assert status.exit_code == 0 and f"1 conversation in {elsewhere}" in status.stdout
    assert HINDI_ID in status.stdout
    show = cli("--db", elsewhere, "show", HINDI_ID)
    assert show.exit_code == 0 and f"conversation in {elsewhere}" in show.stdout
    stats = cli("--db", elsewhere, "stats")
    assert stats.exit_code == 0 and str(elsewhere) in stats.stdout


def test_show_names_the_folder_once_and_says_when_its_files_are_not_there(cli, workspace, tmp_path):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    data = tmp_path / "data"
    result = cli("show", HINDI_ID, env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and f"files in {data}" in lines and result.stderr == ""
    for kind in ("conversation", "transcript", "summary", "report"):  # a row each, its key whole
        row = next(line for line in lines if re.match(rf"{kind} +\d", line)).split()
        assert row[2].startswith("acc123/") and HINDI_ID in row[2] and len(row) == 3, result.stdout
    # Looked at with other settings (the demo's folder is not the default): the ledger
    # knows where the run stored them, shows them there, and one line says so.
    other = {"COLUMNS": "80", "FEDFINA_DATA_DIR": str(tmp_path / "other")}
    moved = cli("show", HINDI_ID, env=other)
    assert moved.exit_code == 0 and f"files in {data}" in moved.stdout.splitlines()
    assert words(moved.stderr) == (
        f"warning: its files were stored in the folder {data}; the current settings point to "
        f"{tmp_path / 'other'}: shown where they were stored")
    record = json.loads(cli("show", HINDI_ID, "--json", env=other).stdout)
    assert all(f["location"].startswith(str(data)) and f["storage"] == str(data) and "missing" not in f
               for f in record["files"])
    # Deleted since: said, naming the folder they were stored in.
    (data / "acc123" / "reports" / f"{HINDI_ID}.pdf").unlink()
    gone = cli("show", HINDI_ID, env={"COLUMNS": "80"})
    assert words(gone.stderr) == (f"warning: 1 of its files are not in {data} where the run stored them: "
                                  "moved or deleted since")
    # A row recorded before the ledger kept the folder: today's settings are a guess, and said to be.
    with sqlite3.connect(workspace.db) as db:
        db.execute("update conversation_files set storage = null")
    old = cli("show", HINDI_ID, env=other)
    assert old.exit_code == 0 and words(old.stderr) == (
        f"warning: 4 of its files are not in {tmp_path / 'other'}: set FEDFINA_DATA_DIR to the folder "
        "the run stored into")
    record = json.loads(cli("show", HINDI_ID, "--json", env=other).stdout)
    assert all(f["missing"] and f["location"].startswith(str(tmp_path / "other")) for f in record["files"])


def test_show_on_files_this_user_cannot_read_says_so_and_shows_the_rest(installed, fedfina_exe, workspace):
    """The ledger is readable, the account's folder is not (another user's files): one warning, exit 0."""
    assert installed("run", "--from-file", HINDI).exit_code == 0
    account = workspace.data / "acc123"
    account.chmod(0)
    # As root (CI), permission bits bind only without the capability to override them.
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    try:
        shown = subprocess.run([*prefix, fedfina_exe, "show", HINDI_ID], capture_output=True, text=True,
                               env={**os.environ, "COLUMNS": "80"}, timeout=60)
        record = json.loads(subprocess.run([*prefix, fedfina_exe, "show", HINDI_ID, "--json"], capture_output=True,
                                           text=True, env=dict(os.environ), timeout=60).stdout)
    finally:
        account.chmod(0o750)
    assert shown.returncode == 0, shown.stderr
    assert "this is a bug" not in shown.stderr and "audit log" in shown.stdout
    assert words(shown.stderr) == (f"warning: 4 of its files cannot be read by this user (permission denied under "
                                   f"{workspace.data}); run as the user that runs fedfina, or ask for read access")
    assert all(f["unreadable"] for f in record["files"]) and not any("missing" in f for f in record["files"])


def test_an_empty_table_says_none_under_its_header(cli, workspace):
    assert cli("run", "--from-file", HINDI).exit_code == 0  # offline: no API was called
    lines = [line.rstrip() for line in cli("stats", env={"COLUMNS": "80"}).stdout.splitlines()]
    at = lines.index("API calls")
    assert lines[at + 1].split()[0] == "service" and lines[at + 3:] == ["none"], lines[at:]


def test_no_ledger_is_said_instead_of_an_empty_table(cli, workspace, tmp_path):
    missing = tmp_path / "typo.db"
    for args in (["status"], ["show", HINDI_ID], ["stats"], ["status", "--format", "json"]):
        result = cli("--db", missing, *args)
        assert result.exit_code == 2 and result.stdout == "", args
        assert f"no ledger at {missing}" in result.stderr and "--db PATH" in result.stderr
    assert not missing.exists()


def test_the_demo_ends_with_the_commands_that_inspect_what_it_made(installed, tmp_path):
    import shlex

    result = installed("demo", "--dir", tmp_path / "demo")
    assert result.exit_code == 0
    commands = [line.strip() for line in result.stdout.splitlines() if "fedfina --db" in line]
    assert len(commands) == 2
    for command in commands:  # copied from the screen, they work (and find the demo's ledger and files)
        words = shlex.split(command)
        env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
        args = words[words.index("fedfina") + 1:]
        shown = installed(*args, env=env)
        assert shown.exit_code == 0 and "conv_7201k4b3qz9fe8st0m5xkcw2hj4n" in shown.stdout, command
        assert "not found" not in shown.stdout


def test_results_on_stdout_progress_and_warnings_on_stderr(cli, workspace):
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"completed {HINDI_ID} account=acc123")
    assert "1 completed in" in result.stdout
    assert "storage=local" in result.stderr and "OPENAI_API_KEY is not set" in result.stderr
    assert "storage=local" not in result.stdout and "warning" not in result.stdout


# --- reading output ---------------------------------------------------------------------


def _failed_and_completed(cli, tmp_path):
    """One completed conversation and one failed with a long error."""
    assert cli("run", "--from-file", HINDI).exit_code == 0
    from .conftest import ENGLISH

    assert cli("run", "--from-file", ENGLISH).exit_code == 1  # no account, no recipient: a long error


def test_doctor_at_80_columns_keeps_each_backend_and_verdict_whole_however_deep_the_folder(cli, tmp_path):
    deep = tmp_path / ("a" * 60) / "fedfina-data"
    result = cli("doctor", env={"COLUMNS": "80", "FEDFINA_DATA_DIR": str(deep), "FEDFINA_DB": str(deep / "x.db")})
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and all(len(line) <= 80 for line in lines), result.stdout
    verdicts = {"ledger": "ok", "storage": "ok", "elevenlabs": "embedded", "openai": "embedded", "email": "ok"}
    for backend, verdict in verdicts.items():
        row = next(line for line in lines if line.startswith(backend + " ")).split()
        assert verdict in row, (backend, result.stdout)
    # The path folds onto the lines below its row, broken after a '/', nothing cut from it.
    start = next(line for line in lines if line.startswith("backend")).index("target")
    first = next(i for i, line in enumerate(lines) if line.startswith("ledger "))
    until = next(i for i, line in enumerate(lines) if line.startswith("storage "))
    path = "".join(line[start:].strip() for line in lines[first:until])
    assert path.startswith(str(deep / "x.db")) and lines[first].endswith("/")


def test_accounts_list_at_80_columns_shows_whole_rows_by_the_flags_names(cli, workspace):
    assert cli("accounts", "set", "acc123", "--timezone", "Asia/Kolkata").exit_code == 0
    assert cli("accounts", "set", "acc_branch_mumbai_west_2", "--timezone", "Asia/Kolkata",
               "--bcc", "audit@example.com").exit_code == 0
    assert cli("accounts", "set", "acc3", "--cc", "credit@fedfina.in,risk.team@fedfina.in",
               "--subject", "Loan {applicant} {date}", "--link-expiry-hours", "48").exit_code == 0
    result = cli("accounts", "list", env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    table = [line for line in lines[1:] if not line.startswith("not shown")]  # the title names the ledger
    assert result.exit_code == 0 and all(len(line) <= 80 for line in table), result.stdout
    assert lines[0] == f"accounts in {workspace.db}"
    header = next(line for line in lines if line.startswith("account ")).split()
    assert header[:3] == ["account", "timezone", "cc"] and header[-1] == "updated"  # set settings only
    for account in ("acc123", "acc_branch_mumbai_west_2"):
        assert next(line for line in lines if line.startswith(account + " ")).split()[1] == "Asia/Kolkata"
    assert "risk.team@fedfina.in" in words(result.stdout)  # a long value wraps in its column
    assert "not shown at this width: bcc, subject, link_expiry_hours" in result.stdout
    wide = cli("accounts", "list", env={"COLUMNS": "200"}).stdout
    assert "not shown" not in wide and "summary_language" not in wide  # no account sets it
    row = next(line for line in wide.splitlines() if line.startswith("acc3 ")).split()
    assert row[-3] == "48"  # hours, as --link-expiry-hours takes them; JSON keeps seconds
    assert json.loads(cli("accounts", "list", "--json").stdout)[1]["link_expiry_seconds"] == 172800


def test_status_at_80_columns_keeps_ids_and_times_whole(cli, workspace, tmp_path):
    from .conftest import ENGLISH_ID

    _failed_and_completed(cli, tmp_path)
    result = cli("status", env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()[1:]  # the title names the ledger's path, however long
    assert result.exit_code == 0 and all(len(line) <= 80 for line in lines), result.stdout
    failed = next(line for line in lines if line.startswith(ENGLISH_ID))  # the id whole, on its row
    assert failed.split()[1] == "failed" and re.search(r"\b20\d\d-\d\d-\d\d \d\d:\d\d\b", failed)
    assert failed.endswith("…")  # the long error cut, on the same line
    assert next(line for line in lines if line.startswith(HINDI_ID)).split()[1] == "completed"
    header = next(line for line in lines if line.startswith("conversation"))
    assert "conversation_id" not in header and "error_message" not in header
    assert "not shown at this width" in result.stdout and "--format json" in result.stdout
    # Wide enough, everything is shown; JSON and CSV always have every field, uncut.
    wide = cli("status", env={"COLUMNS": "200"}).stdout
    assert "not shown" not in wide and "loans.officer@example.com" in wide
    rows = json.loads(cli("status", "--format", "json", env={"COLUMNS": "80"}).stdout)
    assert any(r["error_message"].endswith("dynamic variables") for r in rows)


def test_help_shows_readable_metavars_and_filters_described_as_filters(cli):
    for command in (["run"], ["fetch"], ["email"], ["status"], ["show"], ["stats"], ["sync"],
                    ["accounts", "set"], ["accounts", "show"], ["demo"], []):
        text = cli(*command, "--help", env={"COLUMNS": "100"}).stdout
        for ugly in ("<bool>", "<list[", "<str>", "<path>", "<int"):
            assert ugly not in text, (command, ugly)
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert "{" not in usage, usage
    assert "show [OPTIONS] CONVERSATION_ID" in cli("show", "--help").stdout
    assert "set [OPTIONS] ACCOUNT_ID" in cli("accounts", "set", "--help").stdout
    for command in ("status",):
        text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", cli(command, "--help", env={"COLUMNS": "100"}).stdout).split())
        assert "Only this account's conversations" in text and "Account folder" not in text
    text = " ".join(cli("run", "--help", env={"COLUMNS": "100"}).stdout.split())
    assert "--conversation-id -c ID" in text


def test_format_on_every_read_command(cli, workspace):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    assert json.loads(cli("show", HINDI_ID, "--format", "json").stdout)["conversation"]["status"] == "completed"
    assert "conversations" in json.loads(cli("stats", "--format", "json").stdout)
    assert cli("accounts", "list", "--format", "csv").stdout.startswith("account_id,")
    assert cli("show", HINDI_ID, "--format", "csv").exit_code == 2  # not one table: no CSV


def test_quiet_prints_each_failure_once_with_its_conversation_and_account(cli, workspace, tmp_path):
    sheet = tmp_path / "calls.csv"
    sheet.write_text("conversation_id,email_id,account_id\n"
                     "conv_12345678,not-an-email,acc-7\n"  # the email is bad; conversation and account are known
                     "conv_87654321,b@example.com,a/b\n")
    result = cli("run", "--csv", sheet, "--quiet", env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert result.output.count("not-an-email") == 1 and result.output.count("'a/b'") == 1
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("conv_")]
    assert [row[:3] for row in rows] == [["conv_12345678", "acc-7", "input"], ["conv_87654321", "a/b", "input"]]
    assert "2 invalid rows skipped" in result.stdout


def test_accounts_set_prints_what_accounts_show_prints(cli, workspace):
    set_out = cli("accounts", "set", "acc1", "--link-expiry-hours", "24", "--attachment-limit-mb", "5")
    assert set_out.exit_code == 0
    assert set_out.stdout == cli("accounts", "show", "acc1").stdout
    assert re.search(r"link_expiry_hours\s+24\s+account", set_out.stdout)
    assert re.search(r"attachment_limit_mb\s+5\s+account", set_out.stdout)
    assert "86400" not in set_out.stdout and "5242880" not in set_out.stdout


def test_force_says_it_does_not_resend(cli):
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", cli("run", "--help", env={"COLUMNS": "100"}).stdout).split())
    assert "Redo stages already done (a sent email only with --resend)" in text


# --- the report and the email, for the officer ------------------------------------------


def _named(payload: dict, name: str) -> dict:
    payload["analysis"]["data_collection_results"]["applicant_name"] = {
        "data_collection_id": "applicant_name", "value": name, "rationale": "Said at 00:07.",
        "json_schema": {"type": "string", "description": "Applicant's full name"}}
    return payload


def test_the_email_is_named_for_the_applicant_and_the_day(cli, workspace, tmp_path):
    from .conftest import load_sample, read_eml, write_json

    payload = _named(load_sample(HINDI), "Ramesh Kumar")
    payload["analysis"]["call_summary_title"] = "Loan interview: grocery shop"  # no "loan interview" twice
    assert cli("run", "--from-file", write_json(tmp_path / "c.json", payload)).exit_code == 0
    message = read_eml(workspace.eml("acc123", HINDI_ID))
    assert message["Subject"] == "Loan interview – Ramesh Kumar – 18 Nov 2025"
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "FedFina-Ramesh-Kumar-2025-11-18.pdf"
    body = message.get_body(("plain",)).get_content()
    # The first line is a note to the officer, not a run of ids and provenance.
    assert body.splitlines()[2] == ("The loan interview with Ramesh Kumar (+91 ••••••4821) on 18 Nov 2025, "
                                    "13:12 Asia/Kolkata (UTC+05:30), for account acc123.")
    assert "(FedFina-Ramesh-Kumar-2025-11-18.pdf)" in body
    about = body[body.index("About this report"):]
    assert "Summary: assembled from the call without an AI model" in about and HINDI_ID in about
    # No model: not "masked before the AI model saw the call" beside "without an AI model".
    assert "Identifiers: masked in this report" in about and "AI model saw" not in about


def test_a_name_in_another_script_makes_a_safe_encoded_file_name(cli, workspace, tmp_path):
    from .conftest import load_sample, read_eml, write_json

    payload = _named(load_sample(HINDI), "रमेश कुमार/../x\r\n")
    assert cli("run", "--from-file", write_json(tmp_path / "c.json", payload)).exit_code == 0
    raw = workspace.eml("acc123", HINDI_ID).read_bytes()
    assert b"filename*=utf-8''" in raw  # RFC 2231: the header itself stays ASCII
    attachment = next(read_eml(workspace.eml("acc123", HINDI_ID)).iter_attachments())
    assert attachment.get_filename() == "FedFina-रमेश-कुमार-x-2025-11-18.pdf"


def test_without_elevenlabs_analysis_the_title_is_not_the_conversation_id(cli, workspace, tmp_path):
    from .conftest import load_sample, pdf_text, read_eml, write_json

    payload = load_sample(HINDI)
    payload["analysis"] = None
    payload["conversation_initiation_client_data"]["dynamic_variables"]["applicant_name"] = "Sunita Devi"
    assert cli("run", "--from-file", write_json(tmp_path / "c.json", payload)).exit_code == 0
    text = pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf").read_bytes())
    assert text.startswith("FEDFINA · LOAN INTERVIEW REPORT\nLoan interview with Sunita Devi\n")
    assert read_eml(workspace.eml("acc123", HINDI_ID))["Subject"] == "Loan interview – Sunita Devi – 18 Nov 2025"


def test_the_transcript_follows_the_tables_without_a_blank_page(cli, workspace):
    from io import BytesIO

    from pypdf import PdfReader

    assert cli("run", "--from-file", HINDI).exit_code == 0
    pages = PdfReader(BytesIO(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf").read_bytes())).pages
    texts = [page.extract_text() for page in pages]
    assert len(texts) == 2
    assert "Evaluation criteria" in texts[1] and "Appendix: transcript" in texts[1] and "हमारी टीम" in texts[1]
