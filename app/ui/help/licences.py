"""The software Berth brings with it and its licences, from the installed distributions' own metadata
(Berth's requirements, followed to the end): an About page that lists what is really installed."""
import importlib.metadata as metadata
import re

from packaging.requirements import InvalidRequirement, Requirement


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _licence(meta) -> str:
    expression = meta.get("License-Expression")
    if expression:
        return expression
    text = (meta.get("License") or "").strip().splitlines()
    if text and len(text[0]) <= 60:
        return text[0]  # a licence's full text pasted into the field is not a name
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return " / ".join(classifiers) or "see its files"


def bundled() -> list[tuple[str, str, str]]:
    """(name, version, licence) of every distribution Berth needs to run, sorted by name."""
    try:
        todo = [r for r in metadata.requires("berth") or []]
    except metadata.PackageNotFoundError:  # not installed as a distribution (a frozen build without metadata)
        todo = ["PySide6-Essentials", "pyqtgraph", "paramiko", "psutil", "sqlite-utils", "keyring", "numpy"]
    found: dict[str, tuple[str, str, str]] = {}
    seen: set[str] = set()
    while todo:
        try:
            req = Requirement(todo.pop())
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra (tests, bench) or another platform's need
        key = _key(req.name)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        found[key] = (dist.metadata["Name"] or req.name, dist.version, _licence(dist.metadata))
        todo += dist.requires or []
    return sorted(found.values(), key=lambda row: row[0].lower())
