"""docs/for-data-scientists.md, run as written: its Python blocks in one namespace, in order, and
each `berth` line of its shell blocks through the CLI, so the page cannot go stale. A `berth predict`
must answer what the block before it computed as `expected` (model.predict in the notebook). The one
command not run is `pip install` (it would install Berth from the index): the test checks that the
extras it names are the ones pyproject.toml declares. Deploys scikit-learn and PyTorch: `slow`."""
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from agent_kit import stop_all
from cli_kit import berth
from notebook_kit import torch_or_skip

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "for-data-scientists.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def blocks():
    return [(lang, body) for lang, body in FENCE.findall(DOC.read_text())]


def test_the_doc_has_five_steps_and_runs_only_what_this_test_knows():
    text = DOC.read_text()
    assert [h for h in re.findall(r"^## (\d)\.", text, re.M)] == ["1", "2", "3", "4", "5"]
    langs = {lang for lang, _ in blocks()}
    assert langs <= {"python", "sh"}, langs  # a block of another language would be neither run nor checked


def test_the_install_line_names_extras_that_exist():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    lines = [line for lang, body in blocks() if lang == "sh" for line in body.splitlines() if line.startswith("pip ")]
    assert lines == ['pip install "berth[notebook]"']
    assert {"cloudpickle", "joblib"} <= {re.split(r"[<>=!~ ]", r)[0] for r in extras["notebook"]}


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two deploys whose venvs pip fills from the index: scikit-learn's stack and torch
def test_every_command_of_the_doc_runs(capsys, tmp_path, berth_home, monkeypatch):
    """Also the guarantee for PyTorch: the doc's network answers `berth predict` as in the notebook
    (tests/test_notebook_deploy.py has scikit-learn's and a plain object's)."""
    torch_or_skip()  # the doc's second model is a PyTorch network
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIP_NO_COMPILE", "1")  # as in test_notebook_deploy.py: most of torch's install time
    namespace: dict = {"__name__": "__main__"}
    predicted = 0
    try:
        for lang, body in blocks():
            if lang == "python":
                exec(compile(body, str(DOC), "exec"), namespace)
                continue
            for line in body.splitlines():
                if not line.strip() or line.startswith("pip "):
                    continue
                argv = shlex.split(line)
                assert argv[0] == "berth", f"the doc runs {line!r}, which this test does not know"
                r = berth(capsys, *argv[1:])
                assert r.code == 0, (line, r)
                if argv[1] == "predict":
                    assert json.loads(r.out)["predictions"] == namespace["expected"], line
                    predicted += 1
    finally:
        stop_all(berth_home / "local")
    assert predicted == 2  # the scikit-learn model and the network
