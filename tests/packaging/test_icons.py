"""The icon files exist at every size, match their SVG source, and make the window icon."""

from __future__ import annotations

from PIL import Image, ImageChops, ImageStat

from krea_desktop import APP_ID
from tests.packaging.conftest import ROOT, load_script

make_icons = load_script("make_icons")


def test_every_hicolor_size_is_a_square_png_of_that_size() -> None:
    for size in make_icons.ICON_SIZES:
        path = make_icons.hicolor_path(size)
        with Image.open(path) as image:
            assert image.format == "PNG", path
            assert image.size == (size, size), path
            assert image.mode == "RGBA", path
    assert {16, 512} <= set(make_icons.ICON_SIZES)


def test_committed_pngs_are_rendered_from_the_current_svg(qapp: object) -> None:
    for size in (16, 48, 256):
        rendered = make_icons.render(make_icons.SOURCE, size)
        with Image.open(make_icons.hicolor_path(size)) as committed:
            diff = ImageChops.difference(rendered, committed.convert("RGBA"))
        assert max(ImageStat.Stat(diff).mean) < 1.0, f"{size} px: run packaging/make_icons.py again"


def test_the_scalable_icon_is_the_svg_source() -> None:
    scalable = make_icons.scalable_path()
    assert scalable == make_icons.HICOLOR / "scalable" / "apps" / f"{APP_ID}.svg"
    assert scalable.read_bytes() == make_icons.SOURCE.read_bytes(), "run packaging/make_icons.py again"


def test_windows_and_macos_icons_hold_the_sizes_they_need() -> None:
    with Image.open(ROOT / "resources" / "icons" / f"{APP_ID}.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(ROOT / "resources" / "icons" / f"{APP_ID}.icns") as icns:
        assert icns.format == "ICNS"
        assert icns.size[0] >= 512


def test_the_application_icon_comes_in_every_size(qapp: object) -> None:
    from PySide6.QtCore import QSize

    from krea_desktop.ui.app import app_icon

    icon = app_icon()
    assert not icon.isNull()
    widths = [s.width() for s in icon.availableSizes()]
    assert widths == sorted(make_icons.ICON_SIZES)  # smallest first, or X11 shows no icon
    assert icon.pixmap(QSize(16, 16)).width() == 16


def test_configure_application_sets_the_app_id_and_icon(qapp: object) -> None:
    from PySide6.QtWidgets import QApplication

    from krea_desktop.ui.app import configure_application

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    configure_application(app)
    assert app.desktopFileName() == APP_ID
    assert not app.windowIcon().isNull()
