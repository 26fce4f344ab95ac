"""The font pictures the app draws write their text in (contact sheets, the simulator's
images): DejaVu Sans, shipped with the app (Bitstream Vera licence, beside it). Pillow's
own font has ASCII only, and a prompt or a reference's name in French, German, Greek or
Russian came out in boxes."""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import ImageFont

FONT = Path(__file__).resolve().parent / "resources" / "fonts" / "DejaVuSans.ttf"


@functools.lru_cache(maxsize=16)
def text_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The app's font at ``size`` pixels; Pillow's own if that file is gone or Pillow has
    no FreeType."""
    try:
        return ImageFont.truetype(str(FONT), size)
    except (OSError, ImportError):
        pass
    try:
        return ImageFont.load_default(size)
    except (OSError, ValueError, TypeError):
        return ImageFont.load_default()
