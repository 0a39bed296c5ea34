"""The ElevenLabs webhook signature: ``ElevenLabs-Signature: t=<unix>,v0=<hex>``.

``v0`` is HMAC-SHA256 of ``"<t>.<raw body>"`` under the webhook's secret. It is
checked on the raw bytes, before anything parses them, in constant time. The header
is read as ElevenLabs' SDK reads it (``webhooks.construct_event``: comma-separated,
``t=`` and ``v0=`` at the start of a part, the last of each counts;
tests/test_signature.py checks both against the SDK). A timestamp older than 30
minutes (a replay) is refused, as the SDK does; one ahead of this host's clock is
accepted up to 30 minutes (the SDK accepts any): a host whose clock is behind must
not answer 401 to every delivery, for ElevenLabs disables a webhook after ten
failures in a row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

MAX_AGE_SECONDS = 30 * 60
MAX_FUTURE_SECONDS = 30 * 60


class BadSignature(Exception):
    """Why a delivery is refused (said in the 401 body: it names no secret)."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value ElevenLabs would send (tests, `fedfina` tools)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v0={digest}"


def checked_header(header: str | None, now: float | None = None) -> tuple[int, str]:
    """The header's timestamp and signature, or BadSignature saying what is wrong with it.

    Checked before the body is read: a request with no header, a malformed one or a
    stale timestamp is refused without reading (and holding) a body of up to
    FEDFINA_MAX_BODY_MB that no secret signed."""
    if not header:
        raise BadSignature("missing ElevenLabs-Signature header")
    timestamp_text = signature = None
    for part in header.split(","):  # as the SDK: no spaces around the parts, the last of each counts
        if part.startswith("t="):
            timestamp_text = part[2:]
        elif part.startswith("v0="):
            signature = part[3:]
    # ASCII digits only: str.isdigit() takes '²', which int() then refuses (a 500).
    if timestamp_text is None or not re.fullmatch(r"[0-9]{1,12}", timestamp_text):
        raise BadSignature("malformed ElevenLabs-Signature header: no timestamp t=")
    if signature is None:
        raise BadSignature("malformed ElevenLabs-Signature header: no v0= signature")
    timestamp = int(timestamp_text)
    current = time.time() if now is None else now
    if timestamp < current - MAX_AGE_SECONDS:
        raise BadSignature("signature timestamp is older than 30 minutes")
    if timestamp > current + MAX_FUTURE_SECONDS:
        raise BadSignature("signature timestamp is more than 30 minutes ahead of this host's clock "
                           "(check its time: NTP)")
    return timestamp, signature


def verify(header: str | None, body: bytes, secret: str, now: float | None = None) -> None:
    """Return when the signature is good; raise BadSignature saying why not."""
    timestamp, signature = checked_header(header, now)
    expected = sign(secret, body, timestamp).partition(",v0=")[2]
    if not hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace")):  # constant time
        raise BadSignature("signature does not match")
