"""`berth bundle init --template sklearn|pytorch|python`: each passes the check as written, its
train.py writes the model and pins the requirements, and its example.json is what its model takes."""
import json
import subprocess
import sys

import pytest

from app.bundle import BundleError, init_bundle
from cli_kit import berth
from notebook_kit import torch_or_skip


def run(folder, script):
    return subprocess.run([sys.executable, script], cwd=folder, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # each imports its library three times and trains: sklearn ~25 s, pytorch ~40-90 s
@pytest.mark.parametrize("template, model_file, pinned", [("sklearn", "model.joblib", "scikit-learn=="),
                                                          ("pytorch", "model.pt", "torch==")])
def test_template_trains_and_answers_its_example(capsys, tmp_path, template, model_file, pinned):
    if template == "pytorch":
        torch_or_skip()
    folder = tmp_path / "m"
    r = berth(capsys, "bundle", "init", folder, "--name", "churn", "--template", template)
    assert r.code == 0 and "python " in r.err and "train.py" in r.err, r
    r = berth(capsys, "bundle", "check", folder)
    assert r.code == 0 and "ok: churn 0.1.0" in r.out and "warning" not in r.err, r
    untrained = run(folder, "model.py")
    assert untrained.returncode != 0 and "run `python train.py`" in untrained.stderr
    trained = run(folder, "train.py")
    assert trained.returncode == 0, trained.stderr
    assert (folder / model_file).is_file() and pinned in (folder / "requirements.txt").read_text()
    served = run(folder, "model.py")
    assert served.returncode == 0, served.stderr
    example = json.loads((folder / "example.json").read_text())["instances"]
    answer = json.loads(served.stdout)
    assert len(answer["predictions"]) == len(example)
    if template == "pytorch":
        assert all(len(p) == 3 and abs(sum(p) - 1) < 1e-5 for p in answer["predictions"])
    else:
        assert answer["predictions"] == [0, 2] and len(answer["probabilities"][0]) == 3  # setosa, virginica
    r = berth(capsys, "bundle", "check", folder)
    assert r.code == 0 and "warning" not in r.err, r


def test_python_template_is_the_default(capsys, tmp_path):
    r = berth(capsys, "bundle", "init", tmp_path / "p", "--name", "toy")
    assert r.code == 0, r
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["README.md", "berth.toml", "example.json", "model.py"]


def test_an_unknown_template_is_refused(capsys, tmp_path):
    r = berth(capsys, "bundle", "init", tmp_path / "x", "--name", "toy", "--template", "tensorflow")
    assert r.code == 2 and "invalid choice: 'tensorflow'" in r.err and not (tmp_path / "x").exists(), r
    with pytest.raises(BundleError, match="no template 'keras': choose one of python, sklearn, pytorch"):
        init_bundle(tmp_path / "y", "toy", "keras")
    assert not (tmp_path / "y").exists()
