"""berth.toml parsing: each bad input gives the key, line and hint an operator needs."""
import datetime

import pytest

from app.bundle import InvalidBundle, Manifest, Problem, parse_manifest
from app.bundle.manifest import NAME_RE, VERSION_RE

VALID = """\
[model]
name = "iris"
version = "1.0.0"
entrypoint = "model:Model"
"""


def errors_of(text):
    manifest, problems = parse_manifest(text)
    errors = [p for p in problems if p.severity == "error"]
    assert manifest is None and errors, problems
    return errors


def only_error(text):
    errors = errors_of(text)
    assert len(errors) == 1, errors
    return errors[0]


def test_valid_minimal_manifest_has_defaults():
    manifest, problems = parse_manifest(VALID)
    assert problems == []
    assert manifest == Manifest(name="iris", version="1.0.0", entrypoint="model:Model")
    assert manifest.runtime == "venv" and manifest.health_timeout_s == 60.0


def test_full_manifest_round_trips_through_json_dict():
    text = VALID + """\
description = "Iris classifier"
authors = ["Ada", "Grace"]
requirements = "requirements.txt"
python = ">=3.9,<3.13"
input_example = "data/example.json"
[training]
dataset = "iris.csv"
dataset_sha256 = "%s"
code_commit = "abc123"
params = { epochs = 10, layers = [1, 2], trained = 2024-05-01T10:00:00Z }
metrics = { accuracy = 0.97, n = 150 }
[serve]
runtime = "venv"
health_timeout_s = 3600
""" % ("0f" * 32)
    manifest, problems = parse_manifest(text)
    assert problems == [], problems
    assert manifest.authors == ("Ada", "Grace")
    assert manifest.health_timeout_s == 3600.0
    assert manifest.training["metrics"] == {"accuracy": 0.97, "n": 150}
    d = manifest.to_dict()
    assert d["authors"] == ["Ada", "Grace"]
    assert d["training"]["params"]["trained"] == "2024-05-01T10:00:00+00:00"
    back = Manifest.from_dict(d)
    assert back.authors == ("Ada", "Grace") and back.input_example == "data/example.json"
    assert back.training["params"]["layers"] == [1, 2]
    assert isinstance(manifest.training["params"]["trained"], datetime.datetime)


def test_toml_syntax_error_reports_its_line():
    error = only_error('[model]\nname = "iris"\nversion = 1.0.0\n')
    assert error.line == 3
    assert error.message.startswith("not valid TOML")
    assert "(at line" not in error.message  # the line is in .line, not repeated in the text
    assert str(error).startswith("berth.toml:3: not valid TOML")


def test_missing_model_table():
    error = only_error('[serve]\nruntime = "venv"\n')
    assert error.key == "model"
    assert "[model] table is missing" in error.message
    assert "name, version and entrypoint" in error.hint


def test_model_that_is_not_a_table():
    error = only_error('model = "iris"\n')
    assert error.key == "model" and error.line == 1
    assert "must be a table, not a string" in error.message


@pytest.mark.parametrize("key", ["name", "version", "entrypoint"])
def test_each_missing_required_key(key):
    text = "\n".join(line for line in VALID.splitlines() if not line.startswith(key)) + "\n"
    error = only_error(text)
    assert error.key == f"model.{key}"
    assert error.message == "required key is missing"
    assert error.line == 1  # the [model] header: where the key has to go
    assert f"add {key} = " in error.hint


@pytest.mark.parametrize("name", ["Iris", "1iris", "a" * 64, "iris_v2", "-iris", ""])
def test_bad_name(name):
    error = only_error(VALID.replace('"iris"', f'"{name}"'))
    assert (error.key, error.line) == ("model.name", 2)
    assert error.message == f"{name!r} is not a valid name"
    assert error.hint == "lowercase letter first, then a-z 0-9 '-', at most 63"
    assert str(error) == f"berth.toml:2: model.name: {name!r} is not a valid name (hint: {error.hint})"


def test_name_of_63_characters_is_fine():
    manifest, problems = parse_manifest(VALID.replace('"iris"', '"%s"' % ("a" + "-9" * 31)))
    assert problems == [] and len(manifest.name) == 63


@pytest.mark.parametrize("version", ["1.0 0", "1" * 65, "", "1.0/2"])
def test_bad_version(version):
    error = only_error(VALID.replace('"1.0.0"', f'"{version}"'))
    assert (error.key, error.line) == ("model.version", 3)
    assert error.message == f"{version!r} is not a valid version"
    assert "1-64" in error.hint


def test_version_of_64_characters_is_fine():
    assert parse_manifest(VALID.replace('"1.0.0"', '"%s"' % ("1" * 64)))[1] == []


def test_name_that_is_not_a_string():
    error = only_error(VALID.replace('"iris"', "42"))
    assert error.key == "model.name" and error.message == "must be a string, not an integer"


@pytest.mark.parametrize("entrypoint, why", [
    ("model", "has no ':' between module and attribute"),
    ("model:", "names no attribute after ':'"),
    (":x", "names no module before ':'"),
    ("1mod:x", "is not made of Python identifiers"),
    ("pkg..mod:x", "is not made of Python identifiers"),
    ("model:Model.predict", "is not made of Python identifiers"),
    ("class:x", "uses a Python keyword as a name"),
])
def test_bad_entrypoint(entrypoint, why):
    error = only_error(VALID.replace('"model:Model"', f'"{entrypoint}"'))
    assert (error.key, error.line) == ("model.entrypoint", 4)
    assert error.message == f"{entrypoint!r} {why}"
    assert "module:attribute" in error.hint


def test_dotted_entrypoint_is_fine():
    manifest, problems = parse_manifest(VALID.replace('"model:Model"', '"pkg.serve:predict"'))
    assert problems == [] and manifest.entrypoint == "pkg.serve:predict"


@pytest.mark.parametrize("spec", [">=3.x", "3.9", "=>3.9", ""])
def test_bad_python_spec(spec):
    error = only_error(VALID + f'python = "{spec}"\n')
    assert (error.key, error.line) == ("model.python", 5)
    assert error.message == f"{spec!r} is not a valid Python version specifier"
    assert "PEP 440" in error.hint


@pytest.mark.parametrize("authors", ['"Ada"', '["Ada", 1]', '[["Ada"]]'])
def test_authors_not_a_list_of_strings(authors):
    error = only_error(VALID + f"authors = {authors}\n")
    assert (error.key, error.line) == ("model.authors", 5)
    assert error.message == "must be a list of strings"


@pytest.mark.parametrize("path, why", [
    ("/etc/passwd", "is absolute"),
    ("../requirements.txt", "goes outside the bundle ('..')"),
    ("deps/../../r.txt", "goes outside the bundle ('..')"),
    ("deps\\\\r.txt", "uses backslashes"),
    ("", "is empty"),
])
def test_requirements_path_must_stay_inside(path, why):
    error = only_error(VALID + f'requirements = "{path}"\n')
    assert error.key == "model.requirements" and error.line == 5
    assert error.message.endswith(why)


@pytest.mark.parametrize("metrics, bad", [
    ('{ accuracy = "high" }', "must be a number, not a string"),
    ("{ accuracy = true }", "must be a number, not a boolean"),
    ("{ per_class = { setosa = 1.0 } }", "must be a number, not a table"),
    ("{ scores = [0.9, 0.8] }", "must be a number, not an array"),
])
def test_metrics_must_be_flat_numbers(metrics, bad):
    error = only_error(VALID + f"[training]\nmetrics = {metrics}\n")
    assert error.key.startswith("training.metrics.")
    assert error.message == bad
    assert error.line == 6
    assert "params" in error.hint


def test_metrics_as_a_table_section_points_at_the_bad_line():
    error = only_error(VALID + '[training.metrics]\naccuracy = 0.9\nf1 = "good"\n')
    assert (error.key, error.line) == ("training.metrics.f1", 7)


@pytest.mark.parametrize("digest, hint", [
    ("abc", "64 lowercase hex digits"),
    ("g" * 64, "64 lowercase hex digits"),
    ("AB" * 32, "use lowercase hex"),
])
def test_dataset_sha256_must_be_lowercase_hex(digest, hint):
    error = only_error(VALID + f'[training]\ndataset_sha256 = "{digest}"\n')
    assert (error.key, error.line) == ("training.dataset_sha256", 6)
    assert error.message == f"{digest!r} is not a sha256 digest"
    assert hint in error.hint


def test_runtime_container_with_its_image_and_limits_is_valid():
    m, problems = parse_manifest(VALID + '[serve]\nruntime = "container"\nimage = "registry.example.com:5000/team/py:3.11"\n'
                                    'memory = "512M"\ncpus = 1.5\n')
    assert not [p for p in problems if p.severity == "error"], problems
    assert (m.runtime, m.image, m.memory, m.cpus) == ("container", "registry.example.com:5000/team/py:3.11", "512m", 1.5)


@pytest.mark.parametrize("key, value", [("image", '"py; rm -rf /"'), ("image", '"$(id)"'), ("image", '"Py:3"'),
                                        ("image", '"py:3 x"'), ("memory", '"lots"'), ("memory", '"5 m"'),
                                        ("cpus", "0"), ("cpus", '"2"')])
def test_container_keys_refuse_bad_values(key, value):
    error = only_error(VALID + f'[serve]\nruntime = "container"\n{key} = {value}\n')
    assert error.key == f"serve.{key}"


def test_runtime_bogus():
    error = only_error(VALID + '[serve]\nruntime = "bogus"\n')
    assert error.key == "serve.runtime" and error.message == "'bogus' is not a runtime"
    assert '"venv"' in error.hint


@pytest.mark.parametrize("value, message", [
    ("-5", "-5 is out of range"),
    ("0", "0 is out of range"),
    ("3601", "3601 is out of range"),
    ("nan", "nan is out of range"),
    ('"60"', "must be a number, not a string"),
    ("true", "must be a number, not a boolean"),
])
def test_bad_health_timeout(value, message):
    error = only_error(VALID + f"[serve]\nhealth_timeout_s = {value}\n")
    assert (error.key, error.line) == ("serve.health_timeout_s", 6)
    assert error.message == message
    assert "3600" in error.hint


@pytest.mark.parametrize("value, message", [
    ("80", "80 is out of range"),
    ("1023", "1023 is out of range"),
    ("65536", "65536 is out of range"),
    ("-1", "-1 is out of range"),
    ('"18000"', "must be an integer, not a string"),
    ("18000.0", "must be an integer, not a float"),
    ("true", "must be an integer, not a boolean"),
])
def test_bad_serve_port(value, message):
    error = only_error(VALID + f"[serve]\nport = {value}\n")
    assert (error.key, error.line, error.message) == ("serve.port", 6, message)
    assert "1024 to 65535" in error.hint


def test_serve_port_is_kept_and_defaults_to_none():
    assert parse_manifest(VALID)[0].port is None
    manifest, _ = parse_manifest(VALID + "[serve]\nport = 18123\n")
    assert manifest.port == 18123 and manifest.to_dict()["port"] == 18123


@pytest.mark.parametrize("value, message", [
    ("0", "0 is out of range"),
    ("65", "65 is out of range"),
    ("-2", "-2 is out of range"),
    ('"two"', "must be an integer, not a string"),
    ("2.0", "must be an integer, not a float"),
    ("true", "must be an integer, not a boolean"),
])
def test_bad_serve_workers(value, message):
    error = only_error(VALID + f"[serve]\nworkers = {value}\n")
    assert (error.key, error.line, error.message) == ("serve.workers", 6, message)
    assert "from 1 to 64" in error.hint


def test_serve_workers_is_kept_and_defaults_to_one():
    assert parse_manifest(VALID)[0].workers == 1
    manifest, _ = parse_manifest(VALID + "[serve]\nworkers = 64\n")
    assert manifest.workers == 64 and manifest.to_dict()["workers"] == 64


def test_bundle_check_refuses_bad_workers(capsys, tmp_path):
    from tests.cli_kit import berth, iris_copy
    folder = iris_copy(tmp_path)
    toml = (folder / "berth.toml").read_text()
    assert toml.rstrip().splitlines()[-1].startswith("input_schema")  # [serve] is the last table
    for value in ("0", "65", '"two"'):
        (folder / "berth.toml").write_text(toml + f"workers = {value}\n")
        r = berth(capsys, "bundle", "check", folder)
        assert r.code == 1 and "serve.workers" in r.err and "from 1 to 64" in r.err, r


@pytest.mark.parametrize("value, message", [
    ("-1", "-1 is out of range"),
    ("65", "65 is out of range"),
    ('"4"', "must be an integer, not a string"),
    ("2.0", "must be an integer, not a float"),
    ("true", "must be an integer, not a boolean"),
])
def test_bad_serve_model_threads(value, message):
    error = only_error(VALID + f"[serve]\nmodel_threads = {value}\n")
    assert (error.key, error.line, error.message) == ("serve.model_threads", 6, message)
    assert "0 to 64" in error.hint


@pytest.mark.parametrize("value", [0, 1, 64])
def test_serve_model_threads_is_kept_and_defaults_to_none(value):
    assert parse_manifest(VALID)[0].model_threads is None
    manifest, _ = parse_manifest(VALID + f"[serve]\nmodel_threads = {value}\n")
    assert manifest.model_threads == value and manifest.to_dict()["model_threads"] == value


def test_unknown_keys_are_warnings_only():
    text = VALID + 'licence = "MIT"\n[training]\nseed = 1\n[deploy]\nhosts = 2\n'
    manifest, problems = parse_manifest(text)
    assert manifest is not None
    assert [(p.severity, p.key, p.line) for p in problems] == [
        ("warning", "model.licence", 5), ("warning", "training.seed", 7), ("warning", "deploy", 8)]
    assert "unknown table [deploy]" in problems[2].message
    assert str(problems[0]).startswith("berth.toml:5: warning: model.licence: unknown key, ignored")


def test_unknown_key_close_to_a_known_one_suggests_it():
    manifest, problems = parse_manifest(VALID + 'descripton = "x"\n')
    assert manifest is not None and problems[0].hint == "did you mean 'description'?"


def test_several_errors_reported_at_once_errors_first_in_line_order():
    text = """\
[model]
name = "Iris"
version = "1 0"
entrypoint = "model"
colour = "blue"
[serve]
runtime = "vm"
health_timeout_s = -1
"""
    manifest, problems = parse_manifest(text)
    assert manifest is None
    assert [(p.severity, p.key, p.line) for p in problems] == [
        ("error", "model.name", 2), ("error", "model.version", 3), ("error", "model.entrypoint", 4),
        ("error", "serve.runtime", 7), ("error", "serve.health_timeout_s", 8), ("warning", "model.colour", 5)]


def test_line_lookup_ignores_lookalikes_in_comments_strings_and_other_tables():
    text = '# name = "x"\n[serve]\nname = 1\n[model]\ndescription = """\nname = "no"\n"""\nname = "Bad"\nversion = "1"\nentrypoint = "m:f"\n'
    errors = errors_of(text)
    assert [(e.key, e.line) for e in errors] == [("model.name", 8)]


def test_problem_without_line_or_key_prints_cleanly():
    assert str(Problem("error", "berth.toml not found")) == "berth.toml: berth.toml not found"


def test_invalid_bundle_message_is_the_first_error_and_a_count():
    _, problems = parse_manifest('[model]\nname = "Iris"\nversion = "1 0"\nentrypoint = "m:f"\nx = 1\n')
    exc = InvalidBundle(problems)
    assert exc.problems == problems
    assert str(exc) == str(problems[0]) + " (and 2 more problems)"
    assert str(InvalidBundle(problems[:1])) == str(problems[0])


def test_regexes_are_exported_with_fullmatch_semantics():
    assert NAME_RE.fullmatch("iris-2") and not NAME_RE.fullmatch("iris!")
    assert VERSION_RE.fullmatch("1.0.0+local_1-rc") and not VERSION_RE.fullmatch("1 0")
