"""resources/examples/digits-torch (issue 20): the PyTorch example deploys to an offline server (an
sshd whose sessions get a dead PIP_INDEX_URL) and predicts; its second version (new weights, same
requirements) reuses the environment and sends no wheel again. torch's ~190 MB CPU wheel comes from
this computer's own wheels (pip's find-links): where pip cannot find torch==2.13.0 without an index
the test is skipped rather than download a CUDA build of several GB."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent_kit import stop_all
from cli_kit import EXAMPLES, berth
from sshd import SshServer, require_sshd
from test_offline import OFFLINE_ENV, add

TORCH = "torch==2.13.0"
EXAMPLE = EXAMPLES / "digits-torch"


def torch_wheel_or_skip():
    """Skips unless this computer's pip finds torch==2.13.0 with no index (its find-links, a cache)."""
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index",
                        "--ignore-installed", "--only-binary=:all:", "--disable-pip-version-check", "-q", TORCH],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no {TORCH} wheel on this computer without an index (pip's find-links): the test would "
                    "download torch, a CUDA build of several GB from PyPI; put the CPU wheel in a folder of "
                    "pip's find-links to run it")


def test_the_example_bundle_is_the_one_save_bundle_writes():
    """Fast: the files train.py copies from save_bundle are all there and say torch==2.13.0
    (tests/test_examples.py checks it with `berth bundle check`)."""
    assert (EXAMPLE / "requirements.txt").read_text().split() == [TORCH]
    spec = json.loads((EXAMPLE / "berth_model.json").read_text())
    assert spec["format"] == "torch.export" and spec["file"] == "model.pt2" and (EXAMPLE / "model.pt2").is_file()
    assert len(json.loads((EXAMPLE / "example.json").read_text())["instances"]) == 3


def answers_like_the_saved_model(served) -> bool:
    """The server's probabilities are those of model.pt2 run here on example.json."""
    import torch

    rows = json.loads((EXAMPLE / "example.json").read_text())["instances"]
    with torch.no_grad():
        here = torch.export.load(str(EXAMPLE / "model.pt2")).module()(torch.tensor(rows, dtype=torch.float32))
    return all(abs(a - b) < 1e-5 for ours, theirs in zip(here.tolist(), served) for a, b in zip(ours, theirs))


@pytest.mark.slow  # a 190 MB wheel through sshd, a venv with torch on the server, a retrain: 2-10 min (load)
@pytest.mark.timeout(1500)
def test_digits_torch_deploys_offline_predicts_and_its_second_version_sends_only_the_weights(
        capsys, tmp_path_factory, tmp_path):
    require_sshd()
    torch_wheel_or_skip()
    pytest.importorskip("torch", reason="retraining the example (new weights) needs torch on this computer")
    pytest.importorskip("sklearn", reason="the example's training data comes with scikit-learn")
    server = SshServer(folder=tmp_path_factory.mktemp("sshd-torch"), set_env=OFFLINE_ENV).start()
    root = tmp_path / "srv root"
    try:
        add(capsys, server, root)
        assert berth(capsys, "server", "set", "box", "--index", "offline").code == 0
        r = berth(capsys, "-v", "deploy", EXAMPLE, "--server", "box")
        said = r.out + r.err
        assert r.code == 0, r
        assert "torch-2.13.0+cpu-cp311" in said and " to send" in said, r
        r = berth(capsys, "predict", "digits-torch", "--server", "box", "--input", f"@{EXAMPLE / 'example.json'}")
        assert r.code == 0, r
        probabilities = json.loads(r.out)["predictions"]
        assert len(probabilities) == 3 and all(len(p) == 10 and abs(sum(p) - 1) < 1e-4 for p in probabilities)
        assert answers_like_the_saved_model(probabilities)

        second = tmp_path / "digits-1.0.1"
        shutil.copytree(EXAMPLE, second)
        subprocess.run([sys.executable, str(second / "train.py"), "--seed", "2", "--version", "1.0.1",
                        "--out", str(second)], check=True, capture_output=True, env=dict(
                            os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)))
        assert (second / "model.pt2").read_bytes() != (EXAMPLE / "model.pt2").read_bytes()
        r = berth(capsys, "-v", "deploy", second, "--server", "box")
        said = r.out + r.err
        assert r.code == 0 and " 0 to send" in said and "reusing environment" in said, r
        r = berth(capsys, "predict", "digits-torch", "--server", "box", "--input", f"@{EXAMPLE / 'example.json'}")
        assert r.code == 0 and len(json.loads(r.out)["predictions"]) == 3, r
    finally:
        stop_all(root)
        server.stop()
