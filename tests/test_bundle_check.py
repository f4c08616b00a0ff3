"""check_folder / check_path / open_bundle / init_bundle on real bundles on disk."""
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from app.bundle import (BundleError, InvalidBundle, UnsafeArchive, check_folder, check_path, content_sha256,
                        init_bundle, list_files, open_bundle, pack)

MANIFEST = """\
[model]
name = "iris"
version = "1.0.0"
entrypoint = "model:Model"
"""
MODEL = "class Model:\n    def predict(self, data):\n        return data\n"


def bundle(folder, manifest=MANIFEST, files=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "berth.toml").write_text(manifest)
    for name, text in ({"model.py": MODEL} if files is None else files).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def only_error(result):
    assert not result.ok and len(result.errors) == 1, result.problems
    return result.errors[0]


def test_valid_bundle_is_ok(tmp_path):
    result = check_folder(bundle(tmp_path / "b"))
    assert result.ok and result.problems == [] and result.manifest.name == "iris"


def test_missing_berth_toml(tmp_path):
    (tmp_path / "b").mkdir()
    error = only_error(check_folder(tmp_path / "b"))
    assert error.file == "berth.toml" and error.message == "berth.toml not found at the bundle root"
    assert "[model]" in error.hint


def test_toml_syntax_error_keeps_its_line(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", MANIFEST + "python = >=3.9\n")))
    assert (error.file, error.line) == ("berth.toml", 5)


def test_missing_entrypoint_module(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", files={})))
    assert (error.key, error.line) == ("model.entrypoint", 4)
    assert error.message == "module 'model' not found: expected model.py or model/__init__.py"


@pytest.mark.parametrize("path", ["pkg/serve.py", "pkg/serve/__init__.py"])
def test_dotted_entrypoint_finds_module_file_or_package(tmp_path, path):
    manifest = MANIFEST.replace("model:Model", "pkg.serve:predict")
    result = check_folder(bundle(tmp_path / "b", manifest, {path: "def predict(x):\n    return x\n"}))
    assert result.ok and result.problems == []


def test_entrypoint_module_only_in_junk_does_not_count(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", files={"__pycache__/model.py": MODEL})))
    assert error.key == "model.entrypoint" and "not found" in error.message


def test_entrypoint_module_with_syntax_error(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", files={"model.py": "class Model:\n    def (\n"})))
    assert (error.file, error.line, error.key) == ("model.py", 2, "model.entrypoint")
    assert error.message.startswith("syntax error")


def test_entrypoint_attribute_not_defined_is_a_warning(tmp_path):
    result = check_folder(bundle(tmp_path / "b", files={"model.py": "def predict(x):\n    return x\n"}))
    assert result.ok
    assert [(w.key, w.message) for w in result.warnings] == [
        ("model.entrypoint", "model.py does not define 'Model' at top level")]


def test_entrypoint_attribute_defined_by_import_or_condition_is_found(tmp_path):
    source = "try:\n    from impl import Model\nexcept ImportError:\n    Model = None\n"
    files = {"model.py": source, "impl.py": MODEL}
    assert check_folder(bundle(tmp_path / "b", files=files)).problems == []


def test_requirements_missing(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", MANIFEST + 'requirements = "requirements.txt"\n')))
    assert (error.file, error.key, error.line) == ("berth.toml", "model.requirements", 5)
    assert error.message == "'requirements.txt' not found in the bundle"


def test_requirements_that_is_a_folder(tmp_path):
    folder = bundle(tmp_path / "b", MANIFEST + 'requirements = "deps"\n')
    (folder / "deps").mkdir()
    assert only_error(check_folder(folder)).message == "'deps' is a folder, not a file"


def test_undeclared_requirements_txt_is_a_warning(tmp_path):
    result = check_folder(bundle(tmp_path / "b", files={"model.py": MODEL, "requirements.txt": "numpy\n"}))
    assert result.ok and [w.key for w in result.warnings] == ["model"]
    assert "not declared" in result.warnings[0].message


def test_input_example_missing(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", MANIFEST + 'input_example = "example.json"\n')))
    assert (error.key, error.line) == ("model.input_example", 5)
    assert error.message == "'example.json' not found in the bundle"


def test_input_example_not_json(tmp_path):
    files = {"model.py": MODEL, "ex/example.json": '{\n  "features": [1, 2,]\n}\n'}
    error = only_error(check_folder(bundle(tmp_path / "b", MANIFEST + 'input_example = "ex/example.json"\n', files)))
    assert (error.file, error.line, error.key) == ("ex/example.json", 2, "model.input_example")
    assert error.message.startswith("not valid JSON")
    assert str(error).startswith("ex/example.json:2: model.input_example: not valid JSON")


def test_unknown_key_is_a_warning_and_ok_stays_true(tmp_path):
    result = check_folder(bundle(tmp_path / "b", MANIFEST + 'licence = "MIT"\n'))
    assert result.ok and result.errors == []
    assert [(w.key, w.line) for w in result.warnings] == [("model.licence", 5)]


def test_several_errors_are_all_reported_at_once(tmp_path):
    manifest = MANIFEST.replace('"iris"', '"Iris"') + 'requirements = "req.txt"\ninput_example = "ex.json"\n'
    manifest += "[serve]\nhealth_timeout_s = -1\n"
    folder = bundle(tmp_path / "b", manifest, {"ex.json": "{oops"})
    result = check_folder(folder)
    assert [(p.file, p.key, p.line) for p in result.errors] == [
        ("berth.toml", "model.name", 2), ("berth.toml", "model.entrypoint", 4),
        ("berth.toml", "model.requirements", 5), ("berth.toml", "serve.health_timeout_s", 8),
        ("ex.json", "model.input_example", 1)]
    assert result.manifest is None


def test_link_leaving_the_folder_is_an_error(tmp_path):
    folder = bundle(tmp_path / "b")
    os.symlink("/etc/passwd", folder / "passwd")
    error = only_error(check_folder(folder))
    assert error.file == "passwd" and "symlink points outside the bundle" in error.message


# --- archives and open_bundle --------------------------------------------------------------

def test_check_path_on_a_packed_archive(tmp_path):
    pack(bundle(tmp_path / "b"), tmp_path / "b.tar.gz")
    result = check_path(tmp_path / "b.tar.gz")
    assert result.ok and result.manifest.version == "1.0.0"


def test_check_path_reports_problems_inside_an_archive(tmp_path):
    pack(bundle(tmp_path / "b", files={}), tmp_path / "b.tar.gz")
    assert only_error(check_path(tmp_path / "b.tar.gz")).key == "model.entrypoint"


def test_check_path_on_an_unsafe_archive_is_one_error_named_after_it(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("../escape"), io.BytesIO(b""))
    error = only_error(check_path(archive))
    assert error.file == "evil.tar.gz"
    assert error.message.startswith("member '../escape' path goes outside the bundle")
    assert not (tmp_path / "escape").exists()


def test_check_path_on_nothing(tmp_path):
    assert only_error(check_path(tmp_path / "nope")).message == "no such file or folder"


def test_open_bundle_folder_and_archive_share_identity(tmp_path):
    folder = bundle(tmp_path / "b", MANIFEST + "extra = 1\n")
    pack(folder, tmp_path / "b.tar.gz")
    with open_bundle(folder) as from_folder:
        assert from_folder.folder == folder.absolute()
        assert from_folder.sha256 == content_sha256(list_files(folder))
        assert [w.key for w in from_folder.warnings] == ["model.extra"]
    with open_bundle(tmp_path / "b.tar.gz") as from_archive:
        temp = from_archive.folder
        assert (temp / "model.py").read_text() == MODEL
        assert from_archive.sha256 == from_folder.sha256
        assert [f.path for f in from_archive.files] == ["berth.toml", "model.py"]
        assert from_archive.manifest == from_folder.manifest
    assert not temp.exists() and folder.exists()


def test_open_bundle_raises_invalid_bundle_with_every_problem(tmp_path):
    folder = bundle(tmp_path / "b", MANIFEST.replace('"1.0.0"', '"1 0"'), {})
    pack(folder, tmp_path / "b.tar.gz")
    with pytest.raises(InvalidBundle) as caught:
        open_bundle(tmp_path / "b.tar.gz")
    assert [p.key for p in caught.value.problems] == ["model.version", "model.entrypoint"]
    assert str(caught.value).startswith("berth.toml:3: model.version: '1 0' is not a valid version")
    assert str(caught.value).endswith("(and 1 more problem)")


def test_open_bundle_refuses_an_unsafe_archive(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(UnsafeArchive, match="link to an absolute path"):
        open_bundle(archive)


# --- init ------------------------------------------------------------------------------------

RUN_ENTRYPOINT = """
import importlib, inspect, json, sys
sys.path.insert(0, ".")
module, _, attr = sys.argv[1].partition(":")
obj = getattr(importlib.import_module(module), attr)
predict = obj().predict if inspect.isclass(obj) else obj
with open(sys.argv[2]) as f:
    print(json.dumps(predict(json.load(f))))
"""


def test_init_bundle_passes_check_and_its_entrypoint_runs(tmp_path):
    folder = tmp_path / "new"
    written = init_bundle(folder, "iris-classifier")
    assert sorted(p.name for p in written) == ["README.md", "berth.toml", "example.json", "model.py"]
    result = check_folder(folder)
    assert result.ok and result.problems == [], result.problems
    manifest = result.manifest
    assert (manifest.name, manifest.entrypoint, manifest.input_example) == ("iris-classifier", "model:Model", "example.json")
    run = subprocess.run([sys.executable, "-c", RUN_ENTRYPOINT, manifest.entrypoint, manifest.input_example],
                         cwd=folder, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"score": 3.575}


def test_init_bundle_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not empty"):
        init_bundle(tmp_path / "taken", "iris")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("name", ["Iris", "1iris", "a" * 64])
def test_init_bundle_refuses_a_bad_name(tmp_path, name):
    with pytest.raises(BundleError, match="is not a valid bundle name"):
        init_bundle(tmp_path / "b", name)
    assert not (tmp_path / "b").exists()
