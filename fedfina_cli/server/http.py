"""The server's replies and its reading of request bodies (SPEC "Serving": every error is
``{"success": false, "message": ...}``; a body is read with a size limit before anything parses it)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from fedfina_cli.core.jsonio import BadJSON, loads


class Refused(Exception):
    """A request answered with an error status; its handler in create_app writes the body."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def ok(status: int, message: str, data: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "message": message}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status)


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"success": False, "message": message, **extra}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 past ``limit`` bytes (announced or streamed)."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isascii() and announced.isdigit() and int(announced) > limit:
        raise Refused(413, f"request body over the limit of {limit} bytes (FEDFINA_MAX_BODY_MB)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"request body over the limit of {limit} bytes (FEDFINA_MAX_BODY_MB)")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, or 422 with the seed's error shape."""
    raw = await read_body(request, limit)
    try:
        body = loads(raw)  # NaN, deep nesting, invalid UTF-8: a 422 naming it, not a 500
    except BadJSON as exc:
        raise Refused(422, "invalid request", errors=[{"field": "body", "message": f"not JSON: {exc}"}]) from None
    if not isinstance(body, dict):
        raise Refused(422, "invalid request", errors=[{"field": "body", "message": "not a JSON object"}])
    return body
