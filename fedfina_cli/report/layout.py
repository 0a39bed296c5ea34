"""The PDF report a loan officer reads (fpdf2, with HarfBuzz text shaping).

DejaVu Sans carries Latin, ₹ and symbols. Applicants' names and answers come
in every Indian script, so Noto Sans for each (Devanagari, Bengali, Gurmukhi,
Gujarati, Odia, Tamil, Telugu, Kannada, Malayalam; regular and bold), Droid
Sans Fallback for Chinese, Japanese and Korean, and Symbola (monochrome emoji,
more symbols) are fallbacks, each added only to documents whose text needs it.
Text in complex scripts is shaped, so conjuncts, reph and pre-base vowel signs
are drawn correctly. A character no bundled face has is drawn as U+FFFD and
reported (``Rendered.missing``), never dropped. Lines are set by
pdf_text.TextSetter.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from fedfina_cli.core.conversation import Conversation, Feedback, applicant_phone, named_applicant
from fedfina_cli.core.figures import to_check
from fedfina_cli.core.summary import SummaryDocument
from fedfina_cli.core.timefmt import clock, duration, local_time, local_time_iso
from fedfina_cli.core.wording import (
    call_goal,
    collected_value,
    criterion_result,
    how_it_ended,
    masked_phone,
    readable_name,
)
from fedfina_cli.report import FONTS

MAIN_FONT = "DejaVu"
MAIN_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}


@dataclass(frozen=True)
class Fallback:
    family: str
    regular: str
    bold: str | None = None  # None: the regular face serves bold text too


# Where a character missing from DejaVu is looked for, in this order.
FALLBACKS = (
    *(Fallback(f"Noto{script}", f"NotoSans{script}-Regular.ttf", f"NotoSans{script}-Bold.ttf")
      for script in ("Devanagari", "Bengali", "Gurmukhi", "Gujarati", "Oriya", "Tamil", "Telugu",
                     "Kannada", "Malayalam")),
    Fallback("DroidFallback", "DroidSansFallbackFull.ttf"),  # CJK: 4 MB, 49,000 glyphs
    Fallback("Symbola", "Symbola.ttf"),
)

INK = (33, 37, 41)
MUTED = (108, 117, 125)
ACCENT = (12, 74, 110)
RULE = (206, 212, 218)
SHADE = (241, 245, 249)
WARN_FILL = (255, 243, 205)
ALERT = (176, 42, 55)  # a lookup that failed
SPEAKER_COLOURS = {"AI": ACCENT, "User": (25, 111, 61)}
BODY, LINE = 10, 5.5  # body text size (pt) and line height (mm)


@dataclass(frozen=True)
class ReportInput:
    conversation: Conversation
    summary: SummaryDocument
    account_id: str
    email_id: str | None
    timezone: str = "Asia/Kolkata"
    applicant: str | None = None  # the name as the pipeline resolved and masked it (else read here)


@dataclass(frozen=True)
class Rendered:
    pdf: bytes
    missing: tuple[str, ...] = ()  # characters no bundled face has, drawn as U+FFFD


def render(data: ReportInput) -> Rendered:
    pdf = _new_pdf(data)
    pdf.add_page()
    _cover(pdf, data)
    _summary(pdf, data.summary)
    if data.summary.method != "notice":  # a call that reached nobody: one page, no tables or transcript
        if data.conversation.analysis:
            _analysis_tables(pdf, data.conversation)
        _transcript(pdf, data.conversation)
    _about(pdf, data)
    _number_pages(pdf)
    return Rendered(bytes(pdf.output()), tuple(sorted(pdf.layout.missing)))


def _number_pages(pdf) -> None:
    """"Page n of N" at the foot of every page, drawn when N is known. (fpdf2's {nb} alias
    works only through its general cell(), which cost 0.9 ms a report for the header's and
    footers' five lines.)"""
    last = pdf.page
    pdf.in_footer = True  # below the page-break trigger, as the footer is
    pdf.set_font(MAIN_FONT, "", 8)
    pdf.set_text_color(*MUTED)
    try:
        for number in range(1, last + 1):
            pdf.page = number  # fpdf2 adds to the page whose number this is
            pdf.set_y(-13)
            pdf.layout.right(7, f"Page {number} of {last}")
    finally:
        pdf.page, pdf.in_footer = last, False


def render_report(data: ReportInput) -> bytes:
    return render(data).pdf


def _new_pdf(data: ReportInput):
    from fedfina_cli.report.pdf_fonts import SharedFontsPDF
    from fedfina_cli.report.pdf_text import TextSetter

    conversation_id = data.conversation.conversation_id

    class ReportPDF(SharedFontsPDF):
        # Set while a transcript turn is written: a turn that flows onto a new page is named
        # again at its top ("00:22  User (continued)"); it went on with no speaker or time.
        continuing: str | None = None
        layout: TextSetter  # the report's own text setter

        def header(self) -> None:
            if self.page_no() == 1:
                return
            self.set_font(MAIN_FONT, "", 8)
            self.set_text_color(*MUTED)
            self.layout.right(5, f"FedFina loan interview report · {conversation_id}")
            self.ln(5 + 3)
            if self.continuing:
                self.set_font(MAIN_FONT, "B", 8)
                self.layout.line(self.epw, 4.5, self.continuing, new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            self.set_y(-13)
            self.set_draw_color(*RULE)
            self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
            self.set_font(MAIN_FONT, "", 8)
            self.set_text_color(*MUTED)
            self.layout.line(self.epw, 7, f"FedFina · {data.account_id} · {conversation_id}")
            # "Page n of N" is added by _number_pages once N is known.

    pdf = ReportPDF(format="A4", unit="mm")
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_title(data.summary.summary.title)
    pdf.set_author("FedFina")
    pdf.set_creator("fedfina")
    for style, filename in MAIN_FILES.items():
        _add_font(pdf, MAIN_FONT, style, filename)
    # Every registered face is subset and embedded, used or not: register only
    # the faces this report's text needs.
    families = []
    for fallback, bold in _fallbacks_needed(data):
        _add_font(pdf, fallback.family, "", fallback.regular)
        if bold and fallback.bold is not None:
            _add_font(pdf, fallback.family, "B", fallback.bold)
        families.append(fallback.family)
    # exact_match=False: a regular fallback face also serves bold text.
    pdf.set_fallback_fonts(families, exact_match=False)
    pdf.layout = TextSetter(pdf)
    return pdf


def load_fonts() -> None:
    """Parse the faces nearly every report uses (for a worker process to do up front)."""
    from fedfina_cli.report.pdf_fonts import load_shared_font

    devanagari = FALLBACKS[0]
    faces = [(MAIN_FONT, style, filename) for style, filename in MAIN_FILES.items()]
    faces += [(devanagari.family, "", devanagari.regular), (devanagari.family, "B", devanagari.bold or "")]
    for family, style, filename in faces:
        load_shared_font(family, style, str(FONTS / filename))
    _coverage(MAIN_FILES[""])
    _coverage(devanagari.regular)


def _add_font(pdf, family: str, style: str, filename: str) -> None:
    pdf.add_shared_font(family, style, str(FONTS / filename))


@cache
def _coverage(filename: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(FONTS / filename, lazy=True).getBestCmap())


def _fallbacks_needed(data: ReportInput) -> list[tuple[Fallback, bool]]:
    """The fallback faces this report's text needs, in order, and whether each needs its bold."""
    summary = data.summary.summary
    bold = [summary.title, *(section.heading for section in summary.sections)]
    regular = [t.text for t in data.conversation.turns] + [summary.overview, summary.language]
    regular += [p for section in summary.sections for p in section.points] + summary.action_items
    if data.conversation.analysis:
        analysis = data.conversation.analysis
        regular += [str(v) for item in analysis.data_collection
                    for v in (item.id, item.value, item.rationale, item.description)]
        regular += [str(v) for c in analysis.evaluation for v in (c.id, c.result, c.rationale)]
    regular += [data.account_id, data.email_id or "", data.conversation.agent_name or ""]
    main = _coverage(MAIN_FILES[""])

    def missing(texts: list[str]) -> set[int]:
        # Each distinct character once (a report's text repeats a few dozen of them).
        return {ord(ch) for ch in set("".join(texts)) if ord(ch) not in main and ord(ch) > 0x20
                and unicodedata.category(ch) not in ("Cf", "Cc")}

    bold_missing = missing(bold)
    unclaimed = missing(regular) | bold_missing
    needed = []
    for fallback in FALLBACKS:
        if not unclaimed:
            break  # the common case stops here, without reading the other faces' tables
        claimed = unclaimed & _coverage(fallback.regular)
        # A combining mark alone (a stray virama) is drawn by its base's face.
        if any(unicodedata.category(chr(code)) != "Mn" for code in claimed):
            needed.append((fallback, fallback.bold is not None and bool(claimed & bold_missing)))
            unclaimed -= claimed
    return needed


# --- the sections ------------------------------------------------------------------


def _cover(pdf, data: ReportInput) -> None:
    summary = data.summary
    pdf.set_font(MAIN_FONT, "B", 9)
    pdf.set_text_color(*ACCENT)
    pdf.layout.line(pdf.epw, 5, "FEDFINA · LOAN INTERVIEW REPORT", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.set_font(MAIN_FONT, "B", 18)
    pdf.set_text_color(*INK)
    pdf.layout.write(summary.summary.title, pdf.epw, 9)
    pdf.ln(2)
    if summary.method == "offline":
        _notice(pdf, "Offline summary: this is not an AI summary. It was assembled without a "
                     "language model from the transcript and ElevenLabs' own analysis; read the "
                     "transcript before deciding.")
    figures = to_check(summary)
    if figures:
        _notice(pdf, "Check these figures: the call does not support them (not said, nor derived from what "
                     "was said). " + "; ".join(figures) + ".")
    _grid(pdf, None, (30, pdf.epw - 30), _cover_facts(data), label_column=True)
    pdf.ln(4)


def _cover_facts(data: ReportInput) -> list[tuple[str, str]]:
    """Who the call was with first (the officer knows whom the report is for), then the call."""
    conversation, summary = data.conversation, data.summary
    meta = conversation.metadata
    phone = masked_phone(applicant_phone(conversation))
    name = data.applicant or named_applicant(conversation, summary.summary.applicant_name)
    facts = [("Applicant", name or "not recorded (no name in the call)")]
    if phone:
        facts.append(("Phone", phone))
    if meta.start_time_unix_secs is not None:
        facts.append(("Call start", local_time(meta.start_time_unix_secs, data.timezone)))
    if meta.call_duration_secs is not None:
        facts.append(("Duration", duration(meta.call_duration_secs)))
    facts.append(("Language", summary.summary.language))
    goal = meta.unanswered or (call_goal(conversation.analysis.call_successful) if conversation.analysis else None)
    if goal:
        facts.append(("Call result", goal))
    if meta.feedback:
        facts.append(("Applicant's rating", _feedback(meta.feedback)))
    ended = how_it_ended(meta.termination_reason)
    if ended:
        facts.append(("How it ended", ended))
    facts.append(("Account", data.account_id))
    if conversation.agent_name:
        facts.append(("Agent", conversation.agent_name))
    return facts


def _feedback(feedback: Feedback) -> str:
    """4 of 5 · liked the call · “Quick and clear”."""
    bits = []
    if feedback.rating is not None:
        bits.append(f"{feedback.rating} of 5")
    if feedback.liked is not None:
        bits.append("liked the call" if feedback.liked else "did not like the call")
    if feedback.comment:
        bits.append(f"“{feedback.comment}”")
    return " · ".join(bits)


def _about(pdf, data: ReportInput) -> None:
    """Provenance and identifiers, for whoever must trace the report: at the end, in words."""
    conversation, summary, meta = data.conversation, data.summary, data.conversation.metadata
    facts = list(summary.about)
    made = local_time_iso(summary.generated_at, data.timezone)
    if made:
        facts.append(("Made", made))
    facts.append(("Conversation", conversation.conversation_id))
    if conversation.agent_id:
        facts.append(("Agent", conversation.agent_id))
    call = meta.phone_call
    if call:
        how = " · ".join(v for v in (
            call.direction and call.direction.capitalize(),
            call.type,
            call.agent_number and f"agent line {call.agent_number}",
        ) if v)
        if how:
            facts.append(("Phone call", how))
    if meta.termination_reason:
        facts.append(("Ended, as recorded", meta.termination_reason))
    # Kept whole: a block of a few lines split by a page break left one line on a page of its own.
    pdf.set_font(MAIN_FONT, "", 8)
    lines = sum(len(pdf.layout.lines(value, pdf.epw - 32)) for _, value in facts)
    _heading(pdf, "About this report", size=11, keep=4.5 * lines)
    pdf.set_font(MAIN_FONT, "", 8)
    pdf.set_text_color(*MUTED)
    for label, value in facts:
        pdf.set_x(pdf.l_margin)
        pdf.layout.line(32, 4.5, label)
        pdf.layout.write(value, pdf.epw - 32, 4.5)


def _summary(pdf, document: SummaryDocument) -> None:
    summary = document.summary
    _heading(pdf, "Overview")
    _paragraph(pdf, summary.overview)
    for section in summary.sections:
        if section.points:
            _heading(pdf, section.heading)
            _bullets(pdf, section.points)
    if summary.action_items:
        _heading(pdf, "Action items")
        _bullets(pdf, summary.action_items, numbered=True)
    if summary.sentiment != "unknown":
        _heading(pdf, "Applicant sentiment")
        _paragraph(pdf, summary.sentiment.capitalize())


def _analysis_tables(pdf, conversation: Conversation) -> None:
    analysis = conversation.analysis
    if analysis is None:
        return
    if analysis.data_collection:
        _heading(pdf, "Data collected by the voice agent", keep=25)  # rows split across pages
        _grid(pdf, ("Field", "Value", "Rationale"), (48, 36, pdf.epw - 84), [
            ((readable_name(item.id), item.description or ""),
             collected_value(item.id, item.description, item.value),
             item.rationale or "")
            for item in analysis.data_collection
        ])
        pdf.ln(3)
    if analysis.evaluation:
        _heading(pdf, "Evaluation criteria", keep=25)
        _grid(pdf, ("Criterion", "Result", "Rationale"), (52, 24, pdf.epw - 76), [
            (readable_name(c.id), criterion_result(c.result) + (f" ({c.score} of {c.max_score})" if
             c.score is not None and c.max_score else ""), c.rationale or "") for c in analysis.evaluation
        ])
        pdf.ln(3)


def _transcript(pdf, conversation: Conversation) -> None:
    # It follows on: a page break here left most of a page blank after short tables.
    _heading(pdf, "Appendix: transcript", size=14, keep=30)
    pdf.set_font(MAIN_FONT, "", 8)
    pdf.set_text_color(*MUTED)
    pdf.layout.write("Times are offsets from the start of the call (mm:ss). "
                     "AI is FedFina's voice agent; User is the applicant.", pdf.epw, 4.5)
    pdf.ln(2)
    time_width, speaker_width = 12, 12
    text_width = pdf.epw - time_width - speaker_width
    for turn in conversation.turns:
        if not turn.text and not turn.tool_names and not turn.tool_results:
            continue
        pdf.set_x(pdf.l_margin)
        pdf.set_font(MAIN_FONT, "", 8)
        pdf.set_text_color(*MUTED)
        pdf.layout.line(time_width, LINE, clock(turn.time_in_call_secs))
        if turn.text:
            speaker = turn.speaker or turn.role or "?"
            pdf.set_font(MAIN_FONT, "B", 9.5)
            pdf.set_text_color(*SPEAKER_COLOURS.get(speaker, INK))
            pdf.layout.line(speaker_width, LINE, speaker)
            pdf.set_font(MAIN_FONT, "", 9.5)
            pdf.set_text_color(*INK)
            pdf.continuing = f"{clock(turn.time_in_call_secs)}  {speaker} (continued)"
            # A turn the applicant cut off is marked: its text is what was said before that.
            pdf.layout.write(turn.text + ("  — cut off" if turn.interrupted else ""), text_width, LINE)
            pdf.continuing = None
        elif not turn.tool_results:
            # A tool used with no result recorded: a quiet line keeps the timeline honest.
            pdf.set_x(pdf.l_margin + time_width + speaker_width)
            pdf.layout.write("The agent used: " + ", ".join(readable_name(n) for n in turn.tool_names),
                             text_width, LINE)
        for result in turn.tool_results:  # what a lookup returned, or that it failed: officers act on it
            pdf.set_x(pdf.l_margin + time_width + speaker_width)
            pdf.set_font(MAIN_FONT, "", 8.5)
            pdf.set_text_color(*(ALERT if result.failed else MUTED))
            pdf.layout.write(str(result), text_width, LINE)
        pdf.ln(1)
    # Where the transcript ends, said: a last page that stops mid-way reads as cut off otherwise.
    spoken = conversation.spoken_turns
    length = conversation.metadata.call_duration_secs
    pdf.set_font(MAIN_FONT, "", 8)
    pdf.set_text_color(*MUTED)
    pdf.layout.write(f"End of transcript: {len(spoken)} spoken turns"
                     + (f", {duration(length)} in all." if length else "."), pdf.epw, 4.5)


# --- building blocks -----------------------------------------------------------------


def _heading(pdf, text: str, size: float = 12, keep: float = 25) -> None:
    """A section heading, moved to a new page unless ``keep`` mm of its body fit below it."""
    if pdf.get_y() + size * 0.55 + 5 + keep > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(2)
    pdf.set_font(MAIN_FONT, "B", size)
    pdf.set_text_color(*ACCENT)
    pdf.layout.write(text, pdf.epw, size * 0.55)
    pdf.set_draw_color(*RULE)
    pdf.line(pdf.l_margin, pdf.get_y() + 0.5, pdf.w - pdf.r_margin, pdf.get_y() + 0.5)
    pdf.ln(2.5)


def _paragraph(pdf, text: str) -> None:
    pdf.set_font(MAIN_FONT, "", BODY)
    pdf.set_text_color(*INK)
    pdf.layout.write(text, pdf.epw, LINE)
    pdf.ln(1)


def _bullets(pdf, points: list[str], numbered: bool = False) -> None:
    pdf.set_font(MAIN_FONT, "", BODY)
    pdf.set_text_color(*INK)
    indent = 8
    for number, point in enumerate(points, 1):
        pdf.set_x(pdf.l_margin + 2)
        pdf.layout.line(indent - 2, LINE, f"{number}." if numbered else "•")
        pdf.layout.write(point, pdf.epw - indent, LINE)
        pdf.ln(0.8)


def _notice(pdf, text: str) -> None:
    pdf.set_font(MAIN_FONT, "", 9)
    pdf.set_text_color(*INK)
    pad, line_height = 2.5, 5
    lines = pdf.layout.lines(text, pdf.epw - 2 * pad)
    pdf.set_fill_color(*WARN_FILL)
    pdf.rect(pdf.l_margin, pdf.get_y(), pdf.epw, len(lines) * line_height + 2 * pad, style="F")
    pdf.set_y(pdf.get_y() + pad)
    for line in lines:
        pdf.set_x(pdf.l_margin + pad)
        pdf.layout.line(pdf.epw - 2 * pad, line_height, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(pad + 3)


Cell = str | tuple[str, str]  # text, or (text, a muted note below it)


def _grid(pdf, headings: tuple[str, ...] | None, widths: tuple[float, ...],
          rows: Sequence[tuple[Cell, ...]], label_column: bool = False) -> None:
    """A table with wrapping cells; headings repeat on each page.

    A row that does not fit moves to the next page whole if it is short; a tall one (a long
    rationale) fills the page and goes on at the top of the next: moved whole it left up to
    half a page blank.
    ``label_column``: the first column is a shaded label (the cover's key/value block).
    """
    pad, line_height, size, note_size = 1.5, 5, 9, 8
    short_row = 4  # lines: moved whole rather than split

    def cell_style(column: int, heading: bool) -> tuple[str, tuple]:
        if heading:
            return "B", ACCENT
        if label_column and column == 0:
            return "B", MUTED
        return "", INK

    def draw(cells: tuple[Cell, ...], heading: bool = False) -> None:
        wrapped = []  # per column: [(line, is_note)]
        for column, (cell, width) in enumerate(zip(cells, widths)):
            text, note = cell if isinstance(cell, tuple) else (cell, "")
            pdf.set_font(MAIN_FONT, cell_style(column, heading)[0], size)
            lines = [(line, False) for line in pdf.layout.lines(text, width - 2 * pad)]
            if note:
                pdf.set_font(MAIN_FONT, "", note_size)
                lines += [(line, True) for line in pdf.layout.lines(note, width - 2 * pad)]
            wrapped.append(lines)
        place(wrapped, heading)

    def place(wrapped: list[list[tuple[str, bool]]], heading: bool) -> None:
        rows_of_lines = max(len(lines) for lines in wrapped)
        room = int((pdf.page_break_trigger - pdf.get_y() - 2 * pad) // line_height)
        if rows_of_lines > room:
            if heading or rows_of_lines <= short_row or room < 2:
                pdf.add_page()
                if headings and not heading:
                    draw(headings, heading=True)
                return place(wrapped, heading)  # a fresh page: it fits, or it is split there
            paint([lines[:room] for lines in wrapped], heading)
            pdf.add_page()
            if headings:
                draw(headings, heading=True)
            rest = [lines[room:] for lines in wrapped]
            if not rest[0]:  # the row's label, again: the page starts mid-row
                rest[0] = [wrapped[0][0], ("continued", True)]
            return place(rest, heading)
        return paint(wrapped, heading)

    def paint(wrapped: list[list[tuple[str, bool]]], heading: bool) -> None:
        height = max(len(lines) for lines in wrapped) * line_height + 2 * pad
        x, y = pdf.l_margin, pdf.get_y()
        pdf.set_fill_color(*SHADE)
        pdf.set_draw_color(*RULE)
        for column, (lines, width) in enumerate(zip(wrapped, widths)):
            style, colour = cell_style(column, heading)
            pdf.rect(x, y, width, height, style="F" if label_column else "DF" if heading else "D")
            styled = None  # a cell's lines, then its note's: the font and colour change once
            for number, (line, is_note) in enumerate(lines):
                if is_note is not styled:
                    pdf.set_font(MAIN_FONT, "" if is_note else style, note_size if is_note else size)
                    pdf.set_text_color(*(MUTED if is_note else colour))
                    styled = is_note
                pdf.set_xy(x + pad, y + pad + number * line_height)
                pdf.layout.line(width - 2 * pad, line_height, line)
            x += width
        pdf.set_xy(pdf.l_margin, y + height)

    if headings:
        draw(headings, heading=True)
    for row in rows:
        draw(row)
