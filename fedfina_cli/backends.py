"""Choosing the backends from configuration (SPEC "Configuration").

Unset service variables mean the embedded backend: local storage, the outbox,
the offline summariser. Heavy client libraries are imported only when chosen.
"""

from __future__ import annotations

from typing import Callable

from .config import Settings
from .ledger import ApiCall
from .mailer import OutboxMailer
from .pipeline import Backends
from .storage.local import LocalStorage
from .summarizers.offline import OfflineSummarizer

Metrics = Callable[[ApiCall], None]


def build_backends(settings: Settings, metrics: Metrics) -> tuple[Backends, list[str]]:
    """The backends for these settings, and warnings to show the user."""
    warnings = []
    storage = LocalStorage(settings.data_dir)
    mailer = OutboxMailer(settings.outbox_dir, settings.smtp_from_email)
    summarizer = OfflineSummarizer()
    if not settings.openai_api_key:
        warnings.append("OPENAI_API_KEY is not set: using the offline summariser "
                        "(reports will say it is not an AI summary)")
    source = None
    description = (f"storage={storage.description} email={mailer.description} "
                   f"summarizer={summarizer.description}")
    return Backends(storage=storage, mailer=mailer, summarizer=summarizer, source=source,
                    description=description), warnings
