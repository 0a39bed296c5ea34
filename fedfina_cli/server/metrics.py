"""`GET /metrics`: the server's figures in Prometheus' text format (prometheus-client)."""

from __future__ import annotations

import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fedfina_cli.core.api_calls import ApiCall
from fedfina_cli.pipeline.jobs import Outcome

# A stage takes from milliseconds (a stored transcript) to minutes (a long summary).
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.conversations = Counter("fedfina_conversations", "Conversations finished by this process, by outcome",
                                     ["status"], registry=self.registry)
        self.stage_seconds = Histogram("fedfina_stage_seconds", "Time each pipeline stage took", ["stage"],
                                       buckets=STAGE_BUCKETS, registry=self.registry)
        self.api_calls = Counter("fedfina_api_calls", "Calls to external services, by service and status",
                                 ["service", "status"], registry=self.registry)
        self.webhooks = Counter("fedfina_webhooks", "ElevenLabs webhook deliveries, by event type and result",
                                ["type", "result"], registry=self.registry)
        self._depth = Gauge("fedfina_queue_depth", "Conversations queued in the ledger, not yet claimed",
                            registry=self.registry)
        self._busy = Gauge("fedfina_conversations_in_flight", "Conversations this process is working on",
                           registry=self.registry)

    def watch(self, queue_depth: Callable[[], int], in_flight: Callable[[], int]) -> None:
        """Read these gauges when scraped (the ledger and the workers exist only after the
        metrics do: the session reports its API calls here from the start)."""
        self._depth.set_function(lambda: _or_nan(queue_depth))
        self._busy.set_function(lambda: _or_nan(in_flight))

    def outcome(self, outcome: Outcome) -> None:
        self.conversations.labels(outcome.status).inc()
        for stage, seconds in outcome.stage_seconds.items():
            self.stage_seconds.labels(stage).observe(seconds)

    def api_call(self, call: ApiCall) -> None:
        self.api_calls.labels(call.service, str(call.status_code) if call.status_code else "error").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _or_nan(read: Callable[[], int]) -> float:
    """A figure that cannot be read now (the ledger is away) is NaN, not a failed scrape."""
    try:
        return float(read())
    except Exception:  # noqa: BLE001
        return math.nan
