"""Iris flower classifier: softmax regression, standard library only (Python 3.8+).

Berth entrypoint ``model:Model``.  The learned coefficients are read once from
``coefficients.json`` (written by ``train.py``) when the class is built.

Input, either::

    {"features": [sepal_length, sepal_width, petal_length, petal_width]}
    {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}

(all measurements in centimetres; ``features`` may also be an object keyed by
feature name).  Output for ``features``::

    {"class": "setosa", "probabilities": {"setosa": 0.98, "versicolor": 0.02, "virginica": 0.0}}

and for ``instances`` a list of such objects, one per row, in order.
Bad input raises ``ValueError`` with a message saying what is wrong.
"""

import json
import math
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
COEFFICIENTS = os.path.join(_HERE, "coefficients.json")
MAX_INSTANCES = 10000


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


class Model(object):
    def __init__(self, path=COEFFICIENTS):
        with open(path) as f:
            params = json.load(f)
        if params.get("format") != "softmax-v1":
            raise ValueError("{}: unknown coefficients format {!r}".format(path, params.get("format")))
        self.features = list(params["features"])
        self.classes = list(params["classes"])
        self.mean = [float(v) for v in params["mean"]]
        self.std = [float(v) for v in params["std"]]
        self.weights = [[float(v) for v in row] for row in params["weights"]]
        self.bias = [float(v) for v in params["bias"]]
        d, k = len(self.features), len(self.classes)
        if (len(self.mean) != d or len(self.std) != d or len(self.bias) != k
                or len(self.weights) != k or any(len(row) != d for row in self.weights)):
            raise ValueError("{}: coefficient shapes do not match features/classes".format(path))

    # -- input validation -------------------------------------------------
    def _row(self, value, where):
        if isinstance(value, dict):
            missing = [name for name in self.features if name not in value]
            unknown = sorted(set(value) - set(self.features))
            if missing or unknown:
                raise ValueError(
                    "{}: expected keys {}; missing {}, unknown {}".format(
                        where, self.features, missing, unknown))
            value = [value[name] for name in self.features]
        if not isinstance(value, (list, tuple)):
            raise ValueError("{}: expected a list of {} numbers ({}), got {}".format(
                where, len(self.features), ", ".join(self.features), type(value).__name__))
        if len(value) != len(self.features):
            raise ValueError("{}: expected {} numbers ({}), got {}".format(
                where, len(self.features), ", ".join(self.features), len(value)))
        row = []
        for name, v in zip(self.features, value):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError("{}: {} must be a number, got {!r}".format(where, name, v))
            v = float(v)
            if not math.isfinite(v):
                raise ValueError("{}: {} must be finite, got {!r}".format(where, name, v))
            row.append(v)
        return row

    # -- prediction ---------------------------------------------------------
    def _predict_row(self, x):
        z = [(v - m) / s for v, m, s in zip(x, self.mean, self.std)]
        logits = [sum(w * v for w, v in zip(row, z)) + b for row, b in zip(self.weights, self.bias)]
        p = _softmax(logits)
        best = max(range(len(p)), key=p.__getitem__)
        return {
            "class": self.classes[best],
            "probabilities": {c: round(pc, 6) for c, pc in zip(self.classes, p)},
        }

    def predict(self, input):
        if not isinstance(input, dict):
            raise ValueError(
                'input must be a JSON object: {"features": [4 numbers]} or '
                '{"instances": [[4 numbers], ...]}, got ' + type(input).__name__)
        has_f, has_i = "features" in input, "instances" in input
        if has_f == has_i:
            raise ValueError('input must have exactly one of "features" or "instances"')
        if has_f:
            return self._predict_row(self._row(input["features"], "features"))
        rows = input["instances"]
        if not isinstance(rows, list) or not rows:
            raise ValueError('"instances" must be a non-empty list of rows')
        if len(rows) > MAX_INSTANCES:
            raise ValueError('"instances" has {} rows; at most {} per request'.format(
                len(rows), MAX_INSTANCES))
        return [self._predict_row(self._row(r, "instances[{}]".format(i)))
                for i, r in enumerate(rows)]
