"""berth.save_bundle in the notebook's own process: what it writes for each kind of model, and each
input it refuses before writing anything."""
import hashlib
import json
import socket
import subprocess
import tomllib
from importlib import metadata

import pytest

import berth
from app.notebook import tomlwrite
from cli_kit import berth as run_berth
from notebook_kit import Scorer, iris_frame, sklearn_pipeline, torch_net, torch_or_skip


def served(folder):
    """The bundle's model.py loaded from its folder, as the runner does (without a server)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"served_{folder.name}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Model()


def test_sklearn_pipeline_on_a_dataframe(tmp_path, capsys, monkeypatch):
    X, y = iris_frame()
    model = sklearn_pipeline(X, y)
    data = tmp_path / "iris.csv"
    X.assign(species=y).to_csv(data, index=False)
    monkeypatch.chdir(tmp_path)  # not a git repository: no code_commit
    saved = berth.save_bundle(model, tmp_path / "iris-1.0.0", name="iris", version="1.0.0", example=X.head(3),
                              training={"dataset": data, "metrics": {"accuracy": model.score(X, y)}})
    folder = saved.path
    r = run_berth(capsys, "bundle", "check", folder)
    assert r.code == 0 and "ok: iris 1.0.0" in r.out and "warning" not in r.err, r
    manifest = tomllib.loads((folder / "berth.toml").read_text())
    training = manifest["training"]
    assert training["dataset"] == str(data)
    assert training["dataset_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert training["params"]["logisticregression__C"] == 0.5 and training["params"]["logisticregression__max_iter"] == 500
    assert training["metrics"]["accuracy"] == pytest.approx(model.score(X, y))
    assert "code_commit" not in training
    assert manifest["serve"]["input_check"] == "on"
    assert manifest["model"]["python"].startswith(">=3.")
    example = json.loads((folder / "example.json").read_text())
    assert example["instances"][0] == dict(X.iloc[0])  # rows as objects of column names
    reqs = (folder / "requirements.txt").read_text().split()
    for dist in ("scikit-learn", "numpy", "scipy", "joblib", "pandas"):
        assert f"{dist}=={metadata.version(dist)}" in reqs
    assert not any(r.startswith(("pytest", "PySide6", "paramiko", "torch")) for r in reqs)  # not her whole env
    answer = served(folder).predict({"instances": json.loads(X[10:15].to_json(orient="records"))})
    assert answer["predictions"] == model.predict(X[10:15]).tolist()
    assert answer["probabilities"] == model.predict_proba(X[10:15]).tolist()


def test_sklearn_on_an_array_takes_rows_as_lists(tmp_path):
    X, y = iris_frame()
    model = sklearn_pipeline(X.to_numpy(), y.to_numpy())
    saved = berth.save_bundle(model, tmp_path / "b", name="iris", version="2.0.0", example=X.to_numpy()[:2])
    assert saved.format == "joblib" and (saved.path / "model.joblib").is_file()
    assert json.loads((saved.path / "example.json").read_text()) == {"instances": X.to_numpy()[:2].tolist()}
    assert not any(r.startswith("pandas") for r in saved.requirements)
    rows = X.to_numpy()[40:60]
    assert served(saved.path).predict({"instances": rows.tolist()})["predictions"] == model.predict(rows).tolist()


def test_a_pipeline_with_a_lambda_is_saved_with_cloudpickle(tmp_path):
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = iris_frame()
    X = X.to_numpy()
    model = make_pipeline(FunctionTransformer(lambda a: a * 2 + 1), LinearRegression()).fit(X, y)
    saved = berth.save_bundle(model, tmp_path / "b", name="lam", version="1.0.0", example=X[:2])
    assert saved.format == "cloudpickle" and "scikit-learn==" + metadata.version("scikit-learn") in saved.requirements
    assert served(saved.path).predict({"instances": X[5:9].tolist()})["predictions"] == model.predict(X[5:9]).tolist()


def test_a_plain_function_and_an_object_of_the_notebook_are_pickled_by_value(tmp_path):
    def total(rows):
        return [sum(r) for r in rows]

    saved = berth.save_bundle(total, tmp_path / "f", name="total", version="1.0.0", example=[[1, 2], [3, 4.5]])
    assert saved.format == "cloudpickle"
    assert saved.requirements == [f"cloudpickle=={metadata.version('cloudpickle')}"]
    assert served(saved.path).predict({"instances": [[1, 1], [2, 2.5]]}) == {"predictions": [2, 4.5]}
    saved = berth.save_bundle(Scorer([0.5, 2]), tmp_path / "o", name="scorer", version="1.0.0", example=[[1, 2]])
    # the class is pickled with its code: a server has no tests/notebook_kit.py to import it from
    # (-I: the tests folder is not on that interpreter's path)
    code = "import cloudpickle, sys; m = cloudpickle.load(open(sys.argv[1], 'rb')); print(m.predict([[2, 1]]))"
    out = subprocess.run([__import__("sys").executable, "-I", "-c", code, saved.path / "model.pkl"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[3.0]", out.stderr


@pytest.mark.slow  # importing torch and exporting the graph: about 25 s
def test_a_torch_module_is_exported_with_a_batch_of_any_size(tmp_path):
    torch = torch_or_skip()

    net = torch_net()
    X, _ = iris_frame()
    saved = berth.save_bundle(net, tmp_path / "net", name="net", version="1.0.0", example=X.to_numpy()[:1])
    assert saved.format == "torch.export" and (saved.path / "model.pt2").is_file()
    assert any(r.startswith("torch==") for r in saved.requirements)
    spec = json.loads((saved.path / "berth_model.json").read_text())
    assert spec["input"] == "tensor" and spec["dtype"] == "float32"
    rows = X.to_numpy()[50:57].tolist()
    with torch.no_grad():
        expected = net(torch.tensor(rows, dtype=torch.float32)).tolist()
    assert served(saved.path).predict({"instances": rows}) == {"predictions": expected}


def test_code_commit_from_the_notebooks_repository(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "train.ipynb").write_text("{}")
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "train"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.chdir(repo)
    saved = berth.save_bundle(Scorer([1]), tmp_path / "a", name="s", version="1.0.0", example=[[1]])
    assert tomllib.loads((saved.path / "berth.toml").read_text())["training"]["code_commit"] == head
    (repo / "train.ipynb").write_text('{"changed": 1}')
    saved = berth.save_bundle(Scorer([1]), tmp_path / "b", name="s", version="1.0.1", example=[[1]])
    assert tomllib.loads((saved.path / "berth.toml").read_text())["training"]["code_commit"] == head + "+dirty"


def test_a_model_holding_a_socket_is_refused_before_anything_is_written(tmp_path):
    conn = socket.socket()
    try:
        with pytest.raises(berth.NotebookError, match="cannot pickle 'socket'.*open it inside the model"):
            berth.save_bundle(lambda rows: conn.send(b"x"), tmp_path / "b", name="b", version="1.0.0",
                              example=[[1, 2]])
    finally:
        conn.close()
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor its staging folder


def test_a_network_that_branches_on_its_input_cannot_be_exported(tmp_path):
    torch = torch_or_skip()

    class Branchy(torch.nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(berth.NotebookError, match="torch.export cannot trace Branchy.forward"):
        berth.save_bundle(Branchy(), tmp_path / "b", name="b", version="1.0.0", example=[[1.0, 2.0], [3.0, 4.0]])
    assert list(tmp_path.iterdir()) == []


GOOD = dict(name="m", version="1.0.0", example=[[1, 2]])


@pytest.mark.parametrize("change, message", [
    ({"name": "My Model"}, "not a bundle name"),
    ({"version": "1.0 final"}, "not a version"),
    ({"example": [1, 2, 3]}, "one-dimensional"),
    ({"example": []}, "no rows"),
    ({"example": "1,2"}, "example is a str"),
    ({"example": [[1, float("nan")]]}, "no NaN"),
    ({"example": [[1, object()]]}, "JSON cannot carry"),
    ({"training": {"accuracy": 0.9}}, "unknown keys"),
    ({"training": {"metrics": {"accuracy": "high"}}}, "a metric is a number"),
    ({"training": {"dataset": "no/such/file.csv"}}, "no such file"),
    ({"requirements": "numpy"}, "list of lines"),
    ({"requirements": ["--index-url https://pkgs.invalid/simple"]}, "would not pass `berth bundle check`.*changes where pip"),
])
def test_each_bad_argument_is_refused_with_what_to_do(tmp_path, change, message):
    with pytest.raises(berth.NotebookError, match=message):
        berth.save_bundle(Scorer([1, 1]), tmp_path / "b", **dict(GOOD, **change))
    assert list(tmp_path.iterdir()) == []


def test_what_is_neither_a_model_nor_callable_is_refused(tmp_path):
    with pytest.raises(berth.NotebookError, match="has no predict.. method and cannot be called"):
        berth.save_bundle(42, tmp_path / "b", **GOOD)


def test_a_folder_with_files_is_never_overwritten(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(berth.NotebookError, match="not empty"):
        berth.save_bundle(Scorer([1, 1]), tmp_path / "b", **GOOD)
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert berth.save_bundle(Scorer([1, 1]), tmp_path / "empty", **GOOD).path == tmp_path / "empty"


@pytest.mark.parametrize("text", ['say "hi"', "back\\slash", "tab\tnew\nline", "\x7f\x01", "Zürich 😀"])
def test_toml_strings_read_back_as_written(text):
    assert tomllib.loads(f"k = {tomlwrite.value(text)}\n{tomlwrite.key(text)} = 1\n") == {"k": text, text: 1}
