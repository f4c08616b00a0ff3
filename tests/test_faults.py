"""Faults on real parts: a server that vanishes in the middle of an upload."""
import os

import psutil
import pytest

from agent_kit import http_json, stop_all
from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.deploy.errors import OperationFailed
from app.deploy import queries
from app.store.servers import ServerConfig
from app.workspace import Workspace
from cli_kit import iris_copy


def test_server_vanishing_mid_upload_fails_clearly_and_old_release_keeps_serving(sshd_factory, tmp_path):
    srv = sshd_factory()
    root = tmp_path / "root"
    ws = Workspace()
    ws.add_server(ServerConfig(name="box", host=srv.host, port=srv.port, user=srv.user,
                               key_path=str(srv.key_path), root=str(root)), srv.fingerprint)
    try:
        with ws.connect("box") as t:
            run_to_end(Deploy(t, iris_copy(tmp_path), ws.audit).run())
            port = queries.status(t)[0]["port"]

        big = iris_copy(tmp_path, "2.0.0")
        (big / "weights.bin").write_bytes(os.urandom(96 * 1024 * 1024))
        seen = []

        def cut_mid_upload(p):
            seen.append(p)
            if p.step == "upload" and (p.done or 0) > 8 * 1024 * 1024 and srv.proc:
                for child in psutil.Process(srv.proc.pid).children(recursive=True):
                    child.kill()  # every live SSH session of this server dies, as if the host vanished

        with ws.connect("box") as t:
            with pytest.raises(OperationFailed) as failure:
                run_to_end(Deploy(t, big, ws.audit).run(), cut_mid_upload)
        message = str(failure.value)
        assert "sending weights.bin: lost the connection" in message and "the server was not changed" in message
        assert "resumes" in message
        done = [p.done for p in seen if p.step == "upload" and p.done]
        assert 0 < max(done) < 96 * 1024 * 1024  # it really was cut in the middle

        # the old release keeps serving, nothing of 2.0.0 was assembled, and the audit log has it all
        assert http_json(port, "POST", "/predict", {"features": [5.1, 3.5, 1.4, 0.2]})[0] == 200
        assert os.readlink(root / "models/iris/current") == "releases/1.0.0"
        assert sorted(p.name for p in (root / "models/iris/releases").iterdir()) == ["1.0.0"]
        events = ws.audit.list()
        assert (events[0]["action"], events[0]["outcome"], events[0]["version"]) == ("deploy", "failed", "2.0.0")
        assert "weights.bin" in events[0]["detail"]
        # what was sent is kept as a partial blob (never under its final name) ...
        partials = list((root / ".berth/blobs").glob(".partial-*"))
        assert partials and sum(p.stat().st_size for p in partials) > 0
        assert not [p for p in (root / ".berth/blobs").iterdir() if p.stat().st_size == 96 * 1024 * 1024
                    and not p.name.startswith(".")]
        # ... and the next deploy resumes it, checked by hash, and completes
        again = []
        with ws.connect("box") as t:
            run_to_end(Deploy(t, big, ws.audit).run(), again.append)
            assert queries.status(t)[0]["version"] == "2.0.0"
        resumed = [p.message for p in again if p.step == "upload" and "resuming" in p.message]
        assert resumed, [p.message for p in again if p.step == "upload"][:3]
        to_send = max(p.total for p in again if p.step == "upload" and p.rate is not None)
        assert to_send < 96 * 1024 * 1024  # only what was missing crossed the network
        assert not list((root / ".berth/blobs").glob(".partial-*"))
    finally:
        stop_all(root)
