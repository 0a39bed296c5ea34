"""Lines set by pdf_text.TextSetter, compared with what fpdf2's own cell() produces."""

import contextlib
import re
import zlib

import pytest

from fedfina_cli.report import FONTS
from fedfina_cli.report.pdf_fonts import SharedFontsPDF
from fedfina_cli.report.pdf_text import TextSetter, has_rtl, needs_shaping

from .conftest import pdf_text


def _pdf() -> SharedFontsPDF:
    pdf = SharedFontsPDF()
    pdf.add_shared_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_shared_font("Noto", "", str(FONTS / "NotoSansDevanagari-Regular.ttf"))
    pdf.add_shared_font("Symbola", "", str(FONTS / "Symbola.ttf"))
    pdf.set_fallback_fonts(["Noto", "Symbola"], exact_match=False)
    pdf.add_page()
    pdf.set_font("DejaVu", size=10)
    return pdf


def _content(pdf) -> str:
    data = bytes(pdf.output())
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.DOTALL)
    text = []
    for stream in streams:
        with contextlib.suppress(zlib.error):
            text.append(zlib.decompress(stream).decode("latin-1"))
    return "\n".join(text)


# Words: between Hindi words the space is Noto's (it stays in the Devanagari
# run), narrower than the DejaVu space fpdf2 would use.
@pytest.mark.parametrize("text", ["Rent ₹8,000 — stock for Diwali", "रमेश", "क्षत्रिय", "ज़्यादा", "हूँ"])
def test_widths_match_fpdf2s_own_measure(text):
    pdf = _pdf()
    pdf.set_text_shaping(needs_shaping(text))
    theirs = pdf.get_string_width(text)
    pdf.set_text_shaping(False)
    assert TextSetter(pdf).width(text) == pytest.approx(theirs, rel=0.01)


def test_a_width_is_reused_by_the_next_document_only_when_it_has_the_same_faces():
    text = "बिजली ₹2,500 🙏"
    first = TextSetter(_pdf()).width(text)
    assert TextSetter(_pdf()).width(text) == first  # the same faces: the width measured before

    # Only the main face: the Hindi and the emoji are placeholders, whose widths differ.
    pdf = SharedFontsPDF()
    pdf.add_shared_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_page()
    pdf.set_font("DejaVu", size=10)
    setter = TextSetter(pdf)
    alone = setter.width(text)
    assert alone != pytest.approx(first, rel=0.01)
    assert alone == pytest.approx(pdf.get_string_width("\ufffd" * 5 + " ₹2,500 \ufffd"), rel=0.01)

    # Another size is measured again.
    pdf.set_font("DejaVu", size=20)
    assert setter.width(text) == pytest.approx(2 * alone)


def test_a_document_on_fpdf2s_own_path_keeps_its_widths_to_itself():
    # Kept for later documents, its widths would keep it (pages and all) alive with them.
    from fedfina_cli.report import pdf_text

    setter = TextSetter(_pdf())
    setter.fast = False  # as when fpdf2's internals are not the ones the fast path knows
    before = dict(pdf_text._WIDTHS)
    assert setter.width("Rent ₹8,000 रमेश") > 0
    assert before == pdf_text._WIDTHS


def test_shaping_kept_for_later_documents_is_kept_per_face():
    from fedfina_cli.report.pdf_text import _shape

    pdf = _pdf()
    pdf.add_shared_font("Noto", "B", str(FONTS / "NotoSansDevanagari-Bold.ttf"))
    regular, bold = pdf.fonts["noto"], pdf.fonts["notoB"]
    text = "क्षत्रिय व्यापारी"
    first = _shape(regular, text)
    assert _shape(bold, text) != first  # the bold face's own advances, not the regular's kept before
    assert _shape(bold, text) == _shape(bold, text)
    assert [glyph[4] for glyph in first] == [glyph[4] for glyph in _shape(_pdf().fonts["noto"], text)]


def test_a_mixed_line_is_drawn_in_runs_of_the_font_that_has_each_character():
    pdf = _pdf()
    setter = TextSetter(pdf)
    setter.line(100, 6, "Rent ₹8,000, बिजली ₹2,500 🙏 done", new_x="LMARGIN", new_y="NEXT")

    content = _content(pdf)
    fonts_used = re.findall(r"/F(\d) [\d.]+ Tf", content)
    # DejaVu, then Noto for the Hindi (its space stays in the run), DejaVu for
    # the amount, Symbola for the emoji, DejaVu again.
    assert fonts_used == ["1", "2", "1", "3", "1"]
    text = pdf_text(bytes(pdf.output()))
    assert "Rent ₹8,000," in text and "₹2,500" in text and "🙏" in text and "done" in text
    assert pdf.x == pdf.l_margin and pdf.y == pytest.approx(pdf.t_margin + 6)


def test_marks_are_placed_by_harfbuzz_with_tj_adjustments():
    pdf = _pdf()
    TextSetter(pdf).line(100, 6, "हूँ ज़्यादा")
    content = _content(pdf)
    assert "TJ" in content
    assert "Tm" not in content  # no text matrix per glyph, as fpdf2's shaping writes


def test_a_line_with_right_to_left_text_is_ordered_by_fpdf2s_bidi():
    assert has_rtl("name: العربية") and not has_rtl("नमस्ते ₹5")
    pdf = _pdf()
    pdf.add_shared_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    setter = TextSetter(pdf)
    setter.line(150, 6, "(क्षत्रिय) العربية then ₹2,500", new_x="LMARGIN", new_y="NEXT")
    setter.line(150, 6, "Next line ₹7,500", new_x="LMARGIN", new_y="NEXT")
    text = pdf_text(bytes(pdf.output()))
    assert "₹2,500" in text and "Next line ₹7,500" in text
    assert pdf.get_string_width("x") > 0 and not pdf.text_shaping  # state restored


def test_a_line_that_does_not_fit_moves_to_a_new_page_keeping_its_indent():
    pdf = _pdf()
    setter = TextSetter(pdf)
    pdf.set_y(pdf.page_break_trigger - 3)
    pdf.set_x(40)
    setter.line(100, 6, "₹12,000 on the next page", new_x="LEFT", new_y="NEXT")
    assert pdf.page == 2 and pdf.x == 40
    assert pdf.y == pytest.approx(pdf.t_margin + 6)


def test_reports_rendered_at_once_in_threads_match_one_at_a_time():
    # One core: a batch renders in its own threads, which share the parsed faces.
    from concurrent.futures import ThreadPoolExecutor

    from fedfina_cli.core.conversation import parse_conversation
    from fedfina_cli.report.layout import ReportInput, render_report
    from fedfina_cli.services.summarizers.offline import OfflineSummarizer

    from .conftest import hindi_variant

    inputs = []
    for n in range(8):
        conversation = parse_conversation(hindi_variant(n))
        summary = OfflineSummarizer().summarize(conversation, "", "English")
        inputs.append(ReportInput(conversation, summary, "acc1", None))
    one_at_a_time = [pdf_text(render_report(data)) for data in inputs]
    with ThreadPoolExecutor(8) as pool:
        at_once = [pdf_text(pdf) for pdf in pool.map(render_report, inputs)]
    assert at_once == one_at_a_time
    assert all("₹2,00,000" in text and "रमेश" in text for text in at_once)
