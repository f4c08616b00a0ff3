"""berth.save_bundle: a model from the notebook as a complete bundle that passes `berth bundle check`
and answers like the model did. Everything that can fail (the model cannot be pickled, the example
is not rows, a metric is not a number) fails before a file is written; the bundle is built in a
temporary folder beside the target, checked, tried on its own example, and only then moved there."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from app.bundle import check_folder
from app.bundle.manifest import NAME_HINT, NAME_RE, VERSION_RE

from . import tomlwrite
from .errors import NotebookError
from .kinds import kind_of, save
from .requirements import distributions, pinned, python_range
from .rows import example_rows, plain
from .training import training_table

INPUT_NEEDS = {"frame": {"pandas"}, "array": {"numpy"}, "tensor": {"torch"}, "list": set()}
HEALTH_TIMEOUT_S = {"torch": 180, "sklearn": 60, "python": 60}  # importing torch takes seconds on a small box


@dataclass
class SavedBundle:
    """What save_bundle wrote: hand `path` to `berth deploy`."""

    path: Path
    name: str
    version: str
    kind: str
    format: str
    requirements: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def __str__(self) -> str:
        return (f"bundle {self.name} {self.version} ({self.kind}, saved with {self.format}) in {self.path}: "
                f"checked, and it answers its example as the model does; deploy it with "
                f"`berth deploy {self.path} --server SERVER`")

    __repr__ = __str__


def save_bundle(model, path, *, name, version, example, training=None, requirements=None,
                description=None) -> SavedBundle:
    """Write `model` as a bundle folder at `path` (new or empty).

    example: a few real input rows (X_test[:5], a DataFrame's head, a list of rows, a tensor);
    they become example.json, the shape every request is checked against. training: any of
    dataset (the data, or its path or URL), dataset_sha256, code_commit, params, metrics.
    requirements: lines for requirements.txt; by default the exact installed versions of what the
    model needs. Raises NotebookError, saying what to do, before writing anything."""
    target = _target(path)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise NotebookError(f"name {name!r} is not a bundle name ({NAME_HINT})")
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise NotebookError(f"version {version!r} is not a version: use numbers like 1.0.0 (or 1.0.0-rc1)")
    if requirements is not None and not (isinstance(requirements, (list, tuple))
                                         and all(isinstance(r, str) for r in requirements)):
        raise NotebookError("requirements must be a list of lines such as ['scikit-learn==1.5.2'], or None "
                            "for the versions installed here")
    kind = kind_of(model)
    rows, spec = example_rows(example, kind)
    table = training_table(model, kind, training)
    distributions.cache_clear()  # what is installed now: she may have run pip since the last save
    saved = save(model, kind, rows, spec)  # the slow part last: the cheap checks have passed
    if requirements is None:
        reqs = pinned(saved.modules, INPUT_NEEDS[spec["input"]])
    else:
        reqs = [r.strip() for r in requirements if r.strip()]
    description = description or f"{type(model).__name__} saved from a notebook with berth.save_bundle"
    served = {"kind": kind, "format": saved.format, "file": saved.file, "call": saved.call,
              "probabilities": saved.probabilities, **spec}
    files = {
        "berth.toml": _manifest(name, version, description, kind, table, bool(reqs)),
        "model.py": resources.files(__package__).joinpath("files", "model.py.txt").read_bytes(),
        "berth_model.json": json.dumps(served, indent=2) + "\n",
        "example.json": json.dumps({"instances": rows}) + "\n",
        saved.file: saved.data,
    }
    if reqs:
        files["requirements.txt"] = "".join(line + "\n" for line in reqs)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
    try:
        for rel, data in files.items():
            (staging / rel).write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        result = check_folder(staging)
        if not result.ok:
            raise NotebookError(f"the bundle would not pass `berth bundle check`: {result.errors[0]}"
                                + (f" (and {len(result.errors) - 1} more)" if len(result.errors) > 1 else ""))
        _try_example(staging, model, saved, rows)
        if target.exists():
            target.rmdir()  # empty: _target made sure
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SavedBundle(target, name, version, kind, saved.format, reqs, [str(p) for p in result.warnings])


def _target(path) -> Path:
    try:
        target = Path(path).expanduser().absolute()
    except TypeError:
        raise NotebookError(f"path must be a folder path, not a {type(path).__name__}") from None
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise NotebookError(f"{target}: not empty; save_bundle writes only into a new or empty folder "
                            "(give each version its own, e.g. bundles/churn-1.0.1)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # bundles/churn-1.0.0 in a fresh project
    except OSError as exc:
        raise NotebookError(f"cannot create {target.parent}: {exc.strerror}; choose a folder you can write") from None
    return target


def _manifest(name, version, description, kind, table, has_requirements) -> str:
    model = {"name": name, "version": version, "entrypoint": "model:Model", "description": description,
             "python": python_range(), "input_example": "example.json"}
    if has_requirements:
        model["requirements"] = "requirements.txt"
    parts = ["# Written by berth.save_bundle. Check it with `berth bundle check .`\n", tomlwrite.table("model", model)]
    if table:
        parts.append(tomlwrite.table("training", table))
    parts.append(tomlwrite.table("serve", {"runtime": "venv", "health_timeout_s": HEALTH_TIMEOUT_S[kind],
                                           "input_check": "on"}))
    return "\n".join(parts)


def _try_example(folder: Path, model, saved, rows) -> None:
    """The written model.py, loaded from the folder, answers the example as `model` does."""
    spec = importlib.util.spec_from_file_location(f"berth_saved_{uuid.uuid4().hex}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        served = module.Model()
        answer = served.predict({"instances": rows})
        x = served.rows(rows)
        if saved.kind == "torch":
            import torch

            with torch.no_grad():
                expected = plain(model(x))
        else:
            expected = plain(model.predict(x) if saved.call == "predict" else model(x))
    except NotebookError:
        raise
    except Exception as exc:
        raise NotebookError(f"the saved model does not answer its example: {type(exc).__name__}: {exc}; "
                            "nothing was written") from None
    if not _same(answer["predictions"], expected):
        raise NotebookError("the saved model answers its example differently from the model in memory "
                            f"({str(answer['predictions'])[:80]} vs {str(expected)[:80]}); nothing was written")


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b
