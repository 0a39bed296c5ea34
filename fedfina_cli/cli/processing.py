"""The processing commands: run, the stage commands, sync and demo."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from fedfina_cli.cli.app import PROCESS, Command, app
from fedfina_cli.cli.context import checked, new_terminal, settings_for, show_debug, user_errors
from fedfina_cli.cli.options import (
    WHICH,
    AccountFlags,
    AccountId,
    Batch,
    Email,
    Force,
    FromFile,
    Resend,
    Targets,
    grouped,
)
from fedfina_cli.core.errors import ExitCode
from fedfina_cli.core.object_keys import STAGES


@app.command(cls=Command, rich_help_panel=PROCESS)
@grouped
def run(
    targets: Targets,
    email: Email = None,
    from_file: FromFile = None,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Also the failed ones (only --account-id's, when given).",
        rich_help_panel=WHICH)] = False,
    batch: Batch = Batch(),
    force: Force = False,
    resend: Resend = False,
    account: AccountFlags = AccountFlags(),
) -> None:
    """Fetch, summarise, report and email, skipping stages already done.

    [bold]Examples[/bold]
    \b
      fedfina run -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n -e officer@fedfina.in
      fedfina run --csv calls.csv --concurrency 16
      fedfina run --failed --account-id acc123
      fedfina run --from-file webhook.json
    """
    overrides = checked(account.overrides)
    _process(STAGES, targets, batch, command="run", email=email, from_files=from_file, failed=failed,
             force=force, resend=resend, overrides=overrides)


@app.command(cls=Command, rich_help_panel=PROCESS)
@grouped
def fetch(targets: Targets, email: Email = None, from_file: FromFile = None, batch: Batch = Batch(),
          force: Force = False) -> None:
    """Store a call's JSON, transcript and audio from ElevenLabs.

    [bold]Example[/bold]
    \b
      fedfina fetch -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n -a acc123
    """
    _process(("fetch",), targets, batch, command="fetch", email=email, from_files=from_file, force=force)


def _artifact_stage(stage: str, help_text: str) -> None:
    """Register a stage command that works from stored artifacts (summarize, report)."""

    def command(targets: Targets, batch: Batch = Batch(), force: Force = False) -> None:
        _process((stage,), targets, batch, command=stage, force=force)

    example = f"fedfina {stage} -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n"
    command.__doc__ = f"{help_text}\n\n    [bold]Example[/bold]\n    \b\n      {example}\n"
    app.command(name=stage, cls=Command, rich_help_panel=PROCESS)(grouped(command))


_artifact_stage("summarize", "Summarise a fetched transcript into the structured summary JSON.")
_artifact_stage("report", "Render the PDF report from the summary and the conversation.")


@app.command(cls=Command, rich_help_panel=PROCESS)
@grouped
def email(targets: Targets, email: Email = None, batch: Batch = Batch(), resend: Resend = False) -> None:
    """Email the PDF and summary (never twice without --resend).

    [bold]Example[/bold]
    \b
      fedfina email -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n --resend
    """
    _process(("email",), targets, batch, command="email", email=email, resend=resend)


@app.command(cls=Command, rich_help_panel=PROCESS)
@grouped
def sync(
    agent_id: Annotated[str, typer.Option(
        "--agent-id", metavar="AGENT", help="The ElevenLabs agent whose calls to process.")],
    since: Annotated[str | None, typer.Option(
        "--since", metavar="DATE", help="Only calls that started after this date (default: the last sync's watermark).",
        show_default=False)] = None,
    email: Email = None,
    account_id: AccountId = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List the calls this sync would process, and stop: nothing is fetched, "
                          "summarised, emailed or recorded.")] = False,
    batch: Batch = Batch(),
) -> None:
    """Process an agent's calls ended since the last sync (for cron).

    A call not ready yet is picked up next time. The first sync of an agent (no
    watermark yet) looks back 24 hours, and says so, for older calls are history
    and would email their officers all at once. --since reaches further back on
    purpose; --dry-run shows what a sync would process.

    Email and account come from each call's dynamic variables, else from
    --email / --account-id.

    [bold]Example[/bold] (crontab, every 15 minutes)
    \b
      AGENT=agent_4501k2s8yq0efrpt6ah0v7d3m9xw
      */15 * * * * cd /srv/fedfina && fedfina sync --quiet --agent-id $AGENT
    """
    from fedfina_cli.core import validation
    from fedfina_cli.core.errors import UsageError
    from fedfina_cli.ledger.queries import parse_since
    from fedfina_cli.pipeline import sync as syncing
    from fedfina_cli.pipeline.jobs import RunOptions
    from fedfina_cli.pipeline.run_context import RunContext

    terminal = new_terminal(json_mode=batch.json_out, quiet=batch.quiet)
    with user_errors(terminal):
        settings = settings_for(terminal)
        validation.agent_id(agent_id)
        if email is not None:
            validation.email_address(email)
        if account_id is not None:
            validation.account_id(account_id)
        since_iso = parse_since(since)
        if not settings.elevenlabs_api_key:
            raise UsageError("sync lists conversations from the ElevenLabs API: set ELEVENLABS_API_KEY")
        if dry_run:
            _sync_dry_run(terminal, settings, agent_id, since_iso, email, account_id)
            return
        with RunContext(settings, "sync", batch.concurrency) as session:
            _announce(terminal, session)
            source = session.backends.elevenlabs
            assert source is not None  # ELEVENLABS_API_KEY is set (checked above)
            previous = session.ledger.watermark(agent_id)
            after = _sync_start(terminal, agent_id, previous, since_iso)
            plan = syncing.plan(source, session.ledger, agent_id, after, email, account_id)
            for warning in plan.warnings:
                terminal.warn(warning)
            terminal.info(f"{len(plan.listed)} calls listed: {len(plan.jobs)} to process, "
                          f"{len(plan.already_completed)} already done, {len(plan.not_ready)} not ready yet")
            outcomes = _run_jobs(terminal, session, plan.jobs, [], RunOptions())
            watermark = syncing.next_watermark(plan, outcomes, previous)
            if watermark is not None and watermark != previous:
                session.ledger.set_watermark(agent_id, watermark)
            code = session.finish(outcomes)
    if code:
        raise typer.Exit(code)


def _sync_start(terminal, agent_id: str, previous: int | None, since_iso: str | None) -> int | None:
    """Where the listing starts: --since, else the watermark, else 24 hours ago (said)."""
    from datetime import UTC, datetime

    from fedfina_cli.pipeline import sync as syncing

    if since_iso is not None:
        return int(datetime.fromisoformat(since_iso.replace("Z", "+00:00")).timestamp())
    if previous is None:
        first = syncing.first_start()
        terminal.info(f"first sync of {agent_id}: looking back 24 hours, to calls since "
                      f"{datetime.fromtimestamp(first, UTC):%Y-%m-%d %H:%M} UTC; older calls are left alone "
                      "(--since DATE processes them on purpose)")
        return first
    return syncing.listing_start(previous)


def _sync_dry_run(terminal, settings, agent_id: str, since_iso: str | None, email: str | None,
                  account_id: str | None) -> None:
    """What a sync would process, read-only: the ledger is only read, nothing is fetched or written."""
    from datetime import UTC, datetime

    from fedfina_cli.ledger.ledger import Ledger, ledger_exists, open_ledger
    from fedfina_cli.pipeline import sync as syncing
    from fedfina_cli.pipeline.backends import build_backends

    ledger = open_ledger(settings, read_only=True) if ledger_exists(settings) else Ledger(None)
    try:
        backends, _ = build_backends(settings, metrics=lambda call: None, pool_size=1)
        assert backends.elevenlabs is not None  # ELEVENLABS_API_KEY is set (checked by the caller)
        after = _sync_start(terminal, agent_id, ledger.watermark(agent_id), since_iso)
        plan = syncing.plan(backends.elevenlabs, ledger, agent_id, after, email, account_id)
    finally:
        ledger.close()
    for warning in plan.warnings:
        terminal.warn(warning)
    started = {c.conversation_id: c.start_time_unix_secs for c in plan.listed}

    def when(conversation_id: str) -> str:
        unix = started.get(conversation_id)
        return "-" if unix is None else f"{datetime.fromtimestamp(unix, UTC):%Y-%m-%d %H:%M}"

    rows = [{"conversation_id": job.conversation_id, "started": when(job.conversation_id)} for job in plan.jobs]
    terminal.rows(rows, ["conversation_id", "started"], "table",
                  title=f"would process {len(plan.jobs)} of {len(plan.listed)} calls listed "
                        f"({len(plan.already_completed)} done already, {len(plan.not_ready)} not ready; UTC)")
    terminal.info("dry run: nothing was fetched, processed, emailed or recorded")


@app.command(cls=Command, rich_help_panel=PROCESS)
def demo(
    directory: Annotated[Path, typer.Option(
        "--dir", metavar="DIR", help="Folder for the demo's data, outbox and ledger.")] = Path("fedfina-demo"),
    serve: Annotated[bool, typer.Option(
        "--serve", help="Instead, run `fedfina serve` on the same embedded backends and print a signed "
                        "webhook to send it with curl.")] = False,
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535,
                                      help="With --serve: the port, on 127.0.0.1.")] = 8000,
) -> None:
    """The whole pipeline offline, on a bundled Hindi/English interview.

    Needs no keys and no servers, and ignores any configured ones: storage is
    DIR, the email goes to DIR/outbox, the ledger is DIR/fedfina.db.

    [bold]Examples[/bold]
    \b
      fedfina demo --dir /tmp/fedfina-demo
      fedfina demo --serve
    """
    from fedfina_cli.pipeline import demo as demo_module
    from fedfina_cli.pipeline.jobs import RunOptions
    from fedfina_cli.pipeline.run_context import RunContext

    if serve:
        _demo_server(directory, port)
        return
    settings = demo_module.demo_settings(directory)
    terminal = new_terminal()
    with user_errors(terminal), RunContext(settings, "demo") as session:
        _announce(terminal, session, warn=False)
        # Every demo run redoes every stage, so it always shows the whole job.
        outcomes = _run_jobs(terminal, session, [demo_module.demo_job()], [],
                             RunOptions(force=True, resend=True))
        code = session.finish(outcomes)
    if code:
        raise typer.Exit(code)
    terminal.out.print("")
    for label, path in demo_module.demo_paths(settings, outcomes[0]).items():
        terminal.out.print(f"{label:<11} {path}", markup=False)
    import shlex

    db = shlex.quote(str(settings.db_path))  # the ledger knows the demo's folder: show finds the files
    terminal.out.print(f"\nOpen the PDF and read the .eml. What the ledger recorded:\n"
                       f"  fedfina --db {db} status\n"
                       f"  fedfina --db {db} show {outcomes[0].conversation_id}\n"
                       "Then see `fedfina --help` for real runs.", markup=False)


def _demo_server(directory: Path, port: int) -> None:
    from fedfina_cli.pipeline.demo import DEMO_ADMIN, DEMO_OFFICER, demo_server_settings
    from fedfina_cli.server.demo import webhook_example
    from fedfina_cli.server.run import serve as run_server

    base_url = f"http://127.0.0.1:{port}"
    settings = demo_server_settings(directory, base_url)
    terminal = new_terminal()
    terminal.redact = lambda text: text  # the demo's own key is printed on purpose: the curl needs it

    def ready() -> None:
        lines = [f"fedfina demo server on {base_url} (Ctrl-C stops it). Offline: ledger",
                 f"{settings.db_path}, files and .eml in {settings.data_dir}, its log on stderr.", "",
                 *webhook_example(settings, base_url), "",
                 "The console, for officers and admins. Ask for a sign-in link as",
                 f"{DEMO_OFFICER} (the calls' officer) or {DEMO_ADMIN}",
                 f"(an admin); it arrives as an .eml in {settings.outbox_dir / 'console'}:",
                 f"  {base_url}/console", ""]
        terminal.out.print("\n".join(lines), markup=False, soft_wrap=True)
        terminal.out.file.flush()

    with user_errors(terminal):
        code = run_server(settings, "127.0.0.1", port, 1, None, 15, on_ready=ready)
    raise typer.Exit(code)


# --- plumbing ---------------------------------------------------------------------


def _process(stages: tuple[str, ...], targets: Targets, batch: Batch, *, command: str,
             email: str | None = None, from_files: list[Path] | None = None, failed: bool = False,
             force: bool = False, resend: bool = False, overrides=None) -> None:
    from fedfina_cli.pipeline.jobs import RunOptions
    from fedfina_cli.pipeline.run_context import RunContext
    from fedfina_cli.pipeline.selectors import select, with_failed

    terminal = new_terminal(json_mode=batch.json_out, quiet=batch.quiet)
    options = RunOptions(stages=stages, force=force, resend=resend,
                         **({"overrides": overrides} if overrides is not None else {}))
    with user_errors(terminal):
        settings = settings_for(terminal)
        selection = select(targets.conversation_id, email, targets.account_id, targets.csv, from_files,
                           required=not failed, selectors=SELECTORS[command])
        if selection.empty_csv is not None:
            terminal.info(f"{selection.empty_csv}: nothing to process")
            if not selection.jobs and not selection.rejected and not failed:
                return  # an empty export must not fail cron; nothing is written
        if "fetch" in stages and not settings.elevenlabs_api_key:
            _check_fetchable(settings, selection.jobs)
        with RunContext(settings, command, batch.concurrency) as session:
            _announce(terminal, session, warn_offline="summarize" in stages)
            if failed:
                selection, found = with_failed(selection, session.ledger, targets.account_id)
                terminal.info(f"{found} failed conversations to reprocess")
            outcomes = _run_jobs(terminal, session, selection.jobs, selection.rejected, options)
            code = session.finish(outcomes, sum(not r.duplicate for r in selection.rejected))
    if code:
        raise typer.Exit(code)


class _Stopped(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop_gracefully(terminal):
    """Ctrl-C or SIGTERM: start no more conversations, let those in flight finish.

    A second signal stops at once; the next run resumes what was left (a
    conversation left `processing` is marked interrupted and picked up).
    """
    from fedfina_cli.pipeline.signals import graceful_stop

    def first(signum: int) -> None:
        terminal.stop()
        terminal.error("stopping: finishing the conversations in flight (send the signal again to stop "
                       "at once)")
        raise _Stopped(signum)

    return graceful_stop(first)


def _run_jobs(terminal, session, jobs, rejected, options):
    import gc
    import signal

    terminal.rejected(rejected)
    started = time.monotonic()
    terminal.start(len(jobs))
    try:
        # Everything imported and built so far (openai's hundreds of models, the
        # clients) lives for the whole run: keep the garbage collector from
        # re-scanning it in every full collection of a long batch.
        gc.freeze()
        with _stop_gracefully(terminal):
            outcomes = session.process_batch(jobs, options, terminal.finished)
    except KeyboardInterrupt as exc:
        terminal.stop()
        terminal.error("interrupted: conversations in flight finished; run the same command "
                       "again to finish the rest (done stages are skipped)")
        sigterm = isinstance(exc, _Stopped) and exc.signum == signal.SIGTERM
        raise typer.Exit(ExitCode.TERMINATED if sigterm else ExitCode.INTERRUPTED) from None
    finally:
        terminal.stop()
    terminal.summary(outcomes, rejected, time.monotonic() - started)
    show_debug(terminal, outcomes)
    return outcomes


# The selectors each processing command takes (its hint names only these).
SELECTORS = {
    "run": ("--conversation-id/-c", "--csv FILE", "--from-file FILE", "--failed"),
    "fetch": ("--conversation-id/-c", "--csv FILE", "--from-file FILE"),
    "summarize": ("--conversation-id/-c", "--csv FILE"),
    "report": ("--conversation-id/-c", "--csv FILE"),
    "email": ("--conversation-id/-c", "--csv FILE"),
}


def _check_fetchable(settings, jobs) -> None:
    """Without ELEVENLABS_API_KEY, refuse up front (exit 2, nothing written) when any job needs the API."""
    from fedfina_cli.core.errors import UsageError
    from fedfina_cli.ledger.ledger import fetched_conversations

    from_api = {job.conversation_id for job in jobs if job.payload is None}
    needed = from_api - fetched_conversations(settings, from_api)
    if needed:
        raise UsageError(f"ELEVENLABS_API_KEY is not set, and {len(needed)} of the {len(jobs)} selected "
                         "conversations must be fetched from the ElevenLabs API; set it (see .env.example), "
                         "or pass saved conversations with --from-file FILE.json")


def _announce(terminal, session, warn: bool = True, warn_offline: bool = True) -> None:
    terminal.info(session.backends.description)
    for warning in session.warnings if warn else ():
        if warn_offline or "OPENAI_API_KEY" not in warning:  # only where a summary is written
            terminal.warn(warning)
    if session.interrupted:
        terminal.warn(f"{session.interrupted} conversations were left unfinished by a process that stopped; "
                      "marked interrupted (status failed), resumed by this run when selected or by "
                      "`run --failed`")
