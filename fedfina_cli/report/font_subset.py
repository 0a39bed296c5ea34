"""Font programs for embedding in PDF reports, cut by HarfBuzz's subsetter.

A face is read and prepared once per process (``hb.subset_preprocess``); each
document then asks for the glyphs it drew. Shaping has happened by then, so
the layout tables (GSUB, GPOS, GDEF) and the cmap are dropped: a PDF's
CIDFontType2 reaches glyphs through its CIDToGIDMap. What stays is what ISO
32000 (9.9) needs plus the small descriptive tables.

HarfBuzz's subsetter is C, fuzzed, and used by browsers for web fonts; it
pulls in composite glyphs' components and renumbers them itself.
"""

from __future__ import annotations

from pathlib import Path

KEPT_TABLES = frozenset(("OS/2", "cvt ", "fpgm", "gasp", "glyf", "head", "hhea", "hmtx", "loca", "maxp",
                         "name", "post", "prep"))


class FontFormatError(ValueError):
    """The file is not a TrueType font with glyf outlines."""


def _tag(name: str) -> int:
    return int.from_bytes(name.encode("latin-1"), "big")


class FontProgram:
    def __init__(self, path: Path | str):
        import uharfbuzz as hb

        face = hb.Face(hb.Blob.from_file_path(str(path)))
        tags = face.table_tags
        if "glyf" not in tags or not face.glyph_count:
            raise FontFormatError(f"{path}: not a TrueType font with glyf outlines")
        self.path = path
        self._drop = [_tag(name) for name in tags if name not in KEPT_TABLES]
        # Prepared once, shared read-only by every document (and thread) of the process.
        self._face = hb.subset_preprocess(face)

    def subset(self, gids) -> tuple[bytes, dict[int, int]]:
        """The font program with these glyphs (and .notdef, and their components), and old -> new ids."""
        import uharfbuzz as hb

        request = hb.SubsetInput()
        request.glyph_set.update({0, *gids})
        # Shaped already: no glyph it could reach is needed. .notdef keeps its outline (the box).
        request.flags = hb.SubsetFlags.NO_LAYOUT_CLOSURE | hb.SubsetFlags.NOTDEF_OUTLINE
        request.drop_table_tag_set.update(self._drop)
        plan = hb.SubsetPlan(self._face, request)
        program = plan.execute()
        if program is None:
            raise FontFormatError(f"{self.path}: HarfBuzz could not subset this font")
        return bytes(program.blob.data), dict(plan.old_to_new_glyph_mapping.items())
