"""What a new user and a loan officer tripped over (issue 10), each through the CLI."""

from __future__ import annotations

import pytest

from .conftest import HINDI, HINDI_ID


# --- failing early and clearly --------------------------------------------------------


def test_a_run_that_needs_the_api_without_its_key_stops_before_writing_anything(cli, workspace, tmp_path):
    rows = "".join(f"conv_{i:08d},a@example.com,acc1\n" for i in range(200))
    sheet = tmp_path / "calls.csv"
    sheet.write_text("conversation_id,email_id,account_id\n" + rows)
    result = cli("run", "--csv", sheet)
    assert result.exit_code == 2
    assert "ELEVENLABS_API_KEY is not set" in result.stderr and "200 of the 200" in result.stderr
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
    assert "the file has a header but no rows" in result.stderr and "pass --csv" not in result.stderr
    assert not workspace.db.exists() and not workspace.data.exists()


def test_an_empty_csv_file_says_so(cli, workspace, tmp_path):
    sheet = tmp_path / "export.csv"
    sheet.write_bytes(b"")
    result = cli("run", "--csv", sheet)
    assert result.exit_code == 0 and "the file is empty" in result.stderr
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
    assert "conflicts with" in result.stderr and "second@example.com" in result.stderr
    assert "1 invalid rows skipped" in result.output


@pytest.mark.parametrize("command, offered, not_offered", [
    ("fetch", ["--from-file"], ["--failed"]),
    ("email", ["--conversation-id", "--csv"], ["--failed", "--from-file"]),
    ("summarize", ["--conversation-id", "--csv"], ["--failed", "--from-file"]),
    ("run", ["--from-file", "--failed"], []),
])
def test_the_nothing_selected_hint_names_only_options_the_command_takes(cli, command, offered, not_offered):
    result = cli(command)
    assert result.exit_code == 2 and "nothing to process" in result.stderr
    for option in offered:
        assert option in result.stderr
    for option in not_offered:
        assert option not in result.stderr
        # ...and what is offered is accepted by the command.
    for option in offered:
        assert "No such option" not in cli(command, option, "--help").output


