"""Which kind of model it is, and its bytes: a scikit-learn estimator with joblib, a PyTorch module
with torch.export (its graph and weights, no class source needed), anything else with cloudpickle.
Everything is serialised in memory first, so what cannot be saved is said before a file is written."""
from __future__ import annotations

import io
import sys
from dataclasses import dataclass

from .errors import NotebookError
from .requirements import local_modules, pickled_modules


@dataclass
class Saved:
    kind: str  # "sklearn" | "torch" | "python"
    format: str  # "joblib" | "cloudpickle" | "torch.export": how the served model.py reads `data`
    file: str
    data: bytes
    call: str  # "predict": model.predict(rows); "call": model(rows)
    probabilities: bool
    modules: set  # top-level modules the saved model refers to (its requirements come from them)


def kind_of(model) -> str:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    base = sys.modules.get("sklearn.base")
    if base is not None and isinstance(model, base.BaseEstimator):
        return "sklearn"
    if callable(getattr(model, "predict", None)) or callable(model):
        return "python"
    raise NotebookError(f"a {type(model).__name__} has no predict() method and cannot be called: give "
                        "a scikit-learn estimator, a PyTorch nn.Module, a function or an object with predict()")


def save(model, kind: str, rows: list, spec: dict) -> Saved:
    if kind == "torch":
        return _torch(model, rows, spec)
    call = "predict" if callable(getattr(model, "predict", None)) else "call"
    proba = kind == "sklearn" and _has_proba(model)
    data = _pickle(model)
    modules = pickled_modules(data)
    by_reference = _plain_pickle(model) if kind == "sklearn" and not local_modules(modules) else None
    if by_reference is not None:
        import joblib

        buf = io.BytesIO()
        joblib.dump(model, buf)
        modules = pickled_modules(by_reference)  # what joblib's file refers to, not cloudpickle's
        return Saved(kind, "joblib", "model.joblib", buf.getvalue(), call, proba, modules | {"joblib"})
    # a class or function of the notebook (__main__) or of her own files: pickled by value
    data = _pickle(model, by_value=local_modules(modules))
    return Saved(kind, "cloudpickle", "model.pkl", data, call, proba, pickled_modules(data) | {"cloudpickle"})


def _plain_pickle(model) -> bytes | None:
    """pickle's bytes, or None when only cloudpickle can save it (a lambda in a FunctionTransformer)."""
    import pickle

    try:
        return pickle.dumps(model)
    except Exception:
        return None


def _has_proba(model) -> bool:
    try:  # a Pipeline's predict_proba is there only when its last step has one
        return callable(getattr(model, "predict_proba", None))
    except AttributeError:
        return False


def _pickle(model, by_value=()) -> bytes:
    try:
        import cloudpickle
    except ImportError:
        raise NotebookError("saving this model needs cloudpickle: pip install cloudpickle") from None
    registered = []
    try:
        for name in by_value:
            module = sys.modules.get(name)
            if module is not None:
                cloudpickle.register_pickle_by_value(module)
                registered.append(module)
        return cloudpickle.dumps(model)
    except Exception as exc:  # pickle's TypeError, PicklingError, a __reduce__ that raises: all mean "cannot"
        raise NotebookError(f"cannot save this {type(model).__name__}: {_first_line(exc)}. A model that holds "
                            "an open connection, file, socket, lock or thread cannot be copied to a server: "
                            "open it inside the model when it is loaded instead; nothing was written") from None
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def _torch(model, rows: list, spec: dict) -> Saved:
    import torch

    dtype = getattr(torch, spec["dtype"])
    x = torch.tensor(rows if len(rows) > 1 else rows * 2, dtype=dtype)  # a batch of 1 would be fixed at 1
    model.eval()
    try:
        batch = torch.export.Dim("batch")
        program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
        buf = io.BytesIO()
        torch.export.save(program, buf)
    except Exception as exc:
        raise NotebookError(f"torch.export cannot trace {type(model).__name__}.forward on the example: "
                            f"{_first_line(exc)}. Its forward() must take one tensor of rows (batch first) "
                            "and not branch on the values in it; nothing was written") from None
    return Saved("torch", "torch.export", "model.pt2", buf.getvalue(), "call", False, {"torch"})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")
