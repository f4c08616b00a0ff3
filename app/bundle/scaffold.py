"""`berth bundle init`: a small bundle that passes check and really serves, to edit from there.

Templates: "python" (standard library only: serves as written), "sklearn" and "pytorch" (a
train.py writes the model file and pins requirements.txt; each example.json is its model's input)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

from .errors import BundleError
from .manifest import NAME_HINT, NAME_RE

TEMPLATES = {
    "python": ("berth.toml", "model.py", "example.json", "README.md"),
    "sklearn": ("berth.toml", "model.py", "train.py", "example.json", "requirements.txt", "README.md"),
    "pytorch": ("berth.toml", "model.py", "network.py", "train.py", "example.json", "requirements.txt", "README.md"),
}
FILES = TEMPLATES["python"]


def init_bundle(folder: Path, name: str, template: str = "python") -> list[Path]:
    """Write a working bundle into a new or empty folder; returns the files written."""
    folder = Path(folder)
    if template not in TEMPLATES:
        raise BundleError(f"no template {template!r}: choose one of {', '.join(TEMPLATES)}")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BundleError(f"{name!r} is not a valid bundle name ({NAME_HINT})")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BundleError(f"{folder}: not empty; init writes only into a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    templates = resources.files(__package__).joinpath("templates")
    if template != "python":
        templates = templates.joinpath(template)
    written = []
    for filename in TEMPLATES[template]:
        text = templates.joinpath(filename + ".tmpl").read_text(encoding="utf-8")
        target = folder / filename
        target.write_text(Template(text).substitute(name=name), encoding="utf-8")
        written.append(target)
    return written
