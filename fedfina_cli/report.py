"""The PDF report a loan officer reads (fpdf2, with HarfBuzz text shaping).

DejaVu Sans carries Latin, ₹, symbols and monochrome emoji; Noto Sans
Devanagari is its fallback for Hindi. Shaping is on so that conjuncts, reph and
pre-base vowel signs are drawn correctly; no character is ever replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import PACKAGE_DIR
from .conversation import Conversation, applicant_name
from .summary import SummaryDocument
from .timefmt import clock, duration, local_time, local_time_iso

FONT_FILES = {
    ("DejaVu", ""): "DejaVuSans.ttf",
    ("DejaVu", "B"): "DejaVuSans-Bold.ttf",
    ("NotoDevanagari", ""): "NotoSansDevanagari-Regular.ttf",
    ("NotoDevanagari", "B"): "NotoSansDevanagari-Bold.ttf",
}
MAIN_FONT, FALLBACK_FONTS = "DejaVu", ["NotoDevanagari"]

INK = (33, 37, 41)
MUTED = (108, 117, 125)
ACCENT = (12, 74, 110)
RULE = (206, 212, 218)
SHADE = (241, 245, 249)
WARN_FILL = (255, 243, 205)
SPEAKER_COLOURS = {"AI": ACCENT, "User": (25, 111, 61)}


@dataclass(frozen=True)
class ReportInput:
    conversation: Conversation
    summary: SummaryDocument
    account_id: str
    email_id: str | None
    timezone: str = "Asia/Kolkata"


def render_report(data: ReportInput) -> bytes:
    pdf = _new_pdf(data)
    pdf.add_page()
    _cover(pdf, data)
    _summary(pdf, data.summary)
    if data.conversation.analysis:
        _analysis_tables(pdf, data.conversation)
    _transcript(pdf, data.conversation)
    return bytes(pdf.output())


def _new_pdf(data: ReportInput):
    from fpdf import FPDF

    conversation_id = data.conversation.conversation_id

    class ReportPDF(FPDF):
        def header(self) -> None:
            if self.page_no() == 1:
                return
            self.set_font(MAIN_FONT, "", 8)
            self.set_text_color(*MUTED)
            self.cell(0, 5, f"FedFina loan interview report · {conversation_id}", align="R",
                      new_x="LMARGIN", new_y="NEXT")
            self.ln(3)

        def footer(self) -> None:
            self.set_y(-13)
            self.set_draw_color(*RULE)
            self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
            self.set_font(MAIN_FONT, "", 8)
            self.set_text_color(*MUTED)
            self.cell(0, 7, f"FedFina · {data.account_id} · {conversation_id}", align="L")
            self.set_x(self.l_margin)
            self.cell(0, 7, f"Page {self.page_no()} of {{nb}}", align="R")

    pdf = ReportPDF(format="A4", unit="mm")
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_title(data.summary.summary.title)
    pdf.set_author("FedFina")
    pdf.set_creator("fedfina")
    for (family, style), filename in FONT_FILES.items():
        pdf.add_font(family, style, str(PACKAGE_DIR / "fonts" / filename))
    pdf.set_fallback_fonts(FALLBACK_FONTS)
    pdf.set_text_shaping(True)
    return pdf


def _cover(pdf, data: ReportInput) -> None:
    conversation, summary = data.conversation, data.summary
    pdf.set_font(MAIN_FONT, "B", 9)
    pdf.set_text_color(*ACCENT)
    pdf.cell(0, 5, "FEDFINA · LOAN INTERVIEW REPORT", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.set_font(MAIN_FONT, "B", 18)
    pdf.set_text_color(*INK)
    pdf.multi_cell(0, 9, summary.summary.title, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    if summary.method == "offline":
        _notice(pdf, "Offline summary: this is not an AI summary. It was assembled without a "
                     "language model from the transcript and ElevenLabs' own analysis; read the "
                     "transcript before deciding.")
    _key_values(pdf, _cover_facts(data))
    pdf.ln(4)


def _cover_facts(data: ReportInput) -> list[tuple[str, str]]:
    conversation, summary = data.conversation, data.summary
    meta = conversation.metadata
    facts = [("Account", data.account_id)]
    applicant = applicant_name(conversation)
    if applicant:
        facts.append(("Applicant", applicant))
    if data.email_id:
        facts.append(("Recipient", data.email_id))
    facts.append(("Conversation", conversation.conversation_id))
    agent = " · ".join(v for v in (conversation.agent_name, conversation.agent_id) if v)
    if agent:
        facts.append(("Agent", agent))
    if meta.start_time_unix_secs is not None:
        facts.append(("Call start", local_time(meta.start_time_unix_secs, data.timezone)))
    if meta.call_duration_secs is not None:
        facts.append(("Duration", duration(meta.call_duration_secs)))
    facts.append(("Language", summary.summary.language))
    phone = meta.phone_call
    if phone:
        call = " · ".join(v for v in (
            phone.direction and phone.direction.capitalize(),
            phone.type,
            phone.external_number and f"applicant {phone.external_number}",
            phone.agent_number and f"agent {phone.agent_number}",
        ) if v)
        if call:
            facts.append(("Phone call", call))
    if conversation.analysis and conversation.analysis.call_successful:
        facts.append(("Call outcome", conversation.analysis.call_successful))
    made = local_time_iso(summary.generated_at, data.timezone)
    facts.append(("Summary", f"{summary.made_by}, {made}" if made else summary.made_by))
    return facts


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
    if analysis.data_collection:
        _heading(pdf, "Data collected by the voice agent")
        _table(pdf, ("Field", "Value", "Rationale"), (35, 45, 94), [
            (item.description and f"{item.id}\n{item.description}" or item.id,
             "not collected" if item.value is None else str(item.value),
             item.rationale or "")
            for item in analysis.data_collection
        ])
    if analysis.evaluation:
        _heading(pdf, "Evaluation criteria")
        _table(pdf, ("Criterion", "Result", "Rationale"), (45, 25, 104), [
            (c.id, c.result or "", c.rationale or "") for c in analysis.evaluation
        ])


def _transcript(pdf, conversation: Conversation) -> None:
    pdf.add_page()
    _heading(pdf, "Appendix: transcript", size=14)
    pdf.set_font(MAIN_FONT, "", 8)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(0, 4.5, "Times are offsets from the start of the call (mm:ss). "
                           "AI is FedFina's voice agent; User is the applicant.",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    left = pdf.l_margin
    for turn in conversation.turns:
        if not turn.text and not turn.tool_names:
            continue
        pdf.set_x(left)
        pdf.set_font(MAIN_FONT, "", 8)
        pdf.set_text_color(*MUTED)
        pdf.cell(12, 5.5, clock(turn.time_in_call_secs))
        if turn.text:
            speaker = turn.speaker or turn.role or "?"
            pdf.set_font(MAIN_FONT, "B", 9.5)
            pdf.set_text_color(*SPEAKER_COLOURS.get(speaker, INK))
            pdf.cell(12, 5.5, speaker)
            pdf.set_font(MAIN_FONT, "", 9.5)
            pdf.set_text_color(*INK)
            pdf.multi_cell(0, 5.5, turn.text, align="L", new_x="LMARGIN", new_y="NEXT")
        else:
            # Tool-only turns carry no speech; a quiet line keeps the timeline honest.
            pdf.set_font(MAIN_FONT, "", 8)
            pdf.multi_cell(0, 5.5, "agent tool call: " + ", ".join(turn.tool_names),
                           align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)


# --- building blocks ----------------------------------------------------------


def _heading(pdf, text: str, size: float = 12) -> None:
    if pdf.get_y() > pdf.h - 45:  # keep a heading with at least a few lines of its body
        pdf.add_page()
    pdf.ln(2)
    pdf.set_font(MAIN_FONT, "B", size)
    pdf.set_text_color(*ACCENT)
    pdf.multi_cell(0, size * 0.55, text, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*RULE)
    pdf.line(pdf.l_margin, pdf.get_y() + 0.5, pdf.w - pdf.r_margin, pdf.get_y() + 0.5)
    pdf.ln(2.5)


def _paragraph(pdf, text: str) -> None:
    pdf.set_font(MAIN_FONT, "", 10)
    pdf.set_text_color(*INK)
    pdf.multi_cell(0, 5.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _bullets(pdf, points: list[str], numbered: bool = False) -> None:
    pdf.set_font(MAIN_FONT, "", 10)
    pdf.set_text_color(*INK)
    for number, point in enumerate(points, 1):
        pdf.set_x(pdf.l_margin + 2)
        pdf.cell(6, 5.5, f"{number}." if numbered else "•")
        pdf.multi_cell(0, 5.5, point, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(0.8)


def _notice(pdf, text: str) -> None:
    pdf.set_font(MAIN_FONT, "", 9)
    pdf.set_text_color(*INK)
    pdf.set_fill_color(*WARN_FILL)
    pdf.multi_cell(0, 5, text, align="L", fill=True, padding=2.5, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def _key_values(pdf, facts: list[tuple[str, str]]) -> None:
    from fpdf.fonts import FontFace

    pdf.set_font(MAIN_FONT, "", 9.5)
    pdf.set_text_color(*INK)
    label_style = FontFace(emphasis="BOLD", color=MUTED, size_pt=9)
    with pdf.table(
        col_widths=(30, 144),
        first_row_as_headings=False,
        borders_layout="NONE",
        cell_fill_color=SHADE,
        cell_fill_mode="ALL",
        line_height=5.2,
        text_align="LEFT",
        padding=(1, 2),
    ) as table:
        for label, value in facts:
            row = table.row()
            row.cell(label, style=label_style)
            row.cell(value)


def _table(pdf, headings: tuple[str, ...], widths: tuple[int, ...], rows: list[tuple[str, ...]]) -> None:
    from fpdf.fonts import FontFace

    pdf.set_font(MAIN_FONT, "", 9)
    pdf.set_text_color(*INK)
    pdf.set_draw_color(*RULE)
    with pdf.table(
        col_widths=widths,
        headings_style=FontFace(emphasis="BOLD", color=ACCENT, fill_color=SHADE),
        line_height=5,
        text_align="LEFT",
        padding=1.5,
        first_row_as_headings=True,
        cell_fill_mode="NONE",
    ) as table:
        table.row(headings)
        for row in rows:
            table.row(row)
    pdf.ln(3)
