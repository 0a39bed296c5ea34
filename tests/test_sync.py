"""`fedfina sync`: paging, the watermark, not-ready calls, and repeat syncs for cron."""

import json
import time

from .conftest import hindi_variant

AGENT = "agent_4501k2s8yq0efrpt6ah0v7d3m9xw"
BASE = int(time.time()) - 3 * 3600  # calls of the last hours: within the first sync's look-back


def _ids(messages):
    return sorted(m.message["X-FedFina-Conversation"] for m in messages)


def test_sync_pages_skips_not_ready_and_the_next_sync_takes_only_new_ones(cli, workspace, elevenlabs,
                                                                          smtp_server):
    elevenlabs.page_cap = 2  # five calls -> three pages
    for n in range(1, 6):
        elevenlabs.add(hindi_variant(n, start=BASE + n * 100, status="processing" if n == 3 else "done"))
    other_agent = hindi_variant(9, start=BASE + 900) | {"agent_id": "agent_someoneelse0001"}
    elevenlabs.add(other_agent)

    result = cli("sync", "--agent-id", AGENT)
    assert result.exit_code == 0, result.output
    assert "5 calls listed: 4 to process, 0 already done, 1 not ready yet" in result.output
    assert _ids(smtp_server.messages) == ["conv_bulk00000001", "conv_bulk00000002", "conv_bulk00000004",
                                          "conv_bulk00000005"]
    lists = [r for r in elevenlabs.requests if r.path == "/v1/convai/conversations"]
    assert len(lists) == 3 and all(r.query["agent_id"] == AGENT for r in lists)
    assert "cursor" not in lists[0].query and all("cursor" in r.query for r in lists[1:])
    # The watermark stops before the call that was not ready.
    assert workspace.rows("select agent_id, watermark_unix from sync_state") == [
        {"agent_id": AGENT, "watermark_unix": BASE + 200}]

    elevenlabs.add(hindi_variant(3, start=BASE + 300))  # now done
    elevenlabs.add(hindi_variant(6, start=BASE + 600))  # a new call
    smtp_server.messages.clear()
    result = cli("sync", "--agent-id", AGENT)
    assert result.exit_code == 0, result.output
    assert _ids(smtp_server.messages) == ["conv_bulk00000003", "conv_bulk00000006"]
    assert "2 to process, 3 already done, 0 not ready yet" in result.output
    last_list = [r for r in elevenlabs.requests if r.path == "/v1/convai/conversations"][-1]
    assert last_list.query.get("call_start_after_unix") is not None
    first_after = [r for r in elevenlabs.requests if r.path == "/v1/convai/conversations"
                   and "cursor" not in r.query][-1].query["call_start_after_unix"]
    assert int(first_after) == BASE + 200 - 1
    assert workspace.rows("select watermark_unix from sync_state") == [{"watermark_unix": BASE + 600}]

    smtp_server.messages.clear()
    result = cli("sync", "--agent-id", AGENT)
    assert result.exit_code == 0 and smtp_server.messages == []


def test_sync_uses_defaults_when_dynamic_variables_are_missing(cli, workspace, elevenlabs, smtp_server):
    elevenlabs.add(hindi_variant(1, start=BASE + 100, account=None, email=None))
    result = cli("sync", "--agent-id", AGENT)
    assert result.exit_code == 1 and "no account id" in result.output
    # A final failure (not a passing one) does not hold the watermark back...
    assert workspace.rows("select watermark_unix from sync_state") == [{"watermark_unix": BASE + 100}]
    # ...and the conversation waits for `run --failed`, or a sync with defaults.
    result = cli("sync", "--agent-id", AGENT, "--since", "2025-01-01", "-a", "default-acc",
                 "-e", "desk@fedfina.example")
    assert result.exit_code == 0, result.output
    assert smtp_server.messages[0].rcpt_tos == ["desk@fedfina.example"]
    assert workspace.object("default-acc", "reports", "conv_bulk00000001.pdf").exists()


def test_a_passing_failure_holds_the_watermark(cli, workspace, elevenlabs, smtp_server):
    elevenlabs.add(hindi_variant(1, start=BASE + 100))
    elevenlabs.add(hindi_variant(2, start=BASE + 200))
    elevenlabs.fault("/v1/convai/conversations/conv_bulk00000001", times=3, status=503)
    result = cli("sync", "--agent-id", AGENT, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["completed"] == 1 and summary["failed"] == 1
    assert workspace.rows("select watermark_unix from sync_state") == []
    result = cli("sync", "--agent-id", AGENT)
    assert result.exit_code == 0 and _ids(smtp_server.messages) == ["conv_bulk00000001", "conv_bulk00000002"]
    assert workspace.rows("select watermark_unix from sync_state") == [{"watermark_unix": BASE + 200}]


def test_sync_validates_its_input(cli, workspace):
    assert cli("sync", "--agent-id", "agent_4501k2s8yq0efrpt6ah0v7d3m9xw").exit_code == 2  # no API key
    assert cli("sync", "--agent-id", "../x").exit_code == 2
    assert cli("sync", "--agent-id", AGENT, "--since", "yesterday").exit_code == 2
    assert not workspace.db.exists()


def test_the_first_sync_looks_back_24_hours_and_says_so_and_dry_run_processes_nothing(
        cli, workspace, elevenlabs, smtp_server):
    """From cron, a first sync that took an agent's whole history would email a year of calls at once."""
    now = int(time.time())
    elevenlabs.add(hindi_variant(1, start=now - 400 * 86400))  # last year's
    elevenlabs.add(hindi_variant(2, start=now - 3 * 86400))  # three days ago
    elevenlabs.add(hindi_variant(3, start=now - 3600))  # an hour ago

    dry = cli("sync", "--agent-id", AGENT, "--dry-run", env={"COLUMNS": "120"})
    assert dry.exit_code == 0, dry.output
    assert "looking back 24 hours" in dry.output and "--since DATE processes them on purpose" in dry.output
    assert "would process 1 of 1 calls listed" in dry.output and "conv_bulk00000003" in dry.output
    assert "dry run: nothing was fetched, processed, emailed or recorded" in dry.output
    assert smtp_server.messages == [] and not workspace.db.exists()  # nothing processed, nothing recorded

    first = cli("sync", "--agent-id", AGENT)
    assert first.exit_code == 0 and "looking back 24 hours" in first.output
    assert _ids(smtp_server.messages) == ["conv_bulk00000003"]
    # Further back on purpose:
    since = time.strftime("%Y-%m-%d", time.gmtime(now - 5 * 86400))
    dry = cli("sync", "--agent-id", AGENT, "--since", since, "--dry-run", env={"COLUMNS": "120"})
    assert "would process 1 of 2 calls listed (1 done already" in dry.output
    assert "conv_bulk00000002" in dry.output and "looking back" not in dry.output
    assert cli("sync", "--agent-id", AGENT, "--since", since).exit_code == 0
    assert _ids(smtp_server.messages) == ["conv_bulk00000002", "conv_bulk00000003"]

