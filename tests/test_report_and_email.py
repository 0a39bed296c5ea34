"""What loan officers see: the PDF read back with pypdf, the email parsed with `email`."""

import email
import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pypdf import PdfReader

from fedfina_cli.core.conversation import parse_conversation
from fedfina_cli.report.layout import ReportInput, render_report
from fedfina_cli.services.summarizers.offline import OfflineSummarizer

from .conftest import ENGLISH, HINDI, HINDI_ID, load_sample, pdf_text, read_eml, write_json


def long_call(turns: int = 220) -> dict:
    payload = load_sample(HINDI)
    transcript = []
    for n in range(turns):
        if n % 25 == 7:
            transcript.append({"role": "agent", "message": None, "time_in_call_secs": n * 9,
                               "tool_calls": [{"tool_name": "crm_lookup"}]})
            continue
        hindi = n % 2 == 0
        text = (f"प्रश्न {n}: आपकी मासिक बिक्री ₹{n},500 है और किराया ₹{n % 7},000 — क्या यह सही है? " * (1 + n % 3)
                if hindi else
                f"Answer {n}: yes, the stock costs about ₹{n * 3},000 and we sell 🙏 daily. " * (1 + n % 4))
        transcript.append({"role": "agent" if hindi else "user", "message": text.strip(),
                           "time_in_call_secs": n * 9})
    payload["transcript"] = transcript
    payload["metadata"]["call_duration_secs"] = turns * 9
    return payload


def _render(payload: dict, **kwargs) -> bytes:
    conversation = parse_conversation(payload)
    summary = OfflineSummarizer().summarize(conversation, "", "English")
    return render_report(ReportInput(conversation, summary, "acc123", "officer@fedfina.example", **kwargs))


def test_report_text_comes_in_reading_order():
    text = pdf_text(_render(load_sample(HINDI)))
    # The applicant's name as said in the call ("मेरा नाम रमेश कुमार है"), on the cover.
    order = ["Grocery shop loan interview", "Applicant", "रमेश", "Phone", "+91 ••••••4821", "Call start",
             "Account", "Overview", "Figures the applicant stated", "Action items",
             "Data collected by the voice agent", "Loan amount", "Requested loan amount in INR",
             "Evaluation criteria", "Collected loan amount", "Appendix: transcript", "नमस्ते!", "हमारी टीम"]
    positions = [text.find(marker) for marker in order]
    assert -1 not in positions, dict(zip(order, positions))
    assert positions == sorted(positions)
    assert "None" not in text
    collected = text[text.find("Data collected"):text.find("Evaluation criteria")]
    assert "₹2,00,000" in collected
    # Not the officer's own address, not raw ids or numbers, not the full phone number.
    for absent in ("officer@fedfina.example", "Recipient", "loan_amount", "200000", "collected_loan_amount"):
        assert absent not in text, absent


def test_long_call_flows_over_pages_with_every_turn_in_order_and_numbered_pages():
    pdf = _render(long_call())
    reader = PdfReader(io.BytesIO(pdf))
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) >= 10
    for number, page in enumerate(pages, 1):
        assert f"Page {number} of {len(pages)}" in page
    text = "\n".join(pages)
    markers = [f"Answer {n}:" for n in range(1, 220, 2) if n % 25 != 7]
    positions = [text.find(m) for m in markers]
    assert -1 not in positions and positions == sorted(positions)
    # each tool-only turn in the transcript, and once among the summary's facts
    assert text.count("The agent used: CRM lookup") == len([n for n in range(220) if n % 25 == 7]) + 1
    assert "None" not in text


def test_scripts_symbols_and_emoji_render_without_crashing():
    payload = load_sample(ENGLISH)
    payload["transcript"][1]["message"] = ("Greek αβγ, Cyrillic Привет, ₹ € £ ¥, “quotes” — dash, "
                                           "emoji 😀 🙏 🤝 🏪, CJK 商店")
    text = pdf_text(_render(payload))
    for fragment in ("αβγ", "Привет", "₹ € £ ¥", "“quotes”", "😀"):
        assert fragment in text


def test_empty_analysis_and_missing_metadata_leave_sections_out():
    payload = {"conversation_id": "conv_minimal00001", "status": "done",
               "transcript": [{"role": "user", "message": "Hello", "time_in_call_secs": 0}]}
    text = pdf_text(_render(payload))
    for absent in ("None", "Call start", "Duration", "Phone call", "Data collected", "Evaluation criteria",
                   "Applicant sentiment"):
        assert absent not in text
    assert "Hello" in text


def test_email_structure_headers_and_encoded_subject(cli, workspace, tmp_path):
    payload = load_sample(HINDI)
    payload["analysis"]["call_summary_title"] = "रमेश कुमार — किराना दुकान ₹2,00,000"
    assert cli("run", "--from-file", write_json(tmp_path / "h.json", payload)).exit_code == 0
    eml = workspace.eml("acc123", HINDI_ID)
    raw = eml.read_bytes()
    subject_line = re.search(rb"^Subject: (.*(?:\r?\n[ \t].*)*)", raw, re.M).group(1)
    assert b"=?utf-8?" in subject_line and subject_line.isascii()  # RFC 2047 encoded
    message = read_eml(eml)
    # Who and when (the title is in the body): the name, else the masked number.
    assert message["Subject"] == "Loan interview – रमेश कुमार – 18 Nov 2025"  # the name said in the call
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, html = alternative.get_payload()
    assert plain.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    for body in (plain.get_content(), html.get_content()):
        assert "Ramesh Kumar" in body and "₹2,00,000" in body and "Action items" in body
    assert "<h2" in html.get_content() and 'style="' in html.get_content()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "FedFina-रमेश-कुमार-2025-11-18.pdf"
    assert attachment.get_content() == workspace.object("acc123", "reports", f"{HINDI_ID}.pdf").read_bytes()
    assert message["Message-ID"].endswith("@fedfina.invalid>")
    # On the wire: CRLF lines within limits, the subject folded into 78-character
    # lines, MIME-Version once, and a Message-ID a compat32 parser reads back unchanged.
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and max(map(len, lines)) <= 998
    subject_lines = (b"Subject: " + subject_line).split(b"\r\n")
    assert len(subject_lines) > 1 and max(map(len, subject_lines)) <= 78
    assert raw.count(b"MIME-Version:") == 1
    assert email.message_from_bytes(raw)["Message-ID"] == message["Message-ID"]


def test_html_escapes_what_the_call_said(cli, workspace, tmp_path):
    payload = load_sample(HINDI)
    payload["analysis"]["transcript_summary"] = "Applicant wrote <script>alert(1)</script> & left"
    assert cli("run", "--from-file", write_json(tmp_path / "h.json", payload)).exit_code == 0
    html = read_eml(workspace.eml("acc123", HINDI_ID)).get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; left" in html


def test_over_the_attachment_limit_the_email_links_to_the_report(cli, workspace, elevenlabs, s3):
    elevenlabs.add(load_sample(HINDI), audio=b"ID3 audio bytes")
    result = cli("run", "-c", HINDI_ID, "--attachment-limit-mb", "0.01")
    assert result.exit_code == 0, result.output
    message = read_eml(workspace.eml("acc123", HINDI_ID))
    assert list(message.iter_attachments()) == []
    body = message.get_body(("plain",)).get_content()
    assert "too large to attach; download it from the link below" in body
    link = re.search(r"Report \(PDF\): (\S+)", body).group(1)
    assert requests.get(link, timeout=10).content.startswith(b"%PDF-")


def test_over_the_limit_with_local_storage_is_a_clear_failure(cli):
    result = cli("run", "--from-file", HINDI, "--attachment-limit-mb", "0.01")
    assert result.exit_code == 1
    assert "over the attachment limit" in result.output and "--attachment-limit-mb" in result.output


def test_account_settings_change_what_they_should(cli, workspace, elevenlabs, openai_server, s3, smtp_server):
    prompt = workspace.root / "acc-prompt.txt"
    prompt.write_text("Prompt of account acc123.", encoding="utf-8")
    result = cli("accounts", "set", "acc123", "--timezone", "Europe/London", "--cc", "credit@fedfina.example",
                 "--bcc", "audit@fedfina.example,archive@fedfina.example",
                 "--subject", "[{account_id}] {title} / {conversation_id}", "--summary-language", "Hindi",
                 "--prompt-file", prompt, "--link-expiry-hours", "2")
    assert result.exit_code == 0, result.output
    elevenlabs.add(load_sample(HINDI), audio=b"ID3 audio")
    assert cli("run", "-c", HINDI_ID).exit_code == 0

    received, = smtp_server.messages
    message = received.message
    assert message["Subject"] == f"[acc123] Loan interview summary / {HINDI_ID}"
    assert message["Cc"] == "credit@fedfina.example"
    assert message["Bcc"] is None  # never transmitted...
    assert sorted(received.rcpt_tos) == sorted(["loans.officer@example.com", "credit@fedfina.example",
                                                "audit@fedfina.example", "archive@fedfina.example"])
    body = message.get_body(("plain",)).get_content()
    assert "18 Nov 2025, 07:42 Europe/London (UTC+00:00)" in body
    link = re.search(r"Call recording \(MP3\): (\S+)", body).group(1)
    assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == ["7200"]
    request = openai_server.completions()[0]
    assert request["messages"][0]["content"].startswith("Prompt of account acc123.")
    assert "Write the summary in Hindi." in request["messages"][0]["content"]
    pdf = next(message.iter_attachments()).get_content()
    assert "07:42 Europe/London" in pdf_text(pdf)


def test_run_flags_override_account_settings_for_one_run(cli, workspace):
    assert cli("accounts", "set", "acc123", "--timezone", "Europe/London").exit_code == 0
    assert cli("run", "--from-file", HINDI, "--timezone", "Asia/Tokyo").exit_code == 0
    assert "16:42 Asia/Tokyo (UTC+09:00)" in pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf"))
    shown = json.loads(cli("accounts", "show", "acc123", "--json").stdout)
    assert {"setting": "timezone", "value": "Europe/London", "source": "account"} in shown
    assert cli("run", "--from-file", HINDI, "--force").exit_code == 0
    assert "07:42 Europe/London" in pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf"))


def test_accounts_commands(cli, workspace):
    assert cli("accounts", "set", "acc1", "--cc", "a@fedfina.example", "--attachment-limit-mb", "5").exit_code == 0
    assert cli("accounts", "set", "acc1", "--timezone", "Asia/Dubai").exit_code == 0  # only that field changes
    shown = {r["setting"]: r for r in json.loads(cli("accounts", "show", "acc1", "--json").stdout)}
    assert shown["cc"]["value"] == "a@fedfina.example" and shown["timezone"]["value"] == "Asia/Dubai"
    assert shown["attachment_limit_mb"] == {"setting": "attachment_limit_mb", "value": "5", "source": "account"}
    assert shown["link_expiry_hours"] == {"setting": "link_expiry_hours", "value": "168", "source": "default"}
    assert shown["summary_language"] == {"setting": "summary_language", "value": "English", "source": "default"}
    listed = json.loads(cli("accounts", "list", "--json").stdout)
    assert [a["account_id"] for a in listed] == ["acc1"]
    assert "acc1" in cli("accounts", "list").stdout
    assert cli("accounts", "show", "nobody").exit_code == 0  # defaults


@pytest.mark.parametrize("args, message", [
    (["--timezone", "Mars/Olympus"], "not a time zone name"),
    (["--cc", "not-an-address"], "--cc 'not-an-address'"),
    (["--bcc", "a@fedfina.example\r\nX: y"], "line breaks"),
    (["--subject", "{nope}"], "unknown field {nope}"),
    (["--subject", "{title"], "--subject"),
    (["--link-expiry-hours", "200"], "at most 168"),
    (["--attachment-limit-mb", "0"], "above 0"),
    (["--prompt-file", "/no/such/file"], "no such file"),
    ([], "nothing to set"),
])
def test_bad_account_settings_are_rejected(cli, workspace, args, message):
    result = cli("accounts", "set", "acc1", *args)
    assert result.exit_code == 2 and message in result.output
    assert json.loads(cli("accounts", "list", "--json").stdout) == []


def test_bad_run_override_is_a_usage_error_before_any_work(cli, workspace):
    result = cli("run", "--from-file", HINDI, "--cc", "bad")
    assert result.exit_code == 2 and "--cc 'bad'" in result.output
    assert not workspace.db.exists()


def test_lines_after_one_that_starts_in_hindi_keep_their_font():
    """Regression: after a wrapped line that began in Devanagari, fpdf2 drew the next line's
    '₹2,500' and '—' with the Devanagari font (boxes on the page, 'Cg71**' in the text)."""
    text = pdf_text(_render(long_call())).split("Appendix: transcript")[1]
    hindi_turns = [n for n in range(0, 220, 2) if n % 25 != 7]
    for n in hindi_turns:  # turn n says its sentence 1 + n % 3 times
        assert text.count(f"₹{n},500 है और") == 1 + n % 3, n
    assert text.count("— क्या यह सही है?") == sum(1 + n % 3 for n in hindi_turns)
    assert _text_shown_without_a_font(_render(long_call())) == 0


def _text_shown_without_a_font(pdf: bytes) -> int:
    from pypdf.generic import ContentStream

    reader = PdfReader(io.BytesIO(pdf))
    missing = 0
    for page in reader.pages:
        font, stack = None, []
        for _, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"q":
                stack.append(font)
            elif operator == b"Q":
                font = stack.pop() if stack else None
            elif operator == b"Tf":
                font = True
            elif operator in (b"Tj", b"TJ", b"'", b'"') and font is None:
                missing += 1
    return missing


def test_emoji_font_is_embedded_only_when_the_text_needs_it():
    def fonts(pdf: bytes) -> set[str]:
        reader = PdfReader(io.BytesIO(pdf))
        return {str(f["/BaseFont"]) for page in reader.pages
                for f in (page["/Resources"].get("/Font") or {}).values()}

    plain = fonts(_render(load_sample(HINDI)))
    assert not any("Symbola" in f for f in plain)
    payload = load_sample(HINDI)
    payload["transcript"][1]["message"] += " 🙏👍"
    with_emoji = _render(payload)
    assert any("Symbola" in f for f in fonts(with_emoji))
    assert "🙏" in pdf_text(with_emoji)


def test_offline_summary_of_a_long_call_quotes_at_most_twelve_figures():
    conversation = parse_conversation(long_call())
    summary = OfflineSummarizer().summarize(conversation, "", "English").summary
    figures = next(s for s in summary.sections if s.heading == "Figures the applicant stated")
    assert len(figures.points) == 13 and figures.points[-1].startswith("... and ")


def test_a_turn_over_a_page_break_is_named_again_and_the_transcript_says_where_it_ends():
    payload = load_sample(HINDI)
    payload["transcript"].insert(3, {"role": "user", "time_in_call_secs": 25,
                                     "message": "My shop sells rice, dal and oil every day. " * 160})
    reader = PdfReader(io.BytesIO(_render(payload)))
    pages = [page.extract_text() for page in reader.pages]
    continued = [n for n, page in enumerate(pages) if "00:25 User (continued)" in " ".join(page.split())]
    assert continued and all(n > 0 for n in continued), pages  # on each page the turn flows onto
    assert "End of transcript: 10 spoken turns, 1 min 11 s in all." in " ".join(pages[-1].split())


def test_pages_are_filled_to_the_bottom_when_a_table_row_is_tall():
    """A raster check (text extraction cannot see blank space): every page but the last has ink
    in its lowest tenth above the footer. A row never split across pages, so a long rationale
    moved whole and left up to half a page blank (pages 1, 3 and 4 of this report)."""
    import io

    import pypdfium2

    payload = long_call()
    results = payload["analysis"]["data_collection_results"]
    for n in range(6):
        results[f"business_detail_{n}"] = {
            "data_collection_id": f"business_detail_{n}", "value": f"detail {n}",
            "rationale": "The applicant described the shop, its stock, suppliers and seasonal sales. " * (4 + 3 * n)}
    document = pypdfium2.PdfDocument(io.BytesIO(_render(payload)))
    try:
        blank_ends = []
        for number in range(len(document) - 1):
            image = document[number].render(scale=0.5, grayscale=True).to_pil().convert("L")
            width, height = image.size
            band = image.crop((int(width * 0.08), int(height * 0.84), int(width * 0.92), int(height * 0.93)))
            if min(band.tobytes()) > 128:  # no ink in the band
                blank_ends.append(number + 1)
        assert len(document) > 10 and blank_ends == []
    finally:
        document.close()
    text = pdf_text(_render(payload))
    assert "continued" in text and text.count("Business detail 5") >= 1


def test_lines_starting_with_a_dot_reach_the_mail_server_as_written(smtp_server):
    """SMTP ends a message at a line holding only "."; a line that starts with one is sent
    with a second (RFC 5321 4.5.2), which the server takes off again. Lines end in CRLF on
    the wire even for a message built with the default policy (the console's sign-in email),
    whose lines end in a bare LF."""
    from email.message import EmailMessage

    from fedfina_cli.mail.deliver import SmtpMailer

    from .conftest import SENDER, SMTP_PASSWORD, SMTP_USER

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, "officer@bank.example", "dots"
    text = ".starts the message\nmiddle\n.\n..two\nend .\n.\n"
    message.set_content(text, cte="7bit")
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, SENDER, security="none",
                        username=SMTP_USER, password=SMTP_PASSWORD)
    mailer.send(message, "acc123", "conv_dots", on_handover=lambda: None)
    received, = smtp_server.messages
    assert received.message.get_content().replace("\r\n", "\n") == text
    assert b"\n" not in received.data.replace(b"\r\n", b"")  # no bare LF reached the server


@pytest.mark.parametrize("linesep", ["\r\n", "\n"])
def test_a_message_goes_out_as_the_email_generator_writes_it(linesep):
    """message_bytes writes large base64 bodies whole instead of a line at a time: the bytes
    must be the generator's own, for the report email (compat32) and one built with the default
    policy, and the message must be left as it was."""
    from datetime import UTC, datetime
    from email.message import EmailMessage

    from fedfina_cli.mail.compose import EmailContent, build_message
    from fedfina_cli.mail.wire import message_bytes

    conversation = parse_conversation(load_sample(HINDI))
    pdf = _render(load_sample(HINDI))
    report = build_message(EmailContent(
        sender="reports@fedfina.example", to="officer@fedfina.example", conversation_id=HINDI_ID,
        account_id="acc123", summary=OfflineSummarizer().summarize(conversation, "", "Hindi"),
        applicant="रमेश कुमार", bcc=("audit@fedfina.example",), pdf=pdf), datetime.now(UTC))
    signin = EmailMessage()
    signin["From"], signin["To"], signin["Subject"] = "a@fedfina.example", "b@fedfina.example", "x"
    signin.set_content("text\n")
    signin.add_attachment(pdf, maintype="application", subtype="pdf", filename="r.pdf")
    for message in (report, signin):
        before = message.as_bytes(policy=message.policy.clone(linesep=linesep))
        assert len(before) > len(pdf)  # the attachment is in it
        assert message_bytes(message, linesep) == before
        assert message.as_bytes(policy=message.policy.clone(linesep=linesep)) == before  # left as it was
    # The report's attachment is encoded as email's own encoder encodes it.
    from email.mime.application import MIMEApplication

    from fedfina_cli.mail.compose import WIRE, _base64_application

    for size in (0, 1, 57, 58, len(pdf)):
        data = pdf[:size]
        assert _base64_application(data, "pdf").as_bytes() == MIMEApplication(data, "pdf", policy=WIRE).as_bytes()
