"""`fedfina demo --serve`: a signed webhook to deliver to the demo server, as commands
that work as printed."""

from __future__ import annotations

import json
import secrets
import shlex
import time

from fedfina_cli.core.config import Settings
from fedfina_cli.pipeline.demo import demo_job
from fedfina_cli.server.signature import sign


def webhook_example(settings: Settings, base_url: str) -> list[str]:
    """Writes a signed post-call webhook (a new conversation id each time, so it is
    processed, not taken for a repeat) beside the demo's files, and returns the
    commands that deliver it and ask how it went, each line under 80 columns."""
    assert settings.webhook_secret is not None and settings.api_key is not None
    payload = demo_job().payload
    assert payload is not None
    conversation_id = f"conv_demo{secrets.token_hex(4)}"
    now = int(time.time())
    body = json.dumps({"type": "post_call_transcription", "event_timestamp": now,
                       "data": {**payload, "conversation_id": conversation_id}}, ensure_ascii=False).encode()
    folder = settings.data_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "webhook.json").write_bytes(body)
    # curl reads headers from a file (-H @file): the signature does not fit a line of its own.
    (folder / "webhook.headers").write_text("Content-Type: application/json\n"
                                            f"ElevenLabs-Signature: {sign(settings.webhook_secret, body, now)}\n")
    folder_q = shlex.quote(str(folder))
    return [
        "Deliver a call's post-call webhook, signed as ElevenLabs signs it (the",
        "signature holds for 30 minutes; run `fedfina demo --serve` again for more):",
        f"  curl -sS {base_url}/api/v1/webhooks/elevenlabs \\",
        f"    -H @{folder_q}/webhook.headers --data-binary @{folder_q}/webhook.json",
        "Then ask how it went (the API key was made for this demo and dies with it):",
        f"  curl -sS -H 'X-API-Key: {settings.api_key}' \\",
        f"    {base_url}/api/v1/postprocess/conversation/{conversation_id}",
    ]
