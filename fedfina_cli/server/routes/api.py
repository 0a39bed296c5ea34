"""The seed's API (SPEC "Serving"): queue a conversation, and ask how it is going. X-API-Key required."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fedfina_cli.core.timefmt import utc_text
from fedfina_cli.ledger.rows import ConversationRow
from fedfina_cli.pipeline import intake
from fedfina_cli.server.http import Refused, json_object, ok
from fedfina_cli.server.request_models import PostprocessRequest, StatusQuery, parsed
from fedfina_cli.server.service import Service, ServiceDep, require_api_key

# Until the ledger has seen conversations complete: a summary takes about this long.
DEFAULT_ESTIMATE_SECONDS = 60.0

router = APIRouter(prefix="/api/v1/postprocess", dependencies=[Depends(require_api_key)])


@router.post("/conversation")
async def postprocess(request: Request, server: ServiceDep) -> JSONResponse:
    asked = parsed(PostprocessRequest, await json_object(request, server.max_body_bytes))
    if server.session.backends.elevenlabs is None:
        raise Refused(503, "this server cannot fetch conversations from ElevenLabs: ELEVENLABS_API_KEY "
                           "is not set (its post-call webhooks still work)")
    result = await run_in_threadpool(intake.accept_request, server.session.ledger, asked.conversation_id,
                                     asked.account_id, asked.email_id)
    if result.queued_now:
        server.workers.wake()
    if result.status == "completed":
        return ok(200, "Conversation already processed", _reference(result.row))
    estimate = await run_in_threadpool(_estimated_completion, server)
    return ok(202, result.message, {**_reference(result.row), "estimated_completion": estimate})


@router.get("/conversation/{conversation_id}")
async def conversation_status(conversation_id: str, request: Request,
                              server: ServiceDep) -> JSONResponse:
    values = {"conversation_id": conversation_id}
    if "account_id" in request.query_params:
        values["account_id"] = request.query_params["account_id"]
    asked = parsed(StatusQuery, values)
    data = await run_in_threadpool(_conversation_view, server, asked.conversation_id, asked.account_id)
    return ok(200, "ok", data)


def _reference(row: ConversationRow | None) -> dict[str, object]:
    if row is None:
        return {"conversation_id": None, "processing_id": None, "status": None}
    return {"conversation_id": row["conversation_id"], "processing_id": row["processing_id"],
            "status": row["status"]}


def _conversation_view(server: Service, conversation_id: str, account: str | None) -> dict[str, Any]:
    ledger, storage = server.session.ledger, server.session.backends.storage
    rows = [r for r in ledger.rows_for(conversation_id, account) if r["account_id"] or account is None]
    if not rows:
        raise Refused(404, f"no conversation {conversation_id}" + (f" in account {account}" if account else ""))
    if len(rows) > 1:
        names = ", ".join(sorted(r["account_id"] or "(none)" for r in rows))
        raise Refused(409, f"{conversation_id} is recorded under several accounts ({names}); "
                           "pass ?account_id=")
    row = rows[0]
    files = [{"file_type": f["file_type"], "object_key": f["object_key"],
              "url": storage.locate(f["object_key"]) if storage.shareable else None}
             for f in ledger.files_for(conversation_id, row["account_id"])]
    return {"conversation_id": conversation_id, "processing_id": row["processing_id"],
            "account_id": row["account_id"] or None, "email_id": row["email_id"], "status": row["status"],
            "current_step": row["current_step"], "error_message": row["error_message"], "files": files}


def _estimated_completion(server: Service) -> str:
    """Now, plus the recent time per conversation for each round of workers ahead of this one."""
    ledger = server.session.ledger
    per_conversation = ledger.recent_seconds() or DEFAULT_ESTIMATE_SECONDS
    rounds = 1 + ledger.queue.depth() // server.workers.concurrency
    return utc_text(datetime.now(UTC) + timedelta(seconds=per_conversation * rounds))
