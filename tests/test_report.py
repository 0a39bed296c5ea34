"""The PDF report, read back with pypdf."""

import re

from fedfina_cli.core.conversation import parse_conversation
from fedfina_cli.report.layout import ReportInput, render_report
from fedfina_cli.services.summarizers.offline import OfflineSummarizer

from .conftest import ENGLISH, HINDI, HINDI_ID, load_sample, pdf_text


def _render(sample, **kwargs) -> bytes:
    conversation = parse_conversation(load_sample(sample))
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
    assert "lookup_applicant" in text  # the tool-only turn, shown discreetly
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
