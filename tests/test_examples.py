"""The example bundles deploy and answer for real. churn-sklearn installs scikit-learn from PyPI
into its release's virtualenv (tens of seconds): the `slow` marker lets a developer skip it
locally with -m 'not slow'; CI runs it."""
import json

import pytest

from agent_kit import stop_all
from cli_kit import EXAMPLES, berth


@pytest.fixture
def local_root(berth_home):
    yield berth_home / "local"
    stop_all(berth_home / "local")


@pytest.mark.parametrize("name", ["iris", "churn-sklearn", "digits-torch"])
def test_examples_check_clean(capsys, name):
    r = berth(capsys, "bundle", "check", EXAMPLES / name)
    assert r.code == 0 and f"ok: {name}" in r.out, r
    assert "warning" not in r.err, r


@pytest.mark.slow
def test_churn_sklearn_deploys_with_its_requirements_and_predicts(capsys, local_root):
    r = berth(capsys, "-v", "deploy", EXAMPLES / "churn-sklearn", "--server", "local")
    assert r.code == 0, r
    assert "Installing requirements" in r.err and "scikit-learn" in r.err  # pip's log streamed
    r = berth(capsys, "predict", "churn-sklearn", "--server", "local",
              "--input", f"@{EXAMPLES / 'churn-sklearn' / 'example.json'}")
    assert r.code == 0, r
    out = json.loads(r.out)
    preds = out["predictions"]
    assert [p["customer_id"] for p in preds] == ["C00002", "C00006", "C00075"]
    assert all(0.0 <= p["churn_probability"] <= 1.0 for p in preds)
    # a long-contract customer churns less than a new month-to-month fiber customer
    assert preds[0]["churn_probability"] < preds[2]["churn_probability"]
    venv = local_root / "models" / "churn-sklearn" / "releases" / "1.0.0" / ".venv"
    assert list(venv.glob("lib/python*/site-packages/sklearn/__init__.py"))  # in the release's own venv
