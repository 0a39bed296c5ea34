"""SMTP delivery against aiosmtpd on loopback (AUTH; STARTTLS and implicit TLS)."""

import sqlite3
import time

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


# --- one connection for many messages -----------------------------------------------------------


def _mailer(server, metrics=lambda call: None):
    from fedfina_cli.mail.deliver import SmtpMailer
    from fedfina_cli.services.retry import RetryPolicy

    from .conftest import SMTP_USER

    return SmtpMailer("127.0.0.1", server.port, SENDER, security="none", username=SMTP_USER,
                      password=SMTP_PASSWORD, metrics=metrics, retry=RetryPolicy(attempts=3, base_seconds=0.01),
                      timeout=5)


def _email(n: int):
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, "officer@bank.example", f"report {n}"
    message["Message-ID"] = f"<m{n}@fedfina.example>"
    message.set_content(f"report {n}\n")
    return message


def _send(mailer, n: int, handovers: list | None = None):
    handovers = [] if handovers is None else handovers
    return mailer.send(_email(n), "acc123", f"conv_{n:08d}", on_handover=lambda: handovers.append(n))


def test_messages_share_one_connection(smtp_server):
    mailer = _mailer(smtp_server)
    for n in range(4):
        _send(mailer, n)
    assert len(smtp_server.messages) == 4 and len({m.peer for m in smtp_server.messages}) == 1
    mailer.close()
    assert not mailer._kept


def test_a_kept_connection_the_server_hung_up_is_replaced_and_nothing_is_sent_twice(monkeypatch):
    from .conftest import SMTP_USER
    from .fakes.smtp import FakeSMTP

    server = FakeSMTP(username=SMTP_USER, password=SMTP_PASSWORD, idle_timeout=0.5).start()
    calls = []
    try:
        mailer = _mailer(server, metrics=calls.append)
        handovers: list[int] = []
        _send(mailer, 1, handovers)
        time.sleep(1.5)  # the server ends the idle session (421, then it closes)
        _send(mailer, 2, handovers)
        mailer.close()
    finally:
        server.stop()
    assert [m.message["Subject"] for m in server.messages] == ["report 1", "report 2"]
    assert len({m.peer for m in server.messages}) == 2
    assert handovers == [1, 2]  # each handed over once
    assert [c.status_code for c in calls] == [250, 250]  # a closed kept connection is no failed send


def test_a_421_to_mail_from_on_a_kept_connection_goes_again_on_a_new_one(smtp_server):
    calls = []
    mailer = _mailer(smtp_server, metrics=calls.append)
    _send(mailer, 1)
    smtp_server.mail_replies.append("421 4.3.2 Service shutting down, closing channel")
    _send(mailer, 2)
    _send(mailer, 3)
    mailer.close()
    assert [m.message["Subject"] for m in smtp_server.messages] == ["report 1", "report 2", "report 3"]
    peers = [m.peer for m in smtp_server.messages]
    assert peers[0] != peers[1] == peers[2]
    assert [c.status_code for c in calls] == [250, 250, 250]


def test_a_421_on_a_new_connection_is_a_failed_attempt_not_a_silent_retry(smtp_server):
    calls = []
    mailer = _mailer(smtp_server, metrics=calls.append)
    smtp_server.mail_replies.append("421 4.3.2 Service shutting down, closing channel")
    _send(mailer, 1)
    mailer.close()
    assert len(smtp_server.messages) == 1
    assert [c.status_code for c in calls] == [421, 250]  # recorded, then retried with backoff


def test_a_connection_is_not_kept_past_its_message_limit_or_its_idle_time(smtp_server, monkeypatch):
    from fedfina_cli.mail import deliver

    monkeypatch.setattr(deliver, "MESSAGES_PER_CONNECTION", 2)
    mailer = _mailer(smtp_server)
    for n in range(5):
        _send(mailer, n)
    peers = [m.peer for m in smtp_server.messages]
    assert peers[0] == peers[1] != peers[2] == peers[3] != peers[4]
    monkeypatch.setattr(deliver, "IDLE_SECONDS", 0.0)
    _send(mailer, 5)
    assert smtp_server.messages[5].peer != peers[4]
    mailer.close()
    assert not mailer._kept
