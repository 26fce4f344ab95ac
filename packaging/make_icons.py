"""Render the application icon from its SVG source into every file the platforms use.

    .venv/bin/python packaging/make_icons.py

Reads ``resources/icon.svg`` and writes
- ``krea_desktop/resources/icons/hicolor/scalable/apps/ai.krea.KreaDesktop.svg``, a copy of
  it, for the freedesktop icon theme;
- ``krea_desktop/resources/icons/hicolor/<N>x<N>/apps/ai.krea.KreaDesktop.png`` for N in
  ICON_SIZES: the window icon at run time and the freedesktop icon theme files;
- ``resources/icons/ai.krea.KreaDesktop.ico`` (Windows executable icon);
- ``resources/icons/ai.krea.KreaDesktop.icns`` (macOS application icon).

The outputs are committed, so building the bundle never needs this script; run it again
after editing the SVG. Rendering uses Qt's own SVG renderer (QtSvg ships with
PySide6-Essentials) and Pillow, so it needs nothing beyond the app's dependencies.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from krea_desktop import APP_ID  # noqa: E402

SOURCE = ROOT / "resources" / "icon.svg"
HICOLOR = ROOT / "krea_desktop" / "resources" / "icons" / "hicolor"
PLATFORM_ICONS = ROOT / "resources" / "icons"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)


def render(svg: Path, size: int) -> Image.Image:
    """The SVG drawn at ``size`` x ``size`` pixels, straight (not premultiplied) RGBA."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {svg} is not an SVG Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    return Image.frombytes("RGBA", (size, size), bytes(rgba.constBits()), "raw", "RGBA", rgba.bytesPerLine())


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def hicolor_path(size: int, root: Path = HICOLOR) -> Path:
    return root / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def scalable_path(root: Path = HICOLOR) -> Path:
    return root / "scalable" / "apps" / f"{APP_ID}.svg"


def main() -> int:
    scalable = scalable_path()
    scalable.parent.mkdir(parents=True, exist_ok=True)
    scalable.write_bytes(SOURCE.read_bytes())
    print(scalable.relative_to(ROOT))
    rendered = {size: render(SOURCE, size) for size in sorted({*ICON_SIZES, *ICO_SIZES, *ICNS_SIZES})}
    for size in ICON_SIZES:
        target = hicolor_path(size)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png_bytes(rendered[size]))
        print(target.relative_to(ROOT))
    PLATFORM_ICONS.mkdir(parents=True, exist_ok=True)
    ico = PLATFORM_ICONS / f"{APP_ID}.ico"
    largest = rendered[max(ICO_SIZES)]
    largest.save(ico, "ICO", sizes=[(s, s) for s in ICO_SIZES], append_images=[rendered[s] for s in ICO_SIZES])
    print(ico.relative_to(ROOT))
    icns = PLATFORM_ICONS / f"{APP_ID}.icns"
    rendered[max(ICNS_SIZES)].save(icns, "ICNS", append_images=[rendered[s] for s in ICNS_SIZES])
    print(icns.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
