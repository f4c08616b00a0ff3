"""Customer-churn classifier: a scikit-learn Pipeline saved with joblib.

Berth entrypoint ``model:Model``.  ``model.joblib`` and ``schema.json`` (both
written by ``train.py``) are loaded once when the class is built.

Input, either one customer::

    {"tenure_months": 4, "monthly_charges": 89.5, "total_charges": 350.2,
     "support_tickets_90d": 3, "senior_citizen": 0, "contract": "month-to-month",
     "internet_service": "fiber", "payment_method": "electronic-check",
     "paperless_billing": "yes"}

or several: ``{"customers": [{...}, {...}]}``.  A ``customer_id`` key is
optional and echoed back.  Output for one customer::

    {"churn_probability": 0.81, "churn": true, "label": "churn"}

and for ``customers``: ``{"predictions": [{...}, ...], "threshold": 0.5}``
(one entry per customer, in order).  Bad input raises ``ValueError``.
"""

import json
import math
import os

import joblib
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
MAX_CUSTOMERS = 10000
ID_KEY = "customer_id"


class Model(object):
    def __init__(self, model_path=None, schema_path=None):
        model_path = model_path or os.path.join(_HERE, "model.joblib")
        schema_path = schema_path or os.path.join(_HERE, "schema.json")
        with open(schema_path) as f:
            schema = json.load(f)
        self.numeric = list(schema["numeric"])
        self.categorical = dict(schema["categorical"])  # name -> allowed values
        self.features = self.numeric + list(self.categorical)
        self.threshold = float(schema.get("threshold", 0.5))
        self.pipeline = joblib.load(model_path)
        n_in = getattr(self.pipeline, "n_features_in_", len(self.features))
        if n_in != len(self.features):
            raise ValueError("{} expects {} features but schema.json lists {}".format(
                model_path, n_in, len(self.features)))

    def _row(self, customer, where):
        if not isinstance(customer, dict):
            raise ValueError("{}: expected an object of customer features, got {}".format(
                where, type(customer).__name__))
        missing = [k for k in self.features if k not in customer]
        unknown = sorted(k for k in customer if k not in self.features and k != ID_KEY)
        if missing or unknown:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if unknown:
                parts.append("unknown " + ", ".join(unknown))
            raise ValueError("{}: {} (expected keys: {})".format(
                where, "; ".join(parts), ", ".join(self.features)))
        row = []
        for name in self.numeric:
            v = customer[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError("{}: {} must be a number, got {!r}".format(where, name, v))
            if not math.isfinite(v) or v < 0:
                raise ValueError("{}: {} must be a finite number >= 0, got {!r}".format(
                    where, name, v))
            row.append(float(v))
        if row[self.numeric.index("senior_citizen")] not in (0.0, 1.0):
            raise ValueError("{}: senior_citizen must be 0 or 1".format(where))
        for name, allowed in self.categorical.items():
            v = customer[name]
            if v not in allowed:
                raise ValueError("{}: {} must be one of {}, got {!r}".format(
                    where, name, ", ".join(allowed), v))
            row.append(v)
        return row

    def _predict_rows(self, customers, where):
        X = np.array([self._row(c, "{}[{}]".format(where, i) if where else "input")
                      for i, c in enumerate(customers)], dtype=object)
        proba = self.pipeline.predict_proba(X)[:, 1]
        out = []
        for c, p in zip(customers, proba):
            churn = bool(p >= self.threshold)
            r = {"churn_probability": round(float(p), 4), "churn": churn,
                 "label": "churn" if churn else "no_churn"}
            if ID_KEY in c:
                r = dict([(ID_KEY, c[ID_KEY])] + list(r.items()))
            out.append(r)
        return out

    def predict(self, input):
        if not isinstance(input, dict):
            raise ValueError('input must be a JSON object: one customer\'s features, or '
                             '{"customers": [...]}; got ' + type(input).__name__)
        if "customers" in input:
            customers = input["customers"]
            if len(input) != 1:
                raise ValueError('with "customers", no other top-level keys are allowed')
            if not isinstance(customers, list) or not customers:
                raise ValueError('"customers" must be a non-empty list of objects')
            if len(customers) > MAX_CUSTOMERS:
                raise ValueError('"customers" has {} entries; at most {} per request'.format(
                    len(customers), MAX_CUSTOMERS))
            return {"predictions": self._predict_rows(customers, "customers"),
                    "threshold": self.threshold}
        return self._predict_rows([input], None)[0]
