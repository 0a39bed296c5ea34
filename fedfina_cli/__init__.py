"""fedfina: post-process ElevenLabs voice-agent loan interviews."""

from pathlib import Path

__version__ = "0.1.0"

# Data files shipped inside the package (fonts, default prompt, demo sample).
PACKAGE_DIR = Path(__file__).resolve().parent
