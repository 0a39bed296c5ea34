"""`fedfina run --from-file` and the stage commands, on the embedded backends."""

import hashlib
import os
import re

import pytest

from .conftest import (
    ENGLISH,
    ENGLISH_ID,
    HINDI,
    HINDI_ID,
    LIST_PAGE,
    PROCESSING,
    WEBHOOK,
    load_sample,
    pdf_text,
    read_eml,
    write_json,
)
from .test_conversation import HINDI_TRANSCRIPT


def test_run_hindi_sample_stores_every_object_and_writes_the_email(cli, workspace):
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 0, result.output
    assert "storage=local(" in result.output and "email=outbox(" in result.output
    assert "summarizer=offline" in result.output
    assert "OPENAI_API_KEY is not set" in result.output

    # Account and recipient come from the conversation's dynamic variables.
    conversation = workspace.object("acc123", "conversations", f"{HINDI_ID}.json")
    transcript = workspace.object("acc123", "transcripts", f"{HINDI_ID}.txt")
    summary = workspace.object("acc123", "summaries", f"{HINDI_ID}.json")
    report = workspace.object("acc123", "reports", f"{HINDI_ID}.pdf")
    assert load_sample(conversation)["conversation_id"] == HINDI_ID
    assert transcript.read_text(encoding="utf-8") == HINDI_TRANSCRIPT
    assert report.read_bytes().startswith(b"%PDF-")
    umask = os.umask(0)
    os.umask(umask)
    # Personal data: never world-readable (0640 files, 0750 folders, less the umask).
    for path in (conversation, transcript, summary, report, workspace.eml("acc123", HINDI_ID), workspace.db):
        assert path.stat().st_mode & 0o777 == 0o640 & ~umask, path
    for folder in (workspace.data, report.parent, workspace.eml("acc123", HINDI_ID).parent):
        assert folder.stat().st_mode & 0o777 == 0o750 & ~umask, folder
    assert not workspace.object("acc123", "audio", f"{HINDI_ID}.mp3").exists()

    row, = workspace.rows("select * from conversation_processing")
    assert row["status"] == "completed" and row["current_step"] == "email"
    assert row["account_id"] == "acc123" and row["email_id"] == "loans.officer@example.com"
    assert row["transcript_key"] == f"acc123/transcripts/{HINDI_ID}.txt"
    assert row["summary_key"] == f"acc123/summaries/{HINDI_ID}.json"
    assert row["report_key"] == f"acc123/reports/{HINDI_ID}.pdf"
    assert row["audio_key"] is None
    assert row["summary_method"] == "offline" and row["email_state"] == "sent"
    for column in ("started_at", "completed_at", "created_at", "updated_at", "email_sent_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row[column]), column

    files = {f["file_type"]: f for f in workspace.rows("select * from conversation_files")}
    assert set(files) == {"conversation", "transcript", "summary", "report"}
    for file_type, path in (("transcript", transcript), ("report", report), ("summary", summary)):
        assert files[file_type]["size_bytes"] == path.stat().st_size
        assert files[file_type]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert files["transcript"]["content_type"] == "text/plain; charset=utf-8"
    assert files["report"]["content_type"] == "application/pdf"

    events = [(e["step"], e["event"]) for e in workspace.rows(
        "select step, event from processing_audit_log order by id")]
    for step in ("fetch", "summarize", "report", "email"):
        assert (step, "started") in events and (step, "completed") in events
    notes = workspace.rows("select message from processing_audit_log where event = 'note'")
    assert any("no audio" in n["message"] for n in notes)

    run, = workspace.rows("select * from runs")
    assert run["command"] == "run" and "storage=local(" in run["backends"] and run["exit_code"] == 0

    message = read_eml(workspace.eml("acc123", HINDI_ID))
    assert message["To"] == "loans.officer@example.com"
    assert message["Message-ID"] == row["email_message_id"]
    for header in ("From", "Subject", "Date", "Message-ID"):
        assert message[header]


def test_webhook_envelope_is_processed_like_the_conversation(cli, workspace):
    assert cli("run", "--from-file", WEBHOOK).exit_code == 0
    stored = load_sample(workspace.object("acc123", "conversations", f"{HINDI_ID}.json"))
    assert "type" not in stored and stored["conversation_id"] == HINDI_ID
    assert workspace.object("acc123", "transcripts", f"{HINDI_ID}.txt").read_text(
        encoding="utf-8") == HINDI_TRANSCRIPT


def test_english_sample_without_dynamic_variables_needs_email_and_account(cli, workspace):
    result = cli("run", "--from-file", ENGLISH)
    assert result.exit_code == 1
    assert "no account id: pass --account-id" in result.output
    assert not (workspace.data / "unknown").exists()
    assert not any(p.is_file() for p in workspace.data.rglob("*")) if workspace.data.exists() else True
    row, = workspace.rows("select * from conversation_processing")
    assert row["status"] == "failed" and "no account id" in row["error_message"]

    result = cli("run", "--from-file", ENGLISH, "-a", "acc9")
    assert result.exit_code == 1
    assert "no recipient: pass --email" in result.output
    # Once the account is known, the failure is recorded under it.
    assert workspace.rows("select account_id, status from conversation_processing") == [
        {"account_id": "acc9", "status": "failed"}]

    result = cli("run", "--from-file", ENGLISH, "-a", "acc9", "-e", "officer@fedfina.example")
    assert result.exit_code == 0, result.output
    rows = workspace.rows("select account_id, status from conversation_processing")
    assert rows == [{"account_id": "acc9", "status": "completed"}]
    assert read_eml(workspace.eml("acc9", ENGLISH_ID))["To"] == "officer@fedfina.example"


def test_flags_win_over_dynamic_variables(cli, workspace):
    result = cli("run", "--from-file", HINDI, "-a", "branch-7", "-e", "other@fedfina.example")
    assert result.exit_code == 0, result.output
    assert workspace.object("branch-7", "reports", f"{HINDI_ID}.pdf").exists()
    assert read_eml(workspace.eml("branch-7", HINDI_ID))["To"] == "other@fedfina.example"


def test_invalid_dynamic_variable_fails_that_conversation(cli, workspace, tmp_path):
    payload = load_sample(HINDI)
    payload["conversation_initiation_client_data"]["dynamic_variables"]["account_id"] = "../etc"
    result = cli("run", "--from-file", write_json(tmp_path / "bad.json", payload))
    assert result.exit_code == 1
    assert "dynamic variable account_id: invalid account_id '../etc'" in result.output
    assert not (workspace.root / "etc").exists() and not (workspace.data / "etc").exists()


def test_older_dynamic_variable_names_are_accepted(cli, workspace, tmp_path):
    payload = load_sample(HINDI)
    payload["conversation_initiation_client_data"]["dynamic_variables"] = {
        "email": "old.widget@example.com", "account": "legacy1"}
    assert cli("run", "--from-file", write_json(tmp_path / "old.json", payload)).exit_code == 0
    assert read_eml(workspace.eml("legacy1", HINDI_ID))["To"] == "old.widget@example.com"


def test_a_file_of_a_call_not_ended_says_to_save_it_again_not_that_a_later_run_will_do(cli, workspace):
    # A file does not change: "a later run will pick it up" (as for the API) would never come true.
    result = cli("run", "--from-file", PROCESSING, "-a", "acc9", "-e", "a@example.com")
    assert result.exit_code == 1
    assert "the file holds the call while it was still 'processing': save it again once the call has ended" \
        in " ".join(result.output.split())
    assert "later run" not in result.output
    row, = workspace.rows("select status, retryable, current_step from conversation_processing")
    assert row == {"status": "failed", "retryable": 0, "current_step": "fetch"}
    assert not workspace.emails()


def test_failed_conversation_status_is_final(cli, workspace, tmp_path):
    payload = load_sample(ENGLISH) | {"status": "failed"}
    result = cli("run", "--from-file", write_json(tmp_path / "f.json", payload), "-a", "a1", "-e", "a@example.com")
    assert result.exit_code == 1 and "reports this conversation as failed" in result.output
    assert workspace.rows("select retryable from conversation_processing") == [{"retryable": 0}]


def test_list_page_is_not_a_conversation(cli, workspace):
    result = cli("run", "--from-file", LIST_PAGE)
    assert result.exit_code == 2
    assert "page of the conversation list" in result.output
    assert not workspace.db.exists()


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not an object"),
    ('{"conversation_id": "../etc", "status": "done"}', "invalid conversation_id"),
])
def test_unreadable_files_are_usage_errors(cli, workspace, tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    result = cli("run", "--from-file", path)
    assert result.exit_code == 2 and message in result.output
    assert not workspace.db.exists()


def test_rerun_skips_done_stages_and_sends_no_second_email(cli, workspace):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    eml = workspace.eml("acc123", HINDI_ID)
    first_id = read_eml(eml)["Message-ID"]
    first_report = workspace.object("acc123", "reports", f"{HINDI_ID}.pdf").read_bytes()

    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 0
    assert "skipped fetch,summarize,report,email" in result.output
    assert read_eml(eml)["Message-ID"] == first_id
    assert workspace.object("acc123", "reports", f"{HINDI_ID}.pdf").read_bytes() == first_report
    assert len(workspace.emails()) == 1
    skipped = workspace.rows("select step from processing_audit_log where event = 'skipped' order by id")
    assert [s["step"] for s in skipped] == ["fetch", "summarize", "report", "email"]


def test_a_missing_artifact_is_redone_on_rerun(cli, workspace):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    workspace.object("acc123", "reports", f"{HINDI_ID}.pdf").unlink()
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 0
    assert "ran report" in result.output and "skipped fetch,summarize,email" in result.output
    assert workspace.object("acc123", "reports", f"{HINDI_ID}.pdf").exists()
    assert len(workspace.emails()) == 1


def test_force_redoes_stages_but_never_resends_without_resend(cli, workspace):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    first_id = read_eml(workspace.eml("acc123", HINDI_ID))["Message-ID"]
    result = cli("run", "--from-file", HINDI, "--force")
    assert result.exit_code == 0
    assert "ran fetch,summarize,report" in result.output and "skipped email" in result.output
    assert read_eml(workspace.eml("acc123", HINDI_ID))["Message-ID"] == first_id


def test_resend_sends_again_with_a_new_message_id(cli, workspace):
    assert cli("run", "--from-file", HINDI).exit_code == 0
    first_id = read_eml(workspace.eml("acc123", HINDI_ID))["Message-ID"]
    first_sent = workspace.rows("select email_sent_at from conversation_processing")[0]["email_sent_at"]
    result = cli("run", "--from-file", HINDI, "--resend")
    assert result.exit_code == 0
    assert "ran email" in result.output and "skipped fetch,summarize,report" in result.output
    second = read_eml(workspace.eml("acc123", HINDI_ID))["Message-ID"]
    row, = workspace.rows("select email_message_id, email_sent_at from conversation_processing")
    assert second != first_id and row["email_message_id"] == second
    assert row["email_sent_at"] >= first_sent


@pytest.mark.parametrize("args, field", [
    (["-c", "../x", "-e", "a@example.com", "-a", "acc1"], "conversation_id '../x'"),
    (["-c", "conv_12345678", "-e", "a@example.com", "-a", "a/b"], "account_id 'a/b'"),
    (["-c", "conv_12345678", "-e", "a@example.com", "-a", "../x"], "account_id '../x'"),
    (["-c", "conv_12345678", "-e", "a@example.com\r\nBcc: x@evil.com", "-a", "acc1"], "email_id"),
    (["-c", "conv_12345678", "-e", "a@example.com\nX: y", "-a", "acc1"], "email_id"),
    (["--from-file", str(HINDI), "-a", "a/b"], "account_id 'a/b'"),
])
def test_bad_ids_are_rejected_with_exit_2_before_anything_is_written(cli, workspace, args, field):
    result = cli("run", *args)
    assert result.exit_code == 2
    assert f"invalid {field}" in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not workspace.db.exists() and not workspace.data.exists()


def test_nothing_selected_is_a_usage_error(cli, workspace):
    result = cli("run")
    assert result.exit_code == 2 and "nothing to process" in result.output
    assert not workspace.db.exists()


def test_stage_commands_one_by_one(cli, workspace):
    assert cli("fetch", "--from-file", HINDI).exit_code == 0
    assert workspace.object("acc123", "transcripts", f"{HINDI_ID}.txt").exists()
    assert not workspace.object("acc123", "summaries", f"{HINDI_ID}.json").exists()
    assert workspace.rows("select status from conversation_processing") == [{"status": "pending"}]

    # The account is found in the ledger once the conversation was fetched.
    assert cli("summarize", "-c", HINDI_ID).exit_code == 0
    assert workspace.object("acc123", "summaries", f"{HINDI_ID}.json").exists()
    assert cli("report", "-c", HINDI_ID).exit_code == 0
    assert pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf"))
    assert not workspace.emails()
    result = cli("email", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert len(workspace.emails()) == 1
    assert workspace.rows("select status from conversation_processing") == [{"status": "completed"}]
    assert cli("email", "-c", HINDI_ID).exit_code == 0
    assert len(workspace.emails()) == 1


@pytest.mark.parametrize("command, first", [("summarize", "fetch"), ("report", "fetch"), ("email", "fetch")])
def test_stage_command_before_fetch_says_what_to_run(cli, workspace, command, first):
    result = cli(command, "-c", HINDI_ID)
    assert result.exit_code == 1
    assert f"run `fedfina {first} -c {HINDI_ID}` first" in result.output


@pytest.mark.parametrize("command, missing, first", [
    ("report", "summary", "summarize"),
    ("email", "summary", "summarize"),
])
def test_stage_command_names_the_missing_stage(cli, workspace, command, missing, first):
    assert cli("fetch", "--from-file", HINDI).exit_code == 0
    result = cli(command, "-c", HINDI_ID, "-a", "acc123")
    assert result.exit_code == 1
    assert f"no {missing} for {HINDI_ID} in storage; run `fedfina {first} -c {HINDI_ID}` first" in result.output


def test_json_summary_is_machine_readable(cli):
    import json

    result = cli("run", "--from-file", HINDI, "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["completed"] == 1 and summary["failed"] == 0
    conversation, = summary["conversations"]
    assert conversation["conversation_id"] == HINDI_ID and conversation["status"] == "completed"
    assert conversation["ran"] == ["fetch", "summarize", "report", "email"]


def test_quiet_prints_only_failures(cli):
    result = cli("run", "--from-file", HINDI, "--quiet")
    assert result.exit_code == 0 and result.output == ""
    result = cli("run", "--from-file", PROCESSING, "-a", "a1", "-e", "a@example.com", "--quiet")
    assert result.exit_code == 1 and "still 'processing'" in result.output
