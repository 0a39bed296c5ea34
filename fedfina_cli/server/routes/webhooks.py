"""ElevenLabs' post-call webhooks (SPEC "Serving"): signed, recorded before the reply, each event once.

The body is read raw (with the size limit): the signature is an HMAC of those exact bytes.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fedfina_cli.core import validation
from fedfina_cli.core.errors import FedfinaError, LedgerError, StageError
from fedfina_cli.core.jsonio import BadJSON, loads
from fedfina_cli.pipeline import intake
from fedfina_cli.server.http import Refused, ok, read_body
from fedfina_cli.server.service import Service, ServiceDep
from fedfina_cli.server.signature import BadSignature, checked_header, verify
from fedfina_cli.services.storage import ObjectMissing

log = logging.getLogger("fedfina.server")

router = APIRouter()


@router.post("/api/v1/webhooks/elevenlabs")
async def webhook(request: Request, server: ServiceDep) -> JSONResponse:
    secret = server.settings.webhook_secret
    if not secret:
        raise Refused(404, "not found: set ELEVENLABS_WEBHOOK_SECRET to receive ElevenLabs webhooks")
    header = request.headers.get("elevenlabs-signature")
    try:
        checked_header(header)  # before the body: an unsigned 45 MB post is refused unread
    except BadSignature as exc:
        server.metrics.webhooks.labels("unknown", "bad_signature").inc()
        raise Refused(401, f"invalid webhook signature: {exc}") from None
    async with server.body_slot(request):
        return await _signed(request, server, header, secret)


async def _signed(request: Request, server: Service, header: str | None, secret: str) -> JSONResponse:
    raw = await read_body(request, server.max_body_bytes)
    try:
        verify(header, raw, secret)
    except BadSignature as exc:
        server.metrics.webhooks.labels("unknown", "bad_signature").inc()
        raise Refused(401, f"invalid webhook signature: {exc}") from None
    try:
        # jsonio: NaN, 100,000-deep nesting and invalid UTF-8 are a 422 here (they were a 500,
        # or a 200 and a conversation failed for good), and a lone surrogate is repaired as for the CLI.
        event = await run_in_threadpool(loads, raw)
    except BadJSON as exc:
        raise Refused(422, f"the webhook body is not JSON fedfina accepts: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) \
            or not isinstance(event.get("data"), dict):
        raise Refused(422, "the webhook body has no type and data")
    kind = event["type"]
    label = kind if kind in _EVENTS else "other"
    try:
        message = await run_in_threadpool(_EVENTS.get(kind, _ignored), server, event["data"])
    except FedfinaError as exc:
        if _ledger_or_storage_down(exc):
            # Not recorded: the one case for a 5xx, so that ElevenLabs delivers it again.
            server.metrics.webhooks.labels(label, "not_recorded").inc()
            log.error("webhook %s not recorded: %s", kind, server.settings.redact(str(exc)))
            raise Refused(503, "the event could not be recorded; deliver it again later") from None
        # A problem of this conversation, not of the server: 200, or ElevenLabs disables the webhook.
        server.metrics.webhooks.labels(label, "unusable").inc()
        log.warning("webhook %s not processed: %s", kind, server.settings.redact(str(exc)))
        return ok(200, f"received, not processed: {exc}")
    server.metrics.webhooks.labels(label, "recorded").inc()
    return ok(200, message)


def _transcription(server: Service, data: dict[str, Any]) -> str:
    result = intake.accept_conversation(server.session.ledger, server.session.backends.storage, data, "webhook")
    if result.queued_now:
        server.workers.wake()
    return f"{result.conversation_id}: {result.message}" if result.status != "failed" \
        else f"{result.conversation_id}: recorded as failed: {result.message}"


def _audio(server: Service, data: dict[str, Any]) -> str:
    conversation_id = validation.conversation_id(data.get("conversation_id"))
    encoded = data.get("full_audio")
    if not isinstance(encoded, str):
        raise StageError("post_call_audio without full_audio")
    try:
        audio = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise StageError("post_call_audio's full_audio is not base64") from None
    keys = intake.accept_audio(server.session.ledger, server.session.backends.storage, conversation_id, audio)
    if not audio:
        return f"{conversation_id}: {intake.EMPTY_AUDIO}"
    return f"{conversation_id}: audio stored ({len(audio)} bytes, {len(keys)} object)"


def _initiation_failure(server: Service, data: dict[str, Any]) -> str:
    conversation_id = intake.record_initiation_failure(server.session.ledger, data)
    return f"{conversation_id or 'call'}: call initiation failure recorded"


def _ignored(server: Service, data: dict[str, Any]) -> str:
    return "event type ignored"


_EVENTS: dict[str, Callable[[Service, dict[str, Any]], str]] = {
    "post_call_transcription": _transcription, "post_call_audio": _audio,
    "call_initiation_failure": _initiation_failure}


def _ledger_or_storage_down(exc: FedfinaError) -> bool:
    if isinstance(exc, LedgerError):
        return True
    # A storage failure (MinIO away, disk full) is retryable; a bad payload is not.
    return bool(getattr(exc, "retryable", False)) and not isinstance(exc, ObjectMissing)
