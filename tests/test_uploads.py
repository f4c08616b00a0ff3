"""Uploads that are resumed only when the server's bytes are provably the start of the file, blobs
that arrive damaged sent again once, and environments built once for every release that needs the
same one. Real agent, real files, real virtualenvs; the only stand-in is a link that damages bytes."""
import os

import pytest

from agent_kit import stop_all
from app.audit.log import AuditLog
from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.deploy.errors import OperationFailed
from app.deploy.upload import resume_points
from app.remote.local import LocalTransport
from app.bundle import open_bundle
from app.workspace import Workspace
from cli_kit import iris_copy


class DamagingLink(LocalTransport):
    """Flips one byte of the first `times` files it writes, the way a bad link or disk would."""

    def __init__(self, root, times):
        super().__init__(root)
        self.times = times

    def open_write(self, remote, offset):
        f = super().open_write(remote, offset)
        if self.times <= 0:
            return f
        self.times -= 1
        write = f.write

        def damaged(data, first=[True]):
            if first[0] and data:
                first[0] = False
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            return write(data)

        f.write = damaged
        return f


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    yield path
    stop_all(path)


def with_weights(folder, mb=3, seed=b"w"):
    (folder / "weights.bin").write_bytes(seed * (mb * 1024 * 1024))
    return folder


def test_a_partial_is_resumed_only_when_its_hash_matches(tmp_path):
    folder = with_weights(iris_copy(tmp_path))
    with open_bundle(folder) as b:
        weights = next(f for f in b.files if f.path == "weights.bin")
        import hashlib
        head = hashlib.sha256(weights.source.read_bytes()[:1000]).hexdigest()
        assert resume_points([weights], {weights.sha256: {"size": 1000, "sha256": head}}) == {weights.sha256: 1000}
        assert resume_points([weights], {weights.sha256: {"size": 1000, "sha256": "0" * 64}}) == {weights.sha256: 0}
        too_big = weights.size + 1
        assert resume_points([weights], {weights.sha256: {"size": too_big, "sha256": head}}) == {weights.sha256: 0}
        assert resume_points([weights], {}) == {weights.sha256: 0}


def test_a_damaged_partial_on_the_server_is_not_trusted(root, tmp_path):
    folder = with_weights(iris_copy(tmp_path))
    with open_bundle(folder) as b:
        weights = next(f for f in b.files if f.path == "weights.bin")
    blobs = root / ".berth" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f".partial-{weights.sha256}").write_bytes(b"x" * 4096)  # not the start of weights.bin
    seen = []
    with LocalTransport(str(root)) as t:
        run_to_end(Deploy(t, folder, AuditLog(Workspace().db)).run(), seen.append)
    assert not [p for p in seen if "resuming" in p.message]
    assert (root / "models/iris/current").exists()
    assert oct((blobs / weights.sha256).stat().st_mode & 0o777) == "0o400"  # verified, read-only, private
    assert not list(blobs.glob(".partial-*"))


def test_damaged_upload_is_sent_again_once(root, tmp_path):
    folder = with_weights(iris_copy(tmp_path))
    seen = []
    with DamagingLink(str(root), times=1) as t:
        run_to_end(Deploy(t, folder, AuditLog(Workspace().db)).run(), seen.append)
    assert any("arrived damaged; sending them again" in p.message for p in seen)
    assert os.readlink(root / "models/iris/current") == "releases/1.0.0"


def test_damaged_twice_fails_clearly_and_changes_nothing(root, tmp_path):
    with LocalTransport(str(root)) as t:
        run_to_end(Deploy(t, iris_copy(tmp_path), AuditLog(Workspace().db)).run())
    folder = with_weights(iris_copy(tmp_path, "2.0.0"))
    ws = Workspace()
    with DamagingLink(str(root), times=99) as t:
        with pytest.raises(OperationFailed, match="damaged twice") as failure:
            run_to_end(Deploy(t, folder, ws.audit).run())
    assert failure.value.code == "corrupt_blob"
    assert os.readlink(root / "models/iris/current") == "releases/1.0.0"
    assert sorted(p.name for p in (root / "models/iris/releases").iterdir()) == ["1.0.0"]
    assert not list((root / ".berth/blobs").glob(".partial-*"))  # damaged partials are removed
    last = ws.audit.list(limit=1)[0]
    assert (last["action"], last["outcome"]) == ("deploy", "failed") and "damaged twice" in last["detail"]


def test_same_requirements_share_one_environment(root, tmp_path):
    audit = AuditLog(Workspace().db)
    steps = {}
    for version, mb in (("1.0.0", 1), ("1.0.1", 2)):  # only the weights change
        folder = with_weights(iris_copy(tmp_path, version), mb=mb, seed=version.encode()[-1:])
        (folder / "requirements.txt").write_text("# nothing to install, but pip must run\n")
        toml = folder / "berth.toml"
        toml.write_text(toml.read_text().replace("[model]\n", '[model]\nrequirements = "requirements.txt"\n', 1))
        seen = []
        with LocalTransport(str(root)) as t:
            run_to_end(Deploy(t, folder, audit).run(), seen.append)
        steps[version] = [p for p in seen if p.step in ("venv", "install")]
    assert any(p.step == "install" for p in steps["1.0.0"])
    assert not any(p.step == "install" for p in steps["1.0.1"])  # nothing built twice
    assert any("reusing environment" in (p.line or "") for p in steps["1.0.1"])
    links = [os.path.realpath(root / f"models/iris/releases/{v}/.venv") for v in ("1.0.0", "1.0.1")]
    assert links[0] == links[1] and os.path.isdir(links[0])
    envs = root / ".berth/envs"
    assert len(list(envs.iterdir())) == 1

    # another requirements file: another environment; pruning releases removes unused ones
    folder = iris_copy(tmp_path, "2.0.0")
    with LocalTransport(str(root)) as t:
        run_to_end(Deploy(t, folder, audit, keep=1).run())
    remaining = list(envs.iterdir())
    assert len(remaining) == 2  # 2.0.0's, and 1.0.1's (kept as the previous release)
    with LocalTransport(str(root)) as t:
        run_to_end(Deploy(t, iris_copy(tmp_path, "2.0.1"), audit, keep=1).run())
    assert len(list(envs.iterdir())) == 1  # 1.0.1 pruned: its environment went with it
