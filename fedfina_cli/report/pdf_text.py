"""Text wrapped, measured and drawn straight into an fpdf2 page.

Fonts are chosen per character, and HarfBuzz shapes complex scripts.

fpdf2's cell() runs a general pipeline for every line it draws (markdown and
fallback-font parsing character by character, the Unicode bidi algorithm,
fragment copies, and a text matrix per glyph when shaping), which cost most of
a report's drawing time. Our reports need much less: left-aligned, left-to-right
single lines (Hindi, English, ₹, symbols) in one colour. TextSetter does exactly
that and writes the PDF operators itself:

- each character is drawn with the current font, or else the first fallback
  font that has it; combining marks, joiners and spaces stay in the run they
  follow, so a Devanagari syllable is never split between fonts;
- a run containing a complex script is shaped by HarfBuzz (conjuncts, reph,
  matras, nukta) and placed with TJ adjustments and text rise; other runs map
  characters to glyphs one to one, as fpdf2 does without shaping;
- glyphs are registered in the font's subset with the text they stand for,
  so the PDF's ToUnicode map keeps the text searchable and copyable.

Wrapping is ours too: fpdf2's multi_cell re-shapes the growing line at every
character, which costs time quadratic in the line's length. Here each word is
measured once (cached per font and size).

A line containing right-to-left text (Arabic, Hebrew: an Urdu name, say) goes
through fpdf2's cell() with shaping on, whose bidi algorithm orders it.
"""

from __future__ import annotations

import re
import unicodedata
from contextlib import contextmanager

# Characters that stay in the font of the run they follow, when it has them.
_STICKY_CATEGORIES = {"Mn", "Mc", "Me", "Cf", "Zs"}

# Complex scripts need HarfBuzz: Hebrew, Arabic, Syriac..., Devanagari and the
# other Indic scripts, Thai, Tibetan, Myanmar...; and the right-to-left ones.
_COMPLEX_SCRIPT = re.compile("[\u0590-\u1CFF\uA800-\uABFF\uFB1D-\uFEFF]")
_RIGHT_TO_LEFT = re.compile("[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]")


def has_rtl(text: str) -> bool:
    return _RIGHT_TO_LEFT.search(text) is not None


def needs_shaping(text: str) -> bool:
    return _COMPLEX_SCRIPT.search(text) is not None


# Widths measured, shared by every document of this process. A width depends only on
# the faces and the size; the agent asks its questions in much the same words on
# every call, and the labels are the same on every report, so most of a report's
# words were measured for an earlier one. Emptied when full: a long `serve` stays bounded.
_WIDTHS: dict[tuple, float] = {}
_KEPT = 50_000  # entries in each of the caches kept for later documents (widths, shaping)

# The fill-colour operator of each text colour ("0.2 0.2 0.2 rg"), by fpdf2's colour object.
_FILL_OPERATORS: dict[object, str] = {}

PLACEHOLDER = "\ufffd"  # drawn for a character no face has: visible, never a silent gap


class TextSetter:
    def __init__(self, pdf):
        from fedfina_cli.report.pdf_fonts import internals_problem

        self.pdf = pdf
        self._face_keys: dict[int, tuple] = {}  # by id(main font): see _faces
        self._widths: dict[tuple, float] = {}  # when not fast (see width)
        self._glyphs: dict[int, _Glyphs] = {}  # by id(font): this document's fonts
        self._choices: dict[int, _Choices] = {}  # by id(main font)
        self.missing: set[str] = set()  # characters drawn as PLACEHOLDER
        # fpdf2's own path (cell(), get_string_width()) when its internals are not as expected.
        self.fast = internals_problem() is None

    def width(self, text: str) -> float:
        """Width of ``text`` in the current font and size, in document units."""
        pdf = self.pdf
        key = (self._faces(), pdf.font_size_pt, text)
        # fpdf2's internals unknown (not fast): this document's widths only, kept with it.
        kept = _WIDTHS if self.fast else self._widths
        width = kept.get(key)
        if width is None:
            measured = self._covered(text) if not self.fast else text
            if has_rtl(measured) or not self.fast:
                with self._fpdf2_shaping():
                    width = pdf.get_string_width(measured)
            else:
                size = pdf.font_size_pt
                width = sum(_advance(font, chunk, size) for font, chunk in self._font_runs(measured)) / pdf.k
            if len(kept) >= _KEPT:
                kept.clear()
            kept[key] = width
        return width

    def _faces(self) -> tuple:
        """What a width in the current font depends on: its face and the fallbacks after it."""
        pdf = self.pdf
        main = pdf.current_font
        faces = self._face_keys.get(id(main))
        if faces is None:
            if self.fast:
                fonts = [main, *(pdf.fonts[key] for key in pdf._fallback_font_ids)]
                faces = tuple((font.fontkey, str(font.ttffile), pdf.k) for font in fonts)
            else:
                faces = (main.fontkey,)
            self._face_keys[id(main)] = faces
        return faces

    def line(self, width: float, height: float, text: str, *, new_x: str = "RIGHT",
             new_y: str = "TOP") -> None:
        """Like pdf.cell(width, height, text) for left-aligned text without border or fill.

        Breaks the page first when the line does not fit, keeping x (as cell() does).
        ``new_x``/``new_y``: where the next line starts (RIGHT/LEFT/LMARGIN, TOP/NEXT).
        """
        from fpdf.enums import (
            PDFResourceType,  # fpdf2 is loaded: pdf is one of its documents
        )

        pdf = self.pdf
        if has_rtl(text) or not self.fast:
            with self._fpdf2_shaping():
                pdf.cell(width, height, text if self.fast else self._covered(text), new_x=new_x, new_y=new_y)
            return
        pdf._perform_page_break_if_need_be(height)
        runs = self._runs(text) if text else []
        if runs:
            k = pdf.k
            x = (pdf.x + pdf.c_margin) * k
            baseline = (pdf.h - pdf.y - 0.5 * height - 0.3 * pdf.font_size) * k
            colour = _FILL_OPERATORS.get(pdf.text_color)
            if colour is None:  # a handful of colours: each line formatted three floats again
                colour = _FILL_OPERATORS[pdf.text_color] = pdf.text_color.serialize().lower()
            operators = [f"q {colour} BT {x:.2f} {baseline:.2f} Td"]
            for font, codes, _ in runs:
                pdf._resource_catalog.add(PDFResourceType.FONT, font.i, pdf.page)
                font.biggest_size_pt = max(font.biggest_size_pt, pdf.font_size_pt)
                operators.append(f"/F{font.i} {pdf.font_size_pt:.2f} Tf {codes}")
            operators.append("ET Q")
            pdf._out(" ".join(operators))
        if new_x == "RIGHT":
            pdf.x += width
        elif new_x == "LMARGIN":
            pdf.x = pdf.l_margin
        if new_y == "NEXT":
            pdf.y += height

    def right(self, height: float, text: str, **moves: str) -> None:
        """Like pdf.cell(0, height, text, align="R"): ``text`` ending at the right margin."""
        pdf = self.pdf
        end = pdf.w - pdf.r_margin
        pdf.x = end - self.width(text) - 2 * pdf.c_margin
        self.line(end - pdf.x, height, text, **moves)

    def lines(self, text: str, width: float) -> list[str]:
        """Greedy word wrap; a word wider than the line is split between characters."""
        result = []
        space = self.width(" ")
        for paragraph in text.split("\n"):
            current, used = "", 0.0
            for word in paragraph.split():
                w = self.width(word)
                if current and used + space + w <= width:
                    current, used = f"{current} {word}", used + space + w
                    continue
                if current:
                    result.append(current)
                pieces = self._split_word(word, width) if w > width else [word]
                result.extend(pieces[:-1])
                current, used = pieces[-1], self.width(pieces[-1])
            result.append(current)
        return result

    def write(self, text: str, width: float, line_height: float) -> None:
        """Lines from the current x, flowing onto new pages with the same indent."""
        x = self.pdf.get_x()
        for line in self.lines(text, width):
            self.pdf.set_x(x)
            self.line(width, line_height, line, new_x="LEFT", new_y="NEXT")
        self.pdf.set_x(self.pdf.l_margin)

    def _split_word(self, word: str, width: float) -> list[str]:
        pieces, current = [], ""
        for char in word:
            # Never split before a combining mark or after a virama: that would
            # tear a Devanagari syllable apart.
            joined = current and (unicodedata.category(char).startswith("M") or current[-1] == "\u094d")
            if current and not joined and self.width(current + char) > width:
                pieces.append(current)
                current = char
            else:
                current += char
        return [*pieces, current]

    def _covered(self, text: str) -> str:
        """``text`` with characters no registered face has replaced by PLACEHOLDER (fpdf2's path)."""
        faces = [getattr(font, "cmap", None) for font in self.pdf.fonts.values()]
        if not faces or any(face is None for face in faces):
            return text  # cannot tell; fpdf2 itself reports missing glyphs
        chars = []
        for char in text:
            if not any(ord(char) in face for face in faces) and unicodedata.category(char) not in ("Cf", "Cc"):
                self.missing.add(char)
                char = PLACEHOLDER
            chars.append(char)
        return "".join(chars)

    @contextmanager
    def _fpdf2_shaping(self):
        # local_context(): fpdf2 (2.8) leaves its font state wrong after a line
        # that starts in a fallback font (the next line's ₹ came out invisible).
        with self.pdf.local_context():
            self.pdf.set_text_shaping(True)
            try:
                yield
            finally:
                self.pdf.set_text_shaping(False)

    def _runs(self, text: str) -> list[tuple[object, str, float]]:
        """(font, PDF text operators, width) for each same-font run of ``text``."""
        pdf = self.pdf
        size = pdf.font_size_pt
        runs = []
        for font, chunk in self._font_runs(text):
            glyphs = self._glyphs.get(id(font))
            if glyphs is None:
                glyphs = self._glyphs[id(font)] = _Glyphs(font)
            if needs_shaping(chunk):
                operators, advance = glyphs.shaped(chunk, size)
            else:
                operators, advance = glyphs.unshaped(chunk, size)
            runs.append((font, operators, advance / pdf.k))
        return runs

    def _font_runs(self, text: str) -> list[tuple[object, str]]:
        pdf = self.pdf
        main = pdf.current_font
        if _uncovered(main).search(text) is None:  # the common case, checked at C speed
            return [(main, text)]
        choices = self._choices.get(id(main))
        if choices is None:
            choices = self._choices[id(main)] = _Choices(main, [pdf.fonts[key] for key in pdf._fallback_font_ids])
        runs: list[tuple[object, list[str]]] = []
        current = None
        for char in text:
            font, sticky = choices[char]
            if sticky and current is not None and current is not main and ord(char) in current.cmap:
                font = current  # a mark, joiner or space stays in the fallback run it follows
            elif font is None:
                if unicodedata.category(char) in ("Cf", "Cc"):
                    font = current or main  # a format or control character: nothing to draw
                else:
                    self.missing.add(char)
                    char, font = PLACEHOLDER, main
            if font is current:
                runs[-1][1].append(char)
            else:
                runs.append((font, [char]))
                current = font
        return [(font, "".join(chars)) for font, chars in runs]


class _Choices(dict):
    """For each character met: the font that draws it after ``main`` (``main`` when it has it,
    else the first fallback that does, or None), and whether it may stay in the run before it
    (a mark, joiner or space). Worked out once per character, not per character of every line:
    a Hindi transcript's words and lines all take this path."""

    def __init__(self, main, fallbacks: list):
        super().__init__()
        self.main = main
        # As fpdf2 (exact_match=False): a fallback of the same emphasis first, then any.
        self.fallbacks = sorted(fallbacks, key=lambda font: font.emphasis != main.emphasis)

    def __missing__(self, char: str) -> tuple[object, bool]:
        code = ord(char)
        font = self.main if code in self.main.cmap else next((f for f in self.fallbacks if code in f.cmap), None)
        self[char] = choice = (font, unicodedata.category(char) in _STICKY_CATEGORIES)
        return choice


def _uncovered(font) -> re.Pattern:
    """A pattern matching any character ``font`` has no glyph for."""
    key = (str(font.ttffile), font.fontkey)
    if key not in _UNCOVERED:
        codes = sorted(code for code in font.cmap if code > 0)
        ranges, start = [], None
        for previous, code in zip([None, *codes], codes):
            if previous is None or code != previous + 1:
                if start is not None:
                    ranges.append((start, previous))
                start = code
        if start is not None:
            ranges.append((start, codes[-1]))
        covered = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
        _UNCOVERED[key] = re.compile(f"[^{covered}]" if covered else ".", re.DOTALL)
    return _UNCOVERED[key]


_UNCOVERED: dict[tuple[str, str], re.Pattern] = {}


def _advance(font, text: str, size: float) -> float:
    """How far ``text`` in ``font`` moves the pen, in points (what _Glyphs draws)."""
    if needs_shaping(text):
        units = sum(glyph[4] for glyph in _shape(font, text) if glyph[0])
        return units * font.scale * size / 1000
    cmap, widths = font.cmap, font.cw
    return sum(widths[ord(char)] for char in text if ord(char) in cmap) * size / 1000


def _shape(font, text: str) -> tuple[tuple[int, int, int, int, int], ...]:
    """HarfBuzz's glyphs for ``text``: (glyph id, cluster, x offset, y offset, x advance) each.

    Kept for every document of this process, as widths are: the same words in
    the same face shape the same way.
    """
    key = (str(font.ttffile), text)
    glyphs = _SHAPED.get(key)
    if glyphs is None:
        import uharfbuzz as hb

        buffer = hb.Buffer()
        buffer.cluster_level = 1  # as fpdf2: a cluster's characters stay together
        buffer.add_str(text)
        buffer.guess_segment_properties()
        hb.shape(font.hbfont, buffer, {})
        glyphs = tuple((info.codepoint, info.cluster, position.x_offset, position.y_offset, position.x_advance)
                       for info, position in zip(buffer.glyph_infos, buffer.glyph_positions))
        if len(_SHAPED) >= _KEPT:
            _SHAPED.clear()
        _SHAPED[key] = glyphs
    return glyphs


_SHAPED: dict[tuple[str, str], tuple[tuple[int, int, int, int, int], ...]] = {}


class _Glyphs:
    """One font's glyphs in one document, drawn as PDF text operators: each character's (or
    shaped glyph's) code in the font's subset and its width, looked up once. (fpdf2's subset
    registers a glyph through a cached method with keyword arguments and a dataclass's hash:
    a few microseconds for every character of every line.)"""

    def __init__(self, font):
        self.font = font
        self._hex: dict[str, str] = {}  # character -> its code, 4 hex digits ("" when the font lacks it)
        self._width: dict[str, int] = {}  # character -> its width, thousandths of an em (0 when lacking)
        self._shaped: dict[tuple[int, str], tuple[int | None, int]] = {}  # (glyph, its text) -> (code, width)

    def unshaped(self, text: str, size: float) -> tuple[str, float]:
        """A run drawn one glyph per character (no shaping): its Tj operator and advance (points)."""
        hexes, widths, font = self._hex, self._width, self.font
        for char in dict.fromkeys(text):  # first-seen order: the subset numbers glyphs as before
            if char not in hexes:
                code = font.subset.pick(ord(char))
                hexes[char] = "" if code is None else f"{code:04X}"
                widths[char] = 0 if code is None else font.cw[ord(char)]
        return (f"<{''.join(map(hexes.__getitem__, text))}> Tj",
                sum(map(widths.__getitem__, text)) * size / 1000)

    def glyph(self, glyph_id: int, chars: str) -> tuple[int | None, int]:
        """A shaped glyph's code in the subset (registered with the text it stands for) and width."""
        key = (glyph_id, chars)
        if key not in self._shaped:
            font = self.font
            name = font.ttfont.getGlyphOrder()[glyph_id]
            width = round(font.scale * font.ttfont["hmtx"].metrics[name][0])
            glyph = font.subset.get_glyph(glyph=glyph_id, unicode=tuple(ord(c) for c in chars),
                                          glyph_name=name, glyph_width=width)
            self._shaped[key] = (font.subset.pick_glyph(glyph), width)
        return self._shaped[key]

    def shaped(self, text: str, size: float) -> tuple[str, float]:
        """TJ operators for HarfBuzz's glyphs, and their advance (points).

        The PDF advances each glyph by its width in the font's W array; TJ numbers
        correct that to HarfBuzz's advance, and move marks by their offsets (text
        rise for vertical ones). Units: thousandths of the font size.
        """
        glyphs = _shape(self.font, text)
        clusters = sorted({cluster for _, cluster, _, _, _ in glyphs})
        # The characters each cluster stands for (its first glyph carries them).
        texts = {start: text[start:end] for start, end in zip(clusters, [*clusters[1:], len(text)])}

        scale = self.font.scale  # font units -> thousandths of an em
        operators, pending, rise, advance = [], [], 0.0, 0.0

        def flush() -> None:
            if pending:
                operators.append(f"[{' '.join(pending)}] TJ")
                pending.clear()

        for glyph_id, cluster, x_offset, y_offset, x_advance in glyphs:
            code, glyph_width = self.glyph(glyph_id, texts.pop(cluster, ""))
            if code is None:
                continue
            x_offset, y_offset = scale * x_offset, scale * y_offset
            if y_offset != rise:
                flush()
                operators.append(f"{y_offset * size / 1000:.2f} Ts")
                rise = y_offset
            if x_offset:
                pending.append(f"{-x_offset:.1f}")
            pending.append(f"<{code:04X}>")
            correction = glyph_width - scale * x_advance + x_offset
            if abs(correction) >= 0.05:
                pending.append(f"{correction:.1f}")
            advance += scale * x_advance
        flush()
        if rise:
            operators.append("0 Ts")
        return " ".join(operators), advance * size / 1000
