"""Font programs cut by HarfBuzz, checked against fontTools' reading of the original fonts."""

import io

import pytest
from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from fedfina_cli.core.conversation import parse_conversation
from fedfina_cli.report import FONTS
from fedfina_cli.report.font_subset import FontFormatError, FontProgram
from fedfina_cli.report.layout import ReportInput, render_report
from fedfina_cli.services.summarizers.offline import OfflineSummarizer

from .conftest import HINDI, load_sample, pdf_text

TEXT = "Rent ₹8,000 — Ä é ñ ﬁ Ω नमस्ते क्षत्रिय रोज़ 🙏 ✓ முருகன் 王小明 さくら 中文名字"


def _outline(glyph_set, name: str):
    pen = DecomposingRecordingPen(glyph_set)
    glyph_set[name].draw(pen)
    return pen.value, glyph_set[name].width


@pytest.mark.parametrize("filename", ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf",
                                      "NotoSansDevanagari-Regular.ttf", "NotoSansTamil-Regular.ttf",
                                      "DroidSansFallbackFull.ttf", "Symbola.ttf"])
def test_subset_keeps_outlines_and_widths_of_the_glyphs_asked_for(filename):
    original = TTFont(FONTS / filename)
    cmap, order = original.getBestCmap(), original.getGlyphOrder()
    gids = {original.getGlyphID(cmap[ord(ch)]) for ch in TEXT if ord(ch) in cmap}
    assert len(gids) > 5

    program, new_ids = FontProgram(FONTS / filename).subset(gids)

    subset = TTFont(io.BytesIO(program), checkChecksums=2)  # raises on a wrong table checksum
    subset.ensureDecompiled()
    assert set(new_ids) >= gids | {0}
    assert subset["maxp"].numGlyphs == len(new_ids) < len(order) / 5
    assert sorted(new_ids.values()) == list(range(len(new_ids)))
    assert not {"GSUB", "GPOS", "cmap"} & set(subset.keys())
    assert subset["name"].getBestFamilyName() == original["name"].getBestFamilyName()
    ours, theirs = subset.getGlyphSet(), original.getGlyphSet()
    sub_order = subset.getGlyphOrder()
    for old, new in new_ids.items():
        assert _outline(ours, sub_order[new]) == _outline(theirs, order[old]), order[old]


def test_composite_glyphs_bring_their_components_renumbered():
    original = TTFont(FONTS / "DejaVuSans.ttf")
    name = original.getBestCmap()[ord("Ä")]
    composite = original.getGlyphID(name)
    components = [original.getGlyphID(c.glyphName) for c in original["glyf"][name].components]
    assert components  # DejaVu builds Ä from A and the diaeresis

    program, new_ids = FontProgram(FONTS / "DejaVuSans.ttf").subset([composite])

    assert set(new_ids) == {0, composite, *components}
    subset = TTFont(io.BytesIO(program))
    glyph = subset["glyf"][subset.getGlyphOrder()[new_ids[composite]]]
    assert [subset.getGlyphID(c.glyphName) for c in glyph.components] == [new_ids[c] for c in components]


def test_a_file_that_is_not_truetype_is_refused(tmp_path):
    not_a_font = tmp_path / "font.ttf"
    not_a_font.write_bytes(b"OTTO" + bytes(100))
    with pytest.raises(FontFormatError):
        FontProgram(not_a_font)


def _render(payload, summary=None) -> bytes:
    conversation = parse_conversation(payload)
    summary = summary or _summary(payload)
    return render_report(ReportInput(conversation, summary, account_id="acc123", email_id=None))


def _summary(payload):
    return OfflineSummarizer().summarize(parse_conversation(payload), "", "English")


def _embedded_fonts(pdf: bytes) -> dict[str, bytes]:
    fonts = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            descendant = font.get_object()["/DescendantFonts"][0].get_object()
            fonts[str(font["/BaseFont"])] = descendant["/FontDescriptor"]["/FontFile2"].get_data()
    return fonts


def test_reports_embed_small_distinct_subsets_and_leave_the_shared_faces_intact():
    payload = load_sample(HINDI)
    payload["transcript"][1]["message"] += " 🙏"
    # One summary for both documents: its time is printed, and two summaries made
    # either side of a minute's turn would differ in text for no fault of the fonts.
    summary = _summary(payload)
    first = _render(payload, summary)
    fonts = _embedded_fonts(first)
    tags = {name.split("+")[0] for name in fonts}
    assert len(tags) == len(fonts) == 4  # DejaVu regular and bold, Noto Devanagari, Symbola
    for name, program in fonts.items():
        face = TTFont(io.BytesIO(program), checkChecksums=2)
        assert face["maxp"].numGlyphs < 200, name
    text = pdf_text(first)
    assert "रमेश" in text and "₹2,00,000" in text and "🙏" in text

    # The faces are shared between the documents of a process: a second report
    # must come out the same, not drawn with a face the first one cut down.
    second = _render(payload, summary)
    assert _embedded_fonts(second) == fonts
    assert pdf_text(second) == text


def test_a_document_with_a_core_font_is_embedded_by_fpdf2_without_touching_the_shared_face():
    from fedfina_cli.report.pdf_fonts import SharedFontsPDF

    def document(with_core_font: bool) -> bytes:
        pdf = SharedFontsPDF()
        pdf.add_shared_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
        pdf.add_page()
        pdf.set_font("DejaVu", size=12)
        pdf.cell(0, 10, "₹12,000 — shared face")
        if with_core_font:
            pdf.set_font("helvetica", size=12)
            pdf.cell(0, 10, "core font")
        return bytes(pdf.output())

    mixed = document(with_core_font=True)
    assert "core font" in pdf_text(mixed) and "₹12,000" in pdf_text(mixed)
    assert "₹12,000 — shared face" in pdf_text(document(with_core_font=False))


def test_every_stream_of_a_report_is_deflated_and_declares_its_lengths():
    """Pages, fonts and their maps are deflated by pdf_fonts._deflate (ISA-L), which rewrites
    streams fpdf2 built: each must still say FlateDecode, its /Length must be its bytes, and a
    font program's /Length1 its inflated size, or strict readers refuse the file."""
    import re
    import zlib

    pdf = _render(load_sample(HINDI))
    streams = list(re.finditer(rb"<<(.*?)>>\s*stream\r?\n", pdf, re.DOTALL))
    assert len(streams) >= 10  # two pages, and a program, ToUnicode and CIDToGIDMap per font
    programs = 0
    for match in streams:
        header = match.group(1)
        length = int(re.search(rb"/Length (\d+)", header).group(1))
        body = pdf[match.end():match.end() + length]
        assert pdf[match.end() + length:].lstrip(b"\r\n").startswith(b"endstream"), header
        assert b"/Filter /FlateDecode" in header, header
        inflated = zlib.decompress(body)  # the standard inflater reads what ISA-L wrote
        if declared := re.search(rb"/Length1 (\d+)", header):
            programs += 1
            assert int(declared.group(1)) == len(inflated)
            TTFont(io.BytesIO(inflated), checkChecksums=2)
    assert programs == len(_embedded_fonts(pdf))
    assert "रमेश" in pdf_text(pdf)
