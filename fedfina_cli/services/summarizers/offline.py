"""The offline summariser: no model, only what the call and ElevenLabs' analysis say.

Used when OPENAI_API_KEY is unset. It never paraphrases: figures are quoted
verbatim from the applicant's turns, and the report says plainly that this is
not an AI summary.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from fedfina_cli.core.conversation import Conversation, applicant_name
from fedfina_cli.core.figures import numbers
from fedfina_cli.core.names import spoken_name
from fedfina_cli.core.summary import Section, Summary, SummaryDocument
from fedfina_cli.core.timefmt import clock, duration, utc_now
from fedfina_cli.core.wording import call_goal, how_it_ended, readable_name

MAX_QUOTED_FIGURES = 12
MAX_LOOKUPS = 12  # different answers of the agent's tools listed in the summary
LANGUAGE_NAMES = {"hi": "Hindi", "en": "English", "mr": "Marathi", "ta": "Tamil", "te": "Telugu",
                  "bn": "Bengali", "gu": "Gujarati", "kn": "Kannada", "ml": "Malayalam",
                  "pa": "Punjabi", "ur": "Urdu"}
_DEVANAGARI = re.compile(r"[\u0900-\u097F]")
_LATIN_WORD = re.compile(r"[A-Za-z]{3,}")
# A money figure: the rupee sign, or a number followed by a rupee/lakh/crore word.
_AMOUNT = re.compile(
    r"₹\s?\d|\b\d[\d,.]*\s*(?:rupees?|rs\.?|inr|lakh|lakhs|crore|thousand|हज़ार|हजार|लाख|करोड़|रुपये|रुपए)",
    re.IGNORECASE,
)


class OfflineSummarizer:
    description = "offline"

    def summarize(self, conversation: Conversation, transcript: str, output_language: str,
                  prompt_file: Path | None = None) -> SummaryDocument:
        return SummaryDocument(
            summary=build_summary(conversation),
            method="offline",
            output_language=output_language,
            generated_at=utc_now(),
        )


def build_summary(conversation: Conversation) -> Summary:
    analysis = conversation.analysis
    user_turns = [t for t in conversation.spoken_turns if t.role == "user"]
    figures = [t for t in user_turns if _states_an_amount(t.text)]

    # ElevenLabs' data collection and evaluation are shown by the report as
    # tables of their own, so they are not repeated here.
    quoted = [f"[{clock(t.time_in_call_secs)}] {t.text}" for t in figures[:MAX_QUOTED_FIGURES]]
    if len(figures) > MAX_QUOTED_FIGURES:
        # A long call would otherwise push the transcript pages behind pages of quotes.
        # In words, not a count: a number the call never says would be flagged by
        # the figure check as unsupported (core/figures.py) in a report of our own making.
        quoted.append("... and more answers with figures: see the transcript.")
    sections = [
        Section(heading="Figures the applicant stated", points=quoted),
        Section(heading="Call", points=_call_facts(conversation, len(user_turns))),
    ]

    return Summary(
        title=(analysis and analysis.call_summary_title) or _fallback_title(conversation),
        overview=(analysis and analysis.transcript_summary) or _fallback_overview(conversation, len(user_turns)),
        sections=[s for s in sections if s.points],
        action_items=_action_items(conversation, bool(figures)),
        sentiment="unknown",
        language=conversation_language(conversation),
        applicant_name=_applicant(conversation),
    )


def build_notice(conversation: Conversation) -> Summary:
    """A call that reached voicemail or nobody: one page that says so, not a loan summary."""
    why = conversation.metadata.unanswered or "The call reached nobody"
    applicant = _applicant(conversation)
    return Summary(
        title=f"No interview: {why[0].lower()}{why[1:]}",
        overview=f"{why}, so there was no interview{f' with {applicant}' if applicant else ''} and nothing to "
                 "summarise.",
        sections=[],
        action_items=["Call the applicant again, or arrange the interview another way."],
        sentiment="unknown",
        language=conversation_language(conversation) if conversation.spoken_turns else "none",
        applicant_name=applicant,
    )


def _states_an_amount(text: str) -> bool:
    """A turn that states money: ₹/Rs and digits, or a number with lakh, crore or thousand in
    any language the figure check reads ("மூன்று லட்சம் வேணும்" was left out)."""
    return bool(_AMOUNT.search(text)) or any(value >= 1000 for _, value in numbers(text, english_words=False))


def _applicant(conversation: Conversation) -> str | None:
    """The call's data, else the name the applicant gave ("मेरा नाम … है", core/names.py)."""
    return applicant_name(conversation) or spoken_name([t.text for t in conversation.spoken_turns
                                                         if t.role == "user"])


# Scripts that name their language (Devanagari does not: Hindi, Marathi), by Unicode block.
_SCRIPTS = {"Bengali": (0x0980, 0x09FF), "Punjabi": (0x0A00, 0x0A7F), "Gujarati": (0x0A80, 0x0AFF),
            "Odia": (0x0B00, 0x0B7F), "Tamil": (0x0B80, 0x0BFF), "Telugu": (0x0C00, 0x0C7F),
            "Kannada": (0x0C80, 0x0CFF), "Malayalam": (0x0D00, 0x0D7F)}


def _script_language(text: str) -> str | None:
    """The language whose script holds at least a third of the call's letters, if one does."""
    letters = [ord(ch) for ch in text if ch.isalpha()]
    if not letters:
        return None
    for name, (low, high) in _SCRIPTS.items():
        if sum(low <= code <= high for code in letters) * 3 >= len(letters):
            return name
    return None


def conversation_language(conversation: Conversation) -> str:
    """Name the language(s) spoken, from ElevenLabs' main language and the scripts used."""
    text = " ".join(t.text for t in conversation.spoken_turns)
    names = []
    main = conversation.metadata.main_language
    written = _script_language(text)
    if written:  # the words' own script outweighs a main_language that says otherwise
        names.append(written)
    elif main:
        names.append(LANGUAGE_NAMES.get(main.split("-")[0].lower(), main))
    if _DEVANAGARI.search(text) and "Hindi" not in names and not main:
        names.append("Hindi")
    # Latin words beside Devanagari mean a mixed (Hinglish) call.
    if _DEVANAGARI.search(text) and len(_LATIN_WORD.findall(text)) >= 3 and "English" not in names:
        names.append("English")
    if not names:
        names.append("English" if _LATIN_WORD.search(text) else "unknown")
    return " and ".join(names)


def _call_facts(conversation: Conversation, user_turn_count: int) -> list[str]:
    meta = conversation.metadata
    facts = []
    if meta.call_duration_secs is not None:
        facts.append(f"Duration {duration(meta.call_duration_secs)}, "
                     f"{len(conversation.spoken_turns)} spoken turns ({user_turn_count} by the applicant)")
    goal = call_goal(conversation.analysis.call_successful) if conversation.analysis else None
    if goal and goal != "Not assessed":
        facts.append(f"{goal}.")
    ended = how_it_ended(meta.termination_reason)
    if ended:  # in words; the engine's own text is in "About this report"
        facts.append(f"{ended}.")
    results = [str(result) for t in conversation.turns for result in t.tool_results]
    if results:  # what a lookup returned is what an officer acts on
        # Each answer once (an agent that looked the applicant up at every turn listed the same
        # line 36 times, a page of it), and at most MAX_LOOKUPS: the rest is in the transcript.
        # In words, not counts, as for the figures above.
        counts = Counter(results)
        facts.extend(f"Lookup during the call: {result}" + (" (the same answer more than once)"
                                                           if counts[result] > 1 else "")
                     for result in list(counts)[:MAX_LOOKUPS])
        if len(counts) > MAX_LOOKUPS:
            facts.append("... and more lookups: see the transcript.")
    else:
        tools = sorted({readable_name(name) for t in conversation.turns for name in t.tool_names})
        if tools:
            facts.append("The agent used: " + ", ".join(tools))
    return facts


def _action_items(conversation: Conversation, has_figures: bool) -> list[str]:
    items = ["Read the transcript: this summary was made without an AI model."]
    if has_figures:
        items.append("Verify the figures the applicant stated against documents.")
    analysis = conversation.analysis
    if analysis:
        for criterion in analysis.evaluation:
            if criterion.result and criterion.result != "success":
                items.append(f"Follow up on '{criterion.id}' (result: {criterion.result}).")
        if analysis.call_successful == "failure":
            items.append("The call was not successful: call the applicant back.")
    return items


def _fallback_title(conversation: Conversation) -> str:
    # Not the conversation id: the cover lists it, and at title size it does not fit a line.
    applicant = _applicant(conversation)
    return f"Loan interview with {applicant}" if applicant else "Loan interview"


def _fallback_overview(conversation: Conversation, user_turn_count: int) -> str:
    spoken = conversation.spoken_turns
    answers = [t.text for t in spoken if t.role == "user"]
    text = (f"A call of {len(spoken)} spoken turns, {user_turn_count} of them by the applicant. "
            "ElevenLabs provided no analysis for this call.")
    if answers:
        # The longest answer is usually the one that says what the business needs.
        text += f' The applicant\'s longest answer: "{max(answers, key=len)}"'
    return text


