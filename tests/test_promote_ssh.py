"""Promotion and labels over a real OpenSSH server (tests/sshd.py): a release with a file bigger
than one `release_read` piece is copied from one root and deployed to another with the same
sha256; require_staging_first holds over SSH; `berth feedback` sends a CSV through the session."""
import json
import os

import pytest

from agent_kit import stop_all
from cli_kit import berth, iris_copy
from labels_kit import predict


@pytest.fixture
def servers(capsys, sshd, tmp_path, berth_home):
    roots = {"stg": tmp_path / "stg root", "prd": tmp_path / "prd root"}
    for name, env in (("stg", "staging"), ("prd", "production")):
        r = berth(capsys, "server", "add", name, "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
                  "--key", sshd.key_path, "--root", str(roots[name]), "--env", env, "--accept-host-key", sshd.fingerprint)
        assert r.code == 0, r
    yield roots
    for root in roots.values():
        stop_all(root)


def current_sha(capsys, server):
    rows = berth(capsys, "releases", "iris", "--server", server, "--json").json()
    return next(r["sha256"] for r in rows if r["current"])


def test_promote_over_ssh_copies_the_exact_release(capsys, tmp_path, servers):
    folder = iris_copy(tmp_path)
    (folder / "weights.bin").write_bytes(os.urandom(2 * 1024 * 1024 + 17))  # three release_read pieces
    assert berth(capsys, "settings", "set", "require_staging_first", "true").code == 0
    r = berth(capsys, "deploy", folder, "--server", "prd")
    assert r.code == 1 and "has run on no server yet" in r.err, r
    assert berth(capsys, "deploy", folder, "--server", "stg").code == 0
    r = berth(capsys, "promote", "iris", "--from", "stg", "--to", "prd")
    assert r.code == 0, r
    assert current_sha(capsys, "prd") == current_sha(capsys, "stg")
    assert (servers["prd"] / "models/iris/current/bundle/weights.bin").read_bytes() == (folder / "weights.bin").read_bytes()


def test_feedback_over_ssh(capsys, tmp_path, servers):
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "stg").code == 0
    root = servers["stg"]
    port = json.loads((root / "models/iris/endpoint.json").read_text())["port"]
    status, answer, _ = predict(port, root, "iris", {"features": [5.1, 3.5, 1.4, 0.2]}, "ssh-1")
    assert status == 200
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\nssh-1,%s\n" % answer["class"])
    r = berth(capsys, "feedback", "iris", "--server", "stg", "--file", labels)
    assert r.code == 0 and "1 label(s) kept" in r.out, r
    r = berth(capsys, "feedback", "iris", "--server", "stg", "--json")
    assert r.json() == {"1.0.0": {"labelled": 1, "accuracy": 1.0, "correct": 1}}
