"""Shaping checked in pixels: text extraction cannot see where a glyph is drawn.

Each line is rendered through the report's own text setter and fonts, rasterised
with pdfium, and compared with a reference image that a person looked at and
approved (tests/references/). A mark drawn on the wrong side of its consonant,
a reph in the wrong place or a missing conjunct moves many dark pixels.

After a deliberate change to text setting, render new references with
FEDFINA_UPDATE_REFERENCES=1 python -m pytest tests/test_shaping_raster.py,
look at every image, and commit them.
"""

import io
import os
from pathlib import Path

import pytest

REFERENCES = Path(__file__).parent / "references"
LINES = {
    "devanagari": "क्षत्रिय प्रिया रोज़ कुमार ₹2,00,000 दुकान",
    "tamil": "முருகன் செல்வராஜ் கடை ₹8,000",
    "mixed-rupee": "Rent ₹8,000 — किराया ₹8,000 — வாடகை ₹8,000",
    # Every other script the report renders (issue 25): conjuncts, pre-base vowel signs, repha.
    "bengali": "সুমিত্রা দাস মুদির দোকানের ঋণ ₹২ লাখ",
    "gurmukhi": "ਗੁਰਪ੍ਰੀਤ ਸਿੰਘ ਕਿਰਿਆਨਾ ਦੁਕਾਨ ₹2 ਲੱਖ",
    "gujarati": "પ્રકાશ પટેલ કરિયાણાની દુકાન ₹2 લાખ",
    "odia": "ସୁଶ୍ରୀ ପ୍ରିୟଙ୍କା ଦୋକାନ ₹2 ଲକ୍ଷ",
    "telugu": "శ్రీనివాస్ కిరాణా దుకాణం ₹2 లక్షలు",
    "kannada": "ಶ್ರೀನಿವಾಸ ಕಿರಾಣಿ ಅಂಗಡಿ ₹2 ಲಕ್ಷ",
    "malayalam": "ശ്രീനിവാസൻ പലചരക്ക് കട ₹2 ലക്ഷം",
}
SCALE = 3  # 216 dpi
INK = 128  # a pixel darker than this is ink
TOLERANCE = 0.03  # share of ink pixels allowed to differ (anti-aliasing between pdfium builds)


def _line_pdf(text: str) -> bytes:
    from fedfina_cli.report import layout as report
    from fedfina_cli.report.pdf_fonts import SharedFontsPDF
    from fedfina_cli.report.pdf_text import TextSetter

    pdf = SharedFontsPDF(format=(150, 16), unit="mm")
    pdf.set_margins(3, 3, 3)
    pdf.set_auto_page_break(False)
    for style, filename in report.MAIN_FILES.items():
        report._add_font(pdf, report.MAIN_FONT, style, filename)
    scripts = [fallback for fallback in report.FALLBACKS if fallback.family.startswith("Noto")]
    for fallback in scripts:
        report._add_font(pdf, fallback.family, "", fallback.regular)
    pdf.set_fallback_fonts([fallback.family for fallback in scripts], exact_match=False)
    pdf.layout = TextSetter(pdf)
    pdf.add_page()
    pdf.set_font(report.MAIN_FONT, "", 16)
    pdf.layout.line(pdf.epw, 10, text)
    return bytes(pdf.output())


def _raster(pdf: bytes):
    import pypdfium2

    document = pypdfium2.PdfDocument(io.BytesIO(pdf))
    try:
        return document[0].render(scale=SCALE, grayscale=True).to_pil().convert("L")
    finally:
        document.close()


def _mismatch(image, reference) -> float:
    """Share of the ink pixels (in either image) where the two differ by more than half the range."""
    assert image.size == reference.size
    ink = differing = 0
    for ours, theirs in zip(image.tobytes(), reference.tobytes()):
        if ours < INK or theirs < INK:
            ink += 1
            differing += abs(ours - theirs) > 128
    return differing / max(ink, 1)


@pytest.mark.parametrize("name", sorted(LINES))
def test_shaped_lines_match_their_reviewed_images(name):
    from PIL import Image

    image = _raster(_line_pdf(LINES[name]))
    path = REFERENCES / f"shaping-{name}.png"
    if os.environ.get("FEDFINA_UPDATE_REFERENCES"):
        image.save(path)
    reference = Image.open(path)
    assert _mismatch(image, reference) <= TOLERANCE, f"{name}: the line no longer looks like {path}"


def _own_caches(monkeypatch):
    """Widths and shaping kept for this corrupted test only: later tests in the process must not reuse them."""
    from fedfina_cli.report import pdf_text

    monkeypatch.setattr(pdf_text, "_WIDTHS", {})
    monkeypatch.setattr(pdf_text, "_SHAPED", {})


def _flipped_offsets(monkeypatch):
    from fedfina_cli.report import pdf_text

    _own_caches(monkeypatch)
    real_shape = pdf_text._shape

    def flipped(font, text):
        # (glyph, cluster, x offset, y offset, x advance): the marks moved the wrong way
        return tuple((glyph, cluster, -dx, -dy, advance) for glyph, cluster, dx, dy, advance in real_shape(font, text))

    monkeypatch.setattr(pdf_text, "_shape", flipped)


def _unshaped(monkeypatch):
    from fedfina_cli.report import pdf_text

    _own_caches(monkeypatch)
    monkeypatch.setattr(pdf_text, "needs_shaping", lambda text: False)


@pytest.mark.parametrize("name, corrupt", [("devanagari", _flipped_offsets), ("devanagari", _unshaped),
                                           ("tamil", _unshaped)])
def test_the_comparison_notices_wrong_shaping(monkeypatch, name, corrupt):
    """The bugs this guards against (marks moved the wrong way, text not shaped) must fail it.

    (Tamil's vowel signs are spacing glyphs without offsets: for Tamil the
    telling bug is a missing reordering, which drawing it unshaped shows.)
    """
    from PIL import Image

    corrupt(monkeypatch)
    image = _raster(_line_pdf(LINES[name]))
    assert _mismatch(image, Image.open(REFERENCES / f"shaping-{name}.png")) > TOLERANCE
