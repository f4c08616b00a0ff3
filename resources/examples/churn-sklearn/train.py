#!/usr/bin/env python3
"""Train the customer-churn classifier (scikit-learn Pipeline -> model.joblib).

    pip install -r requirements.txt
    python train.py                 # train on data/churn.csv (generates it if missing)
    python train.py --regenerate    # rewrite data/churn.csv from the seed, then train

The dataset is synthetic but shaped like a telecom churn table.  It is made
with the standard library's seeded ``random.Random``, so regenerating gives
the same bytes on any Python 3.  The model is
ColumnTransformer(StandardScaler on numbers, OneHotEncoder on categories)
followed by LogisticRegression, evaluated on a stratified held-out 25%.
The numbers printed at the end are the ones recorded in berth.toml.
"""

import argparse
import csv
import hashlib
import json
import math
import os
import random

import joblib
import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (accuracy_score, f1_score, log_loss, precision_score,
                             recall_score, roc_auc_score)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "churn.csv")
MODEL_OUT = os.path.join(HERE, "model.joblib")
SCHEMA_OUT = os.path.join(HERE, "schema.json")

# Column order matters: model.py builds its input array in this same order.
NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "support_tickets_90d",
           "senior_citizen"]
CATEGORICAL = ["contract", "internet_service", "payment_method", "paperless_billing"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "churned"

DATA_SEED = 20240611
N_ROWS = 2000

PARAMS = {
    "estimator": "LogisticRegression",
    "preprocessing": "StandardScaler(numeric) + OneHotEncoder(categorical, handle_unknown=ignore)",
    "C": 1.0,
    "penalty": "l2",
    "solver": "lbfgs",
    "max_iter": 1000,
    "class_weight": "none",
    "test_size": 0.25,
    "split": "stratified",
    "random_state": 42,
    "data_seed": DATA_SEED,
    "n_rows": N_ROWS,
}


def generate(path, n=N_ROWS, seed=DATA_SEED):
    """Write a synthetic churn table whose label follows a known noisy logistic rule."""
    rng = random.Random(seed)
    header = ["customer_id"] + FEATURES + [TARGET]
    rows = []
    for i in range(n):
        contract = rng.choices(["month-to-month", "one-year", "two-year"], [0.55, 0.25, 0.20])[0]
        max_tenure = {"month-to-month": 36, "one-year": 60, "two-year": 72}[contract]
        tenure = rng.randint(1, max_tenure)
        internet = rng.choices(["fiber", "dsl", "none"], [0.45, 0.35, 0.20])[0]
        base = {"fiber": 80.0, "dsl": 55.0, "none": 22.0}[internet]
        monthly = round(max(18.0, rng.gauss(base, 12.0)), 2)
        total = round(monthly * tenure * rng.uniform(0.95, 1.05), 2)
        payment = rng.choices(
            ["electronic-check", "credit-card", "bank-transfer", "mailed-check"],
            [0.35, 0.25, 0.22, 0.18])[0]
        paperless = "yes" if rng.random() < 0.6 else "no"
        senior = 1 if rng.random() < 0.16 else 0
        tickets = min(9, int(rng.expovariate(0.9)))

        z = (-1.6
             + {"month-to-month": 1.2, "one-year": -0.3, "two-year": -1.6}[contract]
             - 0.045 * tenure
             + {"fiber": 0.7, "dsl": 0.0, "none": -0.6}[internet]
             + 0.012 * (monthly - 60.0)
             + (0.55 if payment == "electronic-check" else 0.0)
             + (0.25 if paperless == "yes" else 0.0)
             + 0.35 * senior
             + 0.40 * tickets
             + rng.gauss(0.0, 0.6))
        churned = 1 if rng.random() < 1.0 / (1.0 + math.exp(-z)) else 0
        rows.append(["C{:05d}".format(i + 1), tenure, "{:.2f}".format(monthly),
                     "{:.2f}".format(total), tickets, senior, contract, internet,
                     payment, paperless, churned])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def load(path):
    X, y = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            X.append([float(row[c]) for c in NUMERIC] + [row[c] for c in CATEGORICAL])
            y.append(int(row[TARGET]))
    return np.array(X, dtype=object), np.array(y)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            h.update(chunk)
    return h.hexdigest()


def build_pipeline():
    n_num = len(NUMERIC)
    pre = ColumnTransformer([
        ("num", StandardScaler(), list(range(n_num))),
        ("cat", OneHotEncoder(handle_unknown="ignore"), list(range(n_num, len(FEATURES)))),
    ])
    clf = LogisticRegression(C=PARAMS["C"], solver=PARAMS["solver"],
                             max_iter=PARAMS["max_iter"])
    return Pipeline([("preprocess", pre), ("classifier", clf)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regenerate", action="store_true",
                    help="rewrite data/churn.csv from the seed before training")
    args = ap.parse_args()
    if args.regenerate or not os.path.exists(DATA):
        generate(DATA)

    X, y = load(DATA)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=PARAMS["test_size"], stratify=y, random_state=PARAMS["random_state"])
    pipe = build_pipeline().fit(X_tr, y_tr)

    proba = pipe.predict_proba(X_te)[:, 1]
    pred = (proba >= 0.5).astype(int)
    metrics = {
        "accuracy": accuracy_score(y_te, pred),
        "roc_auc": roc_auc_score(y_te, proba),
        "log_loss": log_loss(y_te, proba),
        "precision": precision_score(y_te, pred),
        "recall": recall_score(y_te, pred),
        "f1": f1_score(y_te, pred),
        "churn_rate": float(y.mean()),
        "n_train": len(y_tr),
        "n_test": len(y_te),
    }
    metrics = {k: (round(float(v), 4) if isinstance(v, float) else int(v))
               for k, v in metrics.items()}

    joblib.dump(pipe, MODEL_OUT)
    encoder = pipe.named_steps["preprocess"].named_transformers_["cat"]
    schema = {
        "numeric": NUMERIC,
        "categorical": {name: [str(c) for c in cats]
                        for name, cats in zip(CATEGORICAL, encoder.categories_)},
        "threshold": 0.5,
        "trained_with": {"scikit-learn": sklearn.__version__, "joblib": joblib.__version__,
                         "numpy": np.__version__},
        "training": {"dataset": "data/churn.csv", "dataset_sha256": sha256_of(DATA),
                     "params": PARAMS, "metrics": metrics},
    }
    with open(SCHEMA_OUT, "w", newline="\n") as f:
        json.dump(schema, f, indent=2)
        f.write("\n")

    print("scikit-learn", sklearn.__version__, "joblib", joblib.__version__,
          "numpy", np.__version__)
    print("dataset_sha256 =", schema["training"]["dataset_sha256"])
    for k, v in metrics.items():
        print("{} = {}".format(k, v))
    print("wrote", os.path.relpath(MODEL_OUT), "and", os.path.relpath(SCHEMA_OUT))


if __name__ == "__main__":
    main()
