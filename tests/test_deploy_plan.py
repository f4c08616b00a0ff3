"""What a deploy would change (app/deploy/plan.py): plain values, no Qt, no server except the
`plan_deploy` test, which asks the real `local` agent."""
import dataclasses

import pytest

from app.bundle import Manifest, check_path
from app.deploy.plan import compare, plan_deploy

TRAINING = {
    "dataset": "data/iris.csv", "dataset_sha256": "aaa", "code_commit": "c1",
    "params": {"epochs": 3000, "lr": 0.1, "seed": 42},
    "metrics": {"accuracy": 0.9, "log_loss": 0.2, "n_test": 30},
}


def manifest(version="1.1.0", **training) -> Manifest:
    return Manifest(name="iris", version=version, entrypoint="model:Model", training=dict(TRAINING, **training))


def old(version="1.0.0", **training) -> dict:
    return manifest(version, **training).to_dict()


def test_first_deploy_has_no_old_side():
    plan = compare(None, manifest())
    assert plan.old_version is None and plan.first_deploy and not plan.same_version
    assert plan.version_text == "iris 1.1.0 (first deploy)"
    assert [(r.name, r.old, r.new, r.delta) for r in plan.metrics] == [
        ("accuracy", None, 0.9, None), ("log_loss", None, 0.2, None), ("n_test", None, 30, None)]
    assert plan.dataset.new_dataset == "data/iris.csv" and plan.dataset.old_dataset is None


def test_versions_and_metric_deltas():
    new = manifest(metrics={"accuracy": 0.95, "log_loss": 0.1, "n_test": 30})
    plan = compare(old(), new)
    assert (plan.old_version, plan.new_version, plan.same_version) == ("1.0.0", "1.1.0", False)
    assert plan.version_text == "iris 1.0.0 → 1.1.0"
    rows = {r.name: r for r in plan.metrics}
    assert rows["accuracy"].delta == pytest.approx(0.05) and rows["accuracy"].improved is True
    assert rows["log_loss"].delta == pytest.approx(-0.1) and rows["log_loss"].improved is True  # lower is better
    assert rows["n_test"].delta == 0 and not rows["n_test"].changed and rows["n_test"].improved is None
    assert not plan.dataset.changed and not plan.code_commit.changed and plan.params == []


def test_worse_metric_is_not_an_improvement():
    rows = {r.name: r for r in compare(old(), manifest(metrics={"accuracy": 0.8, "log_loss": 0.3})).metrics}
    assert rows["accuracy"].improved is False and rows["log_loss"].improved is False


def test_metrics_are_the_union_of_both_sides():
    plan = compare(old(metrics={"accuracy": 0.9, "old_only": 1}), manifest(metrics={"f1": 0.7, "accuracy": 0.91}))
    assert [(r.name, r.old, r.new) for r in plan.metrics] == [
        ("f1", None, 0.7), ("accuracy", 0.9, 0.91), ("old_only", 1, None)]
    assert {r.name: r.delta for r in plan.metrics}["f1"] is None


def test_non_numeric_metrics_and_booleans_have_no_delta():
    plan = compare(old(metrics={"grade": "B", "ok": False}), manifest(metrics={"grade": "A", "ok": True}))
    assert all(r.delta is None and r.changed for r in plan.metrics)


def test_dataset_code_and_params_changes():
    new = manifest(dataset="data/iris-v2.csv", dataset_sha256="bbb", code_commit="c2",
                   params={"epochs": 5000, "lr": 0.1, "momentum": 0.9})
    plan = compare(old(), new)
    d = plan.dataset
    assert d.changed and (d.old_dataset, d.old_sha256, d.new_dataset, d.new_sha256) == (
        "data/iris.csv", "aaa", "data/iris-v2.csv", "bbb")
    assert plan.code_commit.changed and (plan.code_commit.old, plan.code_commit.new) == ("c1", "c2")
    assert [(p.name, p.old, p.new) for p in plan.params] == [
        ("epochs", 3000, 5000), ("momentum", None, 0.9), ("seed", 42, None)]


def test_same_data_under_another_name_is_noticed():
    plan = compare(old(), manifest(dataset="data/renamed.csv"))
    assert plan.dataset.changed and plan.dataset.same_data_renamed


def test_same_version_is_flagged():
    plan = compare(old("1.1.0"), manifest("1.1.0"))
    assert plan.same_version and not plan.first_deploy


def test_manifest_without_training_table():
    bare = Manifest(name="echo", version="2.0.0", entrypoint="model:Model")
    plan = compare({"name": "echo", "version": "1.0.0", "training": {}}, bare)
    assert plan.metrics == [] and plan.params == [] and not plan.dataset.changed and plan.old_version == "1.0.0"


def test_plan_asks_the_server_for_the_current_release(tmp_path, berth_home, stop_local_runners):
    from cli_kit import iris_copy

    from app.deploy.deploy import Deploy
    from app.remote.local import LocalTransport
    from app.workspace import Workspace

    root = berth_home / "local"
    with LocalTransport(str(root)) as transport:
        first = check_path(iris_copy(tmp_path, "1.0.0")).manifest
        plan = plan_deploy(transport, first)
        assert plan.first_deploy and plan.server == "local" and plan.known_versions == ()

        for _ in Deploy(transport, iris_copy(tmp_path, "1.0.0"), Workspace().audit).run():
            pass
        second = check_path(iris_copy(tmp_path, "1.1.0")).manifest
        second = dataclasses.replace(second, training=dict(second.training, metrics=dict(
            second.training["metrics"], accuracy=0.9667)))
        plan = plan_deploy(transport, second)
    assert plan.version_text == "iris 1.0.0 → 1.1.0" and plan.known_versions == ("1.0.0",)
    row = {r.name: r for r in plan.metrics}["accuracy"]
    assert (row.old, row.new) == (0.9333, 0.9667) and row.improved
    assert not plan.dataset.changed
