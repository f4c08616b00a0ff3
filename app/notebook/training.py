"""berth.toml's [training] from what the notebook knows: the model's parameters, the data set and its
sha256, the git commit of the notebook's folder, the metrics she gives."""
from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys

from .errors import NotebookError
from .rows import plain

KEYS = ("dataset", "dataset_sha256", "code_commit", "params", "metrics")


def training_table(model, kind: str, training: dict | None) -> dict:
    given = dict(training or {})
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise NotebookError(f"training has unknown keys {unknown}: use {', '.join(KEYS)}")
    table: dict = {}
    dataset = given.get("dataset")
    if dataset is not None:
        table["dataset"], digest = _dataset(dataset)
        if digest:
            table["dataset_sha256"] = digest
    if given.get("dataset_sha256"):
        table["dataset_sha256"] = str(given["dataset_sha256"])
    commit = given.get("code_commit") or git_commit(os.getcwd())
    if commit:
        table["code_commit"] = str(commit)
    params = given.get("params")
    if params is None:
        params = default_params(model, kind)
    if params:
        table["params"] = {str(k): _param(v) for k, v in params.items()}
    if given.get("metrics"):
        table["metrics"] = _metrics(given["metrics"])
    return table


def default_params(model, kind: str) -> dict:
    """get_params() of a scikit-learn model (a Pipeline's steps' too), values TOML can hold."""
    if kind != "sklearn":
        return {}
    params = model.get_params(deep=True)
    return {k: v for k, v in sorted(params.items()) if isinstance(v, (str, int, float, bool)) or v is None}


def _param(value):
    value = plain(value)
    if value is None:
        return "None"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)):
        return value
    return repr(value) if not isinstance(value, (list, dict)) else json.dumps(value)


def _metrics(metrics) -> dict:
    if not isinstance(metrics, dict):
        raise NotebookError("training['metrics'] must be a dict of numbers, e.g. {'accuracy': 0.97}")
    out = {}
    for name, value in metrics.items():
        value = plain(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NotebookError(f"training['metrics'][{name!r}] is {value!r}: a metric is a number")
        out[str(name)] = value
    return out


def _dataset(dataset) -> tuple[str, str | None]:
    """(what berth.toml says the data set is, its sha256 or None)."""
    if isinstance(dataset, (str, os.PathLike)):
        path = os.fspath(dataset)
        if os.path.isfile(path):
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            return path, h.hexdigest()
        if "://" in path:
            return path, None  # s3://, https://: named, not read
        raise NotebookError(f"training['dataset'] {path!r}: no such file; give the data (a DataFrame, an "
                            "array), a path to its file, or a URL")
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(dataset, pandas.DataFrame):
        text = dataset.to_csv(index=False).encode("utf-8")
        rows, cols = dataset.shape
        return f"DataFrame of {rows} rows x {cols} columns ({', '.join(map(str, dataset.columns[:8]))})", \
            hashlib.sha256(text).hexdigest()
    if hasattr(dataset, "tobytes") and hasattr(dataset, "shape"):
        head = f"{getattr(dataset, 'dtype', '')} {tuple(dataset.shape)}".encode()
        body = dataset.detach().cpu().numpy() if hasattr(dataset, "detach") else dataset
        import numpy

        return f"array {tuple(dataset.shape)} of {dataset.dtype}", \
            hashlib.sha256(head + numpy.ascontiguousarray(body).tobytes()).hexdigest()
    if isinstance(dataset, (list, tuple)):
        text = json.dumps(plain(list(dataset)), sort_keys=True).encode("utf-8")
        return f"list of {len(dataset)} rows", hashlib.sha256(text).hexdigest()
    raise NotebookError(f"training['dataset'] is a {type(dataset).__name__}: give a DataFrame, an array, a "
                        "list, a path to the data file, or a URL")


def git_commit(folder: str) -> str | None:
    """HEAD of the repository holding `folder` (+dirty when files differ from it), or None."""
    try:
        head = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = head.stdout.strip()
    return commit + ("+dirty" if status.stdout.strip() else "") if commit else None
