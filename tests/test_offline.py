"""Offline servers and private indexes (issue 20), against a real OpenSSH server whose sessions get a
dead PIP_INDEX_URL and no pip config (sshd SetEnv): the desktop resolves the wheels for the server's
platform from a loopback index of wheels made in the test, uploads each once, and the agent installs
with --no-index. No PyPI, no local wheel folder."""
import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

from agent_kit import stop_all
from cli_kit import berth
from offline_kit import IndexServer, make_wheel, tiny_bundle, tiny_wheels, write_simple_index
from sshd import SshServer, require_sshd

DEAD_INDEX = "http://127.0.0.1:9/simple/"
OFFLINE_ENV = {"PIP_INDEX_URL": DEAD_INDEX, "PIP_CONFIG_FILE": "/dev/null", "SHLVL": "1"}


@pytest.fixture(scope="module")
def offline_sshd(tmp_path_factory):
    require_sshd()
    server = SshServer(folder=tmp_path_factory.mktemp("sshd-offline"), set_env=OFFLINE_ENV)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    return tiny_wheels(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="module")
def index(tmp_path_factory, wheels):
    server = IndexServer(write_simple_index(wheels, tmp_path_factory.mktemp("index")))
    yield server
    server.close()


@pytest.fixture
def desktop_index(index, monkeypatch):
    """This computer's pip sees only the test's index (not PyPI, not /etc/pip.conf's folder)."""
    monkeypatch.setenv("PIP_INDEX_URL", index.url)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    return index


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "srv root"
    yield path
    stop_all(path)


def add(capsys, srv, root, name="box"):
    r = berth(capsys, "server", "add", name, "--host", srv.host, "--port", srv.port, "--user", srv.user,
              "--key", srv.key_path, "--root", root, "--accept-host-key", srv.fingerprint)
    assert r.code == 0, r


def blob_names(root: Path) -> set[str]:
    folder = root / ".berth" / "blobs"
    return set(os.listdir(folder)) if folder.is_dir() else set()


def test_a_bundle_deploys_offline_predicts_and_its_wheels_go_once(capsys, offline_sshd, desktop_index, root, tmp_path,
                                                                  wheels):
    add(capsys, offline_sshd, root)
    # the server's own index is dead: `server check` says so, with its platform
    r = berth(capsys, "server", "check", "box", "--json")
    assert r.code == 0, r
    facts = r.json()[0]["packages"]
    assert facts["index"] == {"url": DEAD_INDEX, "reachable": False, "detail": facts["index"]["detail"]}
    assert facts["abi"] == "cp%d%d" % sys.version_info[:2] and facts["platforms"][-1].startswith("linux_")
    # online (the default), pip on the server finds nothing: the old way fails there
    r = berth(capsys, "deploy", tiny_bundle(tmp_path / "b0", "0.9.0"), "--server", "box")
    assert r.code == 1 and "berth-tiny-offline" in r.err, r

    r = berth(capsys, "server", "set", "box", "--index", "offline")
    assert r.code == 0 and "offline" in r.out, r
    r = berth(capsys, "deploy", tiny_bundle(tmp_path / "b1"), "--server", "box")
    assert r.code == 0, r
    assert "2 wheel(s)" in r.out + r.err and "2 to send" in r.out + r.err, r
    said = r.out + r.err  # the downloads' size, time and speed
    assert re.search(r"; downloaded 2 \([0-9.]+ [KM]?B\) in [0-9.]+ s(, [0-9.]+ [KM]?B/s)?", said), said
    sent = {w.name for w in wheels}
    r = berth(capsys, "predict", "tiny", "--server", "box", "--input", '{"features": [1, 2, 3]}')
    assert r.code == 0 and json.loads(r.out) == {"y": 3.0}, r
    shas = {json.loads(Path(p).read_text())["sha256"] for p in
            Path(os.environ["BERTH_HOME"], "wheels").glob("*.sha256.json")}
    assert shas <= blob_names(root) and len(shas) == 2
    assert {p.name for p in Path(os.environ["BERTH_HOME"], "wheels").glob("*.whl")} == sent

    # new weights, same requirements: no wheel is sent again, the environment is reused
    before = {n: os.stat(root / ".berth" / "blobs" / n).st_mtime_ns for n in shas}
    asked = desktop_index.requests
    r = berth(capsys, "-v", "deploy", tiny_bundle(tmp_path / "b2", "1.0.1"), "--server", "box")
    assert r.code == 0, r
    assert desktop_index.requests == asked and "no index asked" in r.out + r.err, r  # the cache sufficed
    assert "nothing downloaded (all from the wheel cache)" in r.out + r.err, r
    assert "0 to send" in r.out + r.err and "2 already on the server" in r.out + r.err, r
    assert "reusing environment" in r.out + r.err, r
    assert {n: os.stat(root / ".berth" / "blobs" / n).st_mtime_ns for n in shas} == before

    r = berth(capsys, "cache", "show", "--json")
    assert r.code == 0 and {w["name"] for w in r.json()["wheels"]} == sent, r
    r = berth(capsys, "cache", "clear")
    assert r.code == 0 and "removed 2 wheel(s)" in r.out, r
    assert berth(capsys, "cache", "show", "--json").json()["wheels"] == []


def test_a_requirement_without_a_wheel_is_refused_before_any_upload(capsys, offline_sshd, desktop_index, root,
                                                                    tmp_path):
    add(capsys, offline_sshd, root)
    assert berth(capsys, "server", "set", "box", "--index", "offline").code == 0
    r = berth(capsys, "deploy", tiny_bundle(tmp_path / "b", requirement="berth-tiny-offline==2.0"), "--server", "box")
    assert r.code == 1, r.err
    assert "no wheel of berth-tiny-offline ==2.0" in r.err and "cp%d%d" % sys.version_info[:2] in r.err, r
    assert "nothing was uploaded" in r.err and "Traceback" not in r.err, r
    assert blob_names(root) == set()
    assert not (root / "models" / "tiny" / "releases").exists() or not os.listdir(root / "models" / "tiny" / "releases")


def test_a_platform_wheel_for_another_machine_is_named_with_the_platform(capsys, offline_sshd, tmp_path, monkeypatch,
                                                                         root):
    """A package that has only a wheel for another platform (here: macOS) is refused with that platform."""
    folder = tmp_path / "other"
    make_wheel(folder, "berth_tiny_mac", "1.0", "X = 1\n", tag="cp311-cp311-macosx_11_0_arm64")
    index = IndexServer(write_simple_index(list(folder.iterdir()), tmp_path / "idx"))
    try:
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
        add(capsys, offline_sshd, root)
        assert berth(capsys, "server", "set", "box", "--index", "offline").code == 0
        r = berth(capsys, "deploy", tiny_bundle(tmp_path / "b", requirement="berth-tiny-mac"), "--server", "box")
    finally:
        index.close()
    assert r.code == 1 and "no wheel of berth-tiny-mac any version" in r.err and "manylinux" in r.err, r
    assert blob_names(root) == set()


def test_a_private_index_with_a_password_works_and_the_password_is_nowhere(capsys, offline_sshd, wheels, tmp_path,
                                                                           monkeypatch, root, berth_home):
    password = "s3cr3t-Pw-for-the-index"
    index = IndexServer(write_simple_index(wheels, tmp_path / "private"), auth=("berth", password))
    try:
        add(capsys, offline_sshd, root)
        url = index.url.replace("http://", "http://berth@")
        r = berth(capsys, "server", "set", "box", "--index", url.replace("berth@", f"berth:{password}@"))
        assert r.code == 1 and "without its password" in r.err, r
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        r = berth(capsys, "server", "set", "box", "--index", url, "--index-password-stdin")
        assert r.code == 0, r
        r = berth(capsys, "-v", "deploy", tiny_bundle(tmp_path / "b"), "--server", "box")
        assert r.code == 0, r
        assert index.authorized >= 2  # the server's pip logged in to it
        r2 = berth(capsys, "predict", "tiny", "--server", "box", "--input", '{"features": [2, 2, 0]}')
        assert r2.code == 0 and json.loads(r2.out) == {"y": 2.0}, r2
        said = r.out + r.err + r2.out + r2.err
        said += berth(capsys, "audit", "list", "--json").out + berth(capsys, "server", "activity", "box", "--json").out
    finally:
        index.close()
    assert password not in said
    from app.remote import credentials

    assert credentials.get_secret(credentials.index_password_account("box")) == password
    assert berth(capsys, "server", "remove", "box").code == 0  # a removed server leaves no secret behind
    assert credentials.get_secret(credentials.index_password_account("box")) is None
    for folder in (root, berth_home, offline_sshd.folder):
        for dirpath, dirs, names in os.walk(folder):
            for name in names:
                path = Path(dirpath, name)
                if path.is_file() and not path.is_symlink():
                    assert password.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("argv, fragment", [
    (["--index", "ftp://host/simple"], "--index takes online, offline, auto or"),
    (["--index", "http://u:pw@host/simple"], "without its password"),
    (["--index", "offline", "--index-password-stdin"], "goes with a private index URL"),
    (["--index", "http://host/simple", "--index-password-stdin"], "names no user"),
])
def test_bad_index_settings_are_refused(capsys, argv, fragment, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    r = berth(capsys, "server", "set", "local", *argv)
    assert r.code == 1 and fragment in r.err, r


def test_the_wheel_cache_size_setting_is_checked_and_bounds_the_cache(capsys, tmp_path):
    from app.deploy.wheelcache import WheelCache

    r = berth(capsys, "settings", "set", "wheel_cache_mb", "lots")
    assert r.code != 0 and "whole number" in r.err, r
    assert berth(capsys, "settings", "set", "wheel_cache_mb", "1").code == 0
    cache = WheelCache(tmp_path / "cache", limit_bytes=3000)
    for i, size in enumerate((1500, 1500, 1500)):
        p = tmp_path / f"w{i}-1.0-py3-none-any.whl"
        p.write_bytes(b"x" * size)
        os.utime(cache.take(p).path, (i, i))  # w0 the least recently used
    assert cache.evict(keep={"w0-1.0-py3-none-any.whl"}) == ["w1-1.0-py3-none-any.whl"]
    assert cache.size() == 3000


@pytest.mark.slow
def test_churn_sklearn_deploys_offline_and_predicts(capsys, offline_sshd, root):
    """scikit-learn, NumPy and SciPy resolved here (this computer's own index: PyPI) for the server's
    platform, uploaded, installed there with no index; a second version sends no wheel again."""
    from cli_kit import EXAMPLES
    import shutil

    add(capsys, offline_sshd, root)
    assert berth(capsys, "server", "set", "box", "--index", "offline").code == 0
    r = berth(capsys, "-v", "deploy", EXAMPLES / "churn-sklearn", "--server", "box")
    assert r.code == 0, r
    assert "scikit_learn-1.6.1-" in r.out + r.err, r
    r = berth(capsys, "predict", "churn-sklearn", "--server", "box",
              "--input", f"@{EXAMPLES / 'churn-sklearn' / 'example.json'}")
    assert r.code == 0, r
    preds = json.loads(r.out)["predictions"]
    assert [p["customer_id"] for p in preds] == ["C00002", "C00006", "C00075"]
    copy = Path(shutil.copytree(EXAMPLES / "churn-sklearn", root.parent / "churn2"))
    toml = copy / "berth.toml"
    toml.write_text(toml.read_text().replace('version = "1.0.0"', 'version = "1.0.1"', 1))
    r = berth(capsys, "-v", "deploy", copy, "--server", "box")
    assert r.code == 0 and " 0 to send" in r.out + r.err and "reusing environment" in r.out + r.err, r
