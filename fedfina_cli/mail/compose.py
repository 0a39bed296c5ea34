"""Composing the report email: plain text and HTML bodies, the PDF attached.

Only composition lives here: the bytes are made in wire.py, delivery (SMTP or the outbox) is
in deliver.py.
"""

from __future__ import annotations

import base64
import html
import secrets
from dataclasses import dataclass, field
from email.encoders import encode_noop
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr, make_msgid

from fedfina_cli.core.figures import to_check
from fedfina_cli.core.summary import SummaryDocument
from fedfina_cli.core.templates import DEFAULT_SUBJECT_TEMPLATE, render_template
from fedfina_cli.core.wording import file_name_part


class _WirePolicy(Compat32):
    """compat32 with CRLF line ends, which never folds Message-ID.

    Folding would move a long id to a continuation line, and a compat32 parser
    (aiosmtpd's, the outbox check's) would then read it with a leading space.
    """

    def fold(self, name, value):
        if name.lower() == "message-id":
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name, value):
        return self.fold(name, value).encode("ascii", "surrogateescape")


WIRE = _WirePolicy(linesep="\r\n")


@dataclass(frozen=True)
class EmailContent:
    sender: str
    to: str
    conversation_id: str
    account_id: str
    summary: SummaryDocument
    call_time: str | None = None  # already formatted in the account's time zone
    call_date: tuple[str, str] | None = None  # ('18 Nov 2025', '2025-11-18') in that zone
    applicant: str | None = None
    applicant_phone: str | None = None  # masked
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject_template: str = DEFAULT_SUBJECT_TEMPLATE
    pdf: bytes | None = None  # None: too large to attach, a link is given instead
    links: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (label, url)


NOTICE_SUBJECT_TEMPLATE = "{title} – {applicant} – {date}"  # No interview: the call reached voicemail – …
MAX_SUBJECT = 200  # characters; mail clients show far fewer


def subject_for(content: EmailContent) -> str:
    values = {
        "title": content.summary.summary.title,
        # Who the call was with: the name, else the masked number, else the call itself.
        "applicant": content.applicant or content.applicant_phone or content.conversation_id,
        "conversation_id": content.conversation_id,
        "account_id": content.account_id,
        "date": content.call_date[0] if content.call_date else "",
    }
    template = content.subject_template
    if content.summary.method == "notice" and template == DEFAULT_SUBJECT_TEMPLATE:
        template = NOTICE_SUBJECT_TEMPLATE  # "Loan interview – …" for a call that reached voicemail misleads
    subject = " ".join(render_template(template, values).split())  # a header is one line
    subject = subject.strip(" –-·:,") or f"Loan interview {content.conversation_id}"  # an empty {date}
    return subject if len(subject) <= MAX_SUBJECT else subject[:MAX_SUBJECT - 1].rstrip() + "…"


def attachment_name(content: EmailContent) -> str:
    """FedFina-Ramesh-Kumar-2025-11-18.pdf: who and when, in characters any mail client keeps."""

    who = file_name_part(content.applicant or "") or content.conversation_id
    when = content.call_date[1] if content.call_date else ""
    return "-".join(p for p in ("FedFina", who, when) if p) + ".pdf"


def build_message(content: EmailContent, now) -> Message:
    """multipart/mixed: (text/plain | text/html) alternatives, then the PDF.

    Built with the email.mime classes and the compat32 policy (CRLF line ends,
    ready for SMTP): the default policy's header objects cost more CPU than the
    rest of a conversation's email. The boundaries are set here, so serialising
    does not search the whole message for a free one: "=_" never occurs in
    base64, the encoding of every part.
    """
    message = MIMEMultipart("mixed", boundary=_boundary(), policy=WIRE)
    message["Subject"] = subject_for(content)
    message["From"] = formataddr(("FedFina Reports", content.sender))
    message["To"] = content.to
    if content.cc:
        message["Cc"] = ", ".join(content.cc)
    if content.bcc:
        # The SMTP mailer leaves Bcc out of what it transmits; the outbox keeps it.
        message["Bcc"] = ", ".join(content.bcc)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(idstring=content.conversation_id,
                                       domain=content.sender.rpartition("@")[2])
    message["X-FedFina-Conversation"] = content.conversation_id
    message["X-FedFina-Account"] = content.account_id
    bodies = _part(MIMEMultipart("alternative", boundary=_boundary(), policy=WIRE))
    bodies.attach(_part(MIMEText(text_body(content), "plain", "utf-8", policy=WIRE)))
    bodies.attach(_part(MIMEText(html_body(content), "html", "utf-8", policy=WIRE)))
    message.attach(bodies)
    if content.pdf is not None:
        attachment = _part(_base64_application(content.pdf, "pdf"))
        name = attachment_name(content)
        # A name in another script is sent RFC 2231-encoded; ASCII as it is.
        attachment.add_header("Content-Disposition", "attachment",
                              filename=name if name.isascii() else ("utf-8", "", name))
        message.attach(attachment)
    return message


def _part(part: Message) -> Message:
    del part["MIME-Version"]  # the email.mime classes add it to every part; it belongs at the top
    return part


def _base64_application(data: bytes, subtype: str) -> MIMEApplication:
    """MIMEApplication(data, subtype), its body encoded by base64.encodebytes: the same lines
    of 76 characters, each ended by a newline, as email's own encoder, which does more Python
    work for each line (0.35 ms for a 40 KB report, against 0.17)."""
    part = MIMEApplication(b"", subtype, _encoder=encode_noop, policy=WIRE)
    part.set_payload(base64.encodebytes(data).decode("ascii"))
    part["Content-Transfer-Encoding"] = "base64"
    return part


def _boundary() -> str:
    return f"=_fedfina_{secrets.token_hex(12)}"


def text_body(content: EmailContent) -> str:
    summary = content.summary.summary
    lines = [summary.title, "", _context_line(content), ""]
    if content.summary.method == "offline":
        lines += ["Note: offline summary, not an AI summary. Read the transcript before deciding.", ""]
    figures = to_check(content.summary)
    if figures:
        lines += ["Check these figures (the call does not support them):"] + [f"- {f}" for f in figures] + [""]
    lines += ["Overview", summary.overview, ""]
    for section in summary.sections:
        lines += [section.heading] + [f"- {p}" for p in section.points] + [""]
    if summary.action_items:
        lines += ["Action items"] + [f"{n}. {item}" for n, item in enumerate(summary.action_items, 1)] + [""]
    lines.append(_attachment_sentence(content))
    for label, url in content.links:
        lines.append(f"{label}: {url}")
    lines += ["", "About this report"] + [f"{label}: {value}" for label, value in _about(content)]
    lines += ["", "-- ", "FedFina loan interview reports (fedfina)"]
    return "\n".join(lines) + "\n"


def html_body(content: EmailContent) -> str:
    summary = content.summary.summary
    e = html.escape
    font = "font-family:Arial,Helvetica,sans-serif;color:#212529;"
    parts = [
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width"></head><body style="margin:0;padding:16px;">',
        f'<div style="{font}font-size:14px;line-height:1.5;max-width:680px;">',
        '<p style="margin:0;color:#0c4a6e;font-size:12px;font-weight:bold;letter-spacing:1px;">'
        "FEDFINA · LOAN INTERVIEW REPORT</p>",
        f'<h1 style="margin:4px 0 8px 0;font-size:20px;">{e(summary.title)}</h1>',
        f'<p style="margin:0 0 12px 0;color:#6c757d;font-size:12px;">{e(_context_line(content))}</p>',
    ]
    if content.summary.method == "offline":
        parts.append('<p style="background:#fff3cd;padding:8px 10px;margin:0 0 12px 0;font-size:13px;">'
                     "Offline summary: this is not an AI summary. Read the transcript before deciding.</p>")
    figures = to_check(content.summary)
    if figures:
        parts.append('<div style="background:#fff3cd;padding:8px 10px;margin:0 0 12px 0;font-size:13px;">'
                     "<strong>Check these figures</strong> (the call does not support them):"
                     + _html_list("ul", figures) + "</div>")
    parts.append(_html_heading("Overview") + f'<p style="margin:0 0 12px 0;">{e(summary.overview)}</p>')
    for section in summary.sections:
        parts.append(_html_heading(section.heading) + _html_list("ul", section.points))
    if summary.action_items:
        parts.append(_html_heading("Action items") + _html_list("ol", summary.action_items))
    parts.append(f'<p style="margin:16px 0 4px 0;">{e(_attachment_sentence(content))}</p>')
    if content.links:
        parts.append('<p style="margin:0;">' + "<br>".join(
            f'<a href="{e(url, quote=True)}" style="color:#0c4a6e;">{e(label)}</a>'
            for label, url in content.links) + "</p>")
    parts.append('<p style="margin:16px 0 0 0;color:#6c757d;font-size:11px;"><strong>About this report</strong>'
                 '<br>' + "<br>".join(f"{e(label)}: {e(value)}" for label, value in _about(content)) + "</p>")
    parts.append('<p style="margin:16px 0 0 0;color:#6c757d;font-size:11px;">'
                 "FedFina loan interview reports (fedfina)</p></div></body></html>")
    return "\n".join(parts) + "\n"


def _context_line(content: EmailContent) -> str:
    """The first line, as a note to the officer: whose call, when, for which account (it
    was a "·"-joined run of ids and provenance; those are in "About this report")."""
    who = content.applicant or content.applicant_phone or "an applicant"
    if content.applicant and content.applicant_phone:
        who = f"{content.applicant} ({content.applicant_phone})"
    when = f" on {content.call_time}" if content.call_time else ""
    return f"The loan interview with {who}{when}, for account {content.account_id}."


def _about(content: EmailContent) -> list[tuple[str, str]]:
    return [*content.summary.about, ("Conversation", content.conversation_id)]


def _attachment_sentence(content: EmailContent) -> str:
    if content.pdf is not None:
        return f"The full report with the transcript is attached ({attachment_name(content)})."
    if any(label.lower().startswith("report") for label, _ in content.links):
        return "The full report was too large to attach; download it from the link below."
    return "The full report was too large to attach; ask your FedFina administrator for it."


def _html_heading(text: str) -> str:
    return (f'<h2 style="margin:14px 0 6px 0;font-size:15px;color:#0c4a6e;'
            f'border-bottom:1px solid #ced4da;padding-bottom:2px;">{html.escape(text)}</h2>')


def _html_list(tag: str, items: list[str]) -> str:
    rows = "".join(f'<li style="margin:0 0 4px 0;">{html.escape(i)}</li>' for i in items)
    return f'<{tag} style="margin:0 0 12px 0;padding-left:22px;">{rows}</{tag}>'
