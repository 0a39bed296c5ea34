"""Digits of India's scripts as ASCII digits (०१२, ০১২, ௧௨, ૧૨ …), one character for one.

Both the redaction and the figure check read numbers spoken in any script. The
translation keeps the text's length, so a match found in the translated text
has the same position in the original.
"""

from __future__ import annotations

import re
import unicodedata

# Devanagari (U+0966) through Malayalam (U+0D6F): every decimal digit of the Indic blocks.
_TABLE = {code: str(unicodedata.decimal(chr(code))) for code in range(0x0966, 0x0D70)
          if unicodedata.category(chr(code)) == "Nd"}


# Any of them: most text has none, and a search at C speed costs a tenth of the translation,
# which looks every character up in a dict.
_ANY = re.compile("[" + "".join(map(chr, _TABLE)) + "]")


def ascii_digits(text: str) -> str:
    return text.translate(_TABLE) if _ANY.search(text) else text
