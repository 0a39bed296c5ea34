"""`fedfina serve` and `fedfina worker`: processing as calls end (SPEC "Serving")."""

from __future__ import annotations

from typing import Annotated

import typer

from fedfina_cli.cli.app import SERVE, Command, app
from fedfina_cli.cli.context import new_terminal, settings_for, user_errors
from fedfina_cli.cli.options import Concurrency
from fedfina_cli.core.errors import UsageError
from fedfina_cli.pipeline.jobs import DEFAULT_CONCURRENCY


@app.command(cls=Command, rich_help_panel=SERVE)
def serve(
    host: Annotated[str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port to listen on.")]
    = 8000,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
    sweep_agent_id: Annotated[str | None, typer.Option(
        "--sweep-agent-id", metavar="AGENT",
        help="Also sync this agent's calls periodically, so a missed webhook is not a missed call.",
        show_default=False)] = None,
    sweep_every: Annotated[float, typer.Option(
        "--sweep-every", metavar="MINUTES", min=0.01, help="Minutes between two sweeps.")] = 15,
    purge_every: Annotated[float | None, typer.Option(
        "--purge-every", metavar="HOURS", min=0.001,
        help="Also run `fedfina purge` at start and then every HOURS (retention).", show_default=False)] = None,
) -> None:
    """Serve the API and ElevenLabs' webhooks; process what arrives.

    Conversations accepted over HTTP are queued in the ledger before the reply,
    and processed by this process's workers (and any `fedfina worker` on the same
    ledger). Needs FEDFINA_API_KEY; ELEVENLABS_WEBHOOK_SECRET enables the webhook.
    SIGTERM stops cleanly (exit 0). Logs are JSON lines on stderr.

    [bold]Example[/bold]
    \b
      fedfina serve --sweep-agent-id agent_4501k2s8yq0efrpt6ah0v7d3m9xw
    """
    from fedfina_cli.core import validation
    from fedfina_cli.server.run import serve as run_server

    terminal = new_terminal()
    with user_errors(terminal):
        settings = settings_for(terminal)
        if not settings.api_key:
            raise UsageError("FEDFINA_API_KEY is not set: serve needs it to check X-API-Key on "
                             "/api/v1/postprocess/*; set it to a long random value (see .env.example)")
        if sweep_agent_id is not None:
            sweep_agent_id = validation.agent_id(sweep_agent_id)
            if not settings.elevenlabs_api_key:
                raise UsageError("--sweep-agent-id lists calls from the ElevenLabs API: set ELEVENLABS_API_KEY")
        code = run_server(settings, host, port, concurrency, sweep_agent_id, sweep_every,
                          purge_every_hours=purge_every)
    raise typer.Exit(code)


@app.command(cls=Command, rich_help_panel=SERVE)
def worker(concurrency: Concurrency = DEFAULT_CONCURRENCY) -> None:
    """Process the queue that `fedfina serve` fills; no HTTP.

    Runs until SIGTERM (exit 0) or Ctrl-C. Logs are JSON lines on stderr.

    [bold]Example[/bold]
    \b
      fedfina worker --concurrency 16
    """
    from fedfina_cli.server.run import work

    terminal = new_terminal()
    with user_errors(terminal):
        settings = settings_for(terminal)
        code = work(settings, concurrency)
    raise typer.Exit(code)
