"""The seed's API (SPEC "Serving"): queue a conversation, and ask how it is going. X-API-Key required."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fedfina_cli.core import accounts
from fedfina_cli.core.accounts import AccountSettings
from fedfina_cli.core.errors import StageError
from fedfina_cli.core.jsonio import loads
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
    if asked.account_id and asked.email_id:
        result = await run_in_threadpool(intake.accept_request, server.session.ledger, asked.conversation_id,
                                         asked.account_id, asked.email_id)
    else:  # the conversation names them: read it now (as `run -c` does), and keep it for the worker
        result = await run_in_threadpool(_accept_by_its_variables, server, asked)
    if result.queued_now:
        server.workers.wake()
    if result.status == "completed":
        return ok(200, "Conversation already processed", _reference(result.row, "completed"))
    estimate = await run_in_threadpool(_estimated_completion, server)
    # The seed's shape: "processing" from the caller's point of view (the row is `queued` until a
    # worker claims it), estimated_completion to the second.
    return ok(202, result.message, {**_reference(result.row, "processing"), "estimated_completion": estimate})


@router.get("/conversation/{conversation_id}")
async def conversation_status(conversation_id: str, request: Request,
                              server: ServiceDep) -> JSONResponse:
    values = {"conversation_id": conversation_id}
    if "account_id" in request.query_params:
        values["account_id"] = request.query_params["account_id"]
    asked = parsed(StatusQuery, values)
    # The raw conversation is never masked (SPEC "Privacy"): a link to it only when asked for.
    raw_too = request.query_params.get("include") == "conversation"
    data = await run_in_threadpool(_conversation_view, server, asked.conversation_id, asked.account_id, raw_too)
    return ok(200, "ok", data)


def _accept_by_its_variables(server: Service, asked: PostprocessRequest) -> intake.Intake:
    """A request without its account or recipient: the conversation's dynamic variables give them."""
    elevenlabs = server.session.backends.elevenlabs
    assert elevenlabs is not None  # checked by the route
    try:
        fetched = elevenlabs.get_conversation(asked.conversation_id)
    except StageError as exc:
        status = 404 if getattr(exc, "status", None) == 404 else 503
        raise Refused(status, f"cannot read {asked.conversation_id} from ElevenLabs to find its account and "
                              f"recipient ({exc}); pass account_id and email_id, or try again") from None
    payload = loads(fetched.raw)
    variables = payload.setdefault("conversation_initiation_client_data", {}).setdefault("dynamic_variables", {})
    # What the request gives wins over the conversation's own.
    if asked.account_id:
        variables["account_id"] = asked.account_id
    if asked.email_id:
        variables["email_id"] = asked.email_id
    result = intake.accept_conversation(server.session.ledger, server.session.backends.storage, payload,
                                      "request")
    if result.status == "failed":
        missing = [name for name, given in (("account_id", asked.account_id), ("email_id", asked.email_id))
                   if not given and not fetched.conversation.dynamic(*_NAMES[name])]
        raise Refused(422, result.message, errors=[
            {"field": name, "message": "not given, and the conversation's dynamic variables have none"}
            for name in missing] or [{"field": "body", "message": result.message}])
    return result


_NAMES = {"account_id": ("account_id", "account"), "email_id": ("email_id", "email")}


def processing_id(row: ConversationRow) -> str:
    """The seed's `proc_<n>`: the ledger row's id, as the POST reply and the GET view name it."""
    return f"proc_{row['processing_id']}"


def _reference(row: ConversationRow | None, status: str) -> dict[str, object]:
    if row is None:
        return {"conversation_id": None, "processing_id": None, "status": status}
    return {"conversation_id": row["conversation_id"], "processing_id": processing_id(row), "status": status}


def _conversation_view(server: Service, conversation_id: str, account: str | None,
                       raw_too: bool = False) -> dict[str, Any]:
    ledger, storage = server.session.ledger, server.session.backends.storage
    rows = [r for r in ledger.rows_for(conversation_id, account) if r["account_id"] or account is None]
    if not rows:
        raise Refused(404, f"no conversation {conversation_id}" + (f" in account {account}" if account else ""))
    if len(rows) > 1:
        names = ", ".join(sorted(r["account_id"] or "(none)" for r in rows))
        raise Refused(409, f"{conversation_id} is recorded under several accounts ({names}); "
                           "pass ?account_id=")
    row = rows[0]
    # Links last as long as the account's email links (they were 7 days for every account).
    lifetime = AccountSettings().overridden(accounts.from_row(ledger.account_settings(row["account_id"]))) \
        .link_expiry_seconds

    def url(file_type: str, key: str) -> str | None:
        if not storage.shareable or (file_type == "conversation" and not raw_too):
            return None
        return storage.locate(key, lifetime)

    files = [{"file_type": f["file_type"], "object_key": f["object_key"], "url": url(f["file_type"], f["object_key"])}
             for f in ledger.files_for(conversation_id, row["account_id"])]
    return {"conversation_id": conversation_id, "processing_id": processing_id(row),
            "account_id": row["account_id"] or None, "email_id": row["email_id"], "status": row["status"],
            "current_step": row["current_step"], "error_message": row["error_message"], "files": files}


def _estimated_completion(server: Service) -> str:
    """Now, plus the recent time per conversation for each round of workers ahead of this one."""
    ledger = server.session.ledger
    per_conversation = ledger.recent_seconds() or DEFAULT_ESTIMATE_SECONDS
    rounds = 1 + ledger.queue.depth() // server.workers.concurrency
    moment = datetime.now(UTC) + timedelta(seconds=per_conversation * rounds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # the seed's format, to the second
