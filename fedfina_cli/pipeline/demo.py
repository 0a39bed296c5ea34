"""`fedfina demo`: the real pipeline on a bundled sample, with embedded backends only."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from pathlib import Path

from fedfina_cli.core.config import Settings
from fedfina_cli.core.conversation import unwrap
from fedfina_cli.core.meta import PACKAGE_DIR
from fedfina_cli.core.object_keys import object_key, outbox_path
from fedfina_cli.pipeline.jobs import Job, Outcome

SAMPLE = PACKAGE_DIR / "samples" / "demo_conversation.json"


def demo_settings(directory: Path) -> Settings:
    # Built from defaults, not the environment: the demo must work (and stay
    # offline) whatever keys or servers are configured.
    return Settings(db_path=directory / "fedfina.db", data_dir=directory)


def demo_job() -> Job:
    payload = unwrap(json.loads(SAMPLE.read_text(encoding="utf-8")))
    return Job(conversation_id=payload["conversation_id"], payload=payload, label="bundled sample")


def demo_paths(settings: Settings, outcome: Outcome) -> dict[str, Path]:
    account, conversation = outcome.account_id or "", outcome.conversation_id
    return {
        "PDF report:": settings.data_dir / object_key(account, conversation, "report"),
        "Email:": outbox_path(settings.outbox_dir, account, conversation),
        "Ledger:": settings.db_path,
    }


# --- `fedfina demo --serve` ----------------------------------------------------------


DEMO_ADMIN = "admin@fedfina.demo"
DEMO_OFFICER = "loans.officer@example.com"  # the bundled call's recipient


def demo_server_settings(directory: Path, base_url: str) -> Settings:
    """The demo's settings plus an API key and a webhook secret made for this run only, and the
    console at ``base_url``: the server then takes signed webhooks, answers the status API and
    serves the console (its sign-in links land in the outbox), offline."""
    return replace(demo_settings(directory), api_key=secrets.token_urlsafe(18),
                   webhook_secret="wsec_" + secrets.token_hex(16), public_url=base_url,
                   console_admins=(DEMO_ADMIN,))
