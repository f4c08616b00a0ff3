"""The agent's read-only `example` query: a release's input example, parsed, and never a file
outside that release's bundle folder."""
import json
import os
from pathlib import Path

import pytest

from agent_kit import call, deploy, make_bundle, stop_all
from app.agent.layout import Root


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    yield r
    stop_all(r)


@pytest.fixture
def two_releases(root, tmp_path):
    v1 = make_bundle(tmp_path / "v1")
    v2 = make_bundle(tmp_path / "v2", version="2.0.0")
    (v2 / "example.json").write_text('{"x": 2, "list": [1, 2]}')
    for folder in (v1, v2):
        result, error, _ = deploy(root, folder)
        assert error is None, error
    return root


def release_json(root, version, model="echo"):
    return Path(Root(str(root)).model(model).release(version)) / "release.json"


def edit_manifest(root, version, **changes):
    path = release_json(root, version)
    info = json.loads(path.read_text())
    info["manifest"].update(changes)
    path.write_text(json.dumps(info))


def test_example_of_current_and_of_a_given_version(two_releases):
    result, error, _ = call(two_releases, "example", model="echo")
    assert error is None, error
    assert result == {"version": "2.0.0", "example": {"x": 2, "list": [1, 2]}}
    result, error, _ = call(two_releases, "example", model="echo", version="1.0.0")
    assert error is None and result == {"version": "1.0.0", "example": {"x": 1}}


def test_no_example_is_null(root, tmp_path):
    result, error, _ = deploy(root, make_bundle(tmp_path / "plain", example=False))
    assert error is None, error
    result, error, _ = call(root, "example", model="echo")
    assert error is None and result == {"version": "1.0.0", "example": None}


def test_unknown_model_version_and_bad_names(two_releases):
    _, error, _ = call(two_releases, "example", model="echo", version="9.9.9")
    assert error["code"] == "no_release"
    _, error, _ = call(two_releases, "example", model="nothing")
    assert error["code"] == "nothing_deployed"
    _, error, _ = call(two_releases, "example", model="../echo")
    assert error["code"] == "usage"
    _, error, _ = call(two_releases, "example", model="echo", version="../1.0.0")
    assert error["code"] == "usage"


@pytest.mark.parametrize("bad", ["../release.json", "../../../../../../etc/passwd", "/etc/passwd",
                                 "sub/../../release.json", "./../release.json", "a\\..\\b", "."])
def test_manifest_path_leaving_the_bundle_is_refused(two_releases, bad):
    edit_manifest(two_releases, "2.0.0", input_example=bad)
    result, error, _ = call(two_releases, "example", model="echo")
    assert result is None and error["code"] == "bad_example", error
    assert "input_example" in error["message"]


def test_link_pointing_out_of_the_bundle_is_refused(two_releases, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"secret": true}')
    bundle = Path(Root(str(two_releases)).model("echo").release("2.0.0")) / "bundle"
    os.symlink(secret, bundle / "link.json")
    edit_manifest(two_releases, "2.0.0", input_example="link.json")
    result, error, _ = call(two_releases, "example", model="echo")
    assert result is None and error["code"] == "bad_example"


def test_example_that_is_not_json_says_so(two_releases):
    bundle = Path(Root(str(two_releases)).model("echo").release("2.0.0")) / "bundle"
    (bundle / "example.json").write_bytes(b"{not json\xff")
    result, error, _ = call(two_releases, "example", model="echo")
    assert error["code"] == "bad_example" and "not valid JSON" in error["message"]


def test_a_dot_slash_path_is_the_bundle_s_own_file(two_releases):
    """`berth bundle check` accepts `./example.json`; the agent reads the same file, not an error."""
    edit_manifest(two_releases, "2.0.0", input_example="./example.json")
    result, error, _ = call(two_releases, "example", model="echo")
    assert error is None and result["example"] == {"x": 2, "list": [1, 2]}, error


def test_the_health_check_never_reads_a_file_outside_the_bundle(two_releases):
    """start health-checks with the manifest's example: the same rule as the `example` query."""
    call(two_releases, "stop", model="echo")
    edit_manifest(two_releases, "2.0.0", input_example="../release.json")
    result, error, _ = call(two_releases, "start", model="echo")
    assert result is None and error["code"] == "bad_example", error
