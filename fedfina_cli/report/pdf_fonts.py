"""An fpdf2 document whose fonts are parsed once per process and subset by HarfBuzz.

A bulk run renders hundreds of reports with the same three or four faces.
fpdf2 parses every face again for each document (10-25 ms each) and embeds it
through fontTools' general subsetter (20-40 ms each), which together cost more
than drawing the report. Here a face is parsed once per process and shared,
read-only, by every document; at output time ``_EmbeddingOutput`` writes the
same PDF font objects fpdf2 writes (Type0 / CIDFontType2 / Identity-H with a
ToUnicode map), with the font program cut by ``font_subset.FontProgram``.

This, and pdf_text's TextSetter, lean on fpdf2's internals (TTFFont's
attributes, OutputProducer's _add_fonts, page resources). ``internals_problem``
checks them once per process against the fpdf2 they were written for: should
an upgrade have changed them, fonts are added, embedded and drawn the ordinary
(slower) way, with a one-line notice, so an upgrade costs speed, never output.
"""

from __future__ import annotations

import sys
from copy import copy
from functools import cache
from pathlib import PurePath

from fpdf import FPDF

from fedfina_cli.report import FONTS
from fedfina_cli.report.font_subset import FontProgram

try:
    from fpdf.fonts import SubsetMap, TTFFont
    from fpdf.output import (
        CIDSystemInfo,
        OutputProducer,
        PDFContentStream,
        PDFFont,
        _build_cmap_blocks,
        _tt_font_widths,
    )
    from fpdf.syntax import Name, PDFArray
except ImportError:  # another fpdf2 layout: fpdf2's own fonts
    OutputProducer = None


TESTED_FPDF2 = "2.8.9"
# What the fast paths read or call, beyond fpdf2's documented API.
PDF_INTERNALS = ("_perform_page_break_if_need_be", "_out", "_resource_catalog", "_fallback_font_ids", "fonts",
                 "text_color", "font_size_pt", "k", "c_margin", "current_font", "page")
FONT_INTERNALS = ("i", "fontkey", "name", "desc", "cmap", "cw", "subset", "hbfont", "ttfont", "scale", "emphasis",
                  "ttffile", "biggest_size_pt", "missing_glyphs", "color_font", "is_cff", "is_compressed")
SUBSET_INTERNALS = ("pick", "get_glyph", "pick_glyph", "items")
STREAM_INTERNALS = ("_contents", "length", "filter", "content_stream")  # _deflate rewrites streams
OUTPUT_INTERNALS = ("_add_pages", "_add_fonts", "_add_pdf_obj")


@cache
def internals_problem() -> str | None:
    """None when fpdf2's internals are as this module and pdf_text expect; else what differs."""
    problem = _find_problem()
    if problem is not None:
        import fpdf

        sys.stderr.write(f"notice: fpdf2 {getattr(fpdf, '__version__', '?')} differs from {TESTED_FPDF2}, "
                         f"which fedfina's fast report path was written for ({problem}); reports are "
                         "drawn with fpdf2's own, slower path\n")
    return problem


def _find_problem() -> str | None:
    if OutputProducer is None:
        return "fpdf.output and fpdf.fonts are laid out differently"
    try:
        from fpdf.enums import PDFResourceType

        _ = PDFResourceType.FONT  # the text setter registers fonts on pages through it
        probe = FPDF()
        probe.add_page()
        font = _parsed_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
        subset = SubsetMap(font)
    except Exception as exc:  # noqa: BLE001 - any failure of the probe means: do not rely on the internals
        return f"{type(exc).__name__}: {exc}"
    for owner, names in ((probe, PDF_INTERNALS), (font, FONT_INTERNALS), (subset, SUBSET_INTERNALS),
                         (PDFContentStream(b""), STREAM_INTERNALS), (OutputProducer, OUTPUT_INTERNALS)):
        missing = [name for name in names if not hasattr(owner, name)]
        if missing:
            return f"{type(owner).__name__} has no {', '.join(missing)}"
    return None


class SharedFontsPDF(FPDF):
    def add_shared_font(self, family: str, style: str, path: str) -> None:
        """add_font, sharing the parsed face with every other document of this process."""
        if internals_problem() is not None:
            self.add_font(family, style, path)
            return
        font = copy(_parsed_font(family, style, path))
        # Per document: the glyphs used and the codes given to them. Everything
        # else (widths, glyph ids, cmap, the fontTools and HarfBuzz faces) is
        # only read, since _EmbeddingOutput never subsets the fontTools face.
        font.i = len(self.fonts) + 1
        font.subset = SubsetMap(font)
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        self.fonts[font.fontkey] = font

    def output(self, *args, **kwargs):
        if internals_problem() is None:
            kwargs.setdefault("output_producer_class", _EmbeddingOutput)
        return super().output(*args, **kwargs)


def load_shared_font(family: str, style: str, path: str) -> None:
    if internals_problem() is None:
        _parsed_font(family, style, path)
        _program(path)


@cache
def _parsed_font(family: str, style: str, path: str):
    template = FPDF()
    template.add_font(family, style, path)
    font = next(iter(template.fonts.values()))
    # Load now the tables shaping reads (TTFFont's constructor has read most of
    # them), so that threads sharing the face never race on a lazy load.
    for tag in ("cmap", "hmtx", "post", "head", "hhea", "maxp"):
        font.ttfont[tag]
    font.ttfont.getGlyphOrder()
    _ = font.hbfont  # HarfBuzz's face too, shared by every copy (shaping only reads it)
    return font


@cache
def _program(path: str) -> FontProgram:
    return FontProgram(path)


if OutputProducer is not None:

    class _EmbeddingOutput(OutputProducer):
        def _add_pages(self, *args, **kwargs):
            # The pages' content streams deflated by _deflate, not by fpdf2's zlib.
            compress, self.fpdf.compress = self.fpdf.compress, False
            try:
                pages = super()._add_pages(*args, **kwargs)
            finally:
                self.fpdf.compress = compress
            if compress:
                for page in pages:
                    _deflate(page.contents)
            return pages

        def _add_fonts(self, *args, **kwargs):
            fonts = sorted(self.fpdf.fonts.values(), key=lambda font: font.i)
            if all(_embeddable(font) for font in fonts) and not getattr(self.fpdf, "_compliance", None):
                return {font.i: self._embed(font) for font in fonts}
            from fontTools.ttLib import TTFont

            for font in fonts:  # fpdf2 subsets the fontTools face in place: never the shared one
                if isinstance(font, TTFFont):
                    font.ttfont = TTFont(font.ttffile, recalcTimestamp=False, lazy=True)
            return super()._add_fonts(*args, **kwargs)

        def _embed(self, font) -> PDFFont:
            used = [(glyph, code) for glyph, code in font.subset.items() if glyph is not None]
            program, new_ids = _program(str(font.ttffile)).subset(glyph.glyph_id for glyph, _ in used)
            fontname = f"{_subset_tag(font.i)}+{font.name}"

            composite = PDFFont(subtype="Type0", base_font=fontname, encoding="Identity-H")
            self._add_pdf_obj(composite, "fonts")
            cid_font = PDFFont(subtype="CIDFontType2", base_font=fontname,
                               d_w=font.desc.missing_width, w=_tt_font_widths(font))
            self._add_pdf_obj(cid_font, "fonts")
            composite.descendant_fonts = PDFArray([cid_font])

            # ToUnicode: the text each code stands for (search, copy and paste).
            to_unicode = _stream(_to_unicode_cmap(used).encode("latin-1"), self.fpdf.compress)
            self._add_pdf_obj(to_unicode, "fonts")
            composite.to_unicode = to_unicode

            system_info = CIDSystemInfo()
            self._add_pdf_obj(system_info, "fonts")
            cid_font.c_i_d_system_info = system_info

            descriptor = copy(font.desc)  # the shared face's descriptor stays untouched
            descriptor.font_name = Name(fontname)
            self._add_pdf_obj(descriptor, "fonts")
            cid_font.font_descriptor = descriptor

            # Only as long as the highest code used (fpdf2 writes all 65,536
            # entries, 128 KB to compress per font); no other code occurs.
            cid_to_gid = bytearray(2 * (max((code for _, code in used), default=0) + 1))
            for glyph, code in used:
                cid_to_gid[2 * code:2 * code + 2] = new_ids[glyph.glyph_id].to_bytes(2, "big")
            cid_map = _stream(bytes(cid_to_gid))
            self._add_pdf_obj(cid_map, "fonts")
            cid_font.c_i_d_to_g_i_d_map = cid_map

            font_file = _stream(program)
            font_file.length1 = len(program)  # as PDFFontStream: the program's own length
            self._add_pdf_obj(font_file, "fonts")
            descriptor.font_file2 = font_file
            # As fpdf2 does: these per-class caches would otherwise keep every document's subset alive.
            font.subset.pick.cache_clear()
            font.subset.get_glyph.cache_clear()
            return composite

    def _embeddable(font) -> bool:
        return (type(font) is TTFFont and not font.color_font and not font.is_cff
                and not font.is_compressed and isinstance(font.ttffile, (str, PurePath)))


def _stream(contents: bytes, compress: bool = True) -> PDFContentStream:
    stream = PDFContentStream(contents)
    if compress:
        _deflate(stream)
    return stream


def _deflate(stream: PDFContentStream) -> None:
    """Deflate an uncompressed stream with ISA-L at level 3: a report's fonts and pages in a
    fifth of the time zlib takes at its default level (0.3 against 1.5 ms), the PDF 4 % larger.
    Any reader inflates it: FlateDecode is deflate whoever wrote it."""
    from isal import isal_zlib

    stream._contents = isal_zlib.compress(stream.content_stream(), 3)
    stream.filter = Name("FlateDecode")
    stream.length = len(stream._contents)


def _subset_tag(number: int) -> str:
    """Six capital letters, different for each font of a document (ISO 32000, 9.6.4)."""
    letters = []
    for _ in range(6):
        number, digit = divmod(number, 26)
        letters.append(chr(ord("A") + digit))
    return "".join(reversed(letters))


def _to_unicode_cmap(used) -> str:
    # A glyph that stands for no text of its own (the second glyph of a shaped
    # cluster, whose characters the first one carries) maps to an empty
    # string: without an entry, readers emit its raw code as a control character.
    # Each glyph's text is encoded at once, not character by character (0.3 ms a report).
    entries = [f"<{code:04X}> <{''.join(map(chr, glyph.unicode)).encode('utf-16-be').hex().upper()}>\n"
               for glyph, code in used if isinstance(glyph.unicode, tuple)]
    return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo\n<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            f"{_build_cmap_blocks(entries, 'bfchar')}"
            "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend")
