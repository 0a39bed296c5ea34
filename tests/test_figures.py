"""The figure check (SPEC "Trust"): faithful summaries get no flag, planted figures are all flagged.

20 faithful summaries state the call's figures in other notations than the
transcript (lakh, k, Western grouping, Devanagari digits, words, derived
monthly/annual figures and sums); 20 plant a figure the call never supports.
"""

import pytest

from fedfina_cli.core import figures
from fedfina_cli.core.conversation import parse_conversation, transcript_text
from fedfina_cli.core.summary import Section, Summary

from .conftest import HINDI, load_sample

EXTRA = [
    "दुकान में दो लोग काम करते हैं।",
    "ब्याज 14% ठीक है।",
    "दुकान में ढाई लाख का स्टॉक है।",
    "EMI 24 महीने में चुका दूंगा।",
    "पिछले साल का टर्नओवर 45 लाख था।",
    "पचास हज़ार की FD भी है।",
]


@pytest.fixture(scope="module")
def call():
    payload = load_sample(HINDI)
    for n, line in enumerate(EXTRA):
        payload["transcript"].append({"role": "user", "message": line, "time_in_call_secs": 60 + n})
    conversation = parse_conversation(payload)
    return transcript_text(conversation), figures.call_facts(conversation)


def summary(point: str) -> Summary:
    return Summary(title="Grocery shop loan interview", overview="Ramesh Kumar runs a grocery shop.",
                   sections=[Section(heading="Loan request", points=[point])], action_items=["Verify documents."],
                   sentiment="positive", language="Hindi and English")


FAITHFUL = [
    "Requested a loan of ₹2 lakh.",
    "Loan of Rs 200,000 for a refrigerator.",
    "Needs two lakh rupees.",
    "दो लाख का लोन चाहिए।",
    "Daily sales ₹12k–15k.",
    "Monthly sales about ₹3.6–4.5 lakh (daily × 30).",
    "Monthly expenses about ₹19,500.",
    "Annual expenses about ₹2,34,000.",
    "In business for 8 years.",
    "Rent Rs. 8000, salary ₹9k, electricity ₹2.5 thousand.",
    "Accepts an interest rate of 14%.",
    "Stock worth ₹2.5 lakh.",
    "Wants to repay over 24 months.",
    "Last year's turnover was ₹45 lakh.",
    "Has a fixed deposit of ₹50,000.",
    "Employs 2 people.",
    "Loan amount ₹२,००,०००.",
    "Turnover ₹4,500,000 last year.",
    "Call on 18 Nov 2025, 1 min 11 s.",
    "Annual rent ₹96,000.",
]

PLANTED = [
    "Requested a loan of ₹3 lakh.",
    "In business for 6 years.",
    "Rent ₹10,000 a month.",
    "Daily sales ₹25,000.",
    "Accepts an interest rate of 18%.",
    "Turnover ₹60 lakh last year.",
    "Employs 5 people.",
    "Wants to repay over 36 months.",
    "Has a fixed deposit of ₹75,000.",
    "Stock worth ₹4 lakh.",
    "Monthly expenses ₹32,000.",
    "Electricity bill ₹5,000.",
    "Helper's salary ₹12,500.",
    "Turnover of ₹1.2 crore.",
    "Savings of ₹99,000.",
    "Annual expenses ₹3,00,000.",
    "Processing fee 3.5%.",
    "Monthly sales ₹6 lakh.",
    "Has 7 years of GST returns.",
    "Owes ₹35,000 to a supplier.",
]


@pytest.mark.parametrize("point", FAITHFUL)
def test_a_faithful_summary_gets_no_flag(call, point):
    transcript, facts = call
    assert figures.check(summary(point), transcript, facts) == []


@pytest.mark.parametrize("point", PLANTED)
def test_a_planted_figure_is_flagged_with_where_it_is(call, point):
    transcript, facts = call
    flagged = figures.check(summary(point), transcript, facts)
    assert flagged and all(u.where == "sections[0].points[0]" for u in flagged), flagged
    assert figures.where_shown(summary(point), flagged[0].where) == "Loan request, point 1"


def test_the_figures_of_the_test_set(call, capsys):
    transcript, facts = call
    false_flags = sum(bool(figures.check(summary(p), transcript, facts)) for p in FAITHFUL)
    caught = sum(bool(figures.check(summary(p), transcript, facts)) for p in PLANTED)
    with capsys.disabled():
        print(f"\nfigure check: {caught}/{len(PLANTED)} planted figures flagged, "
              f"{false_flags}/{len(FAITHFUL)} faithful summaries flagged")
    assert len(FAITHFUL) >= 20 and len(PLANTED) >= 20
    assert caught == len(PLANTED) and false_flags == 0


def test_hindi_number_words_and_notations_have_their_values():
    values = [v for _, v in figures.numbers("दो लाख, पचास हज़ार, ढाई लाख, साढ़े तीन लाख, डेढ़ करोड़, ₹1,23,456, "
                                            "Rs 2.5 lakh, ८,०००, 12k, two lakh")]
    assert values == [200000, 50000, 250000, 350000, 15000000, 123456, 250000, 8000, 12000, 200000]  # as written


def test_mm_ss_offsets_and_masked_identifiers_are_not_figures():
    assert figures.numbers("[00:22] आठ साल हो गए [AADHAAR ••••2346]") == [("आठ", 8)]


# --- through the CLI, with the loopback OpenAI fake --------------------------------------------


def _planted(amount: str) -> str:
    import json

    return json.dumps({"title": "Grocery shop loan interview", "overview": f"Requested a loan of {amount}.",
                       "sections": [{"heading": "Loan request", "points": [f"Loan amount {amount}",
                                                                            "In business for 8 years"]}],
                       "action_items": ["Verify the documents."], "sentiment": "positive",
                       "language": "Hindi and English"})


def test_planted_figures_are_in_the_pdf_the_email_and_the_ledger(installed, elevenlabs, openai_server, workspace):
    from .conftest import hindi_variant, pdf_text, read_eml

    elevenlabs.add(hindi_variant(1))
    openai_server.replies.append(_planted("₹3,50,000"))
    assert installed("run", "-c", "conv_bulk00000001").exit_code == 0
    import json

    document = json.loads(workspace.object("acc123", "summaries", "conv_bulk00000001.json").read_text())
    assert document["unsupported_figures"] == [{"figure": "₹3,50,000", "where": "overview"},
                                               {"figure": "₹3,50,000", "where": "sections[0].points[0]"}]
    assert document["figures_checked"] == 3 and document["redaction"] == "llm"
    assert workspace.rows("select unsupported_figures from conversation_processing") == [{"unsupported_figures": 2}]
    text = pdf_text(workspace.object("acc123", "reports", "conv_bulk00000001.pdf"))
    # Each names what it is (the summary's words before it) and where: not a bare "₹3,50,000 (overview)".
    assert "Check these figures" in text and "Loan amount ₹3,50,000 (Loan request, point 1)" in text.replace("\n", " ")
    assert "Figures 3 checked against the call: 2 to check" in text.replace("\n", " ")  # About this report
    message = read_eml(workspace.eml("acc123", "conv_bulk00000001"))
    plain = message.get_body(("plain",)).get_content()
    assert "Check these figures (the call does not support them):\n- Requested a loan of ₹3,50,000 (overview)" in plain
    assert "Check these figures" in message.get_body(("html",)).get_content()


def test_a_faithful_summary_gets_no_box(installed, elevenlabs, openai_server, workspace):
    from .conftest import hindi_variant, pdf_text, read_eml

    elevenlabs.add(hindi_variant(2))
    openai_server.replies.append(_planted("₹2 lakh"))  # the call's ₹2,00,000, in another notation
    assert installed("run", "-c", "conv_bulk00000002").exit_code == 0
    assert workspace.rows("select unsupported_figures from conversation_processing") == [{"unsupported_figures": 0}]
    text = pdf_text(workspace.object("acc123", "reports", "conv_bulk00000002.pdf")).replace("\n", " ")
    assert "Check these figures" not in text and "Figures 3 checked against the call: all supported" in text
    # Provenance in words, at the end ("About this report"), not on the officer's pages.
    about = text[text.index("About this report"):]
    assert "prompt sha256 " in about and "Identifiers masked before the AI model saw the call" in about
    assert "identifiers masked: llm" not in text
    message = read_eml(workspace.eml("acc123", "conv_bulk00000002"))
    assert "Check these figures" not in message.get_body(("plain",)).get_content()


def test_a_derived_figure_says_how(call):
    transcript, facts = call
    point = "Monthly expenses ₹19,500; annual ₹2,34,000; monthly sales up to ₹4.5 lakh."
    result = figures.check_all(summary(point), transcript, facts)
    assert result.unsupported == []
    assert {d["figure"]: d["how"] for d in result.derived} == {
        "₹19,500": "sum of ₹8,000 + ₹9,000 + ₹2,500",
        "₹2,34,000": "(sum of ₹8,000 + ₹9,000 + ₹2,500) a month × 12",
        "₹4.5 lakh": "₹15,000 a day × 30",
    }


def test_english_words_alone_are_not_figures_in_a_summary(call):
    transcript, facts = call
    assert figures.check(summary("Someone at one point asked for two lakh; no one else spoke."), transcript,
                         facts) == []
    assert [v for _, v in figures.numbers("someone often")] == []


def test_number_words_and_digits_of_tamil_and_bengali_calls():
    """A Tamil call saying எட்டு ஆண்டுகள் supports "8 years" (it was flagged before)."""
    tamil = "எட்டு ஆண்டுகள் ஆகிறது. எனக்கு இரண்டு லட்சம் வேண்டும். மாதம் ௫௦,௦௦௦ விற்பனை."
    bengali = "আট বছর হলো। আমার দুই লাখ টাকা দরকার। মাসে ৫০,০০০ বিক্রি।"
    point = "In business for 8 years; needs ₹2 lakh; sales ₹50,000 a month."
    for transcript in (tamil, bengali):
        assert figures.check(summary(point), transcript) == []
        assert figures.check(summary("In business for 9 years."), transcript) != []


def test_the_offline_summary_of_a_long_call_has_no_figure_of_its_own_to_flag():
    """Seen on a rendered 60-minute report: "... and 78 more answers with figures" was flagged."""
    import copy

    from fedfina_cli.core import figures
    from fedfina_cli.core.conversation import parse_conversation, tool_results_text, transcript_text
    from fedfina_cli.services.summarizers.offline import OfflineSummarizer

    from .conftest import HINDI, load_sample

    payload = load_sample(HINDI)
    turns = payload["transcript"]
    payload["transcript"] = [dict(copy.deepcopy(t), time_in_call_secs=t["time_in_call_secs"] + 120 * n)
                             for n in range(30) for t in turns]
    conversation = parse_conversation(payload)
    said = transcript_text(conversation) + tool_results_text(conversation)  # as the pipeline checks
    document = OfflineSummarizer().summarize(conversation, said, "English")
    result = figures.check_all(document.summary, said, figures.call_facts(conversation))
    assert result.checked > 20
    assert result.unsupported == []


@pytest.mark.parametrize("written, value", [
    ("₹5L", 500000), ("₹2.5L", 250000), ("Rs 2.5 L", 250000), ("₹1.2Cr", 12000000),
    ("five hundred thousand", 500000), ("two hundred and fifty thousand", 250000),
    ("one lakh twenty thousand", 120000), ("₹7 50 000", 750000), ("₹7\u202f50\u202f000", 750000),
])
def test_amounts_as_people_write_them_are_read_whole(written, value):
    # They were read as 5, 2.5, 1 lakh (five hundred thousand), and 7, 50 and 0.
    assert figures.numbers(f"needs {written} for stock") == [(written, value)]


def test_a_made_up_5_lakh_is_not_supported_by_5_years():
    made_up = summary("Wants a loan of ₹5L; in business for 5 years.")
    transcript = "User: I have run the shop for 5 years.\n"
    assert [u.figure for u in figures.check(made_up, transcript)] == ["₹5L"]


def test_the_report_says_amounts_as_officers_do(cli, workspace):
    from .conftest import HINDI_ID, pdf_text

    assert cli("run", "--from-file", HINDI).exit_code == 0
    text = " ".join(pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf")).split())
    assert "₹2,00,000 (2 lakh)" in text


def test_fedfinas_own_lines_are_never_checked():
    """The offline summariser's own 'Client disconnected: 1000' flagged 1000: a summary fedfina
    assembled is checked in its title and overview only (ElevenLabs' words), not in its own lines."""
    own = Summary(title="Loan interview", overview="Wants ₹2 lakh.", action_items=[],
                  sections=[Section(heading="Call", points=["Call ended: Client disconnected: 1000",
                                                            "Duration 7 min, 93 spoken turns"])],
                  sentiment="unknown", language="Hindi")
    transcript = "User: मुझे दो लाख चाहिए।\n"
    assert [u.figure for u in figures.check(own, transcript)] == ["1000", "7", "93"]  # as a model's would be
    assert figures.check_all(own, transcript, only_analysis=True).unsupported == []
    planted = own.model_copy(update={"overview": "Wants ₹9 lakh."})
    assert [u.figure for u in figures.check_all(planted, transcript, only_analysis=True).unsupported] == ["₹9 lakh"]


@pytest.mark.parametrize("said, stated", [
    ("பன்னிரண்டு வருஷமா கடை நடத்துறேன்.", "In business for 12 years."),  # Tamil twelve: "12" was flagged
    ("மூன்று லட்சம் வேணும்.", "Needs ₹3 lakh."),
    ("मला दोन लाख हवे आहेत.", "Needs ₹2,00,000."),  # Marathi
    ("મને ત્રણ લાખ જોઈએ છે.", "Needs ₹3 lakh."),  # Gujarati
    ("ਮੈਨੂੰ ਪੰਜ ਲੱਖ ਚਾਹੀਦੇ ਹਨ।", "Needs ₹5 lakh."),  # Punjabi
    ("నాకు రెండు లక్షలు కావాలి.", "Needs ₹2 lakh."),  # Telugu
    ("ನನಗೆ ಮೂರು ಲಕ್ಷ ಬೇಕು.", "Needs ₹3 lakh."),  # Kannada
    ("എനിക്ക് രണ്ട് ലക്ഷം വേണം.", "Needs ₹2 lakh."),  # Malayalam
    ("ମୋତେ ଦୁଇ ଲକ୍ଷ ଦରକାର।", "Needs ₹2 lakh."),  # Odia
    ("আমার বারো বছরের দোকান।", "A shop of 12 years."),  # Bengali
])
def test_number_words_of_every_language_the_report_renders_support_the_figures(said, stated):
    assert figures.check(summary(stated), f"User: {said}\n") == []
    assert figures.check(summary(stated.replace("2", "7").replace("3", "8").replace("5", "9")),
                         f"User: {said}\n") != []  # and a wrong figure is still flagged


@pytest.mark.parametrize(("said", "value"), [
    ("पैंतीस हज़ार", 35000), ("सैंतालीस", 47), ("निन्यानवे", 99),  # Hindi
    ("पस्तीस हजार", 35000), ("चव्वेचाळीस", 44),  # Marathi
    ("পঁয়ত্রিশ হাজার", 35000), ("চব্বিশ লাখ", 2400000),  # Bengali
    ("પાંત્રીસ હજાર", 35000), ("ਪੈਂਤੀ ਹਜ਼ਾਰ", 35000),  # Gujarati, Punjabi
    ("இருபத்தைந்து ஆயிரம்", 25000), ("இருபத்து நான்கு", 24), ("தொண்ணூற்றொன்பது", 99),  # Tamil
    ("ఇరవై నాలుగు", 24), ("ಇಪ್ಪತ್ತನಾಲ್ಕು", 24), ("ഇരുപത്തിയഞ്ച്", 25), ("ଚବିଶି", 24),
    ("ஒன்றரை லட்சம்", 150000), ("दीड लाख", 150000), ("two and a half lakh", 250000),
    ("चारजन", None), ("চারজন", 4),  # a Bengali classifier is read; a Devanagari word is not
])
def test_number_words_to_a_hundred_in_each_language(said, value):
    assert [v for _, v in figures.numbers(said)] == ([value] if value is not None else [])


def test_a_number_word_inside_a_longer_word_is_not_read():
    """दस inside दस्तावेज़ों and साठ inside गाईंसाठी were figures (a vowel sign is not \\w)."""
    assert figures.numbers("दस्तावेज़ों की जाँच करें। आणखी 4 गाईंसाठी") == [("4", 4.0)]


def test_a_range_said_with_one_multiplier_supports_both_ends():
    assert [v for _, v in figures.numbers("रोज़ का आठ से दस हज़ार")] == [8000, 10000]
    assert [v for _, v in figures.numbers("Fifteen to eighteen thousand")] == [15000, 18000]
    assert [v for _, v in figures.numbers("दो से तीन लाख", english_words=False)] == [200000, 300000]


def test_words_spelt_with_letters_that_fold_to_ascii_are_read_as_the_words_they_match():
    # Under IGNORECASE İ ı ſ and the Kelvin sign match i, i, s and k. A payload's "ſix" matched
    # the number words' patterns and was then looked up as "ſix": a KeyError, and the call's
    # summary (figure check) or transcript (redaction) failed. They read as what they matched.
    assert figures.numbers("बिक्री fİve hundred रुपये") == [("fİve hundred", 500.0)]
    assert figures.numbers("she sold ſix bags, fıve thouſand rupees") == [("ſix", 6.0), ("fıve thouſand", 5000.0)]
    assert figures.dates("on 18 ſep 2025") == [((2025, 9, 18), "18 ſep 2025")]
