"""Operations: liveness, readiness (the checks of `fedfina doctor`, cached) and Prometheus metrics."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from fedfina_cli.core.errors import FedfinaError
from fedfina_cli.pipeline.doctor import run_checks
from fedfina_cli.server.service import Service, ServiceDep

READY_CACHE_SECONDS = 10.0

router = APIRouter()
_ready: dict[str, Any] = {"at": float("-inf"), "result": None}  # one server per process


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(server: ServiceDep) -> Any:
    if time.monotonic() - _ready["at"] > READY_CACHE_SECONDS:
        _ready["result"] = await run_in_threadpool(_readiness, server)
        _ready["at"] = time.monotonic()
    failed = _ready["result"]
    if failed:
        return JSONResponse({"status": "not ready", "failed": failed}, status_code=503)
    return {"status": "ready"}


@router.get("/metrics")
async def metrics(server: ServiceDep) -> Response:
    body = await run_in_threadpool(server.metrics.exposition)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def _readiness(server: Service) -> list[dict[str, str]]:
    """The checks of `fedfina doctor` that failed (none: ready)."""
    try:
        checks = run_checks(server.settings)
    except FedfinaError as exc:
        return [{"backend": "configuration", "detail": _public(server, str(exc))}]
    return [{"backend": c.backend, "detail": _public(server, c.detail)} for c in checks if not c.passed]


# A PostgreSQL URL, or a libpq keyword string (host=... dbname=...).
_CONNECTION_STRING = re.compile(r"postgres(?:ql)?://[^\s,;()]*|\b(?:host|hostaddr|dbname|user|port)=\S+(?:\s+\w+=\S+)*")


def _public(server: Service, detail: str) -> str:
    """A check's detail as /readyz (unauthenticated) may say it: what failed, never a
    connection string, even without its password (it names the user and database)."""
    return _CONNECTION_STRING.sub("DATABASE_URL", server.settings.redact(detail))
