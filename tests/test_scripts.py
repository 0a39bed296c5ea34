"""Names in every Indian script (and CJK) reach the PDF; nothing is dropped silently."""

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


def _run_with_turns(cli, workspace, messages: list[str], *, bold_title: str | None = None) -> str:
    payload = load_sample(HINDI)
    payload["transcript"] = [{"role": "user", "message": m, "time_in_call_secs": i}
                             for i, m in enumerate(messages)]
    result = cli("run", "--from-file", write_json(workspace.root / "call.json", payload))
    assert result.exit_code == 0, result.output
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
