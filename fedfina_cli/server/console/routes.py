"""The console's pages, files and actions (SPEC "The console"), served by `fedfina serve` at
/console; off (404) without FEDFINA_PUBLIC_URL. Signing in is signin.py; how a page is answered,
and who may see what, web.py. Every action is in the audit log with who did it."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from fedfina_cli.core.errors import FedfinaError
from fedfina_cli.core.validation import ACCOUNT_ID
from fedfina_cli.ledger.console import Listing
from fedfina_cli.ledger.rows import ConversationRow
from fedfina_cli.pipeline.jobs import Job, RunOptions
from fedfina_cli.pipeline.purge import storage_of
from fedfina_cli.server.console import signin
from fedfina_cli.server.console.auth import Viewer
from fedfina_cli.server.console.pages import STATUSES, conversation_page, list_page, operations_page
from fedfina_cli.server.console.web import (
    ConsoleRefused,
    Form,
    SignedIn,
    admin_only,
    checked,
    console_on,
    page,
    see_other,
    viewer_of,
    visible,
)
from fedfina_cli.server.service import Service, ServiceDep

AUDIO_PIECE = 1024 * 1024  # at most this much of the recording per Range reply: the browser asks on
STATIC = Path(__file__).parent / "static"
FONTS = Path(__file__).parents[2] / "report" / "fonts"
# Served from the report's bundled fonts: the console reads in every script the report does.
FONT_FILES = {p.name for p in FONTS.glob("NotoSans*.ttf")} | {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf"}
STATIC_FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
MAX_REASON = 200


router = APIRouter(prefix="/console", dependencies=[Depends(console_on)])
router.include_router(signin.router)


@router.get("")
async def conversations(request: Request, server: ServiceDep) -> Response:
    viewer = await run_in_threadpool(viewer_of, request, server)
    if viewer is None:
        return see_other("/console/login")
    query = request.query_params
    listing = _listing(viewer, query)
    found, accounts = await run_in_threadpool(
        lambda: (list_page(server.session, listing),
                 server.session.ledger.console.accounts() if viewer.is_admin else []))
    shown = {k: v for k, v in query.items() if k != "after" and v}
    return page(request, "list.html", viewer=viewer, found=found, accounts=accounts, query=shown,
                next_query=urlencode({**shown, "after": found.next_after}) if found.next_after else None,
                first_page=listing.after is None)


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _listing(viewer: Viewer, query: Any) -> Listing:
    def day(name: str) -> str | None:
        text = query.get(name) or ""
        if not text:
            return None
        if not _DAY.fullmatch(text):
            raise ConsoleRefused(400, "Bad request", f"{name}: expected a date like 2026-12-06.")
        try:
            datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            raise ConsoleRefused(400, "Bad request", f"{name}: {text} is not a date.") from None
        return text

    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise ConsoleRefused(400, "Bad request", f"status: expected one of {', '.join(STATUSES)}.")
    account = query.get("account") or None
    if account is not None and not ACCOUNT_ID.fullmatch(account):
        raise ConsoleRefused(400, "Bad request", "account: not an account id.")
    search = " ".join((query.get("q") or "").split())[:80] or None
    after = None
    if cursor := query.get("after"):
        moment, _, number = cursor.rpartition("|")
        if not number.isdigit() or not moment or len(moment) > 40:
            raise ConsoleRefused(400, "Bad request", "after: not a page of this list.")
        after = (moment, int(number))
    return Listing(viewer=viewer.only, status=status, account_id=account, day_from=day("from"), day_to=day("to"),
                   search=search, after=after)


@router.get("/c/{processing_id}")
async def conversation(request: Request, processing_id: int, server: ServiceDep, viewer: SignedIn) -> HTMLResponse:
    def read() -> Any:
        return conversation_page(server.session, visible(server, viewer, processing_id))

    found = await run_in_threadpool(read)
    may_resend = found.row["status"] == "completed" and not found.row.get("purged_at") and (
        viewer.is_admin or (found.row["email_id"] or "").lower() == viewer.email)
    return page(request, "conversation.html", viewer=viewer, c=found, may_resend=may_resend,
                notice=request.query_params.get("done"))


@router.get("/c/{processing_id}/report.pdf")
async def report(request: Request, processing_id: int, server: ServiceDep, viewer: SignedIn) -> Response:
    def read() -> tuple[bytes, str]:
        row = visible(server, viewer, processing_id)
        data, _ = _file(server, row, "report")
        return data(0, None), f"{row['conversation_id']}.pdf"

    data, name = await run_in_threadpool(read)
    response = Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "frame-ancestors 'self'"})
    return response


def _file(server: Service, row: ConversationRow, file_type: str) -> tuple[Any, dict[str, Any]]:
    """A reader (start, length or None: the rest) of one of the conversation's stored files, and its row."""
    files = [f for f in server.session.ledger.files_for(row["conversation_id"], row["account_id"])
             if f["file_type"] == file_type and not f.get("deleted_at")]
    holder = storage_of(files[-1], server.session.backends.storage) if files else None
    if holder is None:
        raise ConsoleRefused(404, "Not found", f"This conversation has no {file_type} in storage.")
    key = files[-1]["object_key"]

    def read(start: int, length: int | None) -> bytes:
        try:
            return holder.get_bytes(key) if length is None and start == 0 else holder.get_range(key, start, length or 0)
        except FedfinaError:
            raise ConsoleRefused(404, "Not found", f"This conversation's {file_type} is not in storage.") from None

    return read, files[-1]


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@router.get("/c/{processing_id}/audio")
async def audio(request: Request, processing_id: int, server: ServiceDep, viewer: SignedIn) -> Response:
    """The recording through the console (MinIO need not be public), a Range at a time."""
    def locate() -> tuple[Any, int, str]:
        read, file = _file(server, visible(server, viewer, processing_id), "audio")
        return read, int(file.get("size_bytes") or 0), str(file.get("content_type") or "audio/mpeg")

    read, size, media = await run_in_threadpool(locate)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
    asked = request.headers.get("range")
    if asked is None:
        async def whole() -> Any:
            for start in range(0, size, AUDIO_PIECE):
                yield await run_in_threadpool(read, start, min(AUDIO_PIECE, size - start))

        return StreamingResponse(whole(), media_type=media, headers={**headers, "Content-Length": str(size)})
    matched = _RANGE.fullmatch(asked.strip())
    if matched is None or not (matched[1] or matched[2]):
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if matched[1]:
        start = int(matched[1])
        end = min(int(matched[2]), size - 1) if matched[2] else size - 1
    else:  # the last N bytes
        start, end = max(size - int(matched[2]), 0), size - 1
    if start >= size or end < start:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    end = min(end, start + AUDIO_PIECE - 1)  # a shorter reply than asked is allowed; the player asks on
    data = await run_in_threadpool(read, start, end - start + 1)
    return Response(data, status_code=206, media_type=media,
                    headers={**headers, "Content-Range": f"bytes {start}-{start + len(data) - 1}/{size}"})


@router.get("/ops")
async def operations(request: Request, server: ServiceDep, viewer: SignedIn) -> HTMLResponse:
    admin_only(viewer)
    found = await run_in_threadpool(operations_page, server.session)
    return page(request, "ops.html", viewer=viewer, ops=found, in_this_process=server.workers.busy)


# --- actions -------------------------------------------------------------------------------

@router.post("/c/{processing_id}/retry")
async def retry(processing_id: int, server: ServiceDep, viewer: SignedIn, form: Form) -> Response:
    checked(viewer, form)
    admin_only(viewer)

    def act() -> str:
        row = visible(server, viewer, processing_id)
        if row["status"] != "failed":
            raise ConsoleRefused(409, "Not retried", f"Only a failed conversation is retried; this one is "
                                                     f"{row['status']}.")
        row, queued = server.session.ledger.queue.enqueue(row["conversation_id"], row["account_id"], None, "console")
        server.session.ledger.console.audit("retry", f"retry asked by {viewer.email}", row)
        return "queued" if queued else "not-queued"

    done = await run_in_threadpool(act)
    server.workers.wake()
    return see_other(f"/console/c/{processing_id}?done={done}")


@router.post("/c/{processing_id}/resend")
async def resend(processing_id: int, server: ServiceDep, viewer: SignedIn, form: Form) -> Response:
    checked(viewer, form)

    def act() -> str:
        row = visible(server, viewer, processing_id)
        if not viewer.is_admin and (row["email_id"] or "").lower() != viewer.email:
            raise ConsoleRefused(404, "Not found", "No such conversation, or it was not sent to you.")
        if row.get("purged_at"):
            raise ConsoleRefused(409, "Not sent", "Its files were purged (past the account's retention): there is "
                                                  "no report left to send.")
        if row["status"] != "completed":
            raise ConsoleRefused(409, "Not sent", f"Only a completed conversation's email is sent again; this one "
                                                  f"is {row['status']}.")
        server.session.ledger.console.audit("resend", f"email sent again, asked by {viewer.email}", row)
        job = Job(row["conversation_id"], email_id=row["email_id"], account_id=row["account_id"])
        outcomes = server.session.process_batch([job], RunOptions(stages=("email",), resend=True), lambda o: None)
        outcome = outcomes[0]
        if not outcome.ok:
            return "resend-failed"
        return "resent" if "email" in outcome.ran else "resend-" + outcome.status

    done = await run_in_threadpool(act)
    return see_other(f"/console/c/{processing_id}?done={done}")


@router.post("/c/{processing_id}/hold")
async def hold(processing_id: int, server: ServiceDep, viewer: SignedIn, form: Form) -> Response:
    checked(viewer, form)
    admin_only(viewer)
    release = form.get("action") == "release"
    reason = " ".join(form.get("reason", "").split())[:MAX_REASON] or "no reason given"

    def act() -> str:
        row = visible(server, viewer, processing_id)
        ledger = server.session.ledger
        row = ledger.retention.set_hold(row["processing_id"], not release)
        # As `fedfina hold` records it (show and purge read these lines), with who did it.
        ledger.audit(row, "hold", "released" if release else "placed", "released" if release else "held",
                     f"{reason} (by {viewer.email}, console)")
        return "released" if release else "held"

    done = await run_in_threadpool(act)
    return see_other(f"/console/c/{processing_id}?done={done}")


# --- static files --------------------------------------------------------------------------

@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name in STATIC_FILES:
        path, media = STATIC / name, STATIC_FILES[name]
    elif name in FONT_FILES:
        path, media = FONTS / name, "font/ttf"
    else:
        raise ConsoleRefused(404, "Not found", "No such file.")
    return Response(path.read_bytes(), media_type=media, headers={
        "Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})
