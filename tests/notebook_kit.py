"""Models as a data scientist has them in a notebook, small enough to train in a test."""
from __future__ import annotations


def iris_frame():
    """Iris as the DataFrame scikit-learn ships (no download), and its labels."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def sklearn_pipeline(X, y):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)).fit(X, y)


def torch_net(n_in=4, n_out=3):
    """A small classifier network, its class defined here (not importable on a server)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(n_in, 8)
            self.out = torch.nn.Linear(8, n_out)

        def forward(self, x):
            return torch.softmax(self.out(torch.relu(self.hidden(x))), dim=-1)

    torch.manual_seed(7)
    return Net().eval()


class Scorer:
    """An object with predict(), as a hand-written model is."""

    def __init__(self, weights):
        self.weights = weights

    def predict(self, rows):
        return [round(sum(w * x for w, x in zip(self.weights, row)), 6) for row in rows]


def torch_or_skip():
    """torch, or a skip saying why it is absent: PyPI's Linux torch pulls ~3 GB of CUDA wheels, so the
    test extra does not ask for it (CI reaches PyPI only, not PyTorch's CPU index); where it is
    installed (pip install torch --index-url https://download.pytorch.org/whl/cpu) these tests run."""
    import pytest

    return pytest.importorskip("torch", reason="torch is not installed (not in the test extra: PyPI's build "
                                              "brings ~3 GB of CUDA wheels); install the CPU build to run this")
