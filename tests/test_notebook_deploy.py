"""The guarantee of berth.save_bundle: the model's answers in the notebook and `berth predict` on the
deployed bundle are the same, for rows the example did not hold. PyTorch's is
tests/test_doc_data_scientists.py (the doc's network, deployed and asked as written there: one torch
venv fewer for the suite). Each deploy builds the release's virtualenv from the pinned requirements
(pip, from the package index), so each test is `slow`: measured on this 2-core machine under other
engineers' load (10-18), scikit-learn 220 s, a plain object 40 s (PyTorch's: 452 s)."""
import json

import pytest

import berth
from agent_kit import stop_all
from cli_kit import berth as run_berth
from notebook_kit import Scorer, iris_frame, sklearn_pipeline


@pytest.fixture
def local_root(berth_home, monkeypatch):
    # pip compiles every .py it installs: for torch's thousands that is most of the install; the
    # runner compiles what it imports instead (PIP_* reaches the agent's pip: app/agent/runnerenv.py)
    monkeypatch.setenv("PIP_NO_COMPILE", "1")
    yield berth_home / "local"
    stop_all(berth_home / "local")


def deployed_answer(capsys, tmp_path, saved, rows):
    r = run_berth(capsys, "deploy", saved.path, "--server", "local")
    assert r.code == 0, r
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"instances": rows}))
    r = run_berth(capsys, "predict", saved.name, "--server", "local", "--input", f"@{request}")
    assert r.code == 0, r
    return json.loads(r.out)


@pytest.mark.slow
@pytest.mark.timeout(900)  # scikit-learn, SciPy, NumPy, pandas from the index into a fresh venv: 220 s under load
def test_sklearn_pipeline_answers_as_in_the_notebook(capsys, tmp_path, local_root):
    X, y = iris_frame()
    model = sklearn_pipeline(X, y)
    saved = berth.save_bundle(model, tmp_path / "iris", name="iris", version="1.0.0", example=X.head(3))
    rows = X.iloc[::7]  # 22 rows from all three species
    answer = deployed_answer(capsys, tmp_path, saved, [dict(zip(X.columns, map(float, r))) for r in rows.to_numpy()])
    assert answer["predictions"] == model.predict(rows).tolist()
    assert answer["probabilities"] == model.predict_proba(rows).tolist()
    # a row that is not shaped like the example is a 422 before the model runs, naming what is missing
    r = run_berth(capsys, "predict", "iris", "--server", "local", "--input", '{"instances": [{"sepal length (cm)": 1}]}')
    assert r.code != 0 and "petal width (cm)" in r.err, r


@pytest.mark.slow
def test_plain_object_with_predict_answers_as_in_the_notebook(capsys, tmp_path, local_root):
    model = Scorer([0.25, -1.5, 2.0])
    saved = berth.save_bundle(model, tmp_path / "s", name="scorer", version="1.0.0", example=[[1, 2, 3]])
    rows = [[0.1, 0.2, 0.3], [10, -4, 7.5], [1e-3, 2e5, -3]]
    assert deployed_answer(capsys, tmp_path, saved, rows) == {"predictions": model.predict(rows)}
