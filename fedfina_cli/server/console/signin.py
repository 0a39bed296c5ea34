"""Signing in to the console (SPEC "The console"): a link by email, single use, 15 minutes, from
FEDFINA_PUBLIC_URL; a page whose one button signs in (mail scanners open every link); a session
kept in the ledger; limits on asking; signing out. Each sign-in in the audit log."""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from fedfina_cli.core.errors import FedfinaError
from fedfina_cli.core.timefmt import utc_in
from fedfina_cli.server.console import auth
from fedfina_cli.server.console.web import ConsoleRefused, Form, SignedIn, checked, hardened, page, see_other
from fedfina_cli.server.service import Service, ServiceDep

log = logging.getLogger("fedfina.console")

router = APIRouter()  # under routes.router: its prefix and the console-on check


def _checked_before_sign_in(request: Request, form: dict[str, str], then: str) -> None:
    """A form sent before sign-in carries the value its page derived from the form cookie."""
    form_secret = request.cookies.get(auth.FORM_COOKIE) or ""
    if not form_secret or not auth.same(form.get("csrf"), auth.csrf_of(form_secret)):
        raise ConsoleRefused(403, "Refused", f"This form has expired; {then}.")


def _link_gone(request: Request) -> HTMLResponse:
    return page(request, "message.html", 410, title="Link used or expired",
                message="This sign-in link was used already or is over 15 minutes old. Ask for a new one.",
                link=("/console/login", "Ask for a new link"))


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
    by_address, by_client = store.count_requests(key, client, utc_in(-auth.LIMIT_WINDOW_SECONDS))
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
    response = see_other("/console")
    response.set_cookie(auth.SESSION_COOKIE, session_token, max_age=int(server.settings.console_session_hours * 3600),
                        httponly=True, samesite="lax", secure=auth.secure_cookies(server.settings), path="/console")
    return hardened(response)


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
    checked(viewer, form)
    if viewer.session_sha256:
        store = server.session.ledger.console
        await run_in_threadpool(store.end_session, viewer.session_sha256)
        await run_in_threadpool(store.audit, "signout", f"{viewer.email} signed out")
    response = see_other("/console/login")
    response.delete_cookie(auth.SESSION_COOKIE, path="/console")
    return hardened(response)
