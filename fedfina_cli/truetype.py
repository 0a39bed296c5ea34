"""A fast subsetter for TrueType (glyf) fonts, for embedding in PDF reports.

fontTools' general subsetter decompiles and recompiles every table of the font
for each document (GSUB, GPOS, post names, every glyph), 20-40 ms per face; a
bulk run embeds three faces in each of hundreds of reports. A PDF's CIDFontType2
needs far less: the outlines of the glyphs used, their metrics, and the hinting
programs. Glyph shaping has already happened by then, so the layout tables are
dropped. A font file is parsed once per process; each subset copies byte ranges.

Glyphs are renumbered densely (0 is .notdef), composite glyphs' components are
pulled in and their references rewritten. Per the OpenType spec, every table is
4-byte aligned and checksummed, and head.checkSumAdjustment is set.
"""

from __future__ import annotations

import struct
import sys
from array import array
from pathlib import Path

# What a PDF's embedded TrueType program needs (ISO 32000, 9.9) plus the small
# descriptive tables fontTools also keeps; cmap is unused with a CIDToGIDMap.
KEPT_TABLES = ("OS/2", "cvt ", "fpgm", "gasp", "glyf", "head", "hhea", "hmtx", "loca", "maxp",
               "name", "post", "prep")

# Composite glyph component flags (OpenType 'glyf').
ARG_1_AND_2_ARE_WORDS = 0x0001
WE_HAVE_A_SCALE = 0x0008
MORE_COMPONENTS = 0x0020
WE_HAVE_AN_X_AND_Y_SCALE = 0x0040
WE_HAVE_A_TWO_BY_TWO = 0x0080


class FontFormatError(ValueError):
    """The file is not a TrueType font with glyf outlines."""


class TrueTypeFont:
    def __init__(self, path: Path | str):
        self.data = Path(path).read_bytes()
        self.tables = _table_directory(self.data)
        if "glyf" not in self.tables or "loca" not in self.tables:
            raise FontFormatError(f"{path}: no glyf outlines (CFF fonts are not supported here)")
        self.num_glyphs = struct.unpack_from(">H", self.table("maxp"), 4)[0]
        long_loca = struct.unpack_from(">h", self.table("head"), 50)[0] == 1
        loca = array("I" if long_loca else "H", self.table("loca")[: (self.num_glyphs + 1) * (4 if long_loca else 2)])
        if sys.byteorder == "little":
            loca.byteswap()
        self.glyph_offsets = list(loca) if long_loca else [offset * 2 for offset in loca]
        self.num_hmetrics = struct.unpack_from(">H", self.table("hhea"), 34)[0]

    def table(self, tag: str) -> bytes:
        offset, length = self.tables[tag]
        return self.data[offset:offset + length]

    def glyph(self, gid: int) -> bytes:
        start, end = self.glyph_offsets[gid], self.glyph_offsets[gid + 1]
        offset = self.tables["glyf"][0]
        return self.data[offset + start:offset + end]

    def components(self, gid: int) -> list[int]:
        """The glyphs a composite glyph is built from (empty for a simple glyph)."""
        return [index for index, _ in _component_fields(self.glyph(gid))]

    def subset(self, gids) -> tuple[bytes, dict[int, int]]:
        """A font program holding ``gids`` (and their components); old glyph id -> new one."""
        wanted = {0} | {gid for gid in gids if 0 <= gid < self.num_glyphs}
        pending = list(wanted)
        while pending:
            for component in self.components(pending.pop()):
                if component not in wanted and component < self.num_glyphs:
                    wanted.add(component)
                    pending.append(component)
        order = sorted(wanted)
        new_ids = {old: new for new, old in enumerate(order)}

        glyphs, offsets, position = [], array("I"), 0
        for gid in order:
            glyph = _renumbered(self.glyph(gid), new_ids)
            glyph += b"\0" * (-len(glyph) % 4)
            offsets.append(position)
            glyphs.append(glyph)
            position += len(glyph)
        offsets.append(position)
        if sys.byteorder == "little":
            offsets.byteswap()

        tables = {tag: self.table(tag) for tag in KEPT_TABLES if tag in self.tables}
        tables["glyf"] = b"".join(glyphs)
        tables["loca"] = offsets.tobytes()
        tables["hmtx"] = b"".join(struct.pack(">Hh", *self._metrics(gid)) for gid in order)
        tables["hhea"] = _patched(tables["hhea"], 34, ">H", len(order))
        tables["maxp"] = _patched(tables["maxp"], 4, ">H", len(order))
        head = _patched(tables["head"], 50, ">h", 1)  # long loca offsets
        tables["head"] = _patched(head, 8, ">I", 0)  # checkSumAdjustment, set below
        if "name" in tables:
            tables["name"] = _basic_names(tables["name"])
        if "post" in tables:  # format 3: no glyph names (a PDF's CIDToGIDMap needs none)
            tables["post"] = struct.pack(">I", 0x00030000) + tables["post"][4:32]
        return _font_file(tables), new_ids

    def _metrics(self, gid: int) -> tuple[int, int]:
        hmtx = self.tables["hmtx"][0]
        if gid < self.num_hmetrics:
            return struct.unpack_from(">Hh", self.data, hmtx + 4 * gid)
        advance = struct.unpack_from(">H", self.data, hmtx + 4 * (self.num_hmetrics - 1))[0]
        lsb = struct.unpack_from(">h", self.data, hmtx + 4 * self.num_hmetrics + 2 * (gid - self.num_hmetrics))[0]
        return advance, lsb


def _table_directory(data: bytes) -> dict[str, tuple[int, int]]:
    if len(data) < 12 or data[:4] not in (b"\0\1\0\0", b"true"):
        raise FontFormatError("not a TrueType font file")
    count = struct.unpack_from(">H", data, 4)[0]
    tables = {}
    for n in range(count):
        tag, _checksum, offset, length = struct.unpack_from(">4sIII", data, 12 + 16 * n)
        if offset + length > len(data):
            raise FontFormatError(f"table {tag!r} runs past the end of the file")
        tables[tag.decode("latin-1")] = (offset, length)
    return tables


def _component_fields(glyph: bytes):
    """(glyph index, byte offset of that index) for each component of a composite glyph."""
    if len(glyph) < 10 or struct.unpack_from(">h", glyph, 0)[0] >= 0:
        return
    position = 10
    while True:
        flags, index = struct.unpack_from(">HH", glyph, position)
        yield index, position + 2
        position += 4 + (4 if flags & ARG_1_AND_2_ARE_WORDS else 2)
        if flags & WE_HAVE_A_SCALE:
            position += 2
        elif flags & WE_HAVE_AN_X_AND_Y_SCALE:
            position += 4
        elif flags & WE_HAVE_A_TWO_BY_TWO:
            position += 8
        if not flags & MORE_COMPONENTS:
            return


def _renumbered(glyph: bytes, new_ids: dict[int, int]) -> bytes:
    fields = list(_component_fields(glyph))
    if not fields:
        return glyph
    patched = bytearray(glyph)
    for index, position in fields:
        struct.pack_into(">H", patched, position, new_ids.get(index, 0))
    return bytes(patched)


def _basic_names(table: bytes) -> bytes:
    """The name table with only family, style, full name, version and the like (IDs 0-6).

    Fonts carry their whole licence text there (15 KB for DejaVu); fontTools'
    subsetter keeps the same IDs.
    """
    _format, count, storage = struct.unpack_from(">HHH", table, 0)
    records, strings, position = [], [], 0
    for n in range(count):
        platform, encoding, language, name_id, length, offset = struct.unpack_from(">6H", table, 6 + 12 * n)
        if name_id <= 6:
            text = table[storage + offset:storage + offset + length]
            records.append(struct.pack(">6H", platform, encoding, language, name_id, length, position))
            strings.append(text)
            position += length
    header = struct.pack(">HHH", 0, len(records), 6 + 12 * len(records))
    return header + b"".join(records) + b"".join(strings)


def _patched(table: bytes, offset: int, fmt: str, value: int) -> bytes:
    patched = bytearray(table)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


def _checksum(data: bytes) -> int:
    words = array("I", data + b"\0" * (-len(data) % 4))
    if sys.byteorder == "little":
        words.byteswap()
    return sum(words) & 0xFFFFFFFF


def _font_file(tables: dict[str, bytes]) -> bytes:
    tags = sorted(tables)
    count = len(tags)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(">IHHHH", 0x00010000, count, power * 16, power.bit_length() - 1,
                         count * 16 - power * 16)
    records, bodies, offset = [], [], 12 + 16 * count
    for tag in tags:
        body = tables[tag]
        records.append(struct.pack(">4sIII", tag.encode("latin-1"), _checksum(body), offset, len(body)))
        bodies.append(body + b"\0" * (-len(body) % 4))
        offset += len(bodies[-1])
    font = bytearray(header + b"".join(records) + b"".join(bodies))
    head_offset = struct.unpack_from(">I", font, 12 + 16 * tags.index("head") + 8)[0]
    struct.pack_into(">I", font, head_offset + 8, (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF)
    return bytes(font)
