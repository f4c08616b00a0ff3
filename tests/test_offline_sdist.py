"""An offline server and a requirement published only as source (an sdist, issue 20): built into a
wheel on this computer and uploaded when it is pure Python (py3-none-any); refused before any upload,
saying what to do, when its wheel would be for this computer's platform only. The sdists come from
a loopback index and build with an in-tree backend: no PyPI, no setuptools."""
import json
import os
import platform
import sys
from pathlib import Path

import pytest

from cli_kit import berth
from offline_kit import IndexServer, make_sdist, make_wheel, tiny_bundle, write_simple_index
import test_offline
from test_offline import add, blob_names

offline_sshd, root = test_offline.offline_sshd, test_offline.root  # the same fixtures, this module's instances

SRC = "berth_tiny_src"
MODEL = f'''from {SRC} import OFFSET


class Model(object):
    def predict(self, input):
        return {{"y": OFFSET + sum(input["features"])}}
'''


NATIVE_MODEL = MODEL.replace(f"from {SRC} import OFFSET", "from berth_tiny_native import X as OFFSET")


@pytest.fixture(scope="module")
def sdist_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdists")
    sdists = [make_sdist(folder, SRC, "1.0", "OFFSET = 100\n"),
              make_sdist(folder, "berth_tiny_native", "1.0", "X = 1\n", tag="cp311-cp311-linux_x86_64"),
              make_sdist(folder, "berth_tiny_slow", "1.0", "X = 1\n", build_seconds=60)]
    server = IndexServer(write_simple_index(sdists, tmp_path_factory.mktemp("sdist-index")))
    yield server
    server.close()


@pytest.fixture
def desktop_sees_sdists(sdist_index, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", sdist_index.url)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", "")  # not the machine's own wheel folder
    return sdist_index


def bundle(folder: Path, requirement: str, version: str = "1.0.0", model: str = MODEL) -> Path:
    tiny_bundle(folder, version, requirement=requirement)
    (folder / "model.py").write_text(model)
    return folder


def test_a_pure_python_sdist_is_built_here_uploaded_once_and_runs_there(capsys, offline_sshd, desktop_sees_sdists,
                                                                        root, tmp_path):
    add(capsys, offline_sshd, root)
    assert berth(capsys, "server", "set", "box", "--index", "offline").code == 0
    r = berth(capsys, "-v", "deploy", bundle(tmp_path / "b1", f"{SRC}==1.0"), "--server", "box")
    said = r.out + r.err
    assert r.code == 0, r
    assert "building one from its source (sdist)" in said and f"built {SRC}-1.0-py3-none-any.whl" in said, r
    assert "1 wheel(s)" in said and "1 to send" in said, r
    r = berth(capsys, "predict", "tiny", "--server", "box", "--input", '{"features": [1, 2, 3]}')
    assert r.code == 0 and json.loads(r.out) == {"y": 106}, r
    cached = Path(os.environ["BERTH_HOME"], "wheels", f"{SRC}-1.0-py3-none-any.whl")
    assert cached.is_file()
    # the next version: the built wheel is in the cache, nothing is built or sent again
    r = berth(capsys, "-v", "deploy", bundle(tmp_path / "b2", f"{SRC}==1.0", "1.0.1"), "--server", "box")
    said = r.out + r.err
    assert r.code == 0 and "no index asked" in said and "building" not in said and " 0 to send" in said, r


def test_a_platform_sdist_and_a_missing_one_are_refused_before_any_upload(capsys, offline_sshd, desktop_sees_sdists,
                                                                          root, tmp_path):
    add(capsys, offline_sshd, root)
    assert berth(capsys, "server", "set", "box", "--index", "offline").code == 0
    # its source builds a wheel for this computer's platform only: refused, saying how to get one
    r = berth(capsys, "deploy", bundle(tmp_path / "b", "berth-tiny-native==1.0"), "--server", "box")
    assert r.code == 1, r
    assert "its source builds a wheel for this computer only (berth_tiny_native-1.0-cp311-cp311-linux_x86_64.whl)" \
        in r.err, r
    assert "pip wheel --no-deps 'berth-tiny-native==1.0'" in r.err and "wheel cache" in r.err, r
    assert "nothing was uploaded" in r.err and "Traceback" not in r.err, r
    assert blob_names(root) == set()
    cache = Path(os.environ["BERTH_HOME"], "wheels")
    assert not list(cache.glob("berth_tiny_native*"))  # not kept either
    # what the message says to do: a wheel built on a machine like the server, put in the wheel cache
    tag = "cp%d%d-cp%d%d-linux_%s" % (sys.version_info[:2] * 2 + (platform.machine(),))
    make_wheel(cache, "berth_tiny_native", "1.0", "X = 7\n", tag=tag)
    r = berth(capsys, "deploy", bundle(tmp_path / "b2", "berth-tiny-native==1.0", model=NATIVE_MODEL), "--server", "box")
    assert r.code == 0, r
    r = berth(capsys, "predict", "tiny", "--server", "box", "--input", '{"features": [1, 2, 3]}')
    assert r.code == 0 and json.loads(r.out) == {"y": 13}, r
    # neither a wheel nor a source of that version
    before = blob_names(root)
    r = berth(capsys, "deploy", bundle(tmp_path / "c", f"{SRC}==9.9", "2.0.0"), "--server", "box")
    assert r.code == 1 and "no wheel of berth_tiny_src ==9.9" in r.err and "nor a source (sdist)" in r.err, r
    assert blob_names(root) == before


def test_a_build_past_its_time_is_ended_and_refused(desktop_sees_sdists, tmp_path):
    """A source that compiles for minutes (SciPy's would) is not waited for: pip and its build end."""
    import time

    from app.deploy.errors import OperationFailed
    from app.deploy.sdists import build_pure_wheel
    from app.deploy.wheelcache import WheelCache

    cache = WheelCache(tmp_path / "cache")
    started = time.monotonic()
    with pytest.raises(OperationFailed, match="did not build into a wheel here within 3 s") as e:
        build_pure_wheel("berth-tiny-slow==1.0", "berth-tiny-slow", cache, tmp_path, "box", "Python 3.11",
                         "no wheel of berth-tiny-slow", lambda p: None, timeout=3)
    assert time.monotonic() - started < 30 and "copy it into this computer's wheel cache" in str(e.value)
    assert not cache.wheels()


@pytest.mark.parametrize("name, pure", [("a-1.0-py3-none-any.whl", True), ("a-1.0-py2.py3-none-any.whl", True),
                                        ("a-1.0-1-py3-none-any.whl", True), ("a-1.0-cp311-none-any.whl", False),
                                        ("a-1.0-py3-abi3-linux_x86_64.whl", False), ("a-1.0-py3-none.whl", False)])
def test_only_py3_none_any_counts_as_pure(name, pure):
    from app.deploy.sdists import is_pure

    assert is_pure(name) is pure
