"""`berth bundle check`: everything wrong with a bundle, found in one pass, each with a hint."""
from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from app.agent.requirements_rules import folder_reader, requirement_problems

from .archive import extract_archive
from .tempdirs import make_temp
from .content import FileEntry, list_files
from .entrypoint_check import check_entrypoint
from .errors import BundleError, UnsafeFile
from .manifest import LIMIT_HINT, MAX_MANIFEST_BYTES, Collector, Manifest, ManifestTooLarge, Problem, load_toml, parse_manifest, sort_problems
from .manifest_rules import entrypoint_problem
from .input_check import NO_EXAMPLE, check_input_schema
from .paths import normalise, relpath_problem

REQUIREMENTS_HINT = "list packages by name and version (numpy==1.26), or wheels shipped in the bundle"
ARCHIVE_HINT = "open only archives made by `berth bundle pack`; ask the author to pack the bundle folder again"


@dataclass
class CheckResult:
    manifest: Manifest | None  # kept when berth.toml itself is valid, even if other checks failed
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def check_path(path: Path) -> CheckResult:
    """Check a bundle folder or archive; an archive is unpacked safely into a temp dir first."""
    path = Path(path)
    if path.is_dir():
        return check_folder(path)
    if not path.exists():
        return CheckResult(None, [Problem("error", "no such file or folder", str(path))])
    tmp = make_temp("check")
    try:
        extract_archive(path, tmp / "bundle")
        return check_folder(tmp / "bundle")
    except BundleError as exc:
        return CheckResult(None, [archive_problem(path, exc)])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def archive_problem(path: Path, exc: BundleError) -> Problem:
    message = str(exc).removeprefix(f"{path.name}: ")
    return Problem("error", message, path.name, hint=ARCHIVE_HINT)


def check_folder(folder: Path) -> CheckResult:
    """Parse berth.toml and check what it points at: files, JSON example, entry point module."""
    return inspect_folder(folder)[0]


def inspect_folder(folder: Path) -> tuple[CheckResult, list[FileEntry]]:
    """check_folder, also returning the listed files so callers need not hash them twice."""
    folder = Path(folder)
    if not folder.is_dir():
        return CheckResult(None, [Problem("error", "not a folder", str(folder))]), []
    toml = folder / "berth.toml"
    if not toml.is_file():
        hint = "every bundle has a berth.toml at its root with a [model] table: name, version, entrypoint"
        return CheckResult(None, [Problem("error", "berth.toml not found at the bundle root", hint=hint)]), []
    problems: list[Problem] = []
    files: list[FileEntry] | None = None
    try:
        files = list_files(folder)
    except UnsafeFile as exc:
        problems.append(Problem("error", exc.reason, exc.path, hint=exc.hint))
    except BundleError as exc:
        problems.append(Problem("error", str(exc), str(folder)))
    if toml.stat().st_size > MAX_MANIFEST_BYTES:  # not even read: it could be any size
        problems.append(Problem("error", f"berth.toml is {toml.stat().st_size} bytes; the limit is "
                                         f"{MAX_MANIFEST_BYTES}", hint=LIMIT_HINT))
        return CheckResult(None, sort_problems(problems)), files or []
    try:
        text = toml.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.append(Problem("error", "not UTF-8 text", hint="save berth.toml as UTF-8"))
        return CheckResult(None, sort_problems(problems)), files or []
    manifest, found = parse_manifest(text)
    problems += found
    out = Collector("berth.toml", text)
    _check_references(folder, text, files, out)
    problems += out.problems
    return CheckResult(manifest, sort_problems(problems)), files or []


def _check_references(folder: Path, text: str, files: list[FileEntry] | None, out: Collector) -> None:
    try:
        data = load_toml(text)
    except (tomllib.TOMLDecodeError, ManifestTooLarge):
        return  # parse_manifest has reported it
    model = data.get("model")
    if not isinstance(model, dict):
        return
    listed = {f.path for f in files} if files is not None else None
    example = NO_EXAMPLE

    def exists(rel: str) -> bool:
        return rel in listed if listed is not None else (folder / rel).is_file()

    for key in ("requirements", "input_example"):
        rel = model.get(key)
        if not isinstance(rel, str) or relpath_problem(rel):
            continue
        if not exists(normalise(rel)):
            what = "is a folder, not a file" if (folder / rel).is_dir() else "not found in the bundle"
            out.error(f"model.{key}", f"{rel!r} {what}", "add the file, or fix the path (relative to the bundle root)")
        elif key == "input_example":
            example = _check_json(folder, rel, out)
        else:
            _check_requirements(folder, normalise(rel), exists, out)
    if "requirements" not in model and exists("requirements.txt"):
        out.warning("model", "requirements.txt is in the bundle but not declared, so it will not be installed",
                    'add requirements = "requirements.txt" under [model]')
    entrypoint = model.get("entrypoint")
    if isinstance(entrypoint, str) and not entrypoint_problem(entrypoint):
        check_entrypoint(folder, entrypoint, exists, out)
    serve = data.get("serve", {})
    if isinstance(serve, dict):
        check_input_schema(folder, serve, exists, example, out)


def _check_requirements(folder: Path, rel: str, exists, out: Collector) -> None:
    read_folder = folder_reader(str(folder))

    def read(path: str) -> str | None:
        return read_folder(path) if exists(path) else None

    for file, line, message in requirement_problems(read, rel):
        out.problems.append(Problem("error", message, file, "model.requirements", line, REQUIREMENTS_HINT))


def _check_json(folder: Path, rel: str, out: Collector) -> object:
    """The parsed example (NO_EXAMPLE when it cannot be read: the problem is reported)."""
    hint = "the input example is one JSON document, exactly what the model receives on POST /predict"
    try:
        return json.loads((folder / rel).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        out.problems.append(Problem("error", "not UTF-8 text", rel, "model.input_example", hint=hint))
    except json.JSONDecodeError as exc:
        out.problems.append(Problem("error", f"not valid JSON: {exc.msg} (column {exc.colno})", rel,
                                    "model.input_example", exc.lineno, hint))
    return NO_EXAMPLE
