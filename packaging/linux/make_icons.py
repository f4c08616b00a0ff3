"""Render resources/icons/berth.svg into the freedesktop hicolor sizes (icons/hicolor/NxN/apps/
org.berth.Berth.png, 16..512) with Qt's SVG renderer, plus the SVG itself as the scalable one.
Run again when the icon changes: `python packaging/linux/make_icons.py` (the PNGs are committed so a
build needs no renderer)."""
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SVG = HERE.parents[1] / "resources" / "icons" / "berth.svg"
APP_ID = "org.berth.Berth"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def render(out: Path = HERE / "icons") -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # QImage and QSvgRenderer need one
    renderer = QSvgRenderer(str(SVG))
    written = []
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = out / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target), "PNG"):
            raise SystemExit(f"could not write {target}")
        written.append(target)
    scalable = out / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SVG, scalable)
    app.processEvents()
    return written + [scalable]


if __name__ == "__main__":
    for path in render():
        print(path.relative_to(HERE))
