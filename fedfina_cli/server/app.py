"""The HTTP API of `fedfina serve` (SPEC "Serving"): routes, status codes and bodies.

Every route answers JSON; every error is ``{"success": false, "message": ...}``.
A request is answered only once what it brought is durably recorded (the
ledger row ``queued``, the webhook's conversation in storage); the processing
happens afterwards, in the workers. Bodies are read with a size limit before
anything parses them, and the webhook's signature is checked on the raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from fedfina_cli.core import validation
from fedfina_cli.core.config import Settings
from fedfina_cli.core.errors import FedfinaError, InvalidValue, LedgerError, StageError
from fedfina_cli.core.timefmt import utc_text
from fedfina_cli.ledger.rows import ConversationRow
from fedfina_cli.pipeline import intake
from fedfina_cli.pipeline.doctor import run_checks
from fedfina_cli.pipeline.queue import QueueWorkers
from fedfina_cli.pipeline.session import Session
from fedfina_cli.server.metrics import ServerMetrics
from fedfina_cli.server.signature import BadSignature, verify
from fedfina_cli.services.storage import ObjectMissing

log = logging.getLogger("fedfina.server")
access = logging.getLogger("fedfina.access")

# Until the ledger has seen conversations complete: a summary takes about this long.
DEFAULT_ESTIMATE_SECONDS = 60.0
READY_CACHE_SECONDS = 10.0


@dataclass
class Service:
    """What the routes work with: one per `serve` process."""

    settings: Settings
    session: Session
    workers: QueueWorkers
    metrics: ServerMetrics

    @property
    def max_body_bytes(self) -> int:
        return int(self.settings.max_body_mb * 1024 * 1024)


class _Refused(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="fedfina", docs_url=None, redoc_url=None, openapi_url=None)
    ready_cache: dict[str, Any] = {"at": 0.0, "result": None}

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        started = time.monotonic()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            # Method, path and status only: no query, headers or body (keys, signatures, personal data).
            access.info("request", extra={"fields": {
                "method": request.method, "path": request.url.path, "status": status,
                "ms": round((time.monotonic() - started) * 1000, 1),
                "client": request.client.host if request.client else None}})

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused):
        return _error(exc.status, exc.message, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.error("unexpected error on %s %s: %s", request.method, request.url.path,
                  service.settings.redact(f"{type(exc).__name__}: {exc}"))
        return _error(500, "internal error; see the server's log")

    # --- the seed's API ------------------------------------------------------------

    @app.post("/api/v1/postprocess/conversation")
    async def postprocess(request: Request):
        _check_api_key(request, service.settings)
        body = await _json_body(request, service.max_body_bytes)
        fields = _request_fields(body)
        if service.session.backends.source is None:
            raise _Refused(503, "this server cannot fetch conversations from ElevenLabs: ELEVENLABS_API_KEY "
                                "is not set (its post-call webhooks still work)")
        result = await run_in_threadpool(intake.accept_request, service.session.ledger, *fields)
        if result.queued_now:
            service.workers.wake()
        if result.status == "completed":
            return _ok(200, "Conversation already processed", _reference(result.row))
        estimate = await run_in_threadpool(_estimated_completion, service)
        return _ok(202, result.message, {**_reference(result.row), "estimated_completion": estimate})

    @app.get("/api/v1/postprocess/conversation/{conversation_id}")
    async def conversation_status(conversation_id: str, request: Request):
        _check_api_key(request, service.settings)
        account = request.query_params.get("account_id")
        errors = _field_errors({"conversation_id": (validation.conversation_id, conversation_id),
                                **({"account_id": (validation.account_id, account)} if account is not None else {})})
        if errors:
            raise _Refused(422, "invalid request", errors=errors)
        data = await run_in_threadpool(_conversation_view, service, conversation_id, account)
        return _ok(200, "ok", data)

    # --- ElevenLabs' post-call webhooks -----------------------------------------------

    @app.post("/api/v1/webhooks/elevenlabs")
    async def webhook(request: Request):
        secret = service.settings.webhook_secret
        if not secret:
            raise _Refused(404, "not found: set ELEVENLABS_WEBHOOK_SECRET to receive ElevenLabs webhooks")
        raw = await _read_body(request, service.max_body_bytes)
        try:
            verify(request.headers.get("elevenlabs-signature"), raw, secret)
        except BadSignature as exc:
            service.metrics.webhooks.labels("unknown", "bad_signature").inc()
            raise _Refused(401, f"invalid webhook signature: {exc}") from None
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Refused(422, "the webhook body is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str) \
                or not isinstance(event.get("data"), dict):
            raise _Refused(422, "the webhook body has no type and data")
        kind = event["type"]
        label = kind if kind in _EVENTS else "other"
        try:
            message = await run_in_threadpool(_EVENTS.get(kind, _ignored), service, event["data"])
        except FedfinaError as exc:
            if _ledger_or_storage_down(exc):
                # Not recorded: the one case for a 5xx, so that ElevenLabs delivers it again.
                service.metrics.webhooks.labels(label, "not_recorded").inc()
                log.error("webhook %s not recorded: %s", kind, service.settings.redact(str(exc)))
                raise _Refused(503, "the event could not be recorded; deliver it again later") from None
            # A problem of this conversation, not of the server: 200, or ElevenLabs disables the webhook.
            service.metrics.webhooks.labels(label, "unusable").inc()
            log.warning("webhook %s not processed: %s", kind, service.settings.redact(str(exc)))
            return _ok(200, f"received, not processed: {exc}")
        service.metrics.webhooks.labels(label, "recorded").inc()
        return _ok(200, message)

    # --- operations --------------------------------------------------------------------

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if time.monotonic() - ready_cache["at"] > READY_CACHE_SECONDS:
            ready_cache["result"] = await run_in_threadpool(_readiness, service)
            ready_cache["at"] = time.monotonic()
        failed = ready_cache["result"]
        if failed:
            return JSONResponse({"status": "not ready", "failed": failed}, status_code=503)
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics():
        body = await run_in_threadpool(service.metrics.exposition)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


# --- the webhook's events -------------------------------------------------------------------


def _transcription(service: Service, data: dict) -> str:
    result = intake.accept_conversation(service.session.ledger, service.session.backends.storage, data, "webhook")
    if result.queued_now:
        service.workers.wake()
    return f"{result.conversation_id}: {result.message}" if result.status != "failed" \
        else f"{result.conversation_id}: recorded as failed: {result.message}"


def _audio(service: Service, data: dict) -> str:
    conversation_id = validation.conversation_id(data.get("conversation_id"))
    encoded = data.get("full_audio")
    if not isinstance(encoded, str) or not encoded:
        raise StageError("post_call_audio without full_audio")
    try:
        audio = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise StageError("post_call_audio's full_audio is not base64") from None
    keys = intake.accept_audio(service.session.ledger, service.session.backends.storage, conversation_id, audio)
    return f"{conversation_id}: audio stored ({len(audio)} bytes, {len(keys)} object)"


def _initiation_failure(service: Service, data: dict) -> str:
    conversation_id = intake.record_initiation_failure(service.session.ledger, data)
    return f"{conversation_id or 'call'}: call initiation failure recorded"


def _ignored(service: Service, data: dict) -> str:
    return "event type ignored"


_EVENTS = {"post_call_transcription": _transcription, "post_call_audio": _audio,
           "call_initiation_failure": _initiation_failure}


def _ledger_or_storage_down(exc: FedfinaError) -> bool:

    if isinstance(exc, LedgerError):
        return True
    # A storage failure (MinIO away, disk full) is retryable; a bad payload is not.
    return bool(getattr(exc, "retryable", False)) and not isinstance(exc, ObjectMissing)


# --- requests and replies ---------------------------------------------------------------------


def _check_api_key(request: Request, settings: Settings) -> None:
    given = request.headers.get("x-api-key") or ""
    expected = settings.api_key or ""
    if not expected or not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
        raise _Refused(401, "missing or wrong X-API-Key")


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 past ``limit`` bytes (announced or streamed)."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise _Refused(413, f"request body over the limit of {limit} bytes (FEDFINA_MAX_BODY_MB)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"request body over the limit of {limit} bytes (FEDFINA_MAX_BODY_MB)")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request, limit: int) -> dict:
    raw = await _read_body(request, limit)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _Refused(422, "invalid request", errors=[{"field": "body", "message": "not JSON"}]) from None
    if not isinstance(body, dict):
        raise _Refused(422, "invalid request", errors=[{"field": "body", "message": "not a JSON object"}])
    return body


def _request_fields(body: dict) -> tuple[str, str, str]:
    checks = {"conversation_id": validation.conversation_id, "account_id": validation.account_id,
              "email_id": validation.email_address}
    errors = _field_errors({name: (check, body.get(name)) for name, check in checks.items()})
    if errors:
        raise _Refused(422, "invalid request", errors=errors)
    return (validation.conversation_id(body["conversation_id"]), validation.account_id(body["account_id"]),
            validation.email_address(body["email_id"]))


def _field_errors(fields: dict[str, tuple[Any, Any]]) -> list[dict]:
    errors = []
    for name, (check, value) in fields.items():
        if value is None:
            errors.append({"field": name, "message": "required"})
        elif not isinstance(value, str):
            errors.append({"field": name, "message": "must be a string"})
        else:
            try:
                check(value)
            except InvalidValue as exc:
                errors.append({"field": name, "message": str(exc)})
    return errors


def _reference(row: ConversationRow | None) -> dict[str, object]:
    if row is None:
        return {"conversation_id": None, "processing_id": None, "status": None}
    return {"conversation_id": row["conversation_id"], "processing_id": row["processing_id"],
            "status": row["status"]}


def _conversation_view(service: Service, conversation_id: str, account: str | None) -> dict:
    ledger, storage = service.session.ledger, service.session.backends.storage
    rows = [r for r in ledger.rows_for(conversation_id, account) if r["account_id"] or account is None]
    if not rows:
        raise _Refused(404, f"no conversation {conversation_id}" + (f" in account {account}" if account else ""))
    if len(rows) > 1:
        names = ", ".join(sorted(r["account_id"] or "(none)" for r in rows))
        raise _Refused(409, f"{conversation_id} is recorded under several accounts ({names}); "
                            "pass ?account_id=")
    row = rows[0]
    files = [{"file_type": f["file_type"], "object_key": f["object_key"],
              "url": storage.locate(f["object_key"]) if storage.shareable else None}
             for f in ledger.files_for(conversation_id, row["account_id"])]
    return {"conversation_id": conversation_id, "processing_id": row["processing_id"],
            "account_id": row["account_id"] or None, "email_id": row["email_id"], "status": row["status"],
            "current_step": row["current_step"], "error_message": row["error_message"], "files": files}


def _estimated_completion(service: Service) -> str:
    """Now, plus the recent time per conversation for each round of workers ahead of this one."""
    ledger = service.session.ledger
    per_conversation = ledger.recent_seconds() or DEFAULT_ESTIMATE_SECONDS
    rounds = 1 + ledger.queue.depth() // service.workers.concurrency
    return utc_text(datetime.now(UTC) + timedelta(seconds=per_conversation * rounds))


def _readiness(service: Service) -> list[dict]:
    """The checks of `fedfina doctor` that failed (none: ready)."""

    try:
        checks = run_checks(service.settings)
    except FedfinaError as exc:
        return [{"backend": "configuration", "detail": service.settings.redact(str(exc))}]
    return [{"backend": c.backend, "detail": service.settings.redact(c.detail)} for c in checks if not c.passed]


def _ok(status: int, message: str, data: dict | None = None) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "message": message}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status)


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"success": False, "message": message, **extra}, status_code=status)
