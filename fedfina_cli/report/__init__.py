"""The PDF report: layout, text setting with HarfBuzz, font subsetting, the render pool."""

from pathlib import Path

FONTS = Path(__file__).resolve().parent / "fonts"  # the bundled faces and their licences
