"""Checking a summary's figures against the call (SPEC "Trust").

Every figure in the summary (amounts, percentages, counts, durations, dates) is
looked for in what the call supports: the numbers said in the transcript, in
digits or words (दो लाख, पचास हज़ार, ढाई लाख, "two lakh"; in Tamil, Bengali, Marathi,
Gujarati, Punjabi, Telugu, Kannada, Malayalam and Odia too: 1-12, 15, the tens, 100 and
the multipliers, e.g. பன்னிரண்டு, দুই লাখ, ಮೂರು ಲಕ್ಷ), in any notation (₹ / Rs /
rupees / रुपये, lakh / crore / thousand / हज़ार, Indian or Western grouping,
Devanagari digits), and the call's own facts (its date, length, turns). A figure
derived from stated ones by a simple rule counts as supported and says how:
daily × 30, monthly × 12, or the sum of up to four stated amounts. What is left
is listed for the officer to check. Offline and fast: a few milliseconds.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fedfina_cli.core.digits import ascii_digits

if TYPE_CHECKING:
    from fedfina_cli.core.conversation import Conversation
    from fedfina_cli.core.summary import Summary, SummaryDocument

_MULTIPLIERS = {
    "thousand": 1e3, "k": 1e3, "हज़ार": 1e3, "हजार": 1e3,
    "lakh": 1e5, "lakhs": 1e5, "lac": 1e5, "lacs": 1e5, "लाख": 1e5,
    "million": 1e6, "crore": 1e7, "crores": 1e7, "cr": 1e7, "करोड़": 1e7, "करोड": 1e7,
    # Tamil, Bengali
    "ஆயிரம்": 1e3, "லட்சம்": 1e5, "கோடி": 1e7, "হাজার": 1e3, "লাখ": 1e5, "লক্ষ": 1e5, "কোটি": 1e7,
    # Marathi, Gujarati, Punjabi, Telugu, Kannada, Malayalam, Odia
    "कोटी": 1e7, "હજાર": 1e3, "લાખ": 1e5, "કરોડ": 1e7, "ਹਜ਼ਾਰ": 1e3, "ਲੱਖ": 1e5, "ਕਰੋੜ": 1e7,
    "వేలు": 1e3, "వెయ్యి": 1e3, "లక్ష": 1e5, "లక్షలు": 1e5, "కోటి": 1e7, "కోట్లు": 1e7,
    "ಸಾವಿರ": 1e3, "ಲಕ್ಷ": 1e5, "ಕೋಟಿ": 1e7, "ആയിരം": 1e3, "ലക്ഷം": 1e5, "കോടി": 1e7,
    "ହଜାର": 1e3, "ଲକ୍ଷ": 1e5, "କୋଟି": 1e7,
}
_WORDS = {
    # Hindi
    "एक": 1, "दो": 2, "तीन": 3, "चार": 4, "पांच": 5, "पाँच": 5, "छह": 6, "छः": 6, "सात": 7, "आठ": 8,
    "नौ": 9, "दस": 10, "ग्यारह": 11, "बारह": 12, "पंद्रह": 15, "बीस": 20, "पच्चीस": 25, "तीस": 30,
    "चालीस": 40, "पचास": 50, "साठ": 60, "सत्तर": 70, "अस्सी": 80, "नब्बे": 90, "सौ": 100,
    "डेढ़": 1.5, "डेढ": 1.5, "ढाई": 2.5,
    # Tamil
    "ஒன்று": 1, "இரண்டு": 2, "மூன்று": 3, "நான்கு": 4, "ஐந்து": 5, "ஆறு": 6, "ஏழு": 7, "எட்டு": 8,
    "ஒன்பது": 9, "பத்து": 10, "இருபது": 20, "முப்பது": 30, "நாற்பது": 40, "ஐம்பது": 50, "நூறு": 100,
    # Tamil, the rest of 1-100's words
    "பதினொன்று": 11, "பன்னிரண்டு": 12, "பதிமூன்று": 13, "பதினான்கு": 14, "பதினைந்து": 15, "பதினாறு": 16,
    "பதினேழு": 17, "பதினெட்டு": 18, "பத்தொன்பது": 19, "அறுபது": 60, "எழுபது": 70, "எண்பது": 80,
    "தொண்ணூறு": 90,
    # Marathi
    "दोन": 2, "पाच": 5, "सहा": 6, "नऊ": 9, "दहा": 10, "अकरा": 11, "बारा": 12, "पंधरा": 15, "वीस": 20,
    "पंचवीस": 25, "चाळीस": 40, "पन्नास": 50, "ऐंशी": 80, "नव्वद": 90, "शंभर": 100,
    # Gujarati
    "એક": 1, "બે": 2, "ત્રણ": 3, "ચાર": 4, "પાંચ": 5, "છ": 6, "સાત": 7, "આઠ": 8, "નવ": 9, "દસ": 10,
    "બાર": 12, "પંદર": 15, "વીસ": 20, "પચીસ": 25, "ત્રીસ": 30, "ચાલીસ": 40, "પચાસ": 50, "સાઠ": 60,
    "સિત્તેર": 70, "એંસી": 80, "નેવું": 90, "સો": 100,
    # Punjabi
    "ਇੱਕ": 1, "ਦੋ": 2, "ਤਿੰਨ": 3, "ਚਾਰ": 4, "ਪੰਜ": 5, "ਛੇ": 6, "ਸੱਤ": 7, "ਅੱਠ": 8, "ਨੌਂ": 9, "ਦਸ": 10,
    "ਬਾਰਾਂ": 12, "ਪੰਦਰਾਂ": 15, "ਵੀਹ": 20, "ਪੱਚੀ": 25, "ਤੀਹ": 30, "ਚਾਲੀ": 40, "ਪੰਜਾਹ": 50, "ਸੱਠ": 60,
    "ਸੱਤਰ": 70, "ਅੱਸੀ": 80, "ਨੱਬੇ": 90, "ਸੌ": 100,
    # Telugu
    "ఒకటి": 1, "రెండు": 2, "మూడు": 3, "నాలుగు": 4, "ఐదు": 5, "ఆరు": 6, "ఏడు": 7, "ఎనిమిది": 8,
    "తొమ్మిది": 9, "పది": 10, "పన్నెండు": 12, "పదిహేను": 15, "ఇరవై": 20, "ముప్పై": 30, "నలభై": 40,
    "యాభై": 50, "అరవై": 60, "డెబ్బై": 70, "ఎనభై": 80, "తొంభై": 90, "వంద": 100,
    # Kannada
    "ಒಂದು": 1, "ಎರಡು": 2, "ಮೂರು": 3, "ನಾಲ್ಕು": 4, "ಐದು": 5, "ಆರು": 6, "ಏಳು": 7, "ಎಂಟು": 8, "ಒಂಬತ್ತು": 9,
    "ಹತ್ತು": 10, "ಹನ್ನೆರಡು": 12, "ಹದಿನೈದು": 15, "ಇಪ್ಪತ್ತು": 20, "ಮೂವತ್ತು": 30, "ನಲವತ್ತು": 40,
    "ಐವತ್ತು": 50, "ಅರವತ್ತು": 60, "ಎಪ್ಪತ್ತು": 70, "ಎಂಬತ್ತು": 80, "ತೊಂಬತ್ತು": 90, "ನೂರು": 100,
    # Malayalam
    "ഒന്ന്": 1, "രണ്ട്": 2, "മൂന്ന്": 3, "നാല്": 4, "അഞ്ച്": 5, "ആറ്": 6, "ഏഴ്": 7, "എട്ട്": 8,
    "ഒൻപത്": 9, "പത്ത്": 10, "പന്ത്രണ്ട്": 12, "പതിനഞ്ച്": 15, "ഇരുപത്": 20, "മുപ്പത്": 30,
    "നാൽപത്": 40, "അൻപത്": 50, "അറുപത്": 60, "എഴുപത്": 70, "എൺപത്": 80, "തൊണ്ണൂറ്": 90, "നൂറ്": 100,
    # Odia
    "ଏକ": 1, "ଦୁଇ": 2, "ତିନି": 3, "ଚାରି": 4, "ପାଞ୍ଚ": 5, "ଛଅ": 6, "ସାତ": 7, "ଆଠ": 8, "ନଅ": 9, "ଦଶ": 10,
    "ବାର": 12, "ପନ୍ଦର": 15, "କୋଡ଼ିଏ": 20, "ତିରିଶ": 30, "ଚାଳିଶ": 40, "ପଚାଶ": 50, "ଷାଠିଏ": 60,
    "ସତୁରି": 70, "ଅଶୀ": 80, "ନବେ": 90, "ଶହେ": 100,
    # Bengali
    "এগারো": 11, "বারো": 12, "পনেরো": 15, "পঁচিশ": 25, "ষাট": 60, "সত্তর": 70, "আশি": 80, "নব্বই": 90,
    "একশো": 100,
    "এক": 1, "দুই": 2, "তিন": 3, "চার": 4, "পাঁচ": 5, "ছয়": 6, "সাত": 7, "আট": 8, "নয়": 9, "দশ": 10,
    "বিশ": 20, "ত্রিশ": 30, "চল্লিশ": 40, "পঞ্চাশ": 50, "একশ": 100, "দেড়": 1.5, "আড়াই": 2.5,
    # English
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "twenty-five": 25, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "hundred": 100, "half": 0.5,
}
# साढ़े X = X + ½, सवा X = X + ¼, पौने X = X − ¼
_FRACTIONS = {"साढ़े": 0.5, "साढे": 0.5, "सवा": 0.25, "पौने": -0.25}
# Nukta letters come precomposed (ज़, U+095B) or as two code points (ज + ़); NFC makes both the
# second, in the text and in these words alike.
_MULTIPLIERS = {unicodedata.normalize("NFC", k): v for k, v in _MULTIPLIERS.items()}
_WORDS = {unicodedata.normalize("NFC", k): v for k, v in _WORDS.items()}
_FRACTIONS = {unicodedata.normalize("NFC", k): v for k, v in _FRACTIONS.items()}

_MULTIPLIER = "|".join(sorted(map(re.escape, _MULTIPLIERS), key=len, reverse=True))
_AMOUNT = r"\d{1,3}(?:,\d{2,3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # Indian or Western grouping, or none
_NUMBER = re.compile(
    rf"(?:(?:₹|\brs\.?|\binr)\s*)?(?<![\w.,])({_AMOUNT})(?:\s*(?:–|-|to|से)\s*(?:₹\s*)?({_AMOUNT}))?"
    rf"(?:\s*({_MULTIPLIER})(?![\w]))?",
    re.IGNORECASE)
_WORD = re.compile(
    r"(?<!\w)(?:(" + "|".join(map(re.escape, _FRACTIONS)) + r")\s+)?(" +
    "|".join(sorted(map(re.escape, _WORDS), key=len, reverse=True)) + rf")(?:\s+({_MULTIPLIER}))?(?![\w])",
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
_ENGLISH_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_ENGLISH_SCALES = {"thousand": 1e3, "lakh": 1e5, "lakhs": 1e5, "million": 1e6, "crore": 1e7, "crores": 1e7}
_ENGLISH_WORD = "|".join(sorted([*_ENGLISH_UNITS, "hundred", *_ENGLISH_SCALES], key=len, reverse=True))
_ENGLISH_RUN = re.compile(rf"\b(?:{_ENGLISH_WORD})(?:(?:\s+and\s+|[\s-]+)(?:{_ENGLISH_WORD}))+\b", re.IGNORECASE)


def _english_value(run: str) -> float | None:
    """'five hundred thousand' -> 500000; None where the words do not make one number."""
    total = current = 0.0
    seen_scale = False
    for word in re.split(r"[\s-]+", run.lower()):
        if word == "and":
            continue
        if word in _ENGLISH_UNITS:
            current += _ENGLISH_UNITS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        else:
            scale = _ENGLISH_SCALES[word]
            total += (current or 1) * scale
            current, seen_scale = 0.0, True
    value = total + current
    return value if (seen_scale or value >= 100) else None


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


def numbers(text: str, english_words: bool = True) -> list[tuple[str, float]]:
    """Every figure in ``text``: (as written, value). A range gives both ends.

    ``english_words`` False: an English number word counts only with its multiplier
    ("two lakh"); alone ("one helper", "at one point") it is not a figure in a summary.
    """
    text = _IGNORED.sub(" ", normalised(text))
    found: list[tuple[int, str, float]] = []  # (where, as written, value): sorted by where at the end
    taken: list[tuple[int, int]] = []

    def free(span: tuple[int, int]) -> bool:
        return not any(s < span[1] and span[0] < e for s, e in taken)

    for match in _SPACED.finditer(text):
        found.append((match.start(), match.group(0).strip(), float(re.sub(r"\D", "", match.group(1)))))
        taken.append(match.span())
    for match in _SHORT.finditer(text):
        if free(match.span()):
            scale = _SHORT_SCALE[match.group(2).lower()]
            found.append((match.start(), match.group(0).strip(), float(match.group(1)) * scale))
            taken.append(match.span())
    for match in _NUMBER.finditer(text):
        if not free(match.span()):
            continue
        scale = _MULTIPLIERS.get((match.group(3) or "").lower(), 1)
        for group in (1, 2):
            if match.group(group):
                value = float(match.group(group).replace(",", "")) * scale
                found.append((match.start(), match.group(0).strip(), value))
        taken.append(match.span())
    for match in _ENGLISH_RUN.finditer(text):
        run = _english_value(match.group(0))
        if run is not None and free(match.span()):
            found.append((match.start(), match.group(0).strip(), run))
            taken.append(match.span())
    for match in _WORD.finditer(text):
        if any(s <= match.start() < e for s, e in taken):
            continue
        if not english_words and match.group(2).isascii() and not match.group(3):
            continue
        value = _WORDS[match.group(2).lower()] + _FRACTIONS.get(match.group(1) or "", 0)
        scale = _MULTIPLIERS.get((match.group(3) or "").lower(), 1)
        found.append((match.start(), match.group(0).strip(), value * scale))
    return [(text_, value) for _, text_, value in sorted(found, key=lambda item: item[0])]


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
            day, month, year = int(match.group("day")), _MONTHS[match.group("month")[:3].lower()], \
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


_DAILY = re.compile(r"daily|per day|a day|every day|रोज़|रोज|रोजाना|रोज़ाना|प्रतिदिन|दिन का|दिन में", re.IGNORECASE)


_MONTHLY = re.compile(r"monthly|per month|a month|every month|महीने|महीना|मासिक|rent|किराया|किराए|salary|तनख्वाह|"
                      r"वेतन|emi|expenses?|खर्च|bills?|बिल|बिजली", re.IGNORECASE)


def _supported(transcript: str) -> dict[float, str | None]:
    """What the call supports, each value with how it follows from what was said (None: said).

    Every value said, and the sums of the amounts said together in one turn (a list of
    expenses); × 30 where that turn speaks of a day, × 12 where it speaks of a month.
    """
    support: dict[float, str | None] = {}

    def add(value: float, how: str | None) -> None:
        key = round(value, 6)
        if key not in support or (how is None and support[key] is not None):
            support[key] = how

    for line in normalised(transcript).splitlines():
        said = [value for _, value in numbers(line)]
        for value in said:
            add(value, None)
        amounts = list(dict.fromkeys(v for v in said if v >= 100))[:12]
        together = {sum(c): "sum of " + " + ".join(_rupees(v) for v in c)
                    for size in range(2, min(len(amounts), 4) + 1) for c in itertools.combinations(amounts, size)}
        for value, how in together.items():
            add(value, how)
        if _MONTHLY.search(line):
            for value in amounts:
                add(value * 12, f"{_rupees(value)} a month × 12")
            for value, how in together.items():
                add(value * 12, f"({how}) a month × 12")
        if _DAILY.search(line):
            for value in amounts:
                add(value * 30, f"{_rupees(value)} a day × 30")
    return support


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
