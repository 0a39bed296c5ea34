"""The PDF report, read back with pypdf."""

import re

from fedfina_cli.core.conversation import parse_conversation
from fedfina_cli.report.layout import ReportInput, render_report
from fedfina_cli.services.summarizers.offline import OfflineSummarizer

from .conftest import ENGLISH, HINDI, HINDI_ID, load_sample, pdf_text


def _render(sample, **kwargs) -> bytes:
    return _render_payload(load_sample(sample), **kwargs)


def _render_payload(payload: dict, **kwargs) -> bytes:
    conversation = parse_conversation(payload)
    summary = OfflineSummarizer().summarize(conversation, "", "English")
    return render_report(ReportInput(conversation, summary, account_id="acc123",
                                     email_id="loans.officer@example.com", **kwargs))


def test_hindi_report_text_reads_back():
    text = pdf_text(_render(HINDI))
    assert HINDI_ID in text
    for amount in ("₹2,00,000", "₹12,000", "₹8,000", "₹2,500"):
        assert amount in text
    assert "Ramesh Kumar" in text and "रमेश" in text
    assert "not an AI summary" in text
    assert "18 Nov 2025, 13:12 Asia/Kolkata (UTC+05:30)" in text
    # The tool-only turn, with what it returned, in words: not its identifier.
    assert "Lookup applicant — Applicant ID: APP-88231" in text and "lookup_applicant" not in text
    assert "None" not in text
    assert re.search(r"Page 1 of \d", text)


def test_report_uses_the_given_timezone():
    text = pdf_text(_render(HINDI, timezone="Europe/London"))
    assert "18 Nov 2025, 07:42 Europe/London (UTC+00:00)" in text


def test_report_without_analysis_leaves_empty_sections_out():
    text = pdf_text(_render(ENGLISH))
    assert "75,000 rupees" in text
    assert "Data collected" not in text and "Evaluation criteria" not in text
    assert "None" not in text


def test_what_each_lookup_returned_reaches_the_transcript_the_summariser_and_the_check(
        cli, workspace, openai_server, tmp_path, monkeypatch):
    """A lookup_cibil_score returning {"cibil_score": 742} and a verify_gst that failed with
    "GST portal timeout" appeared nowhere but as "agent tool call: lookup_cibil_score"."""
    import json

    from .conftest import HINDI, HINDI_ID, load_sample, pdf_text

    payload = load_sample(HINDI)
    payload["transcript"][3:3] = [
        {"role": "agent", "message": None, "time_in_call_secs": 30,
         "tool_calls": [{"tool_name": "lookup_cibil_score", "request_id": "r1"}],
         "tool_results": [{"tool_name": "lookup_cibil_score", "request_id": "r1",
                           "result_value": '{"cibil_score": 742, "pan": "ABCPK1234F"}', "is_error": False}]},
        {"role": "agent", "message": None, "time_in_call_secs": 31,
         "tool_calls": [{"tool_name": "verify_gst", "request_id": "r2"}],
         "tool_results": [{"tool_name": "verify_gst", "request_id": "r2", "result_value": "GST portal timeout",
                           "is_error": True}]}]
    path = tmp_path / "lookups.json"
    path.write_text(json.dumps(payload, ensure_ascii=False))
    assert cli("run", "--from-file", path).exit_code == 0
    text = " ".join(pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf")).split())
    assert "Lookup CIBIL score — CIBIL score: 742" in text
    assert "Verify GST — failed: GST portal timeout" in text
    sent = json.dumps(openai_server.completions()[-1], ensure_ascii=False)
    assert "CIBIL score: 742" in sent and "Verify GST — failed: GST portal timeout" in sent
    assert "ABCPK1234F" not in sent  # masked like the rest of what goes to the model


def test_a_lookup_repeated_through_a_long_call_is_listed_once_and_the_list_is_bounded():
    """A 360-turn call that looked the applicant up at every round listed "Lookup during the
    call: Lookup applicant — Applicant ID: APP-88231" 36 times: a page of the summary."""
    from fedfina_cli.core.conversation import parse_conversation
    from fedfina_cli.services.summarizers.offline import MAX_LOOKUPS, build_summary

    from .conftest import HINDI, load_sample

    payload = load_sample(HINDI)
    lookup = next(t for t in payload["transcript"] if t.get("tool_results"))
    payload["transcript"] += [lookup] * 35
    call = next(s for s in build_summary(parse_conversation(payload)).sections if s.heading == "Call")
    looked = [point for point in call.points if point.startswith("Lookup during the call")]
    assert looked == ["Lookup during the call: Lookup applicant — Applicant ID: APP-88231 "
                      "(the same answer more than once)"]

    payload["transcript"] += [
        {**lookup, "tool_results": [{**lookup["tool_results"][0], "result_value": f"APP-9{n:04d}"}]}
        for n in range(MAX_LOOKUPS + 3)]
    call = next(s for s in build_summary(parse_conversation(payload)).sections if s.heading == "Call")
    looked = [point for point in call.points if point.startswith("Lookup during the call")]
    assert len(looked) == MAX_LOOKUPS and looked[0].endswith("(the same answer more than once)")
    assert call.points[-1] == "... and more lookups: see the transcript."


def test_no_engine_words_on_the_officers_pages(cli, workspace):
    """"identifiers masked: llm", "prompt sha256 …", "ElevenLabs call outcome: success",
    "Call ended: end_call tool was called." and "Collected loan amount — success" were all
    on the officer's pages; now in words, and the provenance in "About this report" at the end."""
    from .conftest import HINDI, HINDI_ID, pdf_text

    assert cli("run", "--from-file", HINDI).exit_code == 0
    text = " ".join(pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf")).split())
    pages, about = text.split("About this report")
    for engine in ("success", "end_call", "masked: llm", "sha256", "agent_4501", "offline summary (no AI model)"):
        assert engine not in pages, engine
    assert "Call result The call met its goals" in pages and "How it ended The agent ended the call" in pages
    assert "Collected loan amount met" in pages
    assert "Ended, as recorded end_call tool was called." in about and HINDI_ID in about
    message = workspace.eml("acc123", HINDI_ID).read_text()
    assert "masked: llm" not in message and "sha256" not in message.split("About this report")[0]


def test_a_call_that_reached_voicemail_gets_a_one_page_notice_and_no_model_call(
        cli, workspace, openai_server, tmp_path):
    import json

    from pypdf import PdfReader

    from .conftest import HINDI, HINDI_ID, load_sample, pdf_text, read_eml

    payload = load_sample(HINDI)
    payload["metadata"]["phone_call"]["call_result"] = "voicemail"
    payload["transcript"] = payload["transcript"][:1]  # the agent's greeting to the machine
    path = tmp_path / "voicemail.json"
    path.write_text(json.dumps(payload, ensure_ascii=False))
    assert cli("run", "--from-file", path).exit_code == 0
    assert openai_server.completions() == []  # nothing to summarise: no model asked
    report = workspace.object("acc123", "reports", f"{HINDI_ID}.pdf")
    assert len(PdfReader(report).pages) == 1
    text = " ".join(pdf_text(report).split())
    assert "No interview: the call reached voicemail" in text and "Call result The call reached voicemail" in text
    assert "Appendix: transcript" not in text and "Call the applicant again" in text
    message = read_eml(workspace.eml("acc123", HINDI_ID))
    assert message["Subject"] == "No interview: the call reached voicemail – +91 ••••••4821 – 18 Nov 2025"
    plain = message.get_body(("plain",)).get_content()
    assert plain.startswith("No interview: the call reached voicemail\n")
    assert "Summary: none: the call reached nobody, so no AI model was asked" in plain


def test_the_applicants_rating_and_a_turn_cut_off_are_shown(cli, workspace, tmp_path):
    import json

    from .conftest import HINDI, HINDI_ID, load_sample, pdf_text

    payload = load_sample(HINDI)
    payload["metadata"]["feedback"] = {"type": "rating", "overall_score": "like", "rating": 4,
                                       "comment": "Quick and clear", "likes": 1, "dislikes": 0}
    payload["transcript"][2]["interrupted"] = True
    payload["transcript"][2]["original_message"] = "A longer question the applicant did not wait for."
    path = tmp_path / "feedback.json"
    path.write_text(json.dumps(payload, ensure_ascii=False))
    assert cli("run", "--from-file", path).exit_code == 0
    text = " ".join(pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf")).split())
    assert "Applicant's rating 4 of 5 · liked the call · “Quick and clear”" in text
    assert text.count("— cut off") == 1


def test_about_this_report_is_never_split_across_pages():
    """A 360-turn call's report ended with a page holding one line, "Ended, as recorded", the rest
    of About this report on the page before. Calls of every length around that one: the block
    (heading and all its lines) is on one page."""
    import io

    from pypdf import PdfReader

    payload = load_sample(HINDI)
    turns = payload["transcript"]
    for repeats in range(34, 46):
        payload["transcript"] = turns * repeats
        pages = [page.extract_text() for page in PdfReader(io.BytesIO(_render_payload(payload))).pages]
        [about] = [number for number, text in enumerate(pages) if "About this report" in text]
        assert "Ended, as recorded" in pages[about], f"{repeats}x: the block goes on to page {about + 2}"
