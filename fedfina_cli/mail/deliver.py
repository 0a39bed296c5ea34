"""Delivering the report email: to the outbox folder, or by SMTP.

Exactly-once delivery works with the pipeline: ``send`` calls ``on_handover``
at the last moment before the message can no longer be taken back (before the
rename into the outbox; before the final "." of SMTP DATA). The pipeline marks
the ledger "sending" there, and "sent" when ``send`` returns. A run that finds
"sending" asks ``was_delivered``; see the README, "Crash safety".
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from copy import copy
from dataclasses import dataclass
from email import message_from_binary_file
from email.message import Message
from email.utils import getaddresses
from functools import cached_property
from pathlib import Path
from typing import Protocol

from fedfina_cli.core.api_calls import ApiCall, Metrics, elapsed_ms
from fedfina_cli.core.errors import StageError
from fedfina_cli.core.files import atomic_write
from fedfina_cli.core.object_keys import outbox_path
from fedfina_cli.mail.wire import message_bytes
from fedfina_cli.services.deadline import alarm
from fedfina_cli.services.retry import RetryPolicy

OUTBOX_SENDER = "reports@fedfina.invalid"

log = logging.getLogger("fedfina.mail")


@dataclass(frozen=True)
class Delivery:
    message_id: str
    location: str  # the .eml path, or the SMTP server that accepted it


class Mailer(Protocol):
    description: str
    sender: str

    def send(self, message: Message, account_id: str, conversation_id: str,
             on_handover: Callable[[], None]) -> Delivery: ...

    def was_delivered(self, message_id: str, account_id: str, conversation_id: str) -> bool | None:
        """True/False when the mailer can tell; None when it cannot (plain SMTP)."""
        ...

    def close(self) -> None:
        """End what is kept open between messages (SMTP connections)."""
        ...


class OutboxMailer:
    """Writes standards-compliant .eml files instead of sending (no SMTP configured)."""

    def __init__(self, outbox_dir: Path, sender: str | None = None):
        self.outbox_dir = outbox_dir
        self.sender = sender or OUTBOX_SENDER
        self.description = f"outbox({outbox_dir})"

    def path(self, account_id: str, conversation_id: str) -> Path:
        return outbox_path(self.outbox_dir, account_id, conversation_id)

    def send(self, message: Message, account_id: str, conversation_id: str,
             on_handover: Callable[[], None]) -> Delivery:
        target = self.path(account_id, conversation_id)
        atomic_write(target, [message_bytes(message, message.policy.linesep)], before_rename=on_handover)
        return Delivery(message_id=message["Message-ID"], location=str(target))

    def was_delivered(self, message_id: str, account_id: str, conversation_id: str) -> bool:
        target = self.path(account_id, conversation_id)
        if not target.is_file():
            return False
        with target.open("rb") as handle:
            return message_from_binary_file(handle)["Message-ID"] == message_id

    def close(self) -> None:
        pass


class DeliveryUnknown(StageError):
    """The connection broke after the final "." of DATA: the server may have the message."""

class Refused(StageError):
    """The mail server refused the message (or could not be reached): nothing was delivered."""

# A connection that delivered a message is kept for the next one (no new TCP and TLS
# handshake, EHLO and login for each email), but not for long: servers end idle sessions
# after some minutes (RFC 5321 4.5.3.2 asks at least five), and some cap the messages of one.
IDLE_SECONDS = 30.0
MESSAGES_PER_CONNECTION = 50


@dataclass
class _Kept:
    smtp: smtplib.SMTP
    sent: int  # messages delivered on it
    idle_since: float  # time.monotonic()


class SmtpMailer:
    """Sends through an SMTP server: starttls, ssl or none; login when a username is set.

    Temporary failures (4xx replies, connection errors) before the hand-over are
    retried with backoff; permanent ones (5xx) fail the conversation with the
    server's reply. After the hand-over nothing is retried (see DeliveryUnknown).

    A connection is used again for the next message while it is fresh (IDLE_SECONDS,
    MESSAGES_PER_CONNECTION). One the server has closed meanwhile fails at MAIL FROM, before
    anything is handed over: the message then goes on a new connection, in the same attempt.
    """

    def __init__(self, host: str, port: int | None, sender: str, *, security: str = "starttls",
                 username: str | None = None, password: str | None = None,
                 metrics: Metrics = lambda call: None, retry: RetryPolicy = RetryPolicy(),
                 timeout: float = 30.0):
        self.host = host
        self.security = security
        self.port = port or {"ssl": 465, "starttls": 587}.get(security, 25)
        self.sender = sender
        self.username = username
        self._password = password
        self.metrics = metrics
        self.retry = retry
        self.timeout = timeout
        self.description = f"smtp({host}:{self.port})"
        self._kept: list[_Kept] = []  # connections waiting for the next message
        self._kept_lock = threading.Lock()

    def send(self, message: Message, account_id: str, conversation_id: str,
             on_handover: Callable[[], None]) -> Delivery:
        recipients = [addr for _, addr in getaddresses(
            message.get_all("To", []) + message.get_all("Cc", []) + message.get_all("Bcc", []))]
        wire = _without_bcc(message)
        attempt = 0
        while attempt < self.retry.attempts:
            attempt += 1
            started = time.monotonic()
            handed_over = False

            def handover() -> None:
                nonlocal handed_over
                on_handover()
                handed_over = True

            connection: list[smtplib.SMTP] = []
            kept = self._take()
            try:
                with self._deadline(connection) as expired:
                    delivered = False
                    try:
                        if kept is not None:
                            connection.append(kept.smtp)
                        self._transmit(kept.smtp if kept else self.connect(connection), recipients, wire, handover)
                        delivered = True
                    finally:
                        if connection and not (delivered and self._keep(connection[0], kept)):
                            _close_quietly(connection[0])
            except Exception as exc:  # noqa: BLE001 - classified below; unknown errors are re-raised
                if kept is not None and not handed_over and not expired.is_set() and _gone(exc):
                    # A kept connection the server had closed meanwhile: nothing was handed
                    # over, and this attempt goes again on another connection.
                    log.debug("%s: a kept connection to %s had been closed (%s)", conversation_id, self.host, exc)
                    attempt -= 1
                    continue
                code, reply, temporary = _classify(exc)
                if expired.is_set():
                    code, reply, temporary = None, f"timed out (FEDFINA_HTTP_TIMEOUT is {self.timeout:g} s)", True
                self.metrics(ApiCall("smtp", "send", code, elapsed_ms(started), bytes=len(wire),
                                     error=reply, conversation_id=conversation_id))
                # A reply to the final "." (even a refusal) is definite; only a
                # lost reply leaves the message's fate unknown.
                if handed_over and not isinstance(exc, smtplib.SMTPResponseException):
                    raise DeliveryUnknown(
                        f"the connection to {self.host} broke after the message was handed over "
                        f"({reply}); it may have been delivered. Check the mailbox, then re-run "
                        f"with --resend if it did not arrive") from None
                if temporary and attempt < self.retry.attempts:
                    self.retry.sleep(attempt)
                    continue
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise Refused(f"mail server {self.host}:{self.port} did not accept the message"
                                 f"{tries}: {reply}", retryable=temporary) from None
            delivery = Delivery(message_id=message["Message-ID"], location=self.description)
            try:
                self.metrics(ApiCall("smtp", "send", 250, elapsed_ms(started), bytes=len(wire),
                                     conversation_id=conversation_id))
            except Exception as exc:  # noqa: BLE001 - after the 250 nothing may make it look refused
                log.warning("%s: delivered, but the API call could not be recorded: %s", conversation_id, exc)
            return delivery
        raise AssertionError("unreachable")

    def _take(self) -> _Kept | None:
        """A kept connection still fresh, if any; the stale ones are closed on the way."""
        now, fresh, stale = time.monotonic(), None, []
        with self._kept_lock:
            while self._kept and fresh is None:
                kept = self._kept.pop()
                if now - kept.idle_since < IDLE_SECONDS:
                    fresh = kept
                else:
                    stale.append(kept)
        for kept in stale:  # outside the lock: a QUIT waits for its reply
            _close_quietly(kept.smtp)
        return fresh

    def _keep(self, smtp: smtplib.SMTP, kept: _Kept | None) -> bool:
        """Keep a connection that just delivered a message for the next one (False: close it)."""
        sent = (kept.sent if kept else 0) + 1
        if sent >= MESSAGES_PER_CONNECTION or smtp.sock is None:
            return False
        with self._kept_lock:
            self._kept.append(_Kept(smtp, sent, time.monotonic()))
        return True

    def close(self) -> None:
        """QUIT the kept connections (the end of a run, or of `serve`)."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for connection in kept:
            _close_quietly(connection.smtp)

    def was_delivered(self, message_id: str, account_id: str, conversation_id: str) -> None:
        return None  # plain SMTP cannot ask the server what it delivered

    @cached_property
    def _tls(self) -> ssl.SSLContext:
        # Built once per run: loading the system's CA certificates costs more
        # CPU than the rest of sending a message (and no context is needed
        # without TLS). A context is safe to share between threads.
        return ssl.create_default_context()

    @contextmanager
    def _deadline(self, connection: list[smtplib.SMTP]) -> Iterator[threading.Event]:
        """One attempt, connect to the reply to ".", within FEDFINA_HTTP_TIMEOUT.

        smtplib's timeout bounds each socket operation only: a server that
        drips its replies a byte at a time would hold the run for ever. At the
        deadline the socket is shut down, which ends whatever smtplib waits for.
        """
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            sock = getattr(connection[0], "sock", None) if connection else None
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = alarm(self.timeout, expire)
        try:
            yield expired
        finally:
            timer.cancel()

    def connect(self, connection: list[smtplib.SMTP] | None = None) -> smtplib.SMTP:
        """Connected, secured and logged in (also used by `fedfina doctor`).

        ``connection`` receives the SMTP object before it connects, so that a
        deadline can end even the wait for the server's greeting.
        """
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(timeout=self.timeout, context=self._tls)
        else:
            smtp = smtplib.SMTP(timeout=self.timeout)
        # smtplib keeps the TLS server name from its constructor, which would
        # connect at once; created empty, it needs the name set here.
        # (A private attribute: smtplib offers no other way. tests/test_smtp.py::test_tls_modes fails
        # with a certificate error if a Python release renames it.)
        smtp._host = self.host  # type: ignore[attr-defined]
        if connection is not None:
            connection.append(smtp)
        try:
            smtp.connect(self.host, self.port)
            smtp.ehlo()
            if self.security == "starttls":
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def check(self) -> str:
        """Connect, secure, log in and say NOOP (doctor); no mail is sent."""
        connection: list[smtplib.SMTP] = []
        try:
            with self._deadline(connection) as expired:
                smtp = self.connect(connection)
                try:
                    smtp.noop()
                finally:
                    _close_quietly(smtp)
        except Exception as exc:  # noqa: BLE001 - classified; unknown errors are re-raised
            reply = "timed out" if expired.is_set() else _classify(exc)[1]
            raise StageError(f"mail server {self.host}:{self.port}: {reply}") from None
        return "connected" + (", logged in" if self.username else "") + "; no mail sent"

    def _transmit(self, smtp: smtplib.SMTP, recipients: list[str], data: bytes,
                  handover: Callable[[], None]) -> None:
        code, reply = smtp.mail(self.sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self.sender)
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        code, reply = smtp.docmd("DATA")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        # Everything but the final "." first: until it is sent the server must
        # discard the message if we vanish, so only the last step is committed.
        body = _dot_stuffed(data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body)
        try:
            handover()
        except BaseException:
            # Mid-DATA, a QUIT would be read as more of the message (and its reply waited for
            # until the timeout): drop the connection; without the "." the server discards it.
            smtp.close()
            raise
        smtp.send(b".\r\n")
        code, reply = smtp.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)


def _gone(exc: Exception) -> bool:
    """Whether a command failed because the server had ended the session: the connection
    closed (or reset), or 421, the reply of a server closing it (RFC 5321 3.8)."""
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421


def _dot_stuffed(data: bytes) -> bytes:
    """Every line that starts with "." given another (RFC 5321 4.5.2), as smtplib's quotedata
    does. bytes.replace, not a multi-line regular expression, which tried every position of the
    message: 0.29 ms for a 60 KB report email, against 0.05."""
    return (b"." + data if data.startswith(b".") else data).replace(b"\n.", b"\n..")


def _close_quietly(smtp: smtplib.SMTP) -> None:
    """QUIT and close, ignoring errors: once the server said 250 the message is
    delivered, and a bad answer to QUIT must not make it look refused (and be
    sent again)."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def _without_bcc(message: Message) -> bytes:
    """The message as SMTP carries it: no Bcc header, every line ended by CRLF whatever
    policy built it (the console's sign-in email uses the default one, whose lines end in a
    bare LF: servers that guard against SMTP smuggling refuse that, and no line of it could
    be dot-stuffed)."""
    wire = copy(message)
    del wire["Bcc"]
    return message_bytes(wire, "\r\n")


def _classify(exc: Exception) -> tuple[int | None, str, bool]:
    """(reply code, readable reply, temporary?) for an SMTP failure."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        recipient, (code, reply) = next(iter(exc.recipients.items()))
        return code, f"{code} {_text(reply)} (recipient {recipient})", 400 <= code < 500
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return exc.smtp_code, (f"{exc.smtp_code} {_text(exc.smtp_error)} "
                               "(check SMTP_USERNAME and SMTP_PASSWORD)"), False
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code, f"{exc.smtp_code} {_text(exc.smtp_error)}", 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return None, f"{exc} (check SMTP_SECURITY)", False
    if isinstance(exc, ssl.SSLError):
        return None, f"TLS failed ({exc.reason or exc}); check SMTP_SECURITY and SMTP_PORT", False
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return None, "timed out", True
    if isinstance(exc, ConnectionRefusedError):
        return None, "connection refused (is the mail server running? check SMTP_HOST and SMTP_PORT)", True
    if isinstance(exc, socket.gaierror):
        return None, "host name not found (check SMTP_HOST)", True
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, OSError)):
        return None, f"connection failed ({type(exc).__name__}: {exc})", True
    raise exc


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())
