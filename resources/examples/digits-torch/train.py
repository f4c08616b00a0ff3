#!/usr/bin/env python3
"""Train the handwritten-digit classifier (a small PyTorch network, CPU) and save this folder as a
Berth bundle with berth.save_bundle.

    pip install torch==2.13.0 scikit-learn berth   # scikit-learn only for its bundled digits data
    python train.py                  # writes model.pt2, berth_model.json, model.py, example.json,
                                     # requirements.txt and berth.toml beside this file
    python train.py --seed 2 --version 1.0.1       # new weights, same requirements

The data is scikit-learn's copy of the UCI optical digits (1797 images of 8x8 pixels, values 0-16),
shipped inside the scikit-learn package: nothing is downloaded. Stratified 75/25 split; the network
is 64 -> 32 (ReLU) -> 10 (softmax), trained full-batch with Adam. The numbers printed at the end
are the ones recorded in berth.toml's [training].
"""
import argparse
import os
import shutil
import tempfile

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import berth

HERE = os.path.dirname(os.path.abspath(__file__))
WRITTEN = ("berth.toml", "model.py", "berth_model.json", "example.json", "model.pt2", "requirements.txt")
REQUIREMENT = "torch==2.13.0"  # the CPU build; a bare `torch` pulls a CUDA build of several GB
PARAMS = {"layers": "64-32-10", "activation": "relu", "optimizer": "adam", "lr": 0.01, "epochs": 300,
          "test_size": 0.25, "split": "stratified", "random_state": 42}


class Net(torch.nn.Module):
    """8x8 pixels (0-16) in, the probability of each digit 0-9 out."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(64, 32)
        self.out = torch.nn.Linear(32, 10)

    def forward(self, x):
        return torch.softmax(self.out(torch.relu(self.hidden(x / 16.0))), dim=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1, help="the network's initial weights (default 1)")
    ap.add_argument("--version", default="1.0.0", help="the bundle's version (default 1.0.0)")
    ap.add_argument("--out", default=HERE, help="the folder to write the bundle files into (default: here)")
    args = ap.parse_args()

    digits = load_digits()
    X_tr, X_te, y_tr, y_te = train_test_split(digits.data, digits.target, test_size=PARAMS["test_size"],
                                              stratify=digits.target, random_state=PARAMS["random_state"])
    X_tr, X_te = torch.tensor(X_tr, dtype=torch.float32), torch.tensor(X_te, dtype=torch.float32)
    y_tr, y_te = torch.tensor(y_tr), torch.tensor(y_te)

    torch.manual_seed(args.seed)
    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=PARAMS["lr"])
    for _ in range(PARAMS["epochs"]):
        optimizer.zero_grad()
        loss = torch.nn.functional.nll_loss(torch.log(net(X_tr) + 1e-9), y_tr)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        test_proba = net(X_te)
        metrics = {"accuracy": round((test_proba.argmax(dim=1) == y_te).float().mean().item(), 4),
                   "log_loss": round(torch.nn.functional.nll_loss(torch.log(test_proba + 1e-9), y_te).item(), 4),
                   "n_train": len(y_tr), "n_test": len(y_te)}

    staging = tempfile.mkdtemp(prefix="digits-torch-")
    try:
        saved = berth.save_bundle(
            net, os.path.join(staging, "bundle"), name="digits-torch", version=args.version, example=X_te[:3],
            requirements=[REQUIREMENT],
            description="Handwritten digit 0-9 from 8x8 pixels (a small PyTorch network, CPU).",
            training={"dataset": digits.data, "code_commit": "unversioned",
                      "params": dict(PARAMS, seed=args.seed, data="sklearn.datasets.load_digits"),
                      "metrics": metrics})
        os.makedirs(args.out, exist_ok=True)
        for name in WRITTEN:
            shutil.copyfile(os.path.join(saved.path, name), os.path.join(args.out, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print("torch", torch.__version__, "seed", args.seed, " ".join("%s=%s" % kv for kv in metrics.items()))
    print("wrote", ", ".join(WRITTEN), "in", os.path.relpath(args.out))


if __name__ == "__main__":
    main()
