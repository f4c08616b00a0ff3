#!/usr/bin/env python3
"""Train the iris softmax (multinomial logistic regression) classifier.

Pure standard library, Python 3.8+.  Deterministic: the train/test split uses
a seeded ``random.Random`` and training is full-batch gradient descent, so
re-running it reproduces ``coefficients.json`` byte for byte.

    python3 train.py            # writes coefficients.json, prints metrics

The numbers it prints are the ones recorded in berth.toml's [training] table.
"""

import csv
import hashlib
import json
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "iris.csv")
OUT = os.path.join(HERE, "coefficients.json")

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]

PARAMS = {
    "model": "softmax_regression",
    "optimizer": "full_batch_gradient_descent",
    "learning_rate": 0.1,
    "epochs": 3000,
    "l2": 0.001,
    "test_fraction": 0.2,
    "split": "stratified",
    "seed": 42,
    "standardize": True,
}


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            h.update(chunk)
    return h.hexdigest()


def load(path):
    xs, ys = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            xs.append([float(row[name]) for name in FEATURES])
            ys.append(CLASSES.index(row["species"]))
    return xs, ys


def stratified_split(ys, test_fraction, seed):
    rng = random.Random(seed)
    train_idx, test_idx = [], []
    for c in range(len(CLASSES)):
        idx = [i for i, y in enumerate(ys) if y == c]
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        test_idx.extend(idx[:n_test])
        train_idx.extend(idx[n_test:])
    return sorted(train_idx), sorted(test_idx)


def softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def logits(W, b, x):
    return [sum(w * v for w, v in zip(W[k], x)) + b[k] for k in range(len(b))]


def train(X, Y, lr, epochs, l2):
    n, d, k = len(X), len(X[0]), len(CLASSES)
    W = [[0.0] * d for _ in range(k)]
    b = [0.0] * k
    for _ in range(epochs):
        gW = [[0.0] * d for _ in range(k)]
        gb = [0.0] * k
        for x, y in zip(X, Y):
            p = softmax(logits(W, b, x))
            for c in range(k):
                err = p[c] - (1.0 if c == y else 0.0)
                gb[c] += err
                row = gW[c]
                for j in range(d):
                    row[j] += err * x[j]
        for c in range(k):
            b[c] -= lr * gb[c] / n
            for j in range(d):
                W[c][j] -= lr * (gW[c][j] / n + l2 * W[c][j])
    return W, b


def evaluate(W, b, X, Y):
    correct, loss = 0, 0.0
    for x, y in zip(X, Y):
        p = softmax(logits(W, b, x))
        correct += int(max(range(len(p)), key=p.__getitem__) == y)
        loss -= math.log(max(p[y], 1e-15))
    return correct / len(X), loss / len(X)


def main():
    X_all, Y_all = load(DATA)
    tr, te = stratified_split(Y_all, PARAMS["test_fraction"], PARAMS["seed"])
    X_tr = [X_all[i] for i in tr]
    Y_tr = [Y_all[i] for i in tr]
    X_te = [X_all[i] for i in te]
    Y_te = [Y_all[i] for i in te]

    # Standardize with statistics of the training split only.
    d = len(FEATURES)
    mean = [sum(x[j] for x in X_tr) / len(X_tr) for j in range(d)]
    std = [
        math.sqrt(sum((x[j] - mean[j]) ** 2 for x in X_tr) / len(X_tr)) for j in range(d)
    ]

    def scale(X):
        return [[(x[j] - mean[j]) / std[j] for j in range(d)] for x in X]

    S_tr, S_te = scale(X_tr), scale(X_te)
    W, b = train(S_tr, Y_tr, PARAMS["learning_rate"], PARAMS["epochs"], PARAMS["l2"])

    train_acc, train_loss = evaluate(W, b, S_tr, Y_tr)
    test_acc, test_loss = evaluate(W, b, S_te, Y_te)
    metrics = {
        "accuracy": round(test_acc, 4),
        "log_loss": round(test_loss, 4),
        "train_accuracy": round(train_acc, 4),
        "train_log_loss": round(train_loss, 4),
        "n_train": len(X_tr),
        "n_test": len(X_te),
    }

    r = lambda v: round(v, 10)  # noqa: E731 - stable, readable JSON
    model = {
        "format": "softmax-v1",
        "features": FEATURES,
        "classes": CLASSES,
        "mean": [r(v) for v in mean],
        "std": [r(v) for v in std],
        "weights": [[r(v) for v in row] for row in W],
        "bias": [r(v) for v in b],
        "training": {
            "dataset": "data/iris.csv",
            "dataset_sha256": sha256_of(DATA),
            "params": PARAMS,
            "metrics": metrics,
        },
    }
    with open(OUT, "w", newline="\n") as f:
        json.dump(model, f, indent=2)
        f.write("\n")

    print("dataset_sha256 =", model["training"]["dataset_sha256"])
    for key, value in metrics.items():
        print("{} = {}".format(key, value))
    print("wrote", os.path.relpath(OUT))


if __name__ == "__main__":
    main()
