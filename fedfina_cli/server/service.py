"""What the routes of one `serve` process work with, and how a route gets it (FastAPI's Depends)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from fedfina_cli.core.config import Settings
from fedfina_cli.pipeline.queue import QueueWorkers
from fedfina_cli.pipeline.run_context import RunContext
from fedfina_cli.server.http import Refused
from fedfina_cli.server.metrics import ServerMetrics


@dataclass
class Service:
    """One per `serve` process: its settings, its run of the pipeline, its workers and metrics."""

    settings: Settings
    session: RunContext
    workers: QueueWorkers
    metrics: ServerMetrics

    @property
    def max_body_bytes(self) -> int:
        return int(self.settings.max_body_mb * 1024 * 1024)


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
