"""Names in every Indian script (and CJK) reach the PDF; nothing is dropped silently."""

import unicodedata

from .conftest import HINDI, HINDI_ID, load_sample, pdf_text, write_json

NAMES = {
    "Devanagari": "रमेश कुमार", "Bengali": "সুব্রত চক্রবর্তী", "Gurmukhi": "ਗੁਰਪ੍ਰੀਤ ਸਿੰਘ",
    "Gujarati": "હાર્દિક પટેલ", "Odia": "ସୁଭାଷ ମହାନ୍ତି", "Tamil": "முருகன் செல்வராஜ்",
    "Telugu": "శ్రీనివాస్ రెడ్డి", "Kannada": "ಶ್ರೀಕಾಂತ್ ಗೌಡ", "Malayalam": "കൃഷ്ണൻ നായർ",
    "Chinese": "王小明", "Japanese": "さくら",
}


def _squeezed(text: str) -> str:
    # pypdf guesses word spaces from glyph positions, and shaped clusters can
    # look like gaps to it; the characters and their order are what is checked.
    return "".join(text.split())


def _run_with_turns(cli, workspace, messages: list[str], stderr: list | None = None) -> str:
    payload = load_sample(HINDI)
    payload["transcript"] = [{"role": "user", "message": m, "time_in_call_secs": i}
                             for i, m in enumerate(messages)]
    result = cli("run", "--from-file", write_json(workspace.root / "call.json", payload))
    assert result.exit_code == 0, result.output
    if stderr is not None:
        stderr.append(result.stderr)
    return pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf"))


def test_every_name_is_drawn_and_reads_back(cli, workspace):
    text = _squeezed(_run_with_turns(cli, workspace, [f"My name is {n} ({s})." for s, n in NAMES.items()]))
    missing = [script for script, name in NAMES.items() if _squeezed(name) not in text]
    assert missing == []
    notes = workspace.rows("select message from processing_audit_log where event = 'note'")
    assert not any("no glyph" in n["message"] for n in notes)


def test_a_character_no_font_has_is_a_visible_placeholder_and_a_ledger_note(cli, workspace):
    text = _run_with_turns(cli, workspace, ["Linear B \U00010000 and Gothic \U00010330 in a name"])
    assert "Linear B \ufffd and Gothic \ufffd in a name" in text
    note, = [n["message"] for n in workspace.rows(
        "select message from processing_audit_log where event = 'note' and step = 'report'")]
    assert note.startswith("2 characters have no glyph in any bundled font")
    assert "U+10000 LINEAR B SYLLABLE B008 A" in note and "U+10330 GOTHIC LETTER AHSA" in note


def test_a_hindi_report_embeds_no_face_it_does_not_use(cli, workspace):
    from pypdf import PdfReader

    _run_with_turns(cli, workspace, ["नमस्ते, मेरा नाम रमेश है। Rent ₹8,000."])
    reader = PdfReader(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf"))
    fonts = {str(font.get_object()["/BaseFont"]).split("+")[1]
             for page in reader.pages for font in page["/Resources"]["/Font"].values()}
    assert fonts == {"DejaVuSansBook", "DejaVuSansBold", "NotoSansDevanagari"}


def test_an_fpdf2_with_other_internals_gets_its_own_public_path(cli, workspace, monkeypatch):
    """An upgrade of fpdf2 may cost speed, never output: every name still reads back."""
    from fedfina_cli.report import pdf_fonts

    monkeypatch.setattr(pdf_fonts, "_find_problem", lambda: "OutputProducer has no _add_fonts")
    pdf_fonts.internals_problem.cache_clear()
    stderr: list[str] = []
    try:
        text = _squeezed(_run_with_turns(cli, workspace, [f"My name is {n} ({s})." for s, n in NAMES.items()]
                                         + ["Rent ₹8,000 a month, Linear B \U00010000"], stderr))
    finally:
        pdf_fonts.internals_problem.cache_clear()
    # fpdf2's own ToUnicode map leaves the later glyphs of a shaped cluster
    # unmapped, so readers show their raw codes as control characters (ours
    # maps them to nothing); the glyphs themselves are drawn right.
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc")
    assert [script for script, name in NAMES.items() if _squeezed(name) not in text] == []
    assert "Rent₹8,000amonth,LinearB\ufffd" in text
    note, = [n["message"] for n in workspace.rows(
        "select message from processing_audit_log where event = 'note' and step = 'report'")]
    assert "U+10000 LINEAR B SYLLABLE B008 A" in note
    assert stderr[0].count("notice: fpdf2") == 1 and "OutputProducer has no _add_fonts" in stderr[0]


def test_the_internals_check_notices_a_missing_internal(monkeypatch):
    from fpdf import FPDF

    from fedfina_cli.report import pdf_fonts

    assert pdf_fonts._find_problem() is None  # the installed fpdf2 is the one the fast path knows
    monkeypatch.delattr(FPDF, "_perform_page_break_if_need_be")
    assert pdf_fonts._find_problem() == "FPDF has no _perform_page_break_if_need_be"
