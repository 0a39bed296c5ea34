"""The ElevenLabs webhook signature: ``ElevenLabs-Signature: t=<unix>,v0=<hex>``.

``v0`` is HMAC-SHA256 of ``"<t>.<raw body>"`` under the webhook's secret. It is
checked on the raw bytes, before anything parses them, in constant time; a
timestamp older than 30 minutes (a replay) or more than 5 minutes ahead is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time

MAX_AGE_SECONDS = 30 * 60
MAX_FUTURE_SECONDS = 5 * 60


class BadSignature(Exception):
    """Why a delivery is refused (said in the 401 body: it names no secret)."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value ElevenLabs would send (tests, `fedfina` tools)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v0={digest}"


def verify(header: str | None, body: bytes, secret: str, now: float | None = None) -> None:
    """Return when the signature is good; raise BadSignature saying why not."""
    if not header:
        raise BadSignature("missing ElevenLabs-Signature header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    stamps = parts.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit() or len(stamps[0]) > 12:
        raise BadSignature("malformed ElevenLabs-Signature header: no timestamp t=")
    timestamp = int(stamps[0])
    current = time.time() if now is None else now
    if timestamp < current - MAX_AGE_SECONDS:
        raise BadSignature("signature timestamp is older than 30 minutes")
    if timestamp > current + MAX_FUTURE_SECONDS:
        raise BadSignature("signature timestamp is more than 5 minutes in the future")
    expected = sign(secret, body, timestamp).partition(",v0=")[2]
    # Any v0 may match (a secret being rotated); compare_digest takes constant time.
    if not any(hmac.compare_digest(expected.encode(), given.encode("ascii", "replace"))
               for given in parts.get("v0", [])):
        raise BadSignature("signature does not match")
