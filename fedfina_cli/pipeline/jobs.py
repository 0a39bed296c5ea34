"""What the pipeline is asked to do and what it reports: the library API's values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fedfina_cli.core.accounts import AccountOverrides
from fedfina_cli.core.object_keys import STAGES

DEFAULT_CONCURRENCY = 8  # conversations in parallel: the services wait, fedfina's CPU does not


@dataclass(frozen=True)
class Job:
    conversation_id: str
    email_id: str | None = None
    account_id: str | None = None
    payload: dict[str, Any] | None = None  # a conversation read from --from-file, instead of the API
    label: str | None = None  # where the job came from, e.g. "row 7" of a CSV
    # The conversation is in storage already (a post-call webhook brought it, or the
    # server's sweep fetched it): it is read from there, not from the API.
    prefetched: bool = False


@dataclass(frozen=True)
class RunOptions:
    stages: tuple[str, ...] = STAGES
    force: bool = False
    resend: bool = False
    overrides: AccountOverrides = field(default_factory=AccountOverrides)


@dataclass
class Outcome:
    conversation_id: str
    account_id: str | None = None
    email_id: str | None = None
    status: str = "pending"  # completed | pending (stages left) | failed | duplicate | elsewhere
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed_stage: str | None = None
    error: str | None = None
    retryable: bool = False
    exception: BaseException | None = None  # for --debug
    report: str | None = None  # where the PDF is (path or s3:// name)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # each stage that ran

    @property
    def ok(self) -> bool:
        return self.status != "failed"
