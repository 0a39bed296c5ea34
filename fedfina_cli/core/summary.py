"""The structured summary every summariser produces, and the document stored for it.

``Summary`` is what a model is asked to fill (its JSON schema is generated from
this class); ``SummaryDocument`` wraps it with how and when it was made, and is
what `summaries/{conversation_id}.json` holds.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Sentiment = Literal["positive", "neutral", "negative", "mixed", "unknown"]
ELLIPSIS = "…"
MAX_CHARACTERS = 40_000
_LEFT_OUT = re.compile(r"\(\d+ more [^()]*left out[^()]*\)")  # the lines that say what was cut


def _clipped(limit: int) -> AfterValidator:
    """Text over ``limit`` characters is cut there, and the cut shown with "…".

    A model's output is untrusted input: a 200 KB title must not become a
    200 KB Subject header or a hundred PDF pages. The limits are far above
    what the prompt asks for, so a sane summary is never touched. (Checked
    after parsing, not as JSON-schema maxLength: not every server enforces it.)
    """

    def clip(text: str) -> str:
        text = text.strip()
        return text if len(text) <= limit else text[:limit - 1].rstrip() + ELLIPSIS

    return AfterValidator(clip)


def _at_most(count: int, what: str) -> AfterValidator:
    def cut(items: list[Any]) -> list[Any]:
        if len(items) <= count:
            return items
        left_out = len(items) - count + 1
        return [*items[:count - 1], _marker(items[0], f"({left_out} more {what} left out)")]

    return AfterValidator(cut)


def _marker(sample: object, text: str) -> str | Section:
    return text if isinstance(sample, str) else Section(heading=ELLIPSIS, points=[text])


Line = Annotated[str, _clipped(1000)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    heading: Annotated[str, _clipped(120)] = Field(description="Short heading, e.g. 'Loan request'")
    points: Annotated[list[Line], _at_most(50, "points")] = Field(description="Bullet points, one fact each")


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, _clipped(200)] = Field(
        description="Headline naming the applicant or business and the request")
    overview: Annotated[str, _clipped(4000)] = Field(description="Two to four sentences for a loan officer")
    sections: Annotated[list[Section], _at_most(30, "sections")]
    action_items: Annotated[list[Line], _at_most(30, "action items")] = Field(
        description="Concrete next steps for the loan officer")
    sentiment: Sentiment = Field(description="The applicant's overall attitude")
    language: Annotated[str, _clipped(80)] = Field(description="Language(s) the conversation was held in")
    # The cover, the subject and the attachment are named for the applicant (SPEC "The
    # officer's brief"); a summary stored before this field has none.
    applicant_name: Annotated[str, _clipped(120)] | None = Field(
        default=None, description="The applicant's full name as they said it in the call, in the script they "
                                  "used; null if they never said it")

    @model_validator(mode="after")
    def _within_budget(self) -> Summary:
        """At most MAX_CHARACTERS in all: about ten PDF pages.

        Without a total, a runaway model (or an instruction injected into the
        call to "repeat everything") could fill every field to its limit and
        cost minutes of rendering; real summaries use a tenth of this. Points
        past the budget give way to one "(N more left out …)" line per list.
        """
        # Idempotent: a stored summary is validated again when read, and the
        # "left out" lines must then stay as they are.
        budget = MAX_CHARACTERS - len(self.title) - len(self.overview)
        for items in [section.points for section in self.sections] + [self.action_items]:
            for index, item in enumerate(items):
                if _LEFT_OUT.fullmatch(item):
                    continue
                budget -= len(item)
                if budget < 0:
                    items[index:] = [f"({len(items) - index} more left out: the summary exceeded "
                                     f"{MAX_CHARACTERS:,} characters)"]
                    break
        return self


class SummaryDocument(BaseModel):
    summary: Summary
    method: Literal["openai", "offline", "notice"]  # notice: the call reached nobody (no model asked)
    model: str | None = None
    prompt_sha256: str | None = None
    output_language: str = "English"
    generated_at: str
    chunks: int = 1  # > 1 when a long transcript was summarised in parts and merged
    tokens: int | None = None
    # SPEC "Privacy" and "Trust": how identifiers were masked, and the summary's figures
    # that the call does not support ([{"figure", "where"}]; none for a faithful summary).
    redaction: str | None = None
    figures_checked: int | None = None
    unsupported_figures: list[dict[str, str]] = Field(default_factory=list)
    derived_figures: list[dict[str, str]] = Field(default_factory=list)  # {"figure", "where", "how"}

    @property
    def made_by(self) -> str:
        if self.method == "offline":
            return "offline summary (no AI model)"
        return f"AI summary by {self.model}"

    @property
    def about(self) -> list[tuple[str, str]]:
        """How this summary was made, in words, for "About this report" at the end of the PDF
        and the email (SPEC "The officer's brief": provenance is not for the officer's pages)."""
        made = {"openai": f"written by the AI model {self.model}",
                "notice": "none: the call reached nobody, so no AI model was asked"}.get(self.method)
        facts = [("Summary", made if made and (self.method != "openai" or self.model)
                  else "assembled from the call without an AI model")]
        # llm: the model's input and this report are masked; with no model, only the report is
        # (it said "before the AI model saw the call" beside "without an AI model").
        masked = {"none": "not masked",
                  "llm": "masked before the AI model saw the call, and in this report" if self.method == "openai"
                  else "masked in this report",
                  "stored": "masked in everything stored and shown"}.get(self.redaction or "")
        if masked:
            facts.append(("Identifiers", masked))
        if self.figures_checked is not None:
            to_check = len(self.unsupported_figures)
            facts.append(("Figures", f"{self.figures_checked} checked against the call: "
                                     + ("all supported" if not to_check else f"{to_check} to check")))
        if self.prompt_sha256:
            facts.append(("Instructions", f"prompt sha256 {self.prompt_sha256[:12]}"))
        return facts

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> SummaryDocument:
        return cls.model_validate(json.loads(data))
