"""One SSH connection used from several threads at once, as the console's worker and monitor stream
threads do: nothing may hang (each thread once took the other's SFTP reply and both waited for
ever), and a server that stops answering a file request gives a clean error in bounded time."""
import os
import signal
import threading
import time

import psutil
import pytest

from agent_kit import stop_all
from app.remote.hostkeys import KnownHosts
from app.remote.ssh import SSHTransport

DEADLINE_S = 30.0


def connect(srv, root, tmp_path, **kwargs):
    return SSHTransport("box", srv.host, srv.port, srv.user, str(root), KnownHosts(tmp_path / "known_hosts"),
                        key_path=str(srv.key_path), accept_fingerprint=srv.fingerprint, **kwargs)


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "threads root"
    yield path
    stop_all(path)


def run_together(work, threads=8, deadline=DEADLINE_S):
    """Start `work(i)` in `threads` threads at the same moment; fail (never hang) when one is not
    done by the deadline; return what each returned, raising the first error."""
    start = threading.Barrier(threads)
    results: dict = {}

    def run(i):
        start.wait()
        try:
            results[i] = ("ok", work(i))
        except BaseException as e:  # noqa: BLE001 - reported below
            results[i] = ("error", e)

    pool = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    end = time.monotonic() + deadline
    for t in pool:
        t.join(max(0.0, end - time.monotonic()))
    hung = [t.name for t in pool if t.is_alive()]
    assert not hung, f"{len(hung)} of {threads} threads still waiting after {deadline:g} s: the connection hangs"
    for kind, value in results.values():
        if kind == "error":
            raise value
    return [results[i][1] for i in range(threads)]


def test_concurrent_ensure_agent_exists_and_hello_on_one_connection_never_hang(sshd, root, tmp_path):
    t = connect(sshd, root, tmp_path)
    try:
        for round_ in range(3):  # a fresh root each round: every thread races the install
            t.root = str(root / f"r{round_}")
            t._agent_path = None

            def work(i):
                if i % 3 == 0:
                    return t.ensure_agent()
                if i % 3 == 1:
                    return [t.exists(f"{t.abs_root}/nothing-{i}-{n}") for n in range(30)]
                return t.agent("hello")["python"]

            results = run_together(work, threads=9)
            launchers = {r for r in results if isinstance(r, str) and r.endswith("agent.py")}
            assert len(launchers) == 1 and t.exists(launchers.pop())
            assert [r for r in results if isinstance(r, list)] == [[False] * 30] * 3
    finally:
        t.close()


def test_many_threads_hammering_file_primitives_of_one_connection(sshd, root, tmp_path):
    t = connect(sshd, root, tmp_path)
    try:
        t.mkdirs(t.abs_root)

        def work(i):
            folder = f"{t.abs_root}/t{i}"
            t.mkdirs(folder)
            for n in range(15):
                t.write_bytes(f"{folder}/f{n}", bytes([i]) * (n * 1000 + 1))
                t.chmod(f"{folder}/f{n}", 0o600)
                assert t.exists(f"{folder}/f{n}")
            t.rename(f"{folder}/f0", f"{folder}/moved")
            t.remove_file(f"{folder}/f1")
            return sorted(os.listdir(folder))

        listings = run_together(work, threads=6)
        assert all(len(names) == 14 and "moved" in names and "f1" not in names for names in listings)
        assert (root / "t3" / "f5").read_bytes() == bytes([3]) * 5001
    finally:
        t.close()


def sftp_server_processes(srv):
    return [p for p in psutil.Process(srv.proc.pid).children(recursive=True) if p.name() == "sftp-server"]


def test_a_server_that_stops_answering_sftp_gives_a_clean_error_in_time(sshd_factory, root, tmp_path):
    srv = sshd_factory(sftp="/usr/lib/openssh/sftp-server")
    t = connect(srv, root, tmp_path, file_timeout=2.0)
    stopped = []
    try:
        t.mkdirs(t.abs_root)
        stopped = sftp_server_processes(srv)
        assert stopped, "the sftp-server of this connection was not found"
        for p in stopped:
            p.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=r"did not answer .* within 2 s"):
            run_together(lambda i: t.exists(f"{t.abs_root}/x{i}"), threads=3, deadline=20)
        assert time.monotonic() - started < 15
        # the stuck SFTP channel is dropped; the next call opens another and works
        assert t.exists(t.abs_root) and t.agent("hello")["python"]
    finally:
        for p in stopped:
            try:
                p.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass
        t.close()


def test_a_server_that_hangs_up_at_once_is_one_clear_line_and_no_paramiko_traceback(tmp_path):
    """paramiko logs a failed handshake with its traceback from its own thread (Python's last-resort
    handler prints it to the terminal); Berth says it once, in its own words."""
    import subprocess
    import sys
    from pathlib import Path

    probe = tmp_path / "probe.py"
    probe.write_text(
        "import logging, pathlib, socket, sys, threading\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(5)\n"
        "def serve():\n"
        "    while True:\n"
        "        c, _ = srv.accept(); c.close()\n"
        "threading.Thread(target=serve, daemon=True).start()\n"
        "from app.remote.hostkeys import KnownHosts\n"
        "from app.remote.ssh import SSHTransport\n"
        "logging.getLogger('paramiko.transport').error('paramiko would print this')\n"
        "try:\n"
        f"    SSHTransport('x', '127.0.0.1', srv.getsockname()[1], 'u', '~/b', KnownHosts(pathlib.Path({str(tmp_path)!r}) / 'kh'), timeout=3)\n"
        "except Exception as e:\n"
        "    print(e)\n")
    r = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.stderr == "", r.stderr
    assert "closed the connection before SSH began" in r.stdout and "ssh -p" in r.stdout, r.stdout
