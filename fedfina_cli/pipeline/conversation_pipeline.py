"""The pipeline: one conversation through fetch -> summarize -> report -> email.

Each stage reads its inputs from storage, writes its artifact to storage, and
is recorded in the ledger. A stage whose artifact is already stored and
recorded is skipped (unless --force), so a re-run after a crash redoes only
what was unfinished. Clients never touch the ledger; this module records what
they return.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fedfina_cli.core import accounts, figures
from fedfina_cli.core.accounts import AccountSettings
from fedfina_cli.core.conversation import (
    AudioUnavailable,
    Conversation,
    FetchedConversation,
    applicant_phone,
    check_ready,
    named_applicant,
    parse_conversation,
    routing_variable,
    tool_results_text,
    transcript_text,
)
from fedfina_cli.core.errors import ClaimLost, LedgerError, MissingArtifact, NotReady, StageError
from fedfina_cli.core.jsonio import loads
from fedfina_cli.core.object_keys import STAGE_ARTIFACT, content_type, object_key
from fedfina_cli.core.redaction import redact, redact_conversation, redact_summary
from fedfina_cli.core.summary import SummaryDocument
from fedfina_cli.core.timefmt import local_date, local_time, utc_now, zone
from fedfina_cli.core.wording import masked_phone
from fedfina_cli.ledger.ledger import Ledger, StageLog
from fedfina_cli.ledger.rows import ConversationRow
from fedfina_cli.mail.deliver import Delivery, Refused
from fedfina_cli.pipeline.backends import Backends
from fedfina_cli.pipeline.claims import Claims
from fedfina_cli.pipeline.intake import EMPTY_AUDIO
from fedfina_cli.pipeline.jobs import Job, Outcome, RunOptions
from fedfina_cli.pipeline.slots import ProviderSlots
from fedfina_cli.services.storage import ObjectMissing
from fedfina_cli.services.summarizers.offline import build_notice

if TYPE_CHECKING:  # imported where used: the report and mail modules load fonts and templates
    from fedfina_cli.mail.compose import EmailContent
    from fedfina_cli.report.layout import Rendered, ReportInput

NO_ACCOUNT = "no account id: pass --account-id, or set account_id in the conversation's dynamic variables"
NO_RECIPIENT = "no recipient: pass --email, or set email_id in the conversation's dynamic variables"
LOCAL_STAGES = ("report", "email")  # fedfina's own work: no provider waits on it (slots.py)
# Recording a delivered email: asked again after 0.5 s, 1 s, 2 s ... then every 10 s, until recorded.
SENT_RETRY_FIRST_SECONDS = 0.5
SENT_RETRY_MAX_SECONDS = 10.0

log = logging.getLogger("fedfina.pipeline")


@dataclass
class _Context:
    job: Job
    row: ConversationRow
    settings: AccountSettings
    fetched: FetchedConversation | None = None
    token: str | None = None  # this process's claim on the row (pipeline/claims.py); None: another's
    fetch_seconds: float = 0.0  # how long the fetch took, when it ran alongside the summary
    masked: Conversation | None = None  # the conversation with identifiers masked (SPEC "Privacy")
    # Set once the fetch running alongside the summary has stored the transcript (or failed).
    transcript_stored: threading.Event | None = None
    # Gives the provider slot back once the model has answered (_summarize; slots.py).
    providers_done: Callable[[], None] = lambda: None
    # Objects this run stored, so a later stage need not download them again.
    stored: dict[str, bytes] = field(default_factory=dict)

    @property
    def account_id(self) -> str:
        return self.row["account_id"]

    @property
    def conversation_id(self) -> str:
        return self.row["conversation_id"]

    def key(self, file_type: str) -> str:
        return object_key(self.account_id, self.conversation_id, file_type)


class Pipeline:
    def __init__(self, ledger: Ledger, backends: Backends, options: RunOptions, claims: Claims,
                 render: Callable[[ReportInput], Rendered] | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), *,
                 once_per_run: bool = True, defaults: AccountSettings | None = None,
                 provider_slots: int | None = None):
        """``render``: ReportInput -> Rendered (report/render_pool.py); None renders in this thread.

        ``once_per_run``: a job for a conversation this pipeline already handled is a
        duplicate (a batch); a queue's workers (serve, worker) see a conversation again
        when it is asked for again, and process it again.
        ``defaults``: what the environment sets for every account (accounts.defaults: FEDFINA_REDACT);
        an account's own settings win.
        ``provider_slots``: conversations at the providers at once (slots.py); None: no bound.
        """
        self.ledger = ledger
        self.defaults = defaults or AccountSettings()
        self.backends = backends
        self.options = options
        self.claims = claims
        self.render = render
        self.now = now
        self.slots = ProviderSlots(provider_slots)
        self._stages = {"fetch": self._fetch, "summarize": self._summarize, "report": self._report,
                        "email": self._email}
        # Jobs for one conversation never overlap in this process, and one that
        # resolves to an (account, conversation) already handled by this run is
        # a duplicate: a CSV may name a conversation twice, once with its
        # account left blank, and only resolving tells that they are the same.
        self._guard = threading.Lock()
        self._conversation_locks: dict[str, tuple[threading.Lock, int]] = {}  # lock, jobs holding or waiting
        self._handled: dict[tuple[str, str], str] | None = {} if once_per_run else None

    # --- one conversation ------------------------------------------------

    def process_one(self, job: Job, claim: tuple[ConversationRow, str] | None = None,
                    slot: Callable[[], None] | None = None) -> Outcome:
        """One conversation through the stages. ``claim``: its row and token when the caller
        claimed it already (a queue's worker), ``slot``: the provider slot it took to claim it."""
        started = time.monotonic()
        with self._conversation_lock(job.conversation_id):
            outcome = self._process(job, claim, slot)
        outcome.seconds = time.monotonic() - started
        return outcome

    @contextmanager
    def _conversation_lock(self, conversation_id: str) -> Iterator[None]:
        """Held while this process works on the conversation; forgotten when no job needs it
        (a server runs for months: the map must not keep every conversation it saw)."""
        with self._guard:
            lock, users = self._conversation_locks.get(conversation_id, (threading.Lock(), 0))
            self._conversation_locks[conversation_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._conversation_locks[conversation_id]
                if users == 1:
                    del self._conversation_locks[conversation_id]
                else:
                    self._conversation_locks[conversation_id] = (lock, users - 1)

    def _process(self, job: Job, claim: tuple[ConversationRow, str] | None,
                 slot: Callable[[], None] | None = None) -> Outcome:
        outcome = Outcome(job.conversation_id, job.account_id, job.email_id)
        ctx = None
        try:
            # A slot from the first provider call (resolving may fetch the conversation)
            # until the model has answered and the recording is stored (slots.py).
            with self.slots.held(slot) as release_slot:
                account, email, fetched = self._resolve(job)
                first = self._first_handled(job, account)
                if first is not None:
                    outcome.account_id, outcome.status = account, "duplicate"
                    outcome.error = f"same conversation as {first}; processed once"
                    return outcome
                ctx = self._open(job, account, email, fetched, claim)
                outcome.account_id, outcome.email_id = ctx.account_id, ctx.row.get("email_id")
                if ctx.token is None:
                    outcome.status = "elsewhere"
                    outcome.error = _held_by(ctx.row)
                    ctx = None  # another process's: not ours to record anything on
                    return outcome
                self._run_stages(ctx, outcome, release_slot)
            self._finish(ctx, outcome)
        except Exception as exc:  # noqa: BLE001 - one conversation's failure never stops the batch
            stage, cause = (exc.stage, exc.cause) if isinstance(exc, _Failed) else ("resolve", exc)
            if isinstance(cause, LedgerError):
                raise cause from cause.__cause__  # the ledger itself failed: nothing can be recorded; stop the run
            # One conversation's failure never stops the batch.
            self._fail(outcome, ctx, job, stage, cause)
        finally:
            if ctx is not None and ctx.token is not None:
                self.claims.release(ctx.row, ctx.token)
        return outcome

    def _run_stages(self, ctx: _Context, outcome: Outcome, release_slot: Callable[[], None]) -> None:
        """The selected stages in order; a failure is raised as _Failed naming its stage.

        The provider slot is given back once the model has answered and the recording is
        stored, or at the latest before the first of fedfina's own stages."""
        if not ctx.row.get("email_id") and "email" in self.options.stages:
            raise _Failed("resolve", StageError(NO_RECIPIENT))
        try:
            _check_zone(ctx)
        except StageError as exc:
            raise _Failed("resolve", exc) from exc
        redo = self.options.force
        fetching = None  # the fetch stage, still downloading the audio while summarize runs
        ctx.providers_done = release_slot
        for stage in self.options.stages:
            if stage in LOCAL_STAGES:
                release_slot()  # the providers are done with this conversation (slots.py)
            # An email already sent goes again only with --resend, whatever was redone.
            if (stage == "email" or not redo) and self._is_done(stage, ctx):
                outcome.skipped.append(stage)
                self.ledger.audit(ctx.row, stage, "skipped", "skipped", "already done")
                continue
            if stage == "fetch" and "summarize" in self.options.stages:
                try:
                    fetching = self._fetch_alongside(ctx)
                except Exception as exc:
                    raise _Failed("fetch", exc) from exc
                ctx.providers_done = _once_done(fetching, release_slot)
                redo = True
                continue
            failure = None
            stage_started = time.monotonic()
            try:
                with self.ledger.stage(ctx.row, stage, ctx.token) as log:
                    self._stages[stage](ctx, log)
                ctx.row = log.completed_row or ctx.row  # with the keys it recorded
            except Exception as exc:  # noqa: BLE001 - recorded as this stage's failure
                failure = _Failed(stage, exc)
            outcome.stage_seconds[stage] = time.monotonic() - stage_started
            if fetching is not None:
                # Summarize is over (done or failed): the fetch must end before anything
                # else, and its failure is the one reported (the summary needed its output).
                try:
                    fetching.result()
                except Exception as exc:  # noqa: BLE001 - recorded as the fetch's failure
                    failure = _Failed("fetch", exc)
                outcome.stage_seconds["fetch"] = ctx.fetch_seconds
                fetching = None
                outcome.ran.append("fetch")
                ctx.row = self.ledger.get(ctx.row["processing_id"])
            if failure is not None:
                raise failure from failure.cause
            outcome.ran.append(stage)
            redo = True  # later stages depend on this one's fresh output

    def _resolve(self, job: Job) -> tuple[str, str | None, FetchedConversation | None]:
        """The job's account and recipient: given, known to the ledger, or the conversation's own."""
        account, email = job.account_id, job.email_id
        fetched = None
        known = self.ledger.rows_for(job.conversation_id, account) if not (account and email) else []
        known = [r for r in known if r["account_id"]]
        if account is None and len(known) > 1:
            names = ", ".join(sorted(r["account_id"] for r in known))
            raise StageError(f"conversation is recorded under several accounts ({names}); "
                             "pass --account-id")
        if known:
            account = account or known[0]["account_id"]
            email = email or known[0]["email_id"]
        needs_email = "email" in self.options.stages
        if account is None or (email is None and needs_email):
            fetched = self._conversation_for(job, account)
            account = account or routing_variable(fetched.conversation, "account_id")
            email = email or routing_variable(fetched.conversation, "email_id")
        if account is None:
            # Both at once when both are missing: one run tells the whole fix.
            raise StageError("; ".join([NO_ACCOUNT] + ([NO_RECIPIENT] if email is None and needs_email
                                                        else [])))
        return account, email, fetched

    def _conversation_for(self, job: Job, account: str | None) -> FetchedConversation:
        """The conversation, to read its dynamic variables: from the job, the API, or storage."""
        if job.payload is not None or "fetch" in self.options.stages:
            return self._load(job, account)
        if account is not None:
            try:
                raw = self.backends.storage.get_bytes(object_key(account, job.conversation_id, "conversation"))
            except ObjectMissing:
                pass
            else:
                return FetchedConversation(parse_conversation(loads(raw)), raw)
        raise MissingArtifact(f"{job.conversation_id} has not been fetched; "
                              f"run `fedfina fetch -c {job.conversation_id}` first")

    def _first_handled(self, job: Job, account: str) -> str | None:
        """Where this run first met (account, conversation), when this job is not the first."""
        if self._handled is None:
            return None
        key = (account, job.conversation_id)
        with self._guard:
            if key in self._handled:
                return self._handled[key]
            self._handled[key] = job.label or "an earlier selector"
            return None

    def _open(self, job: Job, account: str, email: str | None, fetched: FetchedConversation | None,
              claim: tuple[ConversationRow, str] | None) -> _Context:
        """The conversation's ledger row, claimed (and marked processing), with its account's settings.

        When another process holds the claim, the context says so (no ``token``) and
        nothing is written. A job from the queue comes claimed already (``claim``), unless
        resolving it found another row (a queued row without its account).
        """
        token: str | None
        if claim is not None and claim[0]["account_id"] == account:
            row, token = claim
            if email and not row.get("email_id"):
                row = self.ledger.update(row["processing_id"], claimed_with=token, email_id=email)
        else:
            row, token = self.claims.claim(job.conversation_id, account, email)
        stored = accounts.from_row(self.ledger.account_settings(account))
        settings = self.defaults.overridden(stored).overridden(self.options.overrides)
        return _Context(job=job, row=row, settings=settings, fetched=fetched, token=token)

    def _fetch_alongside(self, ctx: _Context) -> Future[None]:
        """Start the fetch stage; return once the conversation is read and checked, its files
        still being stored and its audio downloading.

        The summary needs only the call's words, so the model is asked while the
        conversation and its transcript are stored and the recording (a fifth of a
        conversation's I/O time) downloads. The summary is stored only after the
        transcript (``ctx.transcript_stored``: a summary is never kept without the words it
        was made from), and the fetch stage is recorded as completed only when the audio
        is stored, so a crash in between redoes the fetch, as before. Its time is in
        ``ctx.fetch_seconds`` once the future is done.
        """
        readable = threading.Event()
        stored = ctx.transcript_stored = threading.Event()
        fetching: Future[None] = Future()

        def fetch() -> None:
            started, failure = time.monotonic(), None
            try:
                with self.ledger.stage(ctx.row, "fetch", ctx.token) as log:
                    self._fetch(ctx, log, readable.set)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiter by the future
                failure = exc
            finally:
                ctx.fetch_seconds = time.monotonic() - started
                if failure is None:
                    fetching.set_result(None)
                else:
                    fetching.set_exception(failure)
                # After the future: a failure before either event, and the waiters find it failed.
                readable.set()
                stored.set()

        threading.Thread(target=fetch, name="fedfina-fetch", daemon=True).start()
        readable.wait()
        if fetching.done():
            fetching.result()  # failed before the conversation could be read: raises here
        return fetching

    def _is_done(self, stage: str, ctx: _Context) -> bool:
        row = ctx.row
        if stage == "email":
            return row.get("email_state") == "sent" and not self.options.resend
        artifact = STAGE_ARTIFACT[stage]
        recorded = row.get(f"{artifact}_key") == ctx.key(artifact)
        if stage == "fetch":
            recorded = recorded and row.get("conversation_key") == ctx.key("conversation")
            return recorded and self.backends.storage.exists(ctx.key("conversation")) \
                and self.backends.storage.exists(ctx.key(artifact))
        return recorded and self.backends.storage.exists(ctx.key(artifact))

    def _finish(self, ctx: _Context, outcome: Outcome) -> None:
        row = ctx.row
        complete = row.get("email_state") == "sent" and all(
            row.get(f"{a}_key") for a in ("conversation", "transcript", "summary", "report"))
        status = "completed" if complete else "pending"
        changes: dict[str, object] = {"error_message": None, "retryable": None}
        if complete:
            changes["queued_at"] = None  # off the queue
        elif row.get("queued_at"):
            status = "queued"  # a stage command ran on it: the workers still owe the rest
        if complete and outcome.ran:
            changes["completed_at"] = utc_now()
        ctx.row = self._update(ctx, status=status, **changes)
        outcome.status = status
        outcome.email_id = ctx.row["email_id"]
        if report_key := ctx.row["report_key"]:
            outcome.report = self.backends.storage.display(report_key)

    def _fail(self, outcome: Outcome, ctx: _Context | None, job: Job, stage: str,
              exc: Exception) -> None:
        message = str(exc) if isinstance(exc, StageError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ClaimLost):
            # Another process took the conversation over while this one stalled: the row is
            # its now (it may have completed it already); writing "failed" there would be false.
            outcome.status, outcome.error = "elsewhere", message
            return
        outcome.status = "failed"
        outcome.failed_stage = stage
        outcome.error = message
        outcome.retryable = getattr(exc, "retryable", False)
        outcome.exception = exc
        if ctx is not None:
            # Off the queue too: asking again (a request, a webhook, the sweep, `run --failed`) retries it.
            try:
                self._update(ctx, status="failed", current_step=stage, error_message=message,
                             retryable=int(outcome.retryable), queued_at=None)
            except ClaimLost as lost:  # the row is another process's now: not ours to call failed
                outcome.status, outcome.error = "elsewhere", str(lost)
        elif isinstance(exc, MissingArtifact):
            pass  # a stage command run before the stage it needs: nothing was attempted, nothing to record
        else:
            # No account yet: keep the failure visible to `status` and `run --failed`.
            self.ledger.record_unresolved_failure(job.conversation_id, job.email_id, stage,
                                                  message, outcome.retryable)

    # --- stages ------------------------------------------------------------

    def _load(self, job: Job, account: str | None) -> FetchedConversation:
        stored = self._stored_conversation(job, account) if job.prefetched and account is not None else None
        if stored is not None:
            fetched = self._completed(job, stored, "the copy its webhook brought")
        elif job.payload is not None:
            conversation = parse_conversation(job.payload)
            raw = json.dumps(job.payload, ensure_ascii=False, indent=2).encode("utf-8")
            fetched = self._completed(job, FetchedConversation(conversation, raw), "the file")
        else:
            if self.backends.elevenlabs is None:
                raise StageError("ELEVENLABS_API_KEY is not set: set it to fetch from ElevenLabs, "
                                 "or pass --from-file FILE.json")
            fetched = self.backends.elevenlabs.get_conversation(job.conversation_id)
        if fetched.conversation.conversation_id != job.conversation_id:
            raise StageError(f"the conversation JSON is for {fetched.conversation.conversation_id}, "
                             f"not {job.conversation_id}")
        return fetched

    def _completed(self, job: Job, brought: FetchedConversation, what: str) -> FetchedConversation:
        """A conversation brought without the API (a webhook, the sweep, a file), read again from the
        API when it is incomplete (no transcript, or not done yet): never an empty report, and an
        early state is refreshed at every retry instead of re-read from the same copy."""
        why = brought.conversation.incomplete
        if why is None:
            return brought
        if self.backends.elevenlabs is not None:
            return self.backends.elevenlabs.get_conversation(job.conversation_id)
        if not brought.conversation.turns:
            raise StageError(f"{what} {why}, and ELEVENLABS_API_KEY is not set to fetch the call; set it "
                             "(or turn the agent's 'exclude transcript' setting off), then run "
                             f"`fedfina run -c {job.conversation_id}`")
        return brought  # not done yet: the fetch stage says so, and a later run tries again

    def _stored_conversation(self, job: Job, account: str) -> FetchedConversation | None:
        """The conversation a webhook (or the sweep) stored; None when it is gone and the API can say."""
        try:
            raw = self.backends.storage.get_bytes(object_key(account, job.conversation_id, "conversation"))
        except ObjectMissing:
            if self.backends.elevenlabs is not None:
                return None  # removed from storage since: ask the API, like any other
            raise StageError(f"the conversation its webhook brought is no longer in storage, and "
                             f"ELEVENLABS_API_KEY is not set to fetch it again; set it and run "
                             f"`fedfina run -c {job.conversation_id}`") from None
        return FetchedConversation(parse_conversation(loads(raw)), raw)

    def _fetch(self, ctx: _Context, log: StageLog, readable: Callable[[], None] = lambda: None) -> None:
        """``readable``: called once the conversation is read and checked (the summary may start)."""
        fetched = ctx.fetched or self._load(ctx.job, ctx.account_id)
        ctx.fetched = fetched
        conversation = fetched.conversation
        # Checked here, not when loading: a call that is not ready yet still names its
        # account, so its failure is recorded where `run --failed -a` will find it.
        try:
            check_ready(conversation)
        except NotReady:
            if ctx.job.payload is None or self.backends.elevenlabs is not None:
                raise
            # A file does not change: a later run of it reads the same early state.
            raise StageError(f"the file holds the call while it was still {conversation.status!r}: save it "
                             "again once the call has ended (status 'done'), or set ELEVENLABS_API_KEY and run "
                             f"`fedfina run -c {ctx.job.conversation_id}`") from None
        self._adopt_recipient(ctx, conversation)
        transcript = transcript_text(self._shown(ctx))  # (masks it under `stored`, before the summary can)
        readable()
        self._store(ctx, "conversation", fetched.raw)  # the raw JSON is kept as fetched, whatever the mode
        if not transcript:
            log.note("the conversation has no spoken turns; the transcript is empty")
        self._store(ctx, "transcript", transcript.encode("utf-8"))
        if ctx.transcript_stored is not None:
            ctx.transcript_stored.set()
        audio_key = self._fetch_audio(ctx, log, conversation)
        if audio_key is None and ctx.job.prefetched:
            # An audio webhook may have stored it while this ran: keep what it recorded.
            audio_key = self.ledger.get(ctx.row["processing_id"]).get("audio_key")
        log.changes.update(conversation_key=ctx.key("conversation"), transcript_key=ctx.key("transcript"),
                           audio_key=audio_key)
        log.summary = f"{len(conversation.spoken_turns)} turns, audio {'stored' if audio_key else 'none'}"

    def _adopt_recipient(self, ctx: _Context, conversation: Conversation) -> None:
        """Record the conversation's own recipient on a row that has none, for a later `email`."""
        if ctx.row.get("email_id"):
            return
        try:
            email = routing_variable(conversation, "email_id")
        except StageError:
            return  # an invalid address: the email stage reports it, fetching need not fail
        if email:
            ctx.row = self._update(ctx, email_id=email)

    def _fetch_audio(self, ctx: _Context, log: StageLog, conversation: Conversation) -> str | None:
        if ctx.job.prefetched:
            key = self._webhook_audio(ctx, log)
            if key is not None:
                return key
            if self.backends.elevenlabs is None or not conversation.has_audio:
                log.note("no audio yet: the post_call_audio webhook stores it when it comes")
                return None
            # Else from the API, like any conversation (the audio webhook may be off).
        elif ctx.job.payload is not None:
            log.note("no audio: the conversation was read from a file, not the API")
            return None
        if not conversation.has_audio:
            log.note("no audio: ElevenLabs reports has_audio=false for this conversation")
            return None
        source = self.backends.elevenlabs
        assert source is not None  # _load() fetched the conversation from it
        try:
            chunks = source.audio_chunks(ctx.conversation_id)
            stored = self.backends.storage.put_stream(ctx.key("audio"), chunks, content_type("audio"))
        except AudioUnavailable as exc:
            log.note(f"no audio: {exc}")
            return None
        if stored.size_bytes == 0:  # a 0-byte "recording" is none: said, not kept as the recording
            self.backends.storage.delete(stored.key)
            log.note(EMPTY_AUDIO)
            return None
        self.ledger.record_file(ctx.row, "audio", stored)
        return stored.key

    def _webhook_audio(self, ctx: _Context, log: StageLog) -> str | None:
        """The key of the audio a post_call_audio webhook stored: in the account's folder (stored
        and recorded by the webhook: pipeline/intake.py), or, when it came before the transcription
        (its account unknown then), in the holding area, moved now."""
        storage, key = self.backends.storage, ctx.key("audio")
        held = self.ledger.take_held_audio(ctx.conversation_id)  # one taker: this worker, or the webhook
        if held is not None:
            stored = storage.put_bytes(key, storage.get_bytes(held), content_type("audio"))
            storage.delete(held)
            self.ledger.release_held_audio(ctx.conversation_id)
            self.ledger.record_file(ctx.row, "audio", stored)
            log.note(f"audio from the post_call_audio webhook, moved into the account's folder: "
                     f"{stored.size_bytes} bytes")
            return key
        return key if storage.exists(key) else None

    def _summarize(self, ctx: _Context, log: StageLog) -> None:
        if ctx.transcript_stored is None:  # (else the fetch is storing it alongside)
            self._artifact(ctx, "transcript", "fetch")  # fetch first (the summary is made from the call's words)
        if ctx.settings.redact == "none":
            conversation = self._conversation(ctx)
        else:
            conversation = self._masked(ctx)  # nothing identifying goes to the model
            log.note(f"identifiers masked before summarising: {_counted(ctx.row.get('redactions'))}")
        if conversation.metadata.unanswered:  # voicemail, no answer, busy: no interview to summarise
            log.note(f"no interview: {conversation.metadata.unanswered.lower()}; a notice, no AI model asked")
            document = SummaryDocument(summary=build_notice(conversation), method="notice",
                                       output_language=ctx.settings.summary_language, generated_at=utc_now())
            ctx.providers_done()
            self._after_transcript(ctx)
            self._store(ctx, "summary", document.to_json())
            log.changes.update(summary_key=ctx.key("summary"), summary_method="notice", unsupported_figures=0)
            log.summary = "a notice: the call reached nobody"
            return
        # What the agent's tools returned (a bureau score, a failed GST check) goes to the model
        # after the words, masked like them.
        transcript = transcript_text(conversation) + tool_results_text(conversation)
        document = self.backends.summarizer.summarize(conversation, transcript,
                                                      ctx.settings.summary_language,
                                                      ctx.settings.prompt_file)
        ctx.providers_done()  # the model has answered: the next conversation can start (slots.py)
        if ctx.settings.redact != "none":
            document = document.model_copy(update={"summary": redact_summary(document.summary)})
        document = self._checked(ctx, document, log)
        self._after_transcript(ctx)
        self._store(ctx, "summary", document.to_json())
        if document.chunks > 1:
            log.note(f"long transcript: summarised in {document.chunks} parts and merged")
        log.changes.update(summary_key=ctx.key("summary"), model=document.model,
                           prompt_sha256=document.prompt_sha256, summary_method=document.method,
                           unsupported_figures=len(document.unsupported_figures))
        log.summary = document.made_by

    def _after_transcript(self, ctx: _Context) -> None:
        """Wait for the fetch running alongside to store the transcript: a summary is stored only
        after the words it was made from (a crash in between would keep it without them)."""
        if ctx.transcript_stored is None:
            return
        ctx.transcript_stored.wait()
        if "transcript" not in ctx.stored:
            # The fetch failed; _run_stages reports its failure, not this one.
            raise StageError("the transcript could not be stored; the summary was not kept")

    def _checked(self, ctx: _Context, document: SummaryDocument, log: StageLog) -> SummaryDocument:
        """The summary's figures against the call as spoken (SPEC "Trust"), recorded in the document."""

        conversation = self._conversation(ctx)
        said = transcript_text(conversation) + tool_results_text(conversation)  # a tool's 742 is the call's
        result = figures.check_all(document.summary, said, figures.call_facts(conversation),
                                   only_analysis=document.method != "openai")
        unsupported, checked = result.unsupported, result.checked
        if unsupported:
            log.note(f"{len(unsupported)} of {checked} figures not found in the call: "
                     + ", ".join(u.figure for u in unsupported[:10]))
        return document.model_copy(update={"redaction": ctx.settings.redact, "figures_checked": checked,
                                           "unsupported_figures": [u.as_dict() for u in unsupported],
                                           "derived_figures": result.derived})

    def _report(self, ctx: _Context, log: StageLog) -> None:
        from fedfina_cli.report.layout import ReportInput
        from fedfina_cli.report.render_pool import InProcessRenderer

        summary = SummaryDocument.from_json(self._artifact(ctx, "summary", "summarize"))
        render = self.render or InProcessRenderer()
        applicant = self._applicant(ctx, summary)
        rendered = render(ReportInput(
            conversation=self._in_documents(ctx), summary=summary, account_id=ctx.account_id,
            email_id=ctx.row.get("email_id"), timezone=ctx.settings.timezone, applicant=applicant))
        if rendered.missing:
            shown = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in rendered.missing[:10])
            more = f" and {len(rendered.missing) - 10} more" if len(rendered.missing) > 10 else ""
            log.note(f"{len(rendered.missing)} characters have no glyph in any bundled font "
                     f"({shown}{more}); the report shows \ufffd in their place")
        self._store(ctx, "report", rendered.pdf)
        # The console finds a conversation by who it is about: the name as the report shows it,
        # and the last four digits of the phone (what the masked number shows anyway).
        digits = "".join(c for c in applicant_phone(self._conversation(ctx)) or "" if c.isdigit())
        log.changes.update(report_key=ctx.key("report"), applicant_name=applicant,
                           phone_last4=digits[-4:] if len(digits) >= 4 else None)
        log.summary = f"{len(rendered.pdf)} bytes"

    def _email(self, ctx: _Context, log: StageLog) -> None:
        from fedfina_cli.mail.compose import build_message

        row, mailer = ctx.row, self.backends.mailer
        handed_over = row["email_message_id"]
        if row["email_state"] == "sending" and handed_over is not None and not self.options.resend:
            # A previous run stopped while handing this message over.
            delivered = mailer.was_delivered(handed_over, ctx.account_id, ctx.conversation_id)
            if delivered:
                ctx.row = self._mark_sent(ctx, handed_over)
                log.summary = "an interrupted earlier send had completed; not sent again"
                return
            if delivered is None:
                raise StageError(
                    f"an earlier run was interrupted while the mail server was accepting "
                    f"message {row['email_message_id']}; it may have been delivered. Check the "
                    f"recipient's mailbox, then run `fedfina email -c {ctx.conversation_id} --resend` "
                    "if it did not arrive")
        message = build_message(self._email_content(ctx), self.now())
        message_id = message["Message-ID"]
        token = ctx.token
        assert token is not None  # stages run only on a claimed row
        marked = False

        def on_handover() -> None:
            # The last moment the message can be taken back. One statement checks that this
            # claim still holds and marks "sending"; a claim lost (this process stalled, another
            # took over) raises ClaimLost here, and nothing is sent.
            nonlocal marked
            ctx.row = self.claims.mark_sending(row, token, message_id, self.options.resend)
            marked = True

        try:
            delivery: Delivery = mailer.send(message, ctx.account_id, ctx.conversation_id, on_handover)
        except Refused:
            # The server refused the message outright: nothing was delivered; "sending" is taken back.
            if marked:
                ctx.row = self.ledger.queue.unmark_sending(row["processing_id"], token) or ctx.row
            raise
        # Anything else after the mark (the connection lost after the message went, the
        # ledger failing) keeps "sending": a later run asks the mailer, or holds it for a
        # person, and never sends blindly.
        ctx.row = self._mark_sent(ctx, delivery.message_id)
        log.summary = f"{delivery.message_id} via {delivery.location}"

    def _email_content(self, ctx: _Context) -> EmailContent:
        from fedfina_cli.mail.compose import EmailContent

        storage, settings = self.backends.storage, ctx.settings
        # Loaded in stage order, so a missing input names the earliest stage to run.
        conversation = self._in_documents(ctx)
        summary = SummaryDocument.from_json(self._artifact(ctx, "summary", "summarize"))
        pdf: bytes | None = self._artifact(ctx, "report", "report")
        links = []
        if len(pdf or b"") > settings.attachment_limit_bytes:
            if not storage.shareable:
                raise StageError(
                    f"the report is {len(pdf or b'')} bytes, over the attachment limit of "
                    f"{settings.attachment_limit_bytes}, and local storage cannot give a link; "
                    "raise the limit with --attachment-limit-mb")
            links.append(("Report (PDF)", storage.locate(ctx.key("report"), settings.link_expiry_seconds)))
            pdf = None
        if storage.shareable:
            if audio_key := ctx.row["audio_key"]:
                links.append(("Call recording (MP3)", storage.locate(audio_key, settings.link_expiry_seconds)))
            links.append(("Transcript (text)", storage.locate(ctx.key("transcript"),
                                                               settings.link_expiry_seconds)))
        start = conversation.metadata.start_time_unix_secs
        return EmailContent(
            sender=self.backends.mailer.sender,
            to=_recipient(ctx),
            cc=settings.cc,
            bcc=settings.bcc,
            conversation_id=ctx.conversation_id,
            account_id=ctx.account_id,
            summary=summary,
            call_time=local_time(start, settings.timezone) if start is not None else None,
            call_date=local_date(start, settings.timezone) if start is not None else None,
            applicant=self._applicant(ctx, summary),
            applicant_phone=masked_phone(applicant_phone(conversation)),
            subject_template=settings.subject_template,
            pdf=pdf,
            links=tuple(links),
        )

    def _mark_sent(self, ctx: _Context, message_id: str) -> ConversationRow:
        """Record the email sent. The server has it: nothing may undo that now, so a ledger that
        fails here is asked again until it records it (a failure is never read as a refusal)."""
        pause = SENT_RETRY_FIRST_SECONDS
        while True:
            try:
                return self.ledger.update(ctx.row["processing_id"], email_state="sent",
                                          email_message_id=message_id, email_sent_at=utc_now())
            except LedgerError as exc:
                if not exc.retryable:
                    raise  # the row keeps "sending": a later run holds it for a person, never resends
                log.error("%s: the email was delivered but the ledger did not record it (%s); trying again "
                          "in %g s", ctx.conversation_id, exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, SENT_RETRY_MAX_SECONDS)

    # --- helpers -------------------------------------------------------------

    def _update(self, ctx: _Context, **changes: object) -> ConversationRow:
        """Change the conversation's row while this process's claim holds it (else ClaimLost)."""
        return self.ledger.update(ctx.row["processing_id"], claimed_with=ctx.token, **changes)

    def _store(self, ctx: _Context, file_type: str, data: bytes) -> None:
        stored = self.backends.storage.put_bytes(ctx.key(file_type), data, content_type(file_type))
        self.ledger.record_file(ctx.row, file_type, stored)
        ctx.stored[file_type] = data

    def _artifact(self, ctx: _Context, file_type: str, producer: str) -> bytes:
        if file_type in ctx.stored:
            return ctx.stored[file_type]
        try:
            return self.backends.storage.get_bytes(ctx.key(file_type))
        except ObjectMissing:
            raise MissingArtifact(f"no {file_type} for {ctx.conversation_id} in storage; "
                                  f"run `fedfina {producer} -c {ctx.conversation_id}` first") from None

    def _masked(self, ctx: _Context) -> Conversation:
        """The conversation with its identifiers masked; the counts recorded on its row once."""
        if ctx.masked is None:

            ctx.masked, counts = redact_conversation(self._conversation(ctx))
            ctx.row = self._update(ctx, redactions=json.dumps(counts, sort_keys=True))
        return ctx.masked

    def _applicant(self, ctx: _Context, summary: SummaryDocument) -> str | None:
        """The name on the cover, the subject and the attachment, masked like the rest unless `none`:
        a number in the widget's name variable landed in the subject and the file name."""
        name = named_applicant(self._conversation(ctx), summary.summary.applicant_name)
        return redact(name).text if name and ctx.settings.masks_documents else name

    def _shown(self, ctx: _Context) -> Conversation:
        """What is stored for people (the transcript file): masked under `stored`, else as fetched."""
        return self._masked(ctx) if ctx.settings.redact == "stored" else self._conversation(ctx)

    def _in_documents(self, ctx: _Context) -> Conversation:
        """What the PDF and the email show: masked unless `none` (SPEC "The officer's brief"). Under
        `llm` the summary was made from the masked call, so the transcript beside it is masked too:
        one document shows each identifier one way, and an Aadhaar number is never printed whole
        (UIDAI's rule; it was, on the page after the summary's [AADHAAR ••••0124])."""
        return self._masked(ctx) if ctx.settings.masks_documents else self._conversation(ctx)

    def _conversation(self, ctx: _Context) -> Conversation:
        if ctx.fetched is None:
            raw = self._artifact(ctx, "conversation", "fetch")
            ctx.fetched = FetchedConversation(parse_conversation(loads(raw)), raw)
        return ctx.fetched.conversation


class _Failed(Exception):
    """A conversation's failure and the stage it is blamed on."""

    def __init__(self, stage: str, cause: Exception):
        super().__init__(stage)
        self.stage = stage
        self.cause = cause


def _once_done(fetching: Future[None], release_slot: Callable[[], None]) -> Callable[[], None]:
    """Give the slot back when ``fetching`` (the audio, still downloading) is done too."""
    return lambda: fetching.add_done_callback(lambda _: release_slot())


def _recipient(ctx: _Context) -> str:
    """The conversation's recipient (checked before the stages run: this is never the first to say so)."""
    if not ctx.row["email_id"]:
        raise StageError(NO_RECIPIENT)
    return ctx.row["email_id"]


def _held_by(row: ConversationRow) -> str:
    """Which process holds the conversation's claim, and until when (its heartbeat renews it)."""
    holder = row.get("claimed_by") or "another process"
    until = row.get("claim_expires_at") or ""
    clock = until[11:19] + " UTC" if len(until) >= 19 else "it finishes"
    return f"held by {holder} (claimed until {clock}, renewed while it works)"


def _counted(redactions: str | None) -> str:
    counts = json.loads(redactions) if redactions else {}
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "none found"


def _check_zone(ctx: _Context) -> None:
    """An account's stored time zone that is no zone fails the conversation (never silently UTC)."""
    try:
        zone(ctx.settings.timezone)
    except ValueError as exc:
        raise StageError(f"account {ctx.account_id}'s time zone: {exc}; fix it with "
                         f"`fedfina accounts set {ctx.account_id} --timezone Asia/Kolkata`") from None
