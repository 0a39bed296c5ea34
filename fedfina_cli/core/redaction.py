"""Masking Indian personal identifiers in Hindi/English text (SPEC "Privacy").

``redact(text)`` finds Aadhaar, PAN, GSTIN, IFSC, UPI ids, mobile numbers, card
numbers, bank account numbers (where the text speaks of an account), email
addresses, voter IDs (EPIC) and passport numbers, written with spaces, hyphens,
the digits of India's scripts (०–९, ০–৯, ௦–௯ …) or said as words digit by digit
("nine eight double seven…", "दो तीन चार…"), and replaces each by ``[TYPE ••••LAST4]``;
``redact_conversation`` also joins a number the applicant said over two or three turns. Checksums come
from python-stdnum (Verhoeff for Aadhaar, GSTIN's check character, Luhn for
cards), so a twelve-digit amount or a reference number that fails its checksum
stays. Offline and fast: a few regular expressions over the text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from fedfina_cli.core.conversation import Conversation, Turn
from fedfina_cli.core.digits import ascii_digits
from fedfina_cli.core.number_words import WORDS, pattern_of, word_key
from fedfina_cli.core.summary import Summary

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# A UPI id: a handle at a payment provider, which has no dot (name@okicici, 9876543210@ybl).
_UPI = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._-]{1,255}@[A-Za-z][A-Za-z0-9]{1,63}\b(?![.@-]\w)")
_GSTIN = re.compile(r"\b\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]\b")
_PAN = re.compile(r"\b[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]\b", re.IGNORECASE)  # said or typed in lower case too
_IFSC = re.compile(r"\b[A-Z]{4}0[A-Z0-9]{6}\b")
_VOTER_ID = re.compile(r"\b[A-Z]{3}\d{7}\b", re.IGNORECASE)  # checked by stdnum's EPIC (Luhn over the digits)
# An identifier introduced by its name is masked whatever its checksum: a misspoken Aadhaar
# or a PAN with a wrong fourth letter is still someone's personal data (SPEC "The officer's brief").
_NAMED_PAN = re.compile(r"(?:\bpan\b|पैन)\W{0,3}(?:no\.?|number|card|नंबर|कार्ड)?\W{0,3}([A-Za-z]{5}\d{4}[A-Za-z])\b",
                        re.IGNORECASE)
_NAMED_AADHAAR = re.compile(r"(?:\baadha?a?r\b|\buid\b|आधार)\D{0,25}?(?<!\d)(\d{4}[ .-]?\d{4}[ .-]?\d{4})(?![\d])",
                            re.IGNORECASE)
_NAMED_VOTER_ID = re.compile(r"(?:\bvoter\b(?:\W+(?:id|card))?|\bepic\b|वोटर(?:\s+आईडी)?|मतदाता)\W{0,3}"
                             r"(?:no\.?|number|नंबर)?\W{0,3}([A-Za-z]{3}\d{7})\b", re.IGNORECASE)
# 2345.6789.0124: an Aadhaar written with dots (a checksum must hold unless it is named).
_DOTTED = re.compile(r"(?<![\d.])\d{4}\.\d{4}\.\d{4}(?![\d.])")
_PASSPORT = re.compile(r"\b[A-PR-WY][1-9]\d\s?\d{4}[1-9]\b")
# Digits in groups of any size separated by one space or hyphen, with an optional
# +91 / 91 / 0 in front (a phone number's trunk prefix).
_NUMBER = re.compile(r"(?<![\d.,₹/])(?:\+91[\s-]?|\b91[\s-]|\b0)?\d(?:[ -]?\d){7,18}(?![\d]|[.,/]\d)")
_DIGIT_OR_AT = re.compile(r"[\d@]")  # \d as the detectors read it: a digit of any script
# Where a bank account number is spoken of: the words before the digits.
_ACCOUNT_CONTEXT = re.compile(
    r"(?:account|a/c|acct|acc\.?\s*no|खाता|खाते|अकाउंट|एकाउंट)\W*(?:\w+\W+){0,5}$", re.IGNORECASE)

# Digits said as words, one by one ("nine eight seven six…", "double seven", "दो तीन चार…"):
# the words 0-9 of every language the report renders, and zero's names.
_ZEROS = ("zero", "oh", "शून्य", "जीरो", "ज़ीरो", "பூஜ்ஜியம்", "ஜீரோ", "শূন্য", "জিরো", "શૂન્ય", "ਸਿਫ਼ਰ",
          "సున్నా", "ಸೊನ್ನೆ", "പൂജ്യം", "ଶୂନ")
_DIGIT_WORDS = {**{w: str(int(v)) for w, v in WORDS.items() if v in range(1, 10) and w not in ("ஒரு", "ఒక")},
                **dict.fromkeys(_ZEROS, "0")}
_DIGIT_WORD = pattern_of(_DIGIT_WORDS)
_REPEAT = {"double": 2, "triple": 3, "डबल": 2, "ट्रिपल": 3}
_SPOKEN_DIGIT = rf"(?:(?:double|triple|डबल|ट्रिपल)\s+)?(?:{_DIGIT_WORD})"
_SPOKEN_RUN = re.compile(rf"(?<![\w\u0900-\u0dff]){_SPOKEN_DIGIT}(?:[\s,-]+{_SPOKEN_DIGIT}){{7,}}"
                         rf"(?![\w\u0900-\u0dff])", re.IGNORECASE)
_SPOKEN_PART = re.compile(rf"(?:(double|triple|डबल|ट्रिपल)\s+)?({_DIGIT_WORD})(?![\w\u0900-\u0dff])", re.IGNORECASE)
# An Aadhaar named shortly before a number, in any script the report renders.
_AADHAAR_NAMED_BEFORE = re.compile(r"(?:\baadha?a?r\b|\buid\b|आधार|ஆதார்|আধার|આધાર|ਆਧਾਰ|ఆధార్|ಆಧಾರ್|ആധാർ|ଆଧାର)"
                                   r"[^\d\[]{0,40}$", re.IGNORECASE)

# Words of money just before a number: it is an amount, whatever its digits.
_CURRENCY = re.compile(r"(?:₹|\brs\.?|\binr|rupees?|रुपये|रुपए|रु\.)\s*$", re.IGNORECASE)

_GROUPS = {
    "AADHAAR": {(12,), (4, 4, 4)},
    "VID": {(16,), (4, 4, 4, 4)},
    "PHONE": {(10,), (5, 5), (3, 3, 4), (4, 3, 3), (3, 4, 3), (2, 4, 4)},
    "CARD": {(16,), (4, 4, 4, 4), (15,), (4, 6, 5), (19,), (4, 4, 4, 4, 3), (13,), (14,)},
}


@dataclass(frozen=True)
class Redacted:
    text: str
    counts: dict[str, int] = field(default_factory=dict)


def placeholder(kind: str, value: str) -> str:
    if kind == "EMAIL":
        return "[EMAIL]"
    tail = re.sub(r"[^0-9A-Za-z]", "", ascii_digits(value))[-4:]
    return f"[{kind} ••••{tail}]"


def redact(text: str) -> Redacted:
    """The text with every identifier masked, and how many of each type."""
    if not text:
        return Redacted(text)
    plain = ascii_digits(text)  # the same length: positions found in it hold in the original
    # start, end, type, the digits to show the tail of (None: the text's own): the first
    # detector to claim a span wins
    found: list[tuple[int, int, str, str | None]] = []

    def claim(start: int, end: int, kind: str, digits: str | None = None) -> None:
        if all(end <= s or start >= e for s, e, _, _ in found):
            found.append((start, end, kind, digits))

    # Every detector but the spoken digits' needs a digit or an @: most turns have neither,
    # and one search spares them a dozen.
    if _DIGIT_OR_AT.search(plain):
        for match in _EMAIL.finditer(plain):
            claim(match.start(), match.end(), "EMAIL")
        for match in _UPI.finditer(plain):
            claim(match.start(), match.end(), "UPI")
        for pattern, kind in ((_NAMED_PAN, "PAN"), (_NAMED_AADHAAR, "AADHAAR"), (_NAMED_VOTER_ID, "VOTER_ID")):
            for match in pattern.finditer(plain):
                claim(match.start(1), match.end(1), kind)
        for match in _DOTTED.finditer(plain):
            if _aadhaar(re.sub(r"\D", "", match.group())):
                claim(match.start(), match.end(), "AADHAAR")
        for pattern, kind, valid in ((_GSTIN, "GSTIN", _gstin), (_PAN, "PAN", _pan), (_IFSC, "IFSC", None),
                                     (_VOTER_ID, "VOTER_ID", _epic), (_PASSPORT, "PASSPORT", None)):
            for match in pattern.finditer(plain):
                if valid is None or valid(match.group()):
                    claim(match.start(), match.end(), kind)
        for match in _NUMBER.finditer(plain):
            number_kind = _number_kind(match.group(), plain[max(0, match.start() - 60):match.start()])
            if number_kind:
                claim(match.start(), match.end(), number_kind)
    for match in _SPOKEN_RUN.finditer(plain):
        said = spoken_digits(match.group())
        number_kind = _number_kind(" ".join(said), plain[max(0, match.start() - 60):match.start()])
        if number_kind:
            claim(match.start(), match.end(), number_kind, said)

    if not found:
        return Redacted(text)
    pieces, last = [], 0
    for start, end, kind, digits in sorted(found):
        pieces += [text[last:start], placeholder(kind, digits or text[start:end])]
        last = end
    pieces.append(text[last:])
    return Redacted("".join(pieces), dict(Counter(kind for _, _, kind, _ in found)))


def spoken_digits(words: str) -> str:
    """'nine eight double seven' -> '9877'."""
    return "".join(_DIGIT_WORDS[word_key(m.group(2))] * _REPEAT.get(word_key(m.group(1) or ""), 1)
                   for m in _SPOKEN_PART.finditer(words))


def redact_summary(summary: Summary) -> Summary:
    """The model's own output masked again: digits it writes out from spoken words ("nine
    eight seven six…" -> 9876…) would otherwise land in the summary, the PDF, the email and
    the ledger, though its input was masked."""
    def masked(text: str) -> str:
        return redact(text).text

    return summary.model_copy(update={
        "title": masked(summary.title), "overview": masked(summary.overview),
        "sections": [section.model_copy(update={"heading": masked(section.heading),
                                                "points": [masked(p) for p in section.points]})
                     for section in summary.sections],
        "action_items": [masked(item) for item in summary.action_items],
        "applicant_name": masked(summary.applicant_name) if summary.applicant_name else None,
    })


def merge(*counts: dict[str, int]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for count in counts:
        total.update(count)
    return dict(sorted(total.items()))


def _number_kind(value: str, before: str) -> str | None:
    if _CURRENCY.search(before):
        return None  # an amount: "₹ 8000 9000 2500", "Rs 1200 3400 5600"
    groups = [g for g in re.split(r"[\s-]", value.lstrip("+")) if g]
    if len(re.sub(r"\D", "", value)) == 12 and _AADHAAR_NAMED_BEFORE.search(before):
        return "AADHAAR"  # named: masked whatever its checksum
    if len(groups) > 1 and all(g.endswith("00") for g in groups):
        return None  # round figures side by side ("rent 8000 9000 2500"), never one identifier
    digits = re.sub(r"\D", "", value)
    shape = tuple(len(g) for g in groups)
    if value.startswith("+"):
        return "PHONE" if _phone(value, digits, shape) else None  # +91: a phone, whatever else it resembles
    spoken = max(shape) <= 2  # said in pairs or digit by digit: "98 76 54 32 10", "2 3 4 1 …"
    if (shape in _GROUPS["AADHAAR"] or spoken) and len(digits) == 12 and _aadhaar(digits):
        return "AADHAAR"
    if (shape in _GROUPS["VID"] or spoken) and len(digits) == 16 and _vid(digits):
        return "VID"  # an Aadhaar Virtual ID: 16 digits, Verhoeff (before CARD: Luhn may hold too)
    if shape in _GROUPS["CARD"] and _luhn(digits):
        return "CARD"
    if _phone(value, digits, shape):
        return "PHONE"
    if 9 <= len(digits) <= 18 and _ACCOUNT_CONTEXT.search(before):
        return "ACCOUNT"
    return None


def _phone(value: str, digits: str, shape: tuple[int, ...]) -> bool:
    """A mobile number: ten digits from 6-9, plainly grouped, or any grouping after +91 / 91 / 0."""
    if len(digits) == 12 and digits.startswith("91"):  # +91 98…, 91 98…, or 919812345678 run together
        return digits[2] in "6789"
    if len(digits) == 11 and digits.startswith("0"):
        return digits[1] in "6789"
    spoken = max(shape) <= 2  # "98 76 54 32 10", digit by digit
    return len(digits) == 10 and digits[0] in "6789" and (shape in _GROUPS["PHONE"] or spoken)


def _aadhaar(digits: str) -> bool:
    from stdnum.in_ import aadhaar

    return aadhaar.is_valid(digits)


def _luhn(digits: str) -> bool:
    from stdnum import luhn

    return luhn.is_valid(digits)


def _pan(value: str) -> bool:
    from stdnum.in_ import pan

    return pan.is_valid(value.upper())


def _vid(digits: str) -> bool:
    from stdnum.in_ import vid

    return vid.is_valid(digits)


def _epic(value: str) -> bool:
    from stdnum.in_ import epic

    return epic.is_valid(value.upper())


def _gstin(value: str) -> bool:
    from stdnum.in_ import gstin

    return gstin.is_valid(value)


# Digits at the end of a turn and at the start of the next: an identifier said in parts
# ("my Aadhaar is 2345 6789" / "yes?" / "0124").
_TAIL = re.compile(rf"(\d(?:[ -]?\d)*|{_SPOKEN_DIGIT}(?:[\s,-]+{_SPOKEN_DIGIT})*)[\s.,।]*$", re.IGNORECASE)
_HEAD = re.compile(rf"^[\s,]*(\d(?:[ -]?\d)*|{_SPOKEN_DIGIT}(?:[\s,-]+{_SPOKEN_DIGIT})*)(?![\w\u0900-\u0dff])",
                   re.IGNORECASE)


def _digits_of(said: str) -> str:
    return re.sub(r"\D", "", ascii_digits(said)) or spoken_digits(said)


def _across_turns(turns: tuple[Turn, ...]) -> tuple[tuple[Turn, ...], dict[str, int]]:
    """Mask an identifier the applicant said over two or three turns, each part too short to be
    one alone: the parts are joined and judged as one number (checksum, or an Aadhaar named
    before it). Every part is masked; the last shows the whole number's last four digits."""
    listed = list(turns)
    spoken = [n for n, turn in enumerate(listed) if turn.role == "user"]
    counts: Counter[str] = Counter()
    for at, first in enumerate(spoken):
        tail = _TAIL.search(ascii_digits(listed[first].text))
        if tail is None:
            continue
        parts = [(first, tail.start(1), tail.end(1), tail.group(1))]
        for following in spoken[at + 1:at + 3]:
            if following - parts[-1][0] > 2:
                break  # not the next thing said: one agent turn between parts at most ("yes?")
            text = ascii_digits(listed[following].text)
            head = _HEAD.match(text)
            if head is None:
                break
            parts.append((following, head.start(1), head.end(1), head.group(1)))
            value = " ".join(_digits_of(part[3]) if not part[3][0].isdigit() else part[3] for part in parts)
            before = ascii_digits(listed[first].text)[:tail.start(1)][-60:]
            kind = _number_kind(value, before)
            if kind:
                digits = re.sub(r"\D", "", value)
                for n, (index, start, end, _) in enumerate(parts):
                    text_ = listed[index].text
                    shown = placeholder(kind, digits if n == len(parts) - 1 else "")
                    listed[index] = replace(listed[index], text=text_[:start] + shown + text_[end:])
                counts[kind] += 1
                break
            if text[head.end():].strip(" .,।"):
                break  # the turn goes on after its digits: the number ended there
    return tuple(listed), dict(counts)


def redact_conversation(conversation: Conversation) -> tuple[Conversation, dict[str, int]]:
    """A copy whose words are masked: the turns, ElevenLabs' analysis and the collected values
    (not the dynamic variables: they route the report, and are never shown as text)."""
    counts: list[dict[str, int]] = []

    def masked(text: str | None) -> str | None:
        if not text:
            return text
        result = redact(text)
        counts.append(result.counts)
        return result.text

    def masked_value(value: Any) -> Any:
        """A collected value of any shape: an integer Aadhaar or phone, a list holding a PAN
        (they were printed raw: only text was masked)."""
        if isinstance(value, str):
            return masked(value)
        if isinstance(value, bool) or value is None or isinstance(value, float):
            return value
        if isinstance(value, int):
            text = masked(str(value))
            return value if text == str(value) else text
        if isinstance(value, list):
            return [masked_value(item) for item in value]
        if isinstance(value, dict):
            return {key: masked_value(item) for key, item in value.items()}
        return value

    turns = tuple(replace(turn, text=masked(turn.text) or "",
                          tool_results=tuple(replace(r, text=masked(r.text) or "") for r in turn.tool_results))
                  for turn in conversation.turns)
    turns, across = _across_turns(turns)
    counts.append(across)
    analysis = conversation.analysis
    if analysis is not None:
        analysis = replace(
            analysis,
            transcript_summary=masked(analysis.transcript_summary),
            call_summary_title=masked(analysis.call_summary_title),
            evaluation=tuple(replace(c, rationale=masked(c.rationale)) for c in analysis.evaluation),
            data_collection=tuple(replace(v, rationale=masked(v.rationale), value=masked_value(v.value))
                                  for v in analysis.data_collection))
    return replace(conversation, turns=turns, analysis=analysis), merge(*counts)
