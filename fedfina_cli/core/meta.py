"""The package's own facts, for every floor: its version, and where its data files are."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

# Data files shipped inside the package (default prompt, demo sample, fonts).
PACKAGE_DIR = Path(__file__).resolve().parent.parent
