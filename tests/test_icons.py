"""Every icon the UI asks for by name exists in resources/icons, renders, and is licensed."""
import ast
import re
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from app.ui.icons import ICONS, icon

UI = Path(__file__).resolve().parent.parent / "app" / "ui"


def icon_names_in(source: str) -> set[str]:
    """Icon names a UI module asks for: string literals given to `icon(...)` (both branches of a
    conditional, not the operands of a comparison), and literals given to a helper's `icon_name`
    parameter (e.g. main_window's `act(menu, text, slot, shortcut, icon_name)`)."""
    tree = ast.parse(source)
    helpers = {}  # function name -> position of its icon_name parameter
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = [a.arg for a in node.args.args]
            if "icon_name" in params:
                helpers[node.name] = params.index("icon_name") - (params[:1] == ["self"])
    names = set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        func = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
        if func == "icon":
            args = list(call.args)
        elif func in helpers:
            args = [a.value for a in call.keywords if a.arg == "icon_name"]
            args += call.args[helpers[func]:helpers[func] + 1]
        else:
            continue
        compared = {id(c) for a in args for n in ast.walk(a) if isinstance(n, ast.Compare)
                    for c in [n.left, *n.comparators]}
        names |= {n.value for a in args for n in ast.walk(a)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value and id(n) not in compared}
    return names


# also the plain pattern, in case a call is written in a way the AST walk does not see
USED = sorted(set().union(*(icon_names_in(p.read_text()) for p in UI.glob("*.py")))
              | {name for p in UI.glob("*.py")
                 for name in re.findall(r"""\bicon\(\s*["']([^"']+)["']\s*\)""", p.read_text())})
SHIPPED = sorted(p.stem for p in ICONS.glob("*.svg"))


def test_the_ui_uses_icons_and_they_are_licensed():
    assert "berth" in USED and len(USED) >= 5, f"the icon-name scan looks stale: {USED}"
    text = (ICONS / "LICENSE").read_text()
    assert "MIT" in text and "the Berth developers" in text


@pytest.mark.parametrize("name", sorted(set(USED) | set(SHIPPED)))
def test_icon_exists_and_renders(qapp, name):
    assert (ICONS / f"{name}.svg").is_file(), f"resources/icons/{name}.svg is missing"
    qicon = icon(name)
    assert not qicon.isNull()
    for size in (16, 24, 48):
        image = qicon.pixmap(size, size).toImage().convertToFormat(QImage.Format.Format_ARGB32)
        assert image.width() >= size and image.height() >= size
        opaque = sum(image.pixelColor(x, y).alpha() > 0 for x in range(image.width()) for y in range(image.height()))
        assert opaque > image.width() * image.height() // 50, f"{name} at {size}px is (nearly) blank"
