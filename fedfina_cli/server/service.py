"""What the routes of one `serve` process work with, and how a route gets it (FastAPI's Depends)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from fedfina_cli.core.config import Settings
from fedfina_cli.pipeline.queue import QueueWorkers
from fedfina_cli.pipeline.run_context import RunContext
from fedfina_cli.server.http import Refused
from fedfina_cli.server.metrics import ServerMetrics

LARGE_BODY = 1024 * 1024
LARGE_BODIES_AT_ONCE = 4


@dataclass
class Service:
    """One per `serve` process: its settings, its run of the pipeline, its workers and metrics."""

    settings: Settings
    session: RunContext
    workers: QueueWorkers
    metrics: ServerMetrics

    # Large bodies (an audio webhook is 4-20 MB of base64) read and handled at once: the
    # rest wait their turn, holding a socket but no memory. 8 unsigned 45 MB posts took the
    # server from 66 to 695 MB before the signature was looked at.
    large_bodies: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(LARGE_BODIES_AT_ONCE))

    @property
    def max_body_bytes(self) -> int:
        return int(self.settings.max_body_mb * 1024 * 1024)

    @asynccontextmanager
    async def body_slot(self, request: Request) -> AsyncIterator[None]:
        """Held while a large body (announced over LARGE_BODY, or of unknown length) is
        read and handled; a small one goes straight through."""
        announced = request.headers.get("content-length", "")
        if announced.isascii() and announced.isdigit() and int(announced) <= LARGE_BODY:
            yield
            return
        async with self.large_bodies:
            yield


def service(request: Request) -> Service:
    """The process's Service (create_app keeps it in the app's state)."""
    found: Service = request.app.state.service
    return found


# A route's parameter `server: ServiceDep` is the process's Service (FastAPI's Annotated dependencies).
ServiceDep = Annotated[Service, Depends(service)]


def require_api_key(request: Request) -> None:
    """`X-API-Key` must be FEDFINA_API_KEY (compared in constant time), else 401."""
    given = request.headers.get("x-api-key") or ""
    expected = service(request).settings.api_key or ""
    if not expected or not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
        raise Refused(401, "missing or wrong X-API-Key")
