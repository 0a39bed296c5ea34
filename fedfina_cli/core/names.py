"""The applicant's name as they say it in the call, for the offline summariser (a model
fills the summary's `applicant_name` itself): "my name is …", "मेरा नाम … है", "माझे नाव
… आहे", "என் பெயர் …", "আমার নাম …" and their neighbours in India's other scripts.

Only the applicant's own turns are read (the agent says its own name), and only what
follows such a phrase: a name is never guessed from a capitalised word.
"""

from __future__ import annotations

import re
import unicodedata

# The phrase that introduces a name, and the words that end it (a verb, "and"): the name
# is the up to three words between, up to punctuation.
_INTRODUCTIONS: tuple[tuple[str, frozenset[str]], ...] = (
    # English (ASR capitalises names; "I am fine" is no name: see _looks_like_a_name)
    (r"\b(?:my name is|my name's|i am|i'm|this is|myself)\b", frozenset({"and", "from", "speaking", "here", "ji"})),
    # Hindi
    (r"मेरा नाम है|मेरा नाम|मैं", frozenset({"है", "हैं", "हे", "बोल", "और", "हूँ", "हूं", "जी"})),
    # Marathi
    (r"(?:माझे|माझं|माझा) नाव", frozenset({"आहे", "आहेत", "आणि", "हे"})),
    # Gujarati, Punjabi
    (r"મારું નામ|મારુ નામ", frozenset({"છે", "અને"})),
    (r"ਮੇਰਾ ਨਾਮ|ਮੇਰਾ ਨਾਂ", frozenset({"ਹੈ", "ਅਤੇ"})),
    # Bengali, Odia
    (r"আমার নাম", frozenset({"আর", "এবং", "আমি"})),
    (r"ମୋର ନାମ|ମୋ ନାମ", frozenset({"ଏବଂ", "ଅଟେ"})),
    # Tamil, Telugu, Kannada, Malayalam
    (r"என் பெயர்|என் பேரு|என்னுடைய பெயர்|என் பேர்", frozenset({"ஆகும்", "நான்", "மற்றும்"})),
    (r"నా పేరు", frozenset({"మరియు", "నేను"})),
    (r"ನನ್ನ ಹೆಸರು", frozenset({"ಮತ್ತು", "ನಾನು"})),
    (r"എന്റെ പേര്", frozenset({"ആണ്", "ആകുന്നു", "ഞാൻ"})),
)
_PATTERNS = tuple((re.compile(f"(?:{phrase})\\s+(.+)", re.IGNORECASE), stops) for phrase, stops in _INTRODUCTIONS)
_PUNCTUATION = re.compile(r"[।॥.,;:!?()\"'“”‘’]")


def spoken_name(user_turns: list[str]) -> str | None:
    """The first name the applicant gives for themselves, as said; None when they give none."""
    for text in user_turns:
        text = unicodedata.normalize("NFC", text)
        for pattern, stops in _PATTERNS:
            for match in pattern.finditer(text):
                if match.group(0).startswith("मैं") and "बोल" not in match.group(1):
                    continue  # "मैं X बोल रहा हूँ" names; "मैं दुकान चलाता हूँ" does not
                name = _name_after(match.group(1), stops)
                if name and _looks_like_a_name(name):
                    return name
    return None


def _name_after(rest: str, stops: frozenset[str]) -> str | None:
    words: list[str] = []
    for word in rest.split():
        cut = _PUNCTUATION.search(word)
        bare = word[:cut.start()] if cut else word
        if bare.lower() in stops or not bare:
            break
        words.append(bare)
        if cut or len(words) == 3:
            break
    return " ".join(words) or None


def _looks_like_a_name(name: str) -> bool:
    """Latin names are capitalised by the transcription ("I am fine" is not a name); other
    scripts have no case, and their phrases are specific enough."""
    latin = [w for w in name.split() if w.isascii()]
    return all(w[:1].isupper() and w.isalpha() for w in latin) and not any(ch.isdigit() for ch in name)
