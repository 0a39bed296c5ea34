"""The structured summary every summariser produces, and the document stored for it.

``Summary`` is what a model is asked to fill (its JSON schema is generated from
this class); ``SummaryDocument`` wraps it with how and when it was made, and is
what `summaries/{conversation_id}.json` holds.
"""

from __future__ import annotations

import json
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Sentiment = Literal["positive", "neutral", "negative", "mixed", "unknown"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    heading: str = Field(description="Short heading, e.g. 'Loan request'")
    points: list[str] = Field(description="Bullet points, one fact each")


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(description="Headline naming the applicant or business and the request")
    overview: str = Field(description="Two to four sentences for a loan officer")
    sections: list[Section]
    action_items: list[str] = Field(description="Concrete next steps for the loan officer")
    sentiment: Sentiment = Field(description="The applicant's overall attitude")
    language: str = Field(description="Language(s) the conversation was held in")


class SummaryDocument(BaseModel):
    summary: Summary
    method: Literal["openai", "offline"]
    model: Optional[str] = None
    prompt_sha256: Optional[str] = None
    output_language: str = "English"
    generated_at: str
    chunks: int = 1  # > 1 when a long transcript was summarised in parts and merged
    tokens: Optional[int] = None

    @property
    def made_by(self) -> str:
        if self.method == "offline":
            return "offline summary (no AI model)"
        return f"AI summary by {self.model}"

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> "SummaryDocument":
        return cls.model_validate(json.loads(data))
