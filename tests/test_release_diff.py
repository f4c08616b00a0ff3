"""`berth diff`, `berth releases --json` and the "what changes" lines of `berth deploy`: two real
releases of the iris example on `local`, the second with other params, metrics, requirements and
files; and the comparison's pieces on their own."""
import pytest

from app.deploy.release_diff import diff_releases, requirement_lines, requirements_diff
from cli_kit import berth, iris_copy


def test_requirement_names_are_compared_as_pep_503_says_and_options_are_left_out():
    text = "# pinned\nScikit_Learn==1.4.2  # the model\n\n-r base.txt\n--hash=sha256:abc\nnumpy>=1.26\n"
    assert requirement_lines(text) == {"scikit-learn": "Scikit_Learn==1.4.2", "numpy": "numpy>=1.26"}
    changes = requirements_diff("scikit-learn==1.3.0\nnumpy>=1.26\njoblib", "scikit.learn==1.4.2\nnumpy>=1.26\nscipy")
    assert [(c.name, c.old, c.new) for c in changes] == [
        ("scikit-learn", "scikit-learn==1.3.0", "scikit.learn==1.4.2"), ("scipy", None, "scipy"),
        ("joblib", "joblib", None)]


def test_files_are_compared_by_content_not_by_name_alone():
    old = {"version": "1", "sha256": "a", "manifest": {"name": "m"},
           "files": [{"path": "model.py", "sha256": "1"}, {"path": "old.pkl", "sha256": "2"},
                     {"path": "same.txt", "sha256": "3"}]}
    new = {"version": "2", "sha256": "b", "manifest": {"name": "m"},
           "files": [{"path": "model.py", "sha256": "9"}, {"path": "new.pkl", "sha256": "2"},
                     {"path": "same.txt", "sha256": "3"}]}
    d = diff_releases(old, new)
    assert (d.files_added, d.files_removed, d.files_changed) == (["new.pkl"], ["old.pkl"], ["model.py"])
    assert not d.same_content and diff_releases(old, dict(old, version="1b")).same_content


@pytest.fixture
def two_releases(capsys, tmp_path, stop_local_runners):
    """iris 1.0.0 as shipped, then 2.0.0: learning_rate 0.05, accuracy 0.9667, a requirements file and
    a notes file added, berth.toml changed."""
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    v2 = iris_copy(tmp_path, "2.0.0")
    toml = (v2 / "berth.toml").read_text()
    toml = toml.replace("learning_rate = 0.1,", "learning_rate = 0.05,").replace("accuracy = 0.9333,", "accuracy = 0.9667,")
    toml = toml.replace('input_example = "example.json"', 'input_example = "example.json"\nrequirements = "requirements.txt"')
    (v2 / "berth.toml").write_text(toml)
    (v2 / "requirements.txt").write_text("# nothing the model imports; pip has it already\npip\n")
    (v2 / "notes.txt").write_text("what changed\n")
    r = berth(capsys, "deploy", v2, "--server", "local")
    assert r.code == 0, r
    return r


def test_deploy_prints_what_changes_before_it_starts(two_releases):
    err = two_releases.err
    assert "What changes: iris 1.0.0 → 2.0.0" in err
    assert "accuracy        0.9333 → 0.9667  (+0.0334, better)" in err
    assert "learning_rate  0.1 → 0.05" in err
    assert err.index("What changes") < err.index("Uploading")  # before anything is sent


def test_diff_names_params_metrics_requirements_and_files(capsys, two_releases):
    r = berth(capsys, "diff", "iris", "1.0.0", "2.0.0", "--server", "local")
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "iris 1.0.0 → 2.0.0"
    assert "  learning_rate  0.1 → 0.05" in lines and "  pip  (none) → pip" in lines
    assert "files: 2 added, 0 removed, 1 changed" in lines and "  ~ berth.toml" in lines
    assert "data set: data/iris.csv, sha256 9cc1c345c71b (unchanged)" in lines

    d = berth(capsys, "diff", "iris", "1.0.0", "2.0.0", "--server", "local", "--json").json()
    assert d["server"] == "local" and (d["old"]["version"], d["new"]["version"]) == ("1.0.0", "2.0.0")
    acc = next(m for m in d["metrics"] if m["name"] == "accuracy")
    assert (acc["old"], acc["new"], acc["improved"]) == (0.9333, 0.9667, True) and acc["delta"] == pytest.approx(0.0334)
    assert d["params"] == [{"name": "learning_rate", "old": 0.1, "new": 0.05}]
    assert d["requirements"] == [{"name": "pip", "old": None, "new": "pip"}]
    assert d["files"] == {"added": ["notes.txt", "requirements.txt"], "removed": [], "changed": ["berth.toml"]}

    rel = berth(capsys, "releases", "iris", "--server", "local", "--json").json()
    assert [(x["version"], x["requirements"]) for x in rel] == [("1.0.0", []), ("2.0.0", ["pip"])]
    assert rel[1]["training"]["params"]["learning_rate"] == 0.05


def test_diff_of_a_version_that_is_not_there_names_the_ones_that_are(capsys, two_releases):
    r = berth(capsys, "diff", "iris", "1.0.0", "3.0", "--server", "local")
    assert (r.code, r.out) == (1, "") and r.err.strip() == "berth: iris has no release 3.0 on local (it has 1.0.0, 2.0.0)"
    r = berth(capsys, "diff", "iriss", "1.0.0", "2.0.0", "--server", "local")
    assert r.code == 1 and "did you mean iris?" in r.err
    r = berth(capsys, "diff", "iris", "1.0.0", "../etc", "--server", "local")
    assert r.code != 0 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r
