"""Servers whose sshd has no `Subsystem sftp` (hardened servers remove it): Berth moves its files over
exec channels there, with the same resume and verification, and still uses SFTP where it exists.
Real OpenSSH servers on loopback, real agent, real runners."""
import json
import os
import re
from pathlib import Path

import psutil
import pytest

from agent_kit import http_json, stop_all
from app.deploy import queries
from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.deploy.errors import OperationFailed
from app.remote import agent_install, exec_files
from app.remote.errors import RemoteError
from app.remote.hostkeys import KnownHosts
from app.remote.ssh import SSHTransport
from app.remote.transport import SendJob
from app.store.servers import ServerConfig
from app.workspace import Workspace
from cli_kit import berth, iris_copy, iris_input

MB = 1024 * 1024


@pytest.fixture
def nosftp(sshd_factory):
    return sshd_factory(sftp=None)


def connect(srv, root, tmp_path):
    return SSHTransport("box", srv.host, srv.port, srv.user, str(root), KnownHosts(tmp_path / "known_hosts"),
                        key_path=str(srv.key_path), accept_fingerprint=srv.fingerprint)


def test_the_fixture_really_has_no_sftp(nosftp):
    import paramiko

    t = paramiko.Transport((nosftp.host, nosftp.port))
    try:
        t.connect(username=nosftp.user, pkey=paramiko.Ed25519Key.from_private_key_file(str(nosftp.key_path)))
        with pytest.raises(paramiko.SSHException):
            paramiko.SFTPClient.from_transport(t)
        assert "subsystem request for sftp" in nosftp.log_tail(50), nosftp.log_tail(50)
    finally:
        t.close()


def test_sftp_is_used_where_the_server_has_it(sshd, tmp_path):
    with connect(sshd, tmp_path / "r", tmp_path) as t:
        assert t.file_path_kind == "sftp"


def test_the_exec_snippet_runs_the_agents_python():
    assert exec_files.PYTHON == tuple(agent_install.agent_argv("/x/agent.py", "hello")[:len(exec_files.PYTHON)])


def test_whole_lifecycle_from_the_cli_without_sftp(capsys, nosftp, tmp_path):
    root = tmp_path / "no sftp root"
    try:
        r = berth(capsys, "server", "add", "box", "--host", nosftp.host, "--port", nosftp.port, "--user",
                  nosftp.user, "--key", nosftp.key_path, "--root", str(root), "--accept-host-key", nosftp.fingerprint)
        assert r.code == 0, r
        r = berth(capsys, "server", "check", "box")
        assert r.code == 0 and "files: exec channels (the server has no SFTP subsystem)" in r.out, r
        assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box").code == 0
        r = berth(capsys, "predict", "iris", "--server", "box", "--input", iris_input())
        assert r.code == 0 and json.loads(r.out)[0]["class"] == "setosa", r
        assert berth(capsys, "deploy", iris_copy(tmp_path, "2.0.0"), "--server", "box").code == 0
        assert berth(capsys, "rollback", "iris", "--server", "box").code == 0
        r = berth(capsys, "-v", "predict", "iris", "--server", "box", "--input", iris_input())
        assert r.code == 0 and "iris 1.0.0 answered" in r.err, r
        assert (root / "models/iris/current").resolve().name == "1.0.0"
        blobs = [p for p in (root / ".berth/blobs").iterdir() if not p.name.startswith(".")]
        assert blobs and all(oct(p.stat().st_mode & 0o777) == "0o400" for p in blobs)  # verified, committed
    finally:
        stop_all(root)


def test_a_plain_server_check_says_sftp(capsys, sshd, tmp_path):
    root = tmp_path / "r"
    assert berth(capsys, "server", "add", "box", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
                 "--key", sshd.key_path, "--root", str(root), "--accept-host-key", sshd.fingerprint).code == 0
    r = berth(capsys, "server", "check", "box")
    assert r.code == 0 and "files: SFTP" in r.out, r


def test_file_primitives_over_exec_with_hostile_paths(nosftp, tmp_path):
    marker = tmp_path / "pwned"
    root = tmp_path / f"it's \"odd\" $(touch {marker}) `touch {marker}` ; touch {marker}"
    with connect(nosftp, root, tmp_path) as t:
        assert t.file_path_kind == "exec"
        assert t.resolve("~/x") == os.path.expanduser("~") + "/x"  # the login's home, as SFTP's "."
        folder = f"{t.abs_root}/a b/c'd"
        assert not t.exists(folder)
        t.mkdirs(folder)
        assert t.exists(folder) and os.path.isdir(folder)
        t.write_bytes(f"{folder}/x $(id)", b"hello")
        assert os.stat(f"{folder}/x $(id)").st_mode & 0o077 == 0  # umask 077 whatever the login's
        assert os.stat(folder).st_mode & 0o077 == 0
        t.chmod(f"{folder}/x $(id)", 0o640)
        assert oct(os.stat(f"{folder}/x $(id)").st_mode & 0o777) == "0o640"
        t.rename(f"{folder}/x $(id)", f"{folder}/y")
        assert Path(folder, "y").read_bytes() == b"hello"
        with t.open_write(f"{folder}/y", 2) as f:  # resume: keep 2 bytes, drop the rest, write on
            f.write(b"LP")
        assert Path(folder, "y").read_bytes() == b"heLP"
        t.write_bytes(f"{folder}/file", b"")
        with pytest.raises(RemoteError, match="is not a folder"):
            t.mkdirs(f"{folder}/file/sub")
        with pytest.raises(FileNotFoundError, match="No such file"):
            t.rename(f"{folder}/missing", f"{folder}/z")
        t.remove_file(f"{folder}/y")
        t.remove_file(f"{folder}/y")  # missing: not an error
        assert not os.path.exists(f"{folder}/y")
        t.remove_tree(f"{t.abs_root}/a b")
        t.remove_tree(f"{t.abs_root}/a b")
        assert not os.path.exists(f"{t.abs_root}/a b")
        assert t.agent("hello")["root"] == str(root)
    assert not marker.exists()


def test_a_deploy_into_a_hostile_root_without_sftp(nosftp, tmp_path):
    marker = tmp_path / "pwned"
    root = tmp_path / f"q'\"$(touch {marker})"
    ws = Workspace()
    ws.add_server(ServerConfig(name="box", host=nosftp.host, port=nosftp.port, user=nosftp.user,
                               key_path=str(nosftp.key_path), root=str(root)), nosftp.fingerprint)
    try:
        with ws.connect("box") as t:
            run_to_end(Deploy(t, iris_copy(tmp_path), ws.audit).run())
            assert queries.status(t)[0]["state"] == "running"
        assert not marker.exists()
    finally:
        stop_all(root)


def test_parallel_exec_uploads_resume_at_the_offset_and_report_every_byte(nosftp, tmp_path):
    sources = []
    for i in range(5):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(os.urandom(MB + i * 333_333))
        sources.append(p)
    root = tmp_path / "root"
    with connect(nosftp, root, tmp_path) as t:
        t.mkdirs(str(root))
        (root / "f0.bin").write_bytes(sources[0].read_bytes()[:1000] + b"junk past the checked bytes")
        jobs = [SendJob(p, f"{root}/{p.name}", 1000 if i == 0 else 0, p.stat().st_size)
                for i, p in enumerate(sources)]
        seen = []
        t.send(jobs, seen.append)
    assert sum(seen) == sum(j.size - j.offset for j in jobs)
    for p in sources:
        assert (root / p.name).read_bytes() == p.read_bytes()


def test_a_full_disk_over_exec_is_the_servers_refusal_with_its_errno(nosftp, tmp_path):
    with connect(nosftp, tmp_path / "r", tmp_path) as t:
        src = tmp_path / "big"
        src.write_bytes(b"x" * 4096)
        with pytest.raises(OSError) as e:
            t.send([SendJob(src, "/dev/full", 0, 4096)], lambda n: None)
        assert e.value.errno == 28 and "No space left" in str(e.value)
        with pytest.raises(OSError, match="Permission denied|No such file"):
            t.write_bytes("/proc/berth-cannot-write-here", b"x")


def test_an_upload_cut_without_sftp_resumes_checked_by_hash(nosftp, tmp_path):
    root = tmp_path / "root"
    ws = Workspace()
    ws.add_server(ServerConfig(name="box", host=nosftp.host, port=nosftp.port, user=nosftp.user,
                               key_path=str(nosftp.key_path), root=str(root)), nosftp.fingerprint)
    try:
        with ws.connect("box") as t:
            run_to_end(Deploy(t, iris_copy(tmp_path), ws.audit).run())
            port = queries.status(t)[0]["port"]
        big = iris_copy(tmp_path, "2.0.0")
        size = 48 * MB
        (big / "weights.bin").write_bytes(os.urandom(size))
        seen = []

        def cut_mid_upload(p):
            seen.append(p)
            if p.step == "upload" and (p.done or 0) > 6 * MB and nosftp.proc:
                for child in psutil.Process(nosftp.proc.pid).children(recursive=True):
                    child.kill()  # every live SSH session dies, as if the host vanished

        with ws.connect("box") as t:
            with pytest.raises(OperationFailed) as failure:
                run_to_end(Deploy(t, big, ws.audit).run(), cut_mid_upload)
        message = str(failure.value)
        assert "lost the connection" in message and "resumes" in message, message
        assert 0 < max(p.done for p in seen if p.step == "upload" and p.done) < size
        assert http_json(port, "POST", "/predict", {"features": [5.1, 3.5, 1.4, 0.2]})[0] == 200
        assert os.readlink(root / "models/iris/current") == "releases/1.0.0"
        partials = list((root / ".berth/blobs").glob(".partial-*"))
        assert partials and sum(p.stat().st_size for p in partials) > 0

        again = []
        with ws.connect("box") as t:
            run_to_end(Deploy(t, big, ws.audit).run(), again.append)
            assert queries.status(t)[0]["version"] == "2.0.0"
        resumed = [p.message for p in again if p.step == "upload" and "resuming" in p.message]
        assert resumed and re.search(r"resuming: [\d,]+ bytes", resumed[0]), resumed
        assert max(p.total for p in again if p.step == "upload" and p.rate is not None) < size
        assert not list((root / ".berth/blobs").glob(".partial-*"))
    finally:
        stop_all(root)


def test_a_stuck_file_helper_is_a_clean_error_in_time_and_is_started_again(nosftp, tmp_path):
    import signal
    import time

    t = SSHTransport("box", nosftp.host, nosftp.port, nosftp.user, str(tmp_path / "r"),
                     KnownHosts(tmp_path / "known_hosts"), key_path=str(nosftp.key_path),
                     accept_fingerprint=nosftp.fingerprint, file_timeout=2.0)
    helpers = []
    try:
        helpers = [p for p in psutil.Process(nosftp.proc.pid).children(recursive=True)
                   if "-c" in p.cmdline() and p.cmdline()[-2:-1] == ["serve"]]
        assert len(helpers) == 1, [p.cmdline()[:3] for p in helpers]
        helpers[0].send_signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="did not answer a file request within 2 s"):
            t.exists(str(tmp_path))
        assert time.monotonic() - started < 10
        assert t.exists(str(tmp_path))  # a new helper answers
    finally:
        for p in helpers:
            try:
                p.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass
        t.close()


def test_a_stopped_exec_upload_keeps_a_prefix_to_resume(nosftp, tmp_path):
    from app.remote.transport import SendStopped

    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(12 * MB))
    root = tmp_path / "root"
    sent = []
    with connect(nosftp, root, tmp_path) as t:
        t.mkdirs(str(root))
        with pytest.raises(SendStopped):
            t.send([SendJob(src, f"{root}/big.part", 0, 12 * MB)], sent.append, lambda: sum(sent) >= 3 * MB)
        t.exists(str(root))  # the connection still works after the stop
    kept = (root / "big.part").read_bytes()
    assert 0 < len(kept) < 12 * MB and src.read_bytes().startswith(kept)


def test_the_exec_snippet_is_python_3_8_and_stdlib_only():
    import ast

    tree = ast.parse(exec_files.SNIPPET, feature_version=(3, 8))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"json", "os", "shutil", "sys"}
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.ImportFrom, ast.JoinedStr))]
