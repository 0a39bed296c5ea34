"""The webhook signature against ElevenLabs' own reference: its SDK's ``webhooks.construct_event``."""

from __future__ import annotations

import json
import time

import pytest

from fedfina_cli.server.signature import BadSignature, sign, verify

from .conftest import hindi_variant

elevenlabs = pytest.importorskip("elevenlabs", reason="ElevenLabs' SDK is a test dependency (pip install -e '.[test]')")

SECRET = "wsec_sdk_reference_7d1e"


def _sdk_accepts(body: bytes, header: str, secret: str = SECRET) -> bool:
    from elevenlabs.errors import BadRequestError
    from elevenlabs.webhooks_custom import WebhooksClient

    client = WebhooksClient.__new__(WebhooksClient)  # construct_event uses no connection
    try:
        event = client.construct_event(body.decode("utf-8"), header, secret)
    except BadRequestError:
        return False
    assert event == json.loads(body)
    return True


def _we_accept(body: bytes, header: str, secret: str = SECRET) -> bool:
    try:
        verify(header, body, secret)
    except BadSignature:
        return False
    return True


BODIES = [
    json.dumps({"type": "post_call_transcription", "event_timestamp": 1, "data": hindi_variant(1)},
               ensure_ascii=False).encode("utf-8"),  # Devanagari inside
    b'{"type": "post_call_audio", "data": {"conversation_id": "conv_bulk00000001", "full_audio": "SUQz"}}',
]


@pytest.mark.parametrize("age", [0, 60, 29 * 60, -29 * 60])  # seconds old; negative: ahead of our clock
def test_what_we_sign_the_sdk_accepts_and_what_it_accepts_we_accept(age):
    for body in BODIES:
        header = sign(SECRET, body, int(time.time()) - age)
        assert _sdk_accepts(body, header) and _we_accept(body, header)


def test_we_refuse_exactly_what_the_sdk_refuses():
    body, now = BODIES[0], int(time.time())
    good = sign(SECRET, body, now)
    digest = good.partition(",v0=")[2]
    cases = {
        "no header": "",
        "wrong secret": sign("another-secret", body, now),
        "no timestamp": f"v0={digest}",
        "no signature": f"t={now}",
        "31 minutes old": sign(SECRET, body, now - 31 * 60),
        "spaces after the comma": f"t={now}, v0={digest}",
        "the right signature before a wrong one": f"t={now},v0={digest},v0={'0' * 64}",
        "a wrong signature before the right one": f"t={now},v0={'0' * 64},v0={digest}",
        "another scheme only": f"t={now},v1={digest}",
        "signature of another body": sign(SECRET, BODIES[1], now),
    }
    for name, header in cases.items():
        assert _sdk_accepts(body, header) == _we_accept(body, header), name


def test_the_one_difference_is_a_timestamp_far_ahead_of_our_clock():
    """The SDK accepts any timestamp ahead; we accept 30 minutes (SPEC: a host clock that is behind)."""
    body, now = BODIES[0], int(time.time())
    ahead = sign(SECRET, body, now + 29 * 60)
    assert _sdk_accepts(body, ahead) and _we_accept(body, ahead)
    far = sign(SECRET, body, now + 31 * 60)
    assert _sdk_accepts(body, far) and not _we_accept(body, far)
