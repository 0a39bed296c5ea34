"""The HTTP API of `fedfina serve` (SPEC "Serving"): the app, its error handling and access log.

Every route of the API answers JSON; every error is ``{"success": false, "message": ...}``.
The console (console/, under /console) answers HTML pages, errors included.
A request is answered only once what it brought is durably recorded (the
ledger row ``queued``, the webhook's conversation in storage); the processing
happens afterwards, in the workers. The routes are in routes/ (api, webhooks,
ops), one APIRouter each; what they share is server/http.py (replies, bodies
read with a size limit) and server/service.py (the process's Service, the API key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from fedfina_cli.core.errors import DiskFull
from fedfina_cli.server.console import routes as console
from fedfina_cli.server.console.web import ConsoleRefused, error_page
from fedfina_cli.server.http import Refused, error
from fedfina_cli.server.routes import api, ops, webhooks
from fedfina_cli.server.service import Service

__all__ = ["Service", "create_app"]

log = logging.getLogger("fedfina.server")
access = logging.getLogger("fedfina.access")


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="fedfina", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    for area in (api, webhooks, ops, console):
        app.include_router(area.router)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
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

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return error(exc.status, exc.message, **exc.extra)

    @app.exception_handler(ConsoleRefused)
    async def console_refused(request: Request, exc: ConsoleRefused) -> Response:
        if exc.status == 401 and request.method == "GET":  # a page asked for before signing in
            return RedirectResponse("/console/login", status_code=303)
        return await run_in_threadpool(error_page, request, exc)  # it looks up who is signed in

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/console"):  # a person's browser: a page, not JSON
            title = {404: "Not found", 405: "Not allowed"}.get(exc.status_code, "Error")
            return await run_in_threadpool(error_page, request, ConsoleRefused(exc.status_code, title, "No such page."))
        message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return error(exc.status_code, message)

    @app.exception_handler(DiskFull)
    async def disk_full(request: Request, exc: DiskFull) -> JSONResponse:
        # Nothing was recorded: 503, so the caller (ElevenLabs, a script) tries again later.
        log.error("disk full on %s %s: %s", request.method, request.url.path, exc)
        response = error(503, "disk full: the request could not be recorded; try again later")
        response.headers["Retry-After"] = "60"
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s: %s", request.method, request.url.path,
                  service.settings.redact(f"{type(exc).__name__}: {exc}"))
        return error(500, "internal error; see the server's log")

    return app
