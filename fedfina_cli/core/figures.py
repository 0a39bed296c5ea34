"""Checking a summary's figures against the call (SPEC "Trust").

Every figure in the summary (amounts, percentages, counts, durations, dates) is
looked for in what the call supports: the numbers said in the transcript, in
digits or words (दो लाख, पैंतीस हज़ार, ढाई लाख, "two and a half lakh", இருபத்தைந்து ஆயிரம்,
চব্বিশ লাখ: 1-100 and the multipliers in every language the report renders, see
number_words), in any notation (₹ / Rs / rupees / रुपये, lakh / crore / thousand / हज़ार,
Indian or Western grouping, Devanagari digits), and the call's own facts (its date,
length, turns). A figure derived from what was said by a simple rule counts as supported
and says how: daily × 30, monthly × 12, yearly ÷ 12, months as years, sums, a price less
what is paid of it, a price × quantity. What is left is listed for the officer to
check. Offline and fast: a few milliseconds.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fedfina_cli.core.digits import ascii_digits
from fedfina_cli.core.number_words import ENGLISH_UNITS, FRACTIONS, MULTIPLIERS, WORDS, pattern_of, word_key

if TYPE_CHECKING:
    from fedfina_cli.core.conversation import Conversation
    from fedfina_cli.core.summary import Summary, SummaryDocument

# Words that are numbers and ordinary words too (एक, ஒரு: "a"; নয়: "not"): in a summary they are
# figures only before a multiplier (एक लाख), never alone.
_ALSO_WORDS = {w for w, v in WORDS.items() if v == 1} | {"নয়"}
# Inside a word of India's scripts: letters, vowel signs, viramas and joiners, not the danda (।).
# \w alone misses the signs, and दस was read inside दस्तावेज़, साठ inside गाईंसाठी.
_IN_WORD = r"[\w\u0900-\u0963\u0966-\u0dff\u200c\u200d]"
# Bengali counts with a classifier joined on: চারজন (four people), দশটা (ten things).
_CLASSIFIER = "জন|টা|টি|টো|খানা"
_MULTIPLIER = pattern_of(MULTIPLIERS)
_AMOUNT = r"\d{1,3}(?:,\d{2,3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # Indian or Western grouping, or none
_NUMBER = re.compile(
    rf"(?:(?:₹|\brs\.?|\binr)\s*)?(?<![\w.,])({_AMOUNT})(?:\s*(?:–|-|to|से)\s*(?:₹\s*)?({_AMOUNT}))?"
    rf"(?:\s*({_MULTIPLIER})(?![\w]))?",
    re.IGNORECASE)
_WORD = re.compile(
    rf"(?<!{_IN_WORD})(?:({pattern_of(FRACTIONS)})\s+)?({pattern_of(WORDS)})"
    rf"(?:(?:{_CLASSIFIER})(?!{_IN_WORD})|\s+({_MULTIPLIER})(?!\w)|(?!{_IN_WORD}))",
    re.IGNORECASE)
# ₹7 50 000: Indian grouping with spaces (thin or not), read as one amount only after a
# currency sign (two numbers side by side are otherwise two figures). It was 7, 50 and 0.
_SPACED = re.compile(r"(?:₹|\brs\.?|\binr)\s*(\d{1,3}(?:[ \u00a0\u202f]\d{2})*[ \u00a0\u202f]\d{3})(?![\d,.])",
                     re.IGNORECASE)
# ₹5L, Rs 2.5 L, ₹1.2Cr: the lakh and crore of notes and chats, read as such only after a
# currency sign ("5 L" alone may be litres). They were read as 5 and 2.5.
_SHORT = re.compile(r"(?:₹|\brs\.?|\binr)\s*(\d+(?:\.\d+)?)\s*(l|lac|cr)(?![\w])", re.IGNORECASE)
_SHORT_SCALE = {"l": 1e5, "lac": 1e5, "cr": 1e7}
# English number words in a run ("five hundred thousand", "two hundred and fifty thousand",
# "one lakh twenty thousand") read as one number; a word alone is still read by _WORD.
_ENGLISH_SCALES = {"thousand": 1e3, "lakh": 1e5, "lakhs": 1e5, "million": 1e6, "crore": 1e7, "crores": 1e7}
_ENGLISH_WORD = "|".join(sorted([*ENGLISH_UNITS, "hundred", *_ENGLISH_SCALES], key=len, reverse=True))
_ENGLISH_RUN = re.compile(rf"\b(?:{_ENGLISH_WORD})(?:(?:\s+and\s+|[\s-]+)(?:{_ENGLISH_WORD}|a\s+half))+\b",
                          re.IGNORECASE)


_DIGIT = re.compile(r"\d")  # as _NUMBER, _SPACED and _SHORT read digits: of any script
# What _ENGLISH_RUN can match under IGNORECASE: ASCII letters, and the four that fold to them (İ ı ſ K).
_LATIN = re.compile("[A-Za-z\u0130\u0131\u017f\u212a]")


def _english_value(run: str) -> float | None:
    """'five hundred thousand' -> 500000; None where the words do not make one number."""
    total = current = 0.0
    seen_scale = half = False
    for word in re.split(r"[\s-]+", word_key(run)):
        if word in ("and", "a"):
            continue
        if word == "half":  # two and a half (lakh)
            current, half = current + 0.5, True
        elif word in ENGLISH_UNITS:
            current += ENGLISH_UNITS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        else:
            scale = _ENGLISH_SCALES[word]
            total += (current or 1) * scale
            current, seen_scale = 0.0, True
    value = total + current
    return value if (seen_scale or half or value >= 100) else None


# Not figures: mm:ss offsets into the call, the masks of identifiers, list numbering, and the
# multipliers of the rules below when a summary shows its working ("daily × 30").
_IGNORED = re.compile(r"\[?\b\d{1,2}:\d{2}\b\]?|\[[A-Z_]+ ••••\w{0,4}\]|^\s*\d+[.)]\s|[×*]\s?(?:30|12)\b")
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_DATE = re.compile(r"\b(?:(?P<day>\d{1,2})\s+(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?"
                   r"\s+(?P<year>\d{4})|(?P<iso>\d{4}-\d{2}-\d{2}))\b", re.IGNORECASE)


@dataclass(frozen=True)
class Unsupported:
    figure: str
    where: str

    def as_dict(self) -> dict[str, str]:
        return {"figure": self.figure, "where": self.where}


def normalised(text: str) -> str:
    """Digits of India's scripts as ASCII, nukta letters in one form (NFC)."""
    return ascii_digits(unicodedata.normalize("NFC", text))


@dataclass(frozen=True)
class _Said:
    start: int
    end: int
    text: str  # as written
    value: float
    multiplier: float | None  # the lakh or thousand written with it, if any


# Between the ends of a range whose first end borrows the second's multiplier: "आठ से दस हज़ार",
# "fifteen to eighteen thousand", "पचास-साठ हज़ार", "பத்து பன்னிரண்டு ஆயிரம்".
_RANGE_BETWEEN = re.compile(r"\s*(?:-|–|—|/|to|or|से|ते|থেকে|முதல்|அல்லது)?\s*", re.IGNORECASE)


def numbers(text: str, english_words: bool = True) -> list[tuple[str, float]]:
    """Every figure in ``text``: (as written, value). A range gives both ends.

    ``english_words`` False (a summary): an English number word, or one that is an ordinary
    word too (एक, ஒரு: "a"), counts only with its multiplier ("two lakh"); alone ("one helper",
    "at one point") it is not a figure.
    """
    return [(said.text, said.value) for said in _located(text, english_words)]


def _located(text: str, english_words: bool = True) -> list[_Said]:
    text = _IGNORED.sub(" ", normalised(text))
    found: list[_Said] = []

    def free(span: tuple[int, int]) -> bool:
        return not any(f.start < span[1] and span[0] < f.end for f in found)

    def add(match: re.Match[str], value: float, multiplier: float | None) -> None:
        found.append(_Said(match.start(), match.end(), match.group(0).strip(), value, multiplier))

    # Most lines of a call hold no digit, and many no Latin letter: the patterns that need
    # them are not run there (a search is a tenth of their scans).
    if _DIGIT.search(text):
        for match in _SPACED.finditer(text):
            add(match, float(re.sub(r"\D", "", match.group(1))), None)
        for match in _SHORT.finditer(text):
            if free(match.span()):
                short = _SHORT_SCALE[word_key(match.group(2))]
                add(match, float(match.group(1)) * short, short)
        for match in _NUMBER.finditer(text):
            if not free(match.span()):
                continue
            written = MULTIPLIERS.get(word_key(match.group(3) or ""))
            for group in (1, 2):
                if match.group(group):
                    add(match, float(match.group(group).replace(",", "")) * (written or 1), written)
    if _LATIN.search(text):
        for match in _ENGLISH_RUN.finditer(text):
            run = _english_value(match.group(0))
            if run is not None and free(match.span()):
                last = word_key(match.group(0)).split()[-1]
                add(match, run, _ENGLISH_SCALES.get(last))
    for match in _WORD.finditer(text):
        if not free((match.start(), match.start() + 1)):
            continue
        word = word_key(match.group(2))
        if not english_words and (word.isascii() or word in _ALSO_WORDS) and not match.group(3):
            continue
        value = WORDS[word] + FRACTIONS.get(match.group(1) or "", 0)
        said_with = MULTIPLIERS.get(word_key(match.group(3) or ""))
        add(match, value * (said_with or 1), said_with)
    found.sort(key=lambda said: said.start)
    # The first end of a range said with one multiplier is that much, not a bare number: "आठ से
    # दस हज़ार" is 8,000 to 10,000 (a bare 8 would support "8 years", or be flagged in a summary).
    for n, (first, second) in enumerate(itertools.pairwise(found)):
        if first.multiplier is None and second.multiplier and first.value < second.value / second.multiplier \
                and _RANGE_BETWEEN.fullmatch(text[first.end:second.start]):
            found[n] = _Said(first.start, first.end, first.text, first.value * second.multiplier, second.multiplier)
    return found


@dataclass(frozen=True)
class CallFacts:
    """What the call itself says besides its words, each fact with the words that ask for it:
    a figure is supported by the call's length only where the summary speaks of time, and so on."""

    dates: frozenset[tuple[int, int, int]] = frozenset()  # (year, month, day): UTC and India
    turns: frozenset[float] = frozenset()
    duration: frozenset[float] = frozenset()


_TURN_WORDS = re.compile(r"turn|applicant|spoke|बार", re.IGNORECASE)
_TIME_WORDS = re.compile(r"\b(?:min|minutes?|s|sec|seconds?|duration|lasted|long)\b|मिनट|सेकंड", re.IGNORECASE)


def call_facts(conversation: Conversation) -> CallFacts:

    spoken = conversation.spoken_turns
    turns = {len(spoken), sum(1 for t in spoken if t.role == "user"), sum(1 for t in spoken if t.role == "agent")}
    seconds = conversation.metadata.call_duration_secs
    duration = {seconds, seconds // 60, seconds % 60, round(seconds / 60)} if seconds else set()
    dates = set()
    start = conversation.metadata.start_time_unix_secs
    if start:
        for offset_hours in (0, 5.5):  # UTC and India: the report shows the account's zone
            moment = datetime.fromtimestamp(start + offset_hours * 3600, tz=UTC)
            dates.add((moment.year, moment.month, moment.day))
    return CallFacts(frozenset(dates), frozenset(map(float, turns)), frozenset(map(float, duration)))


@dataclass(frozen=True)
class Checked:
    checked: int  # figures in the summary
    unsupported: list[Unsupported]
    derived: list[dict[str, str]]  # supported by a rule, not said as such: {"figure", "where", "how"}


def check(summary: Summary, transcript: str, facts: CallFacts | None = None) -> list[Unsupported]:
    """The summary's figures the call does not support (none: a faithful summary)."""
    return check_all(summary, transcript, facts).unsupported


def check_all(summary: Summary, transcript: str, facts: CallFacts | None = None,
              only_analysis: bool = False) -> Checked:
    """The unsupported figures, and how each derived one was derived from what was said.

    ``only_analysis``: a summary fedfina assembled itself (offline, or a notice) is checked
    in its title and overview only, which come from ElevenLabs' analysis: its sections are
    fedfina's own lines and the call's own words, never a model's, and a count or a reason
    it wrote (1000 in "Client disconnected: 1000") was flagged as a false alarm."""
    facts = facts or CallFacts()
    support = _supported(transcript)
    spoken_dates = {d for d, _ in dates(transcript)}
    unsupported: list[Unsupported] = []
    derived: list[dict[str, str]] = []
    checked = 0

    def flag(text: str, where: str) -> None:
        if Unsupported(text, where) not in unsupported:
            unsupported.append(Unsupported(text, where))

    for where, content in _fields(summary):
        if only_analysis and where not in ("title", "overview"):
            continue
        for date, text in dates(content):
            checked += 1
            if date not in facts.dates and date not in spoken_dates:
                flag(text, where)
        for text, value in numbers(_DATE.sub(" ", normalised(content)), english_words=False):
            checked += 1
            key = round(value, 6)
            if key in support:
                how = support[key]
                if how and {"figure": text, "where": where, "how": how} not in derived:
                    derived.append({"figure": text, "where": where, "how": how})
                continue
            if (key in facts.turns and _TURN_WORDS.search(content)) \
                    or (key in facts.duration and _TIME_WORDS.search(content)):
                continue
            flag(text, where)
    return Checked(checked, unsupported, derived)


def dates(text: str) -> list[tuple[tuple[int, int, int], str]]:
    """Dates written as 18 Nov 2025, 18 November 2025 or 2025-11-18: ((year, month, day), as written)."""
    found = []
    for match in _DATE.finditer(normalised(text)):
        if match.group("iso"):
            year, month, day = (int(x) for x in match.group("iso").split("-"))
        else:
            day, month, year = int(match.group("day")), _MONTHS[word_key(match.group("month"))[:3]], \
                int(match.group("year"))
        found.append(((year, month, day), match.group(0)))
    return found


def _fields(summary: Summary) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = [("title", summary.title), ("overview", summary.overview)]
    for i, section in enumerate(summary.sections):
        fields.append((f"sections[{i}].heading", section.heading))
        fields += [(f"sections[{i}].points[{j}]", point) for j, point in enumerate(section.points)]
    fields += [(f"action_items[{k}]", item) for k, item in enumerate(summary.action_items)]
    return fields


# How often an amount comes, in the words of each language the report renders; read in the
# answer and in the question before it ("ஒரு நாளைக்கு எவ்வளவு விற்பனை?" / "சுமார் பன்னிரண்டு ஆயிரம்").
_DAILY = re.compile(
    r"daily|per day|a day|every day|रोज़|रोज|रोजाना|रोज़ाना|प्रतिदिन|दिन का|दिन में|दररोज|दिवसाला|"
    r"நாளைக்கு|நாளுக்கு|தினமும்|தினசரி|দিনে|দৈনিক|প্রতিদিন|રોજ|દરરોજ|દિવસના|ਰੋਜ਼|ਰੋਜ਼ਾਨਾ|రోజుకు|రోజూ|"
    r"ప్రతిరోజు|ದಿನಕ್ಕೆ|ಪ್ರತಿದಿನ|ദിവസം|ദിവസേന|ଦିନକୁ|ପ୍ରତିଦିନ", re.IGNORECASE)
_MONTHLY = re.compile(
    r"monthly|per month|a month|every month|महीने|महीना|मासिक|rent|किराया|किराए|salary|तनख्वाह|वेतन|emi|"
    r"expenses?|खर्च|bills?|बिल|बिजली|महिन्याला|महिन्याची|हप्ता|भाडे|மாதம்|மாத|மாசம்|வாடகை|মাসে|মাসিক|"
    r"মাসের|ভাড়া|খরচ|મહિને|માસિક|ભાડું|ਮਹੀਨੇ|ਕਿਰਾਇਆ|నెలకు|అద్దె|ತಿಂಗಳಿಗೆ|ಬಾಡಿಗೆ|മാസം|പ്രതിമാസ|ବାଡ଼ି|ମାସକୁ",
    re.IGNORECASE)
_YEARLY = re.compile(
    r"annual|yearly|a year|per year|turnover|last year|सालाना|वार्षिक|साल का|वर्षी|वर्षाला|उलाढाल|வருஷம்|"
    r"வருடம்|ஆண்டு|டர்ன்ஓவர்|বছরে|বার্ষিক|વર્ષે|ਸਾਲ|సంవత్సరానికి|ವರ್ಷಕ್ಕೆ|വർഷം|ବର୍ଷକୁ", re.IGNORECASE)
# A count of months or years: a tenure of 36 months is 3 years.
_MONTH_COUNT = re.compile(r"months?|महीने|महीनों|महिने|महिन्यां|மாத|মাস|મહિના|ਮਹੀਨੇ|నెలల|ತಿಂಗಳ|മാസ|ମାସ",
                     re.IGNORECASE)
_YEAR_COUNT = re.compile(r"years?|साल|वर्ष|வருட|வருஷ|ஆண்டு|বছর|વર્ષ|ਸਾਲ|సంవత్సర|ವರ್ಷ|വർഷ|ବର୍ଷ", re.IGNORECASE)
# A price and what is paid of it in one turn: the difference is the rest ("costs 1.8 lakh, I want
# 1.5 lakh, rest I will pay"). Not any two amounts: "1.2 lakh, maybe 2 lakh" is no 80,000.
_PRICE = re.compile(r"\b(?:costs?|price|rest|remaining|balance|down ?payment|saved|own)\b|ka hai|का है|कीमत|दाम|"
                    r"बाकी|किंमत|उरलेले|விலை|மீதி|দাম|বাকি|કિંમત|બાકી|ਕੀਮਤ|ਬਾਕੀ", re.IGNORECASE)
# A price and a quantity in one turn: 110 litres at 52 rupees a litre.
_RATE = re.compile(r"\bper\b|\beach\b|\ba (?:litre|liter|kg|kilo|piece|unit)\b|प्रति|किलो|लीटर|लिटर|का भाव",
                   re.IGNORECASE)


def _supported(transcript: str) -> dict[float, str | None]:
    """What the call supports, each value with how it follows from what was said (None: said).

    Every value said; from the figures said together in one turn: the sums of amounts (a list
    of expenses) and of two counts, the difference of two amounts (price less the loan asked
    for), a price × quantity where the turn states a rate; × 30 where the turn or its question
    speaks of a day, × 12 of a month, ÷ 12 of a year; a count of months as years and back.
    """
    support: dict[float, str | None] = {}

    def add(value: float, how: str | None) -> None:
        key = round(value, 6)
        if key not in support or (how is None and support[key] is not None):
            support[key] = how

    question = ""
    for line in normalised(transcript).splitlines():
        said = [value for _, value in numbers(line)]
        if not said:  # nothing to derive from: the rules' words are not looked for (most of the cost)
            question = line
            continue
        for value in said:
            add(value, None)
        distinct = list(dict.fromkeys(said))[:12]
        amounts = [v for v in distinct if v >= 100]
        together = {sum(c): "sum of " + " + ".join(_rupees(v) for v in c)
                    for size in range(2, min(len(amounts), 4) + 1) for c in itertools.combinations(amounts, size)}
        for value, how in together.items():
            add(value, how)
        for a, b in itertools.combinations(distinct, 2):
            add(a + b, f"{_plain(a)} + {_plain(b)}")
            if a >= 100 and b >= 100 and a != b and _PRICE.search(line):
                add(abs(a - b), f"{_rupees(max(a, b))} − {_rupees(min(a, b))}")
        if _RATE.search(line):
            for a, b in itertools.combinations(distinct, 2):
                add(a * b, f"{_plain(a)} × {_plain(b)}")
        context = question + " " + line
        if _MONTHLY.search(context):
            for value in amounts:
                add(value * 12, f"{_rupees(value)} a month × 12")
            for value, how in together.items():
                add(value * 12, f"({how}) a month × 12")
        if _DAILY.search(context):
            for value in amounts:
                add(value * 30, f"{_rupees(value)} a day × 30")
        if _YEARLY.search(context):
            for value in amounts:
                add(value / 12, f"{_rupees(value)} a year ÷ 12")
        if _MONTH_COUNT.search(line):
            for value in distinct:
                if value >= 12 and value % 12 == 0:
                    add(value / 12, f"{_plain(value)} months in years")
        if _YEAR_COUNT.search(line):
            for value in distinct:
                if 1 <= value <= 30 and value == int(value):
                    add(value * 12, f"{_plain(value)} years in months")
        question = line
    return support


def _plain(value: float) -> str:
    return _rupees(value) if value >= 1000 else f"{value:g}"


def _rupees(value: float) -> str:
    """₹19,500 or ₹2,00,000: Indian grouping, as the call says it.

    (Not babel's format_currency(…, "INR", locale="en_IN"): the same grouping, with
    decimals to strip and a locale database of some 30 MB for these six lines.)"""
    whole = round(value)
    text = str(whole)
    if len(text) > 3:
        head, tail = text[:-3], text[-3:]
        head = ",".join([head[max(0, i - 2):i] for i in range(len(head), 0, -2)][::-1])
        text = f"{head},{tail}"
    return f"₹{text}"


def where_shown(summary: Summary, where: str) -> str:
    """A summary field's path as an officer reads it: "Loan request, point 2", "overview"."""
    found = re.fullmatch(r"sections\[(\d+)\]\.(heading|points\[(\d+)\])", where)
    if found and int(found.group(1)) < len(summary.sections):
        heading = summary.sections[int(found.group(1))].heading
        return heading if found.group(2) == "heading" else f"{heading}, point {int(found.group(3)) + 1}"
    found = re.fullmatch(r"action_items\[(\d+)\]", where)
    if found:
        return f"action item {int(found.group(1)) + 1}"
    return where


def to_check(document: SummaryDocument) -> list[str]:
    """The unsupported figures of a SummaryDocument for the PDF and the email, each with what it
    is (the summary's words before it: "Monthly sales ₹9,99,000") and where: a bare "12 (overview)"
    could not be placed by an officer."""
    fields = dict(_fields(document.summary))
    shown = []
    for u in document.unsupported_figures:
        said = _in_context(fields.get(u["where"], ""), u["figure"])
        shown.append(f"{said} ({where_shown(document.summary, u['where'])})")
    return shown


def _in_context(text: str, figure: str, words: int = 4) -> str:
    """The figure with up to ``words`` words before it in its own clause, as the summary has them."""
    plain = normalised(text)
    at = plain.find(figure)
    if at < 0:
        return figure
    clause = re.split(r"[.;:!?।()\[\]]|, ", plain[:at])[-1].split()
    before = " ".join(clause[-words:])
    return f"{before} {text[at:at + len(figure)]}".strip() if before else text[at:at + len(figure)]
