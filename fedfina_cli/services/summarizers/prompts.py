"""The summariser's system prompt: which file, its text and its sha256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fedfina_cli.core.errors import UsageError
from fedfina_cli.core.meta import PACKAGE_DIR

PROMPT_NAME = "summarization.txt"
PACKAGED_PROMPT = PACKAGE_DIR / "prompts" / PROMPT_NAME


@dataclass(frozen=True)
class Prompt:
    text: str
    sha256: str
    path: Path


def prompt_path(configured: Path | None) -> Path:
    """FEDFINA_PROMPT_FILE (or an account's prompt), else ./prompts/, else the packaged one."""
    if configured is not None:
        return configured
    local = Path("prompts") / PROMPT_NAME
    return local if local.is_file() else PACKAGED_PROMPT


def load_prompt(configured: Path | None) -> Prompt:
    path = prompt_path(configured)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8").strip()
    except FileNotFoundError:
        raise UsageError(f"prompt file {path}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"prompt file {path}: not UTF-8 text") from None
    if not text:
        raise UsageError(f"prompt file {path} is empty")
    return Prompt(text=text, sha256=hashlib.sha256(data).hexdigest(), path=path)
