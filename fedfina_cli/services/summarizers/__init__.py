"""Summarisers: the OpenAI one and the offline one, behind one small interface."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from fedfina_cli.core.conversation import Conversation
from fedfina_cli.core.summary import SummaryDocument


class Summarizer(Protocol):
    description: str  # for the backends line, e.g. "openai(gpt-4.1-mini)"

    def summarize(self, conversation: Conversation, transcript: str, output_language: str,
                  prompt_file: Path | None = None) -> SummaryDocument:
        """``prompt_file`` overrides the configured prompt (a per-account setting)."""
        ...
