"""fedfina: post-process ElevenLabs voice-agent loan interviews.

The library API, used by the CLI's commands and by anything else that runs the
pipeline (`fedfina serve` and `fedfina worker` among them):

    from fedfina_cli import Job, Settings, load_settings, process
    outcomes = process([Job("conv_…", email_id="officer@…", account_id="acc1")], load_settings())

The names are imported on first use, so that `import fedfina_cli` (and
`fedfina --help`) stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fedfina_cli.core.meta import PACKAGE_DIR, __version__

if TYPE_CHECKING:
    from fedfina_cli.core.config import Settings, load_settings
    from fedfina_cli.pipeline.jobs import Job, Outcome, RunOptions

__all__ = ["PACKAGE_DIR", "Job", "Outcome", "RunOptions", "Settings", "__version__", "load_settings", "process"]
_LAZY = {"Settings": "fedfina_cli.core.config", "load_settings": "fedfina_cli.core.config",
         "Job": "fedfina_cli.pipeline.jobs", "Outcome": "fedfina_cli.pipeline.jobs",
         "RunOptions": "fedfina_cli.pipeline.jobs"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fedfina_cli' has no attribute {name!r}")


def process(jobs: Iterable[Job], settings: Settings, options: RunOptions | None = None, *,
            concurrency: int | None = None, on_done: Callable[[Outcome], None] | None = None,
            command: str = "library") -> list[Outcome]:
    """Run ``jobs`` through the pipeline on the ledger and backends ``settings`` name.

    Any number of processes may do this on one ledger at once: each conversation is
    claimed first, and one claimed elsewhere comes back with status "elsewhere".
    ``on_done`` is called with each outcome as it finishes (from the calling thread).
    """
    from fedfina_cli.pipeline.jobs import DEFAULT_CONCURRENCY, RunOptions
    from fedfina_cli.pipeline.run_context import RunContext

    with RunContext(settings, command, concurrency or DEFAULT_CONCURRENCY) as session:
        outcomes = session.process_batch(list(jobs), options or RunOptions(), on_done or (lambda outcome: None))
        session.finish(outcomes)
    return outcomes
