"""Validation of the identifiers that become object keys, folders and mail headers.

These run before any network call or write: an account id becomes a folder, and
an email address becomes a header, so a bad value must never get further.
"""

from __future__ import annotations

import re

from fedfina_cli.core.errors import InvalidValue

CONVERSATION_ID = re.compile(r"conv_[A-Za-z0-9]{8,64}")
ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
AGENT_ID = re.compile(r"agent_[A-Za-z0-9]{8,64}")

# RFC 5321/5322 "dot-atom" addr-spec, ASCII only; no quoted local parts, no
# display names, no comments: one plain mailbox a loan officer can read.
_LOCAL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def conversation_id(value: object) -> str:
    if not isinstance(value, str) or not CONVERSATION_ID.fullmatch(value):
        meant = _meant_conversation_id(value) if isinstance(value, str) else None
        hint = f"; did you mean {meant}?" if meant else ""
        raise InvalidValue(
            "conversation_id", value, f"expected conv_ followed by 8 to 64 letters or digits{hint}"
        )
    return value


def _meant_conversation_id(value: str) -> str | None:
    """The id in what people paste: an ElevenLabs dashboard URL, the id without its
    `conv_`, or with quotes or spaces around it. Suggested, never taken silently."""
    found = re.search(r"(?<![A-Za-z0-9])conv_[A-Za-z0-9]{8,64}(?![A-Za-z0-9])", value)
    if found:
        return found.group()
    bare = value.strip().strip("'\"<>").strip()
    return f"conv_{bare}" if re.fullmatch(r"[A-Za-z0-9]{8,64}", bare) else None


def account_id(value: str) -> str:
    if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
        raise InvalidValue(
            "account_id",
            value,
            "expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if ".." in value:
        raise InvalidValue("account_id", value, "'..' is not allowed (it becomes a folder name)")
    return value


def agent_id(value: str) -> str:
    if not isinstance(value, str) or not AGENT_ID.fullmatch(value):
        raise InvalidValue("agent_id", value, "expected agent_ followed by 8 to 64 letters or digits")
    return value


def email_address(value: str) -> str:
    reason = _email_problem(value) if isinstance(value, str) else "expected an address like name@example.com"
    if reason:
        raise InvalidValue("email_id", value, reason)
    return value


def _email_problem(value: str) -> str | None:
    if "\r" in value or "\n" in value:
        return "line breaks are not allowed"
    if not value.isascii():
        return "only ASCII addresses are supported"
    if any(c in value for c in ",; <>\t\"()"):
        return "expected one plain address like name@example.com"
    if len(value) > 254:
        return "longer than 254 characters"
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        return "expected one address like name@example.com"
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return f"the part before '@' ({local}) is not valid"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return f"the domain ({domain}) is not valid"
    if labels[-1].isdigit():
        return f"the domain ({domain}) is not valid"
    return None
