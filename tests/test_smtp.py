"""SMTP delivery against aiosmtpd on loopback (AUTH; STARTTLS and implicit TLS)."""

import sqlite3

import pytest

from .conftest import HINDI, HINDI_ID, SENDER, SMTP_PASSWORD, pdf_text, start_smtp


def test_delivery_with_login(cli, workspace, smtp_server):
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 0, result.output
    assert f"email=smtp(127.0.0.1:{smtp_server.port})" in result.output
    received, = smtp_server.messages
    assert received.mail_from == SENDER and received.rcpt_tos == ["loans.officer@example.com"]
    message = received.message
    assert message["From"] == f"FedFina Reports <{SENDER}>"
    assert message["To"] == "loans.officer@example.com"
    row, = workspace.rows("select email_message_id, email_state, email_sent_at from conversation_processing")
    assert row["email_message_id"] == message["Message-ID"] and row["email_state"] == "sent"
    attachment, = message.iter_attachments()
    assert HINDI_ID in pdf_text(attachment.get_content())
    assert not workspace.emails()  # nothing in the outbox when SMTP is configured
    call, = workspace.rows("select status_code, bytes from api_usage_metrics where service = 'smtp'")
    assert call["status_code"] == 250 and call["bytes"] > 10_000


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_modes(cli, monkeypatch, certificate, security):
    server = start_smtp(monkeypatch, security=security, certificate=certificate)
    try:
        result = cli("run", "--from-file", HINDI)
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert len(server.messages) == 1


def test_starttls_against_an_untrusted_certificate_fails_clearly(cli, monkeypatch, certificate):
    server = start_smtp(monkeypatch, security="starttls", certificate=certificate)
    monkeypatch.delenv("SSL_CERT_FILE")
    try:
        result = cli("run", "--from-file", HINDI)
    finally:
        server.stop()
    assert result.exit_code == 1
    assert "TLS failed" in result.output and "CERTIFICATE_VERIFY_FAILED" in result.output
    assert server.messages == []


def test_message_id_is_in_the_ledger_before_it_is_marked_sent(cli, workspace, smtp_server):
    seen = []
    original = smtp_server.handle_DATA

    async def handle_data(server, session, envelope):
        # While the server receives the message, the ledger must already say "sending".
        conn = sqlite3.connect(workspace.db)
        seen.append(conn.execute("select email_state, email_message_id from conversation_processing").fetchone())
        conn.close()
        return await original(server, session, envelope)

    smtp_server.handle_DATA = handle_data
    assert cli("run", "--from-file", HINDI).exit_code == 0
    (state, message_id), = seen
    assert state == "sending" and message_id == smtp_server.messages[0].message["Message-ID"]


def test_temporary_failure_is_retried(cli, workspace, smtp_server):
    smtp_server.data_replies = ["451 4.3.0 Try again later"]
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 0, result.output
    assert len(smtp_server.messages) == 1
    codes = [r["status_code"] for r in workspace.rows(
        "select status_code from api_usage_metrics where service = 'smtp' order by id")]
    assert codes == [451, 250]
    assert workspace.rows("select email_state from conversation_processing") == [{"email_state": "sent"}]


def test_refusal_of_the_final_dot_clears_the_sending_mark(cli, workspace, smtp_server):
    smtp_server.data_replies = ["554 5.6.0 Message rejected: content"]
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 1 and "554 5.6.0 Message rejected: content" in result.output
    assert workspace.rows("select email_state from conversation_processing") == [{"email_state": None}]
    assert cli("run", "--from-file", HINDI).exit_code == 0  # no "may have been delivered" block
    assert len(smtp_server.messages) == 1


def test_permanent_failure_fails_the_conversation_with_the_servers_reply(cli, workspace, smtp_server):
    smtp_server.rcpt_replies["loans.officer@example.com"] = "550 5.1.1 <loans.officer@example.com>: no such user"
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 1
    assert "550 5.1.1 <loans.officer@example.com>: no such user" in result.output
    assert smtp_server.messages == []
    assert len(workspace.rows("select id from api_usage_metrics where service = 'smtp'")) == 1  # no retry
    row, = workspace.rows("select status, current_step, email_state, retryable from conversation_processing")
    assert row == {"status": "failed", "current_step": "email", "email_state": None, "retryable": 0}


def test_wrong_password_is_a_clear_failure(cli, smtp_server, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-wrong-pass-0001")
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 1
    assert "535" in result.output and "check SMTP_USERNAME and SMTP_PASSWORD" in result.output
    assert "smtp-wrong-pass-0001" not in result.output and SMTP_PASSWORD not in result.output


def test_server_down_is_retried_then_reported(cli, workspace, monkeypatch):
    from .fakes.smtp import free_port

    server = start_smtp(monkeypatch)
    server.stop()
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nothing listens there
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 1
    assert "did not accept the message after 3 attempts: connection refused" in result.output
    row, = workspace.rows("select retryable, email_state from conversation_processing")
    assert row == {"retryable": 1, "email_state": None}


def test_connection_lost_after_the_final_dot_is_never_resent_automatically(cli, workspace, smtp_server):
    original = smtp_server.handle_DATA

    async def vanish(server, session, envelope):
        await original(server, session, envelope)  # the server has the message...
        server.transport.close()  # ...but the client never hears "250"
        return "250 OK"

    smtp_server.handle_DATA = vanish
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 1 and "it may have been delivered" in result.output
    assert len(smtp_server.messages) == 1
    assert workspace.rows("select email_state from conversation_processing") == [{"email_state": "sending"}]

    smtp_server.handle_DATA = original
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 1
    assert "interrupted while the mail server was accepting" in result.output and "--resend" in result.output
    assert len(smtp_server.messages) == 1

    assert cli("run", "--from-file", HINDI, "--resend").exit_code == 0
    assert len(smtp_server.messages) == 2
    assert workspace.rows("select email_state from conversation_processing") == [{"email_state": "sent"}]


def test_a_bad_answer_to_quit_after_delivery_is_not_a_refusal(cli, workspace, smtp_server):
    async def rude_quit(server, session, envelope):
        return "554 5.3.0 Something went wrong at QUIT"

    smtp_server.handle_QUIT = rude_quit
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 0, result.output
    assert len(smtp_server.messages) == 1  # delivered once, never retried
    assert workspace.rows("select email_state from conversation_processing") == [{"email_state": "sent"}]
