"""A real SMTP server on loopback (aiosmtpd) with AUTH, TLS and scriptable replies."""

from __future__ import annotations

import datetime
import socket
import ssl
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float = field(default_factory=time.monotonic)  # when it was accepted (benchmarks)
    peer: tuple | None = None  # the client's address and port: one per connection

    @property
    def message(self):
        return message_from_bytes(self.data, policy=policy.default)


class FakeSMTP:
    def __init__(self, *, username: str | None = None, password: str | None = None,
                 security: str = "none", cert: Path | None = None, key: Path | None = None,
                 idle_timeout: float | None = None):
        self.messages: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}  # address -> reply, e.g. "550 5.1.1 no such user"
        self.data_replies: list[str] = []  # replies to the next DATA commands, e.g. "451 try later"
        self.mail_replies: list[str] = []  # replies to the next MAIL FROM commands, e.g. "421 closing"
        self.accept_delay = 0.0  # seconds between receiving the final "." and answering it
        # Called (in the server's thread) with the client's address: at RCPT TO, and once the
        # message is in, just before the 250 (faults that must happen at that moment).
        self.on_rcpt = None
        self.on_message = None
        self.username, self.password = username, password
        self.port = free_port()
        kwargs: dict = {} if idle_timeout is None else {"timeout": idle_timeout}  # then it hangs up, as servers do
        if username:
            # With implicit TLS aiosmtpd cannot tell the socket is encrypted, so it
            # must not insist on STARTTLS before AUTH.
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=security == "starttls")
        if security in ("starttls", "ssl"):
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            if security == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> FakeSMTP:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def for_conversation(self, conversation_id: str) -> list[Received]:
        return [m for m in self.messages if m.message["X-FedFina-Conversation"] == conversation_id]

    # --- aiosmtpd handler hooks ---------------------------------------------

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_replies:
            return self.mail_replies.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.on_rcpt is not None:
            self.on_rcpt(session.peer)
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.accept_delay:
            import asyncio

            await asyncio.sleep(self.accept_delay)
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                      peer=tuple(session.peer)))
        if self.on_message is not None:
            self.on_message(session.peer)
        return "250 2.0.0 Message accepted for delivery"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode() == self.username and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost; point SSL_CERT_FILE at it to trust it."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedfina test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
