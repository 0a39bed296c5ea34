"""How the console answers (SPEC "The console"): its pages (Jinja2, templates/), the headers every
one carries (a strict Content-Security-Policy, nothing fetched from elsewhere), its errors as
pages, forms read with a size limit and their CSRF checks, and who is signed in (auth.py).

Access, in one place (``visible``): an officer sees the conversations emailed to them and gets
404 for any other, whatever the URL; an admin sees all. Every POST needs the CSRF token of the
person's session (or of the form cookie, before sign-in) and, when the browser sends an Origin,
FEDFINA_PUBLIC_URL's.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from fedfina_cli.ledger.rows import ConversationRow
from fedfina_cli.server.console import auth, words
from fedfina_cli.server.console.auth import Viewer
from fedfina_cli.server.console.pages import STATUSES
from fedfina_cli.server.http import read_body
from fedfina_cli.server.service import Service, ServiceDep

_R = TypeVar("_R", bound=Response)
FORM_LIMIT = 16 * 1024
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


def console_on(request: Request) -> None:
    if request.app.state.service.settings.public_url is None:
        raise ConsoleRefused(404, "Not found", "The console is off on this server (FEDFINA_PUBLIC_URL is not set).")


def page(request: Request, template: str, status: int = 200, viewer: Viewer | None = None,
         **values: Any) -> HTMLResponse:
    form_secret = request.cookies.get(auth.FORM_COOKIE)
    new_secret = None
    if (viewer is None or viewer.via == "proxy") and (not form_secret or len(form_secret) > 128):
        form_secret = new_secret = auth.new_token()
    csrf = viewer.csrf if viewer is not None and viewer.via == "link" else auth.csrf_of(form_secret or "")
    language = words.language_of(request)
    html = _templates.get_template(template).render(
        viewer=viewer, csrf=csrf, statuses=STATUSES, t=words.translator(language), lang=language,
        languages=words.LANGUAGES, language_links=_language_links(request), **values)
    response = HTMLResponse(html, status_code=status)
    settings = request.app.state.service.settings
    if new_secret:
        response.set_cookie(auth.FORM_COOKIE, new_secret, httponly=True, samesite="strict", path="/console",
                            secure=auth.secure_cookies(settings))
    if request.query_params.get("lang") in words.LANGUAGES:  # chosen from the header: kept for the next pages
        response.set_cookie(words.COOKIE, language, max_age=365 * 86400, samesite="lax", path="/console",
                            secure=auth.secure_cookies(settings))
    return hardened(response)


def _language_links(request: Request) -> dict[str, str]:
    """This page in each language: its path and query (a sign-in page keeps its token) with ?lang=."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return {code: f"{request.url.path}?{urlencode([*kept, ('lang', code)])}" for code in words.LANGUAGES}


def hardened(response: _R) -> _R:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # A sign-in link's token stays off other sites' logs. (Not no-referrer: a browser then sends
    # "Origin: null" with the console's own forms, and the Origin check refuses them.)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_page(request: Request, exc: ConsoleRefused) -> HTMLResponse:
    """The refusal as a page, with the header of whoever is signed in (their navigation and
    "Sign out", not an offer to sign in). Called in a worker thread: the lookup reads the ledger."""
    viewer = None
    if exc.status != 401 and request.app.state.service.settings.public_url is not None:
        with suppress(Exception):  # an error page must not fail: at worst it shows no one
            viewer = viewer_of(request, request.app.state.service)
    return page(request, "message.html", exc.status, viewer=viewer, title=exc.title, message=exc.message)


async def read_form(request: Request) -> dict[str, str]:
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


Form = Annotated[dict[str, str], Depends(read_form)]


def viewer_of(request: Request, server: Service) -> Viewer | None:
    return auth.viewer_of(request, server.settings, server.session.ledger.console)


async def signed_in(request: Request, server: ServiceDep) -> Viewer:
    viewer = await run_in_threadpool(viewer_of, request, server)
    if viewer is None:
        raise ConsoleRefused(401, "Sign in", "Sign in to use the console.")
    return viewer


SignedIn = Annotated[Viewer, Depends(signed_in)]


def checked(viewer: Viewer, form: dict[str, str]) -> None:
    if not viewer.csrf or not auth.same(form.get("csrf"), viewer.csrf):
        raise ConsoleRefused(403, "Refused", "This form has expired; reload the page and try again.")


def admin_only(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise ConsoleRefused(404, "Not found", "No such page.")


def visible(server: Service, viewer: Viewer, processing_id: int) -> ConversationRow:
    """The conversation, if this person may see it; 404 alike for one that is not there and one
    that is someone else's (an officer learns nothing from an id)."""
    row = server.session.ledger.console.conversation(processing_id, viewer.only)
    if row is None:
        raise ConsoleRefused(404, "Not found", "No such conversation, or it was not sent to you.")
    return row


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


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
