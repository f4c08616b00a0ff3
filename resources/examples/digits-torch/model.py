"""Serves a model saved by berth.save_bundle (written by it: save the model again rather than edit this).

Requests and answers have the KServe / TensorFlow Serving V1 shape:
    {"instances": [row, ...]}  ->  {"predictions": [...]}
with "probabilities" too when the model has predict_proba. A row is a list of numbers, or an object
of column names when the model was trained on a DataFrame. berth_model.json, beside this file, says
how the model was saved and what its rows become (a list, a NumPy array, a DataFrame, a tensor), so
the model gets exactly what it got in the notebook. Python 3.8+.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def plain(value):
    """NumPy, pandas and torch values as JSON values."""
    if hasattr(value, "detach"):
        return value.detach().cpu().tolist()  # not via .numpy(): a server's torch may have no NumPy
    if hasattr(value, "to_numpy") and not hasattr(value, "tolist"):
        value = value.to_numpy()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return dict((str(k), plain(v)) for k, v in value.items())
    return value


def load(spec):
    path = os.path.join(HERE, spec["file"])
    fmt = spec["format"]
    if fmt == "joblib":
        import joblib
        return joblib.load(path)
    if fmt == "cloudpickle":
        import cloudpickle
        with open(path, "rb") as f:
            return cloudpickle.load(f)
    if fmt == "torch.export":
        import torch
        return torch.export.load(path).module()
    raise ValueError("berth_model.json: unknown format %r; save the model again with berth.save_bundle" % fmt)


class Model(object):
    def __init__(self):
        with open(os.path.join(HERE, "berth_model.json")) as f:
            self.spec = json.load(f)
        self.model = load(self.spec)
        self.call = getattr(self.model, "predict") if self.spec["call"] == "predict" else self.model
        self.proba = getattr(self.model, "predict_proba") if self.spec.get("probabilities") else None

    def rows(self, rows):
        """The request's rows as the model's input type."""
        kind, spec = self.spec["input"], self.spec
        if kind == "list":
            return rows
        if kind == "frame":
            import pandas
            columns = spec["columns"]
            frame = pandas.DataFrame([r if isinstance(r, dict) else dict(zip(columns, r)) for r in rows])
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ValueError("instances: every row needs the columns %s; missing %s" % (columns, missing))
            return frame[columns].astype(spec["dtypes"])
        if kind == "array":
            import numpy
            return numpy.asarray(rows, dtype=spec["dtype"])
        if kind == "tensor":
            import torch
            return torch.tensor(rows, dtype=getattr(torch, spec["dtype"]))
        raise ValueError("berth_model.json: unknown input %r" % kind)

    def predict(self, request):
        if not isinstance(request, dict) or not isinstance(request.get("instances"), list) or not request["instances"]:
            raise ValueError('send {"instances": [row, ...]}: a JSON object with a non-empty list of rows')
        x = self.rows(request["instances"])
        if self.spec["kind"] == "torch":
            import torch
            with torch.no_grad():
                answer = {"predictions": plain(self.call(x))}
        else:
            answer = {"predictions": plain(self.call(x))}
        if self.proba is not None:
            answer["probabilities"] = plain(self.proba(x))
        return answer


if __name__ == "__main__":  # a quick try: python model.py
    with open(os.path.join(HERE, "example.json")) as f:
        print(json.dumps(Model().predict(json.load(f))))
