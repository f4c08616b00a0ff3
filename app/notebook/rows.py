"""The input example: her rows (an array, a DataFrame, a tensor, a list) as JSON rows, and what the
served model must turn a request's rows back into so that it gets what it got in the notebook."""
from __future__ import annotations

import math
import sys

from .errors import NotebookError

EXAMPLE_ROWS = 5  # rows kept in example.json: her real shape, not her data set


def plain(value):
    """NumPy, pandas and torch values as JSON values (the same rule as the served model.py)."""
    if hasattr(value, "detach"):
        return value.detach().cpu().tolist()  # not via .numpy(): a server's torch may have no NumPy
    if hasattr(value, "to_numpy") and not hasattr(value, "tolist"):
        value = value.to_numpy()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _is(value, module: str, name: str) -> bool:
    """isinstance without importing the library: a value of it means it is imported already."""
    mod = sys.modules.get(module)
    return mod is not None and isinstance(value, getattr(mod, name))


def example_rows(example, kind: str) -> tuple[list, dict]:
    """(JSON rows, the input part of berth_model.json) for `example` and a model of `kind`."""
    if _is(example, "pandas", "DataFrame"):
        columns = list(example.columns)
        if not all(isinstance(c, str) for c in columns):
            raise NotebookError("the example DataFrame has columns that are not strings "
                                f"({[c for c in columns if not isinstance(c, str)][:3]}); name them, e.g. "
                                "df.columns = [str(c) for c in df.columns], before training and saving")
        head = example.head(EXAMPLE_ROWS)
        rows = [{c: plain(v) for c, v in zip(columns, row)} for row in head.itertuples(index=False, name=None)]
        spec = {"input": "frame", "columns": columns, "dtypes": {c: str(t) for c, t in head.dtypes.items()}}
    elif _is(example, "torch", "Tensor"):
        rows = example[:EXAMPLE_ROWS].detach().cpu().tolist()
        spec = {"input": "tensor", "dtype": str(example.dtype).removeprefix("torch.")}
    elif _is(example, "numpy", "ndarray"):
        rows = example[:EXAMPLE_ROWS].tolist()
        spec = {"input": "tensor" if kind == "torch" else "array", "dtype": str(example.dtype)}
        if kind == "torch" and spec["dtype"] == "float64":
            spec["dtype"] = "float32"  # torch's default, what a network's weights are
    elif isinstance(example, (list, tuple)):
        rows = plain(list(example[:EXAMPLE_ROWS]))
        spec = {"input": "tensor", "dtype": "float32"} if kind == "torch" else {"input": "list"}
    else:
        raise NotebookError(f"example is a {type(example).__name__}: give a few input rows as a NumPy array, "
                            "a DataFrame, a list (or a tensor for PyTorch), e.g. example=X_test[:5]")
    if not rows:
        raise NotebookError("example has no rows: give a few real input rows, e.g. example=X_test[:5]")
    if all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in rows):
        raise NotebookError("example is one-dimensional: each row must be a list of features; pass a 2-D "
                            "array (X.reshape(-1, 1) for a single feature) or a list of rows")
    _check_json(rows)
    return rows, spec


def _check_json(value, where="example") -> None:
    """A row must survive JSON: NaN and infinities do not (the runner's JSON refuses them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise NotebookError(f"{where} holds {value}: JSON has no NaN or infinity; give example rows "
                            "without missing values (the model's clients cannot send them either)")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_json(v, f"{where}[{k!r}]")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
    elif not isinstance(value, (str, int, float, bool)) and value is not None:
        raise NotebookError(f"{where} holds a {type(value).__name__}, which JSON cannot carry; give rows of "
                            "numbers, strings and booleans")
