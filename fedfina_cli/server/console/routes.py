"""The console's pages and actions (SPEC "The console"), served by `fedfina serve` at /console.

Server-rendered HTML (Jinja2, templates/), a little JavaScript (static/console.js: transcript
times seek the audio), no request leaves for anywhere else. Off (404) without FEDFINA_PUBLIC_URL.

Access, in one place (``_visible``): an officer sees the conversations emailed to them and gets
404 for any other, whatever the URL; an admin sees all. Every POST needs the CSRF token of the
person's session (or of the form cookie, before sign-in) and, when the browser sends an Origin,
FEDFINA_PUBLIC_URL's. Every sign-in and action is in the audit log with who did it.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from fedfina_cli.core.errors import FedfinaError
from fedfina_cli.core.validation import ACCOUNT_ID
from fedfina_cli.ledger.console import Listing, ago
from fedfina_cli.ledger.rows import ConversationRow
from fedfina_cli.pipeline.jobs import Job, RunOptions
from fedfina_cli.pipeline.purge import storage_of
from fedfina_cli.server.console import auth
from fedfina_cli.server.console.auth import Viewer
from fedfina_cli.server.console.pages import STATUSES, conversation_page, list_page, operations_page
from fedfina_cli.server.http import read_body
from fedfina_cli.server.service import Service, ServiceDep

log = logging.getLogger("fedfina.console")

_R = TypeVar("_R", bound=Response)
FORM_LIMIT = 16 * 1024
AUDIO_PIECE = 1024 * 1024  # at most this much of the recording per Range reply: the browser asks on
STATIC = Path(__file__).parent / "static"
FONTS = Path(__file__).parents[2] / "report" / "fonts"
# Served from the report's bundled fonts: the console reads in every script the report does.
FONT_FILES = {p.name for p in FONTS.glob("NotoSans*.ttf")} | {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf"}
STATIC_FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
MAX_REASON = 200

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
       "media-src 'self'; frame-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")

_templates = Environment(loader=PackageLoader("fedfina_cli.server.console", "templates"),
                         autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


class ConsoleRefused(Exception):
    """A console request answered with an HTML page of this status (create_app's handler)."""

    def __init__(self, status: int, title: str, message: str):
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _on(request: Request) -> None:
    if request.app.state.service.settings.public_url is None:
        raise ConsoleRefused(404, "Not found", "The console is off on this server (FEDFINA_PUBLIC_URL is not set).")


router = APIRouter(prefix="/console", dependencies=[Depends(_on)])


# --- plumbing ----------------------------------------------------------------------------

def page(request: Request, template: str, status: int = 200, viewer: Viewer | None = None,
         **values: Any) -> HTMLResponse:
    form_secret = request.cookies.get(auth.FORM_COOKIE)
    new_secret = None
    if (viewer is None or viewer.via == "proxy") and (not form_secret or len(form_secret) > 128):
        form_secret = new_secret = auth.new_token()
    csrf = viewer.csrf if viewer is not None and viewer.via == "link" else auth.csrf_of(form_secret or "")
    html = _templates.get_template(template).render(viewer=viewer, csrf=csrf, statuses=STATUSES, **values)
    response = HTMLResponse(html, status_code=status)
    if new_secret:
        settings = request.app.state.service.settings
        response.set_cookie(auth.FORM_COOKIE, new_secret, httponly=True, samesite="strict", path="/console",
                            secure=auth.secure_cookies(settings))
    return _hardened(response)


def _hardened(response: _R) -> _R:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # A sign-in link's token stays off other sites' logs. (Not no-referrer: a browser then sends
    # "Origin: null" with the console's own forms, and the Origin check refuses them.)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_page(request: Request, exc: ConsoleRefused) -> HTMLResponse:
    return page(request, "message.html", exc.status, title=exc.title, message=exc.message)


async def _form(request: Request) -> dict[str, str]:
    server: Service = request.app.state.service
    raw = await read_body(request, FORM_LIMIT)
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise ConsoleRefused(400, "Bad request", "The form could not be read; go back and try again.") from None
    form = {key: values[0] for key, values in parsed.items()}
    if not auth.origin_allowed(request, server.settings):
        raise ConsoleRefused(403, "Refused", "This form was sent from another site.")
    return form


Form = Annotated[dict[str, str], Depends(_form)]


def _viewer(request: Request, server: Service) -> Viewer | None:
    return auth.viewer_of(request, server.settings, server.session.ledger.console)


async def signed_in(request: Request, server: ServiceDep) -> Viewer:
    viewer = await run_in_threadpool(_viewer, request, server)
    if viewer is None:
        raise ConsoleRefused(401, "Sign in", "Sign in to use the console.")
    return viewer


SignedIn = Annotated[Viewer, Depends(signed_in)]


def _checked(viewer: Viewer, form: dict[str, str]) -> None:
    if not viewer.csrf or not auth.same(form.get("csrf"), viewer.csrf):
        raise ConsoleRefused(403, "Refused", "This form has expired; reload the page and try again.")


def _checked_before_sign_in(request: Request, form: dict[str, str], then: str) -> None:
    """A form sent before sign-in carries the value its page derived from the form cookie."""
    form_secret = request.cookies.get(auth.FORM_COOKIE) or ""
    if not form_secret or not auth.same(form.get("csrf"), auth.csrf_of(form_secret)):
        raise ConsoleRefused(403, "Refused", f"This form has expired; {then}.")


def _link_gone(request: Request) -> HTMLResponse:
    return page(request, "message.html", 410, title="Link used or expired",
                message="This sign-in link was used already or is over 15 minutes old. Ask for a new one.",
                link=("/console/login", "Ask for a new link"))


def _admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise ConsoleRefused(404, "Not found", "No such page.")


def _visible(server: Service, viewer: Viewer, processing_id: int) -> ConversationRow:
    """The conversation, if this person may see it; 404 alike for one that is not there and one
    that is someone else's (an officer learns nothing from an id)."""
    row = server.session.ledger.console.conversation(processing_id, viewer.only)
    if row is None:
        raise ConsoleRefused(404, "Not found", "No such conversation, or it was not sent to you.")
    return row


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# --- sign-in -------------------------------------------------------------------------------

@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return page(request, "login.html")


@router.post("/login")
async def login(request: Request, server: ServiceDep, form: Form, background: BackgroundTasks) -> HTMLResponse:
    _checked_before_sign_in(request, form, "reload the page and try again")
    typed = form.get("email", "")[:320]
    client = auth.client_of(request, server.settings)
    limited = await run_in_threadpool(_count_request, server, typed, client)
    if limited:
        response = page(request, "message.html", 429, title="Too many requests",
                        message="Too many sign-in links were asked for; wait 15 minutes and try again.")
        response.headers["Retry-After"] = str(auth.LIMIT_WINDOW_SECONDS)
        return response
    # The same reply for any address, sent before anything is looked up: the link (if any) is made
    # and mailed after it, so neither the words nor the time say who may sign in.
    background.add_task(run_in_threadpool, _send_link, server, typed, client)
    return page(request, "login_sent.html")


def _count_request(server: Service, typed: str, client: str) -> bool:
    """Record a sign-in request; True when it is over a limit (then nothing is sent)."""
    store = server.session.ledger.console
    key = auth.digest(auth.normal_address(typed) or typed.strip().lower())
    by_address, by_client = store.count_requests(key, client, ago(auth.LIMIT_WINDOW_SECONDS))
    if by_address >= auth.PER_ADDRESS or by_client >= auth.PER_CLIENT:
        return True
    store.record_request(key, client)
    return False


def _send_link(server: Service, typed: str, client: str) -> None:
    settings, store = server.settings, server.session.ledger.console
    email = auth.normal_address(typed)
    if email is None or not store.may_sign_in(email, settings.console_admins):
        store.audit("link-refused", f"a sign-in link was asked for an address that may not sign in, from {client}")
        return
    token = auth.new_token()
    store.create_link(auth.digest(token), email, auth.LINK_SECONDS)
    link = f"{settings.public_url}/console/signin?{urlencode({'token': token})}"
    mailer = server.session.backends.mailer
    message = EmailMessage()
    message["From"] = mailer.sender
    message["To"] = email
    message["Subject"] = "Your fedfina console sign-in link"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="fedfina")
    message.set_content(
        "Someone (we hope you) asked to sign in to the fedfina console.\n\n"
        f"Open this link within 15 minutes, then press \"Sign in\":\n\n{link}\n\n"
        "The link works once. If you did not ask for it, ignore this email: nobody can sign in without it.\n",
        cte="7bit")  # the link on one line, as written (quoted-printable broke it with "=" at 76 columns)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    try:
        mailer.send(message, "console", f"signin-{stamp}-{auth.digest(token)[:8]}", lambda: None)
    except FedfinaError as exc:
        log.error("the sign-in link for a console user could not be sent: %s", settings.redact(str(exc)))
        return
    store.audit("link-sent", f"sign-in link sent to {email} (asked from {client})")


@router.get("/signin")
async def signin_page(request: Request, server: ServiceDep) -> HTMLResponse:
    # A GET never signs in: mail scanners open every link in a message. The button below does.
    token = request.query_params.get("token", "")[:128]
    usable = bool(token) and await run_in_threadpool(server.session.ledger.console.link_is_usable,
                                                     auth.digest(token))
    if not usable:
        return _link_gone(request)
    return page(request, "signin.html", token=token)


@router.post("/signin")
async def signin(request: Request, server: ServiceDep, form: Form) -> Response:
    _checked_before_sign_in(request, form, "open the link from your email again")
    token = form.get("token", "")[:128]
    client = auth.client_of(request, server.settings)
    session_token = auth.new_token()
    email = await run_in_threadpool(_start_session, server, token, session_token, client)
    if email is None:
        return _link_gone(request)
    response = _see_other("/console")
    response.set_cookie(auth.SESSION_COOKIE, session_token, max_age=int(server.settings.console_session_hours * 3600),
                        httponly=True, samesite="lax", secure=auth.secure_cookies(server.settings), path="/console")
    return _hardened(response)


def _start_session(server: Service, token: str, session_token: str, client: str) -> str | None:
    settings, store = server.settings, server.session.ledger.console
    email = store.use_link(auth.digest(token)) if token else None
    if email is None:
        return None
    is_admin = email in settings.console_admins
    store.start_session(auth.digest(session_token), email, is_admin, "link", client,
                        settings.console_session_hours * 3600)
    store.audit("signin", f"{email} signed in by emailed link{' (admin)' if is_admin else ''}, from {client}")
    return email


@router.post("/signout")
async def signout(request: Request, server: ServiceDep, viewer: SignedIn, form: Form) -> Response:
    _checked(viewer, form)
    if viewer.session_sha256:
        store = server.session.ledger.console
        await run_in_threadpool(store.end_session, viewer.session_sha256)
        await run_in_threadpool(store.audit, "signout", f"{viewer.email} signed out")
    response = _see_other("/console/login")
    response.delete_cookie(auth.SESSION_COOKIE, path="/console")
    return _hardened(response)


# --- pages ---------------------------------------------------------------------------------

@router.get("")
async def conversations(request: Request, server: ServiceDep) -> Response:
    viewer = await run_in_threadpool(_viewer, request, server)
    if viewer is None:
        return _see_other("/console/login")
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
        return conversation_page(server.session, _visible(server, viewer, processing_id))

    found = await run_in_threadpool(read)
    may_resend = found.row["status"] == "completed" and (
        viewer.is_admin or (found.row["email_id"] or "").lower() == viewer.email)
    return page(request, "conversation.html", viewer=viewer, c=found, may_resend=may_resend,
                notice=request.query_params.get("done"))


@router.get("/c/{processing_id}/report.pdf")
async def report(request: Request, processing_id: int, server: ServiceDep, viewer: SignedIn) -> Response:
    def read() -> tuple[bytes, str]:
        row = _visible(server, viewer, processing_id)
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
        read, file = _file(server, _visible(server, viewer, processing_id), "audio")
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
    _admin(viewer)
    found = await run_in_threadpool(operations_page, server.session)
    return page(request, "ops.html", viewer=viewer, ops=found, in_this_process=server.workers.busy)


# --- actions -------------------------------------------------------------------------------

@router.post("/c/{processing_id}/retry")
async def retry(processing_id: int, server: ServiceDep, viewer: SignedIn, form: Form) -> Response:
    _checked(viewer, form)
    _admin(viewer)

    def act() -> str:
        row = _visible(server, viewer, processing_id)
        if row["status"] != "failed":
            raise ConsoleRefused(409, "Not retried", f"Only a failed conversation is retried; this one is "
                                                     f"{row['status']}.")
        row, queued = server.session.ledger.queue.enqueue(row["conversation_id"], row["account_id"], None, "console")
        server.session.ledger.console.audit("retry", f"retry asked by {viewer.email}", row)
        return "queued" if queued else "not-queued"

    done = await run_in_threadpool(act)
    server.workers.wake()
    return _see_other(f"/console/c/{processing_id}?done={done}")


@router.post("/c/{processing_id}/resend")
async def resend(processing_id: int, server: ServiceDep, viewer: SignedIn, form: Form) -> Response:
    _checked(viewer, form)

    def act() -> str:
        row = _visible(server, viewer, processing_id)
        if not viewer.is_admin and (row["email_id"] or "").lower() != viewer.email:
            raise ConsoleRefused(404, "Not found", "No such conversation, or it was not sent to you.")
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
    return _see_other(f"/console/c/{processing_id}?done={done}")


@router.post("/c/{processing_id}/hold")
async def hold(processing_id: int, server: ServiceDep, viewer: SignedIn, form: Form) -> Response:
    _checked(viewer, form)
    _admin(viewer)
    release = form.get("action") == "release"
    reason = " ".join(form.get("reason", "").split())[:MAX_REASON] or "no reason given"

    def act() -> str:
        row = _visible(server, viewer, processing_id)
        ledger = server.session.ledger
        row = ledger.retention.set_hold(row["processing_id"], not release)
        # As `fedfina hold` records it (show and purge read these lines), with who did it.
        ledger.audit(row, "hold", "released" if release else "placed", "released" if release else "held",
                     f"{reason} (by {viewer.email}, console)")
        return "released" if release else "held"

    done = await run_in_threadpool(act)
    return _see_other(f"/console/c/{processing_id}?done={done}")


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


def done_message(done: str | None) -> str | None:
    return {"queued": "Queued again: a worker will process it shortly.",
            "not-queued": "Not queued: it is queued or being processed already.",
            "resent": "The email was sent again.",
            "resend-failed": "The email could not be sent; the audit log below says why.",
            "held": "Placed on legal hold: purge will not delete its files.",
            "released": "Legal hold released: purge deletes its files once past retention."}.get(done or "")


def when(moment: str | None) -> str:
    """A ledger time as people read it in the console: 2026-12-06 08:55 UTC."""
    return f"{moment[:10]} {moment[11:16]} UTC" if moment and len(moment) >= 16 else (moment or "")


_templates.filters["when"] = when
_templates.globals["done_message"] = done_message
_templates.globals["report_fonts"] = sorted(FONT_FILES)
