"""Running `fedfina serve` and `fedfina worker`: the process around the app and the workers.

Order of a clean stop (SIGTERM, or Ctrl-C): uvicorn stops accepting and
answers the requests in flight; then the workers start no more conversations
and finish those they hold (their claims released), the sweep stops, the
ledger closes. A second signal ends the process at once: nothing is lost
either way, since every accepted conversation is in the ledger, queued, and
an unfinished claim expires and is taken over.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from fedfina_cli.core.config import Settings
from fedfina_cli.core.errors import ExitCode, UsageError
from fedfina_cli.pipeline.queue import Housekeeper, Purger, QueueWorkers, Sweeper
from fedfina_cli.pipeline.run_context import RunContext
from fedfina_cli.pipeline.signals import graceful_stop

# Each role logs under its own name: a log collector tells the HTTP server's lines
# from a `fedfina worker`'s.
server_log = logging.getLogger("fedfina.server")
worker_log = logging.getLogger("fedfina.worker")


class JsonLines(logging.Formatter):
    """One JSON object a line: what log collectors parse. Secrets are scrubbed from every message."""

    converter = staticmethod(time.gmtime)  # times in UTC, as in the ledger

    def __init__(self, redact: Callable[[str], str]):
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        entry = {"time": stamp, "level": record.levelname.lower(),
                 "logger": record.name, "message": self.redact(record.getMessage())}
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines(settings.redact))
    for name in ("fedfina", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _signals(log: logging.Logger, also: Callable[[], None] = lambda: None) -> AbstractContextManager[list[int]]:
    """Record SIGTERM/SIGINT instead of dying; a second one ends the process at once."""
    def first(signum: int) -> None:
        log.info("stopping: finishing the conversations in flight (signal again to stop at once)")
        also()
    return graceful_stop(first)


def _exit_code(received: list[int]) -> int:
    # SIGTERM is how a service manager stops a service: a clean stop, 0. Ctrl-C: 130, as elsewhere.
    return int(ExitCode.INTERRUPTED) if signal.SIGINT in received else int(ExitCode.OK)


def _log_outcome(log: logging.Logger, metrics_outcome: Callable | None) -> Callable:
    def on_done(outcome) -> None:
        if metrics_outcome is not None:
            metrics_outcome(outcome)
        fields = {"conversation_id": outcome.conversation_id, "account_id": outcome.account_id,
                  "status": outcome.status, "seconds": round(outcome.seconds, 3)}
        if outcome.status == "failed":
            fields.update(stage=outcome.failed_stage, retryable=outcome.retryable)
            log.warning("conversation failed: %s", outcome.error, extra={"fields": fields})
        else:
            log.info("conversation %s", outcome.status, extra={"fields": fields})
    return on_done


def serve(settings: Settings, host: str, port: int, concurrency: int, sweep_agent_id: str | None,
          sweep_every_minutes: float, on_ready: Callable[[], None] | None = None,
          purge_every_hours: float | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C; ``on_ready`` runs once the port is bound and the
    workers are up, before the first request is taken (`demo --serve` prints its example)."""
    import uvicorn

    from fedfina_cli.server.app import Service, create_app
    from fedfina_cli.server.metrics import ServerMetrics

    configure_logging(settings)
    listening = _listen(host, port)  # before anything starts: a port in use is a usage error
    log = server_log
    started: list[uvicorn.Server] = []

    def stop_uvicorn() -> None:
        # A signal after the check below and before uvicorn installs its own handlers
        # reaches only ours: uvicorn is told here, or it would serve on for ever.
        for running in started:
            running.should_exit = True

    with listening, _signals(log, stop_uvicorn) as received:
        metrics = ServerMetrics()
        with RunContext(settings, "serve", concurrency, on_api_call=metrics.api_call) as session:
            for warning in session.warnings:
                log.warning(warning)
            if session.backends.elevenlabs is None:
                log.warning("ELEVENLABS_API_KEY is not set: POST /api/v1/postprocess/conversation answers 503; "
                            "webhooks work (they bring the conversation)")
            if not settings.webhook_secret:
                log.warning("ELEVENLABS_WEBHOOK_SECRET is not set: /api/v1/webhooks/elevenlabs answers 404")
            workers = QueueWorkers(session, concurrency, on_done=_log_outcome(log, metrics.outcome)).start()
            metrics.watch(queue_depth=session.ledger.queue.depth, in_flight=lambda: workers.busy)
            sweeper = Sweeper(session, sweep_agent_id, sweep_every_minutes * 60, workers.wake).start() \
                if sweep_agent_id else None
            housekeeper = Housekeeper(session).start()
            purger = Purger(session, purge_every_hours * 3600).start() if purge_every_hours else None
            app = create_app(Service(settings, session, workers, metrics))
            server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                                   timeout_graceful_shutdown=30, server_header=False,
                                                   # The connection's address, as is: the console trusts
                                                   # forwarded headers only from FEDFINA_CONSOLE_TRUSTED_PROXIES.
                                                   proxy_headers=False))
            started.append(server)
            log.info("serving on http://%s:%d with %s; ledger %s; %s", host, port, _workers(workers.concurrency),
                     session.ledger.description, session.backends.description)
            if on_ready is not None:
                on_ready()
            try:
                if not received:  # a signal during start-up: do not start serving
                    server.run(sockets=[listening])  # returns after a graceful stop (signals reach us too)
            finally:
                if sweeper is not None:
                    sweeper.stop()
                if purger is not None:
                    purger.stop()
                housekeeper.stop()
                workers.stop()
            session.finish([])
    log.info("stopped")
    return _exit_code(received)


def _listen(host: str, port: int) -> socket.socket:
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        listening = socket.socket(address[0], socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc}; pass --host with an address of this "
                         "machine, e.g. 127.0.0.1") from None
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address[4])
        listening.listen(2048)
    except OSError as exc:
        listening.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port, "
                         "or stop what uses it") from None
    return listening


def work(settings: Settings, concurrency: int) -> int:
    """`fedfina worker`: the queue's workers, without HTTP, until SIGTERM or Ctrl-C."""
    configure_logging(settings)
    log = worker_log
    with _signals(log) as received, RunContext(settings, "worker", concurrency) as session:
        for warning in session.warnings:
            log.warning(warning)
        workers = QueueWorkers(session, concurrency, on_done=_log_outcome(log, None)).start()
        housekeeper = Housekeeper(session).start()
        log.info("working on the queue with %s; ledger %s; %s", _workers(workers.concurrency),
                 session.ledger.description, session.backends.description)
        stop = threading.Event()
        while not received:
            stop.wait(0.2)  # signal handlers run in this (the main) thread between waits
        housekeeper.stop()
        workers.stop()
        session.finish([])
    log.info("stopped")
    return _exit_code(received)


def _workers(n: int) -> str:
    return f"{n} worker{'' if n == 1 else 's'}"
