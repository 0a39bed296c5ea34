"""How values from a call are worded for a loan officer (the report, the email).

Rupee amounts in Indian digit grouping (₹2,00,000), the agent's field and
criterion ids as names ("Loan amount"), phone numbers masked to their last
four digits, and a file name safe for any mail client.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

# A collected value is an amount when its id or description says so.
_AMOUNT_WORDS = re.compile(
    r"amount|income|salary|revenue|sales|turnover|expense|expenditure|emi|rent|loan|price|cost|"
    r"profit|balance|inr|rupee|₹|\brs\b", re.IGNORECASE)
_ACRONYMS = {"inr", "gst", "gstin", "pan", "emi", "upi", "ifsc", "id", "kyc", "ai", "otp", "dob", "cibil", "crm",
             "cic", "nbfc", "msme", "udyam"}


# No loan applicant's figure comes near this (₹1,000 lakh crore): beyond it a payload's
# number is shown as it came, not worded as rupees (1e30 failed the report for good:
# decimal.InvalidOperation on quantize).
LARGEST_AMOUNT = Decimal(10) ** 15


def inr(amount: Decimal | int | float) -> str:
    """₹2,00,000 and ₹1,234.50: lakh-and-crore grouping, paise only when there are any."""
    exact = Decimal(str(amount))
    if not exact.is_finite() or abs(exact) >= LARGEST_AMOUNT:
        return f"{amount} (too large to be an amount)"
    value = exact.quantize(Decimal("0.01"))
    sign = "-" if value < 0 else ""
    rupees, paise = divmod(abs(value), 1)
    digits = str(int(rupees))
    # The last three digits, then groups of two: 1,23,45,678.
    head, tail = digits[:-3], digits[-3:]
    groups = [head[max(0, end - 2):end] for end in range(len(head), 0, -2)][::-1]
    grouped = ",".join([*groups, tail]) if head else tail
    cents = f".{int(paise * 100):02d}" if paise else ""
    return f"{sign}₹{grouped}{cents}{_spoken(abs(value))}"


def _spoken(value: Decimal) -> str:
    """ (2 lakh), (1.2 crore): the amount as an officer says it, where that is exact to two
    decimals (₹1,23,456 stays as it is: "1.23 lakh" would not be the amount)."""
    for unit, size in (("crore", Decimal(10) ** 7), ("lakh", Decimal(10) ** 5)):
        if value >= size:
            count = value / size
            if count == count.quantize(Decimal("0.01")):
                return f" ({count.normalize():f} {unit})"
            return ""
    return ""


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    if isinstance(value, str):
        text = value.strip().replace(",", "").removeprefix("₹").removeprefix("Rs.").strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return Decimal(text)
    return None


def collected_value(field_id: str, description: str | None, value: object) -> str:
    """A data-collection value as an officer reads it (amounts in rupees)."""
    if value is None:
        return "not collected"
    number = _number(value)
    if number is not None and _AMOUNT_WORDS.search(f"{field_id} {description or ''}"):
        return inr(number) if abs(number) < LARGEST_AMOUNT else f"{value} (too large to be an amount)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):  # ['Sita', 'Gita'] was printed as Python wrote it
        return ", ".join(collected_value(field_id, description, item) for item in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{readable_name(str(k))}: {collected_value(str(k), None, v)}" for k, v in value.items())
    return str(value)


# ElevenLabs' analysis words, as an officer says them (SPEC "The officer's brief": no enum values).
_CALL_GOALS = {"success": "The call met its goals", "failure": "The call did not meet its goals",
               "unknown": "Not assessed"}
_CRITERION_RESULTS = {"success": "met", "failure": "not met", "unknown": "not assessed"}
# termination_reason is free text from ElevenLabs' engine: the common ones in words.
_ENDINGS = (
    (re.compile(r"end_call tool|agent ended|ended by (?:the )?agent", re.IGNORECASE), "The agent ended the call"),
    (re.compile(r"client disconnected|remote party|user (?:hung up|ended|disconnected)|caller hung up",
                re.IGNORECASE), "The applicant hung up"),
    (re.compile(r"max(?:imum)? (?:call )?duration|time limit", re.IGNORECASE), "The call reached its time limit"),
    (re.compile(r"silence|inactivity|no input", re.IGNORECASE), "The call ended after a long silence"),
    (re.compile(r"voicemail", re.IGNORECASE), "The call reached voicemail"),
    (re.compile(r"error|failed|failure", re.IGNORECASE), "The call ended on a technical fault"),
)


def call_goal(result: str | None) -> str | None:
    """call_successful in words: "The call met its goals"."""
    return _CALL_GOALS.get((result or "").lower()) if result else None


def criterion_result(result: str | None) -> str:
    """An evaluation criterion's result in words: met, not met, not assessed."""
    return _CRITERION_RESULTS.get((result or "").lower(), result or "not assessed")


def how_it_ended(reason: str | None) -> str | None:
    """termination_reason in words ("end_call tool was called." -> "The agent ended the call");
    None for a reason not known here (it is kept, as given, in "About this report")."""
    if not reason:
        return None
    return next((words for pattern, words in _ENDINGS if pattern.search(reason)), None)


def readable_name(identifier: str) -> str:
    """loan_amount -> "Loan amount"; monthly_emi_inr -> "Monthly EMI INR"; businessType -> "Business type"."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", identifier.strip())  # camelCase too
    words = [w for w in re.split(r"[_\-\s]+", spaced) if w]
    if not words:
        return identifier
    words = [w.upper() if w.lower() in _ACRONYMS else w.lower() for w in words]
    first = words[0]
    words[0] = first if first.isupper() else first[:1].upper() + first[1:]
    return " ".join(words)


def masked_phone(number: str | None) -> str | None:
    """+91 ••••••4821: the country code and the last four digits (enough to recognise it)."""
    if not number:
        return None
    digits = re.sub(r"\D", "", number)
    if len(digits) < 4:
        return None
    country = "+91 " if number.strip().startswith("+91") or (len(digits) == 12 and digits.startswith("91")) \
        else ""
    return f"{country}••••••{digits[-4:]}"


def file_name_part(text: str, limit: int = 40) -> str:
    """Letters and digits of any script kept, everything else one hyphen: a safe file name piece."""
    normalized = unicodedata.normalize("NFC", text)
    kept = "".join(ch if ch.isalnum() or unicodedata.category(ch).startswith("M") else "-"
                   for ch in normalized)
    return re.sub(r"-{2,}", "-", kept).strip("-")[:limit].strip("-")
