#!/usr/bin/env python3
"""One connection's cost, step by step, against real OpenSSH sshd's on loopback (tests/sshd.py):
the bare SSH handshake and its CPU (paramiko client; the kex and host key it agrees), then Berth's
connect (handshake + host key check + auth), the agent's install check, the session's start and the
first status on it, and the server's CPU for all of it; then N connects + statuses at once.

    .venv/bin/python bench/connect_steps.py [N] [--handshakes 20]

What it says: where the ~1 s of one server goes in `berth status`, and the floor for N fresh
connections on this machine (handshakes/s, client and server CPU). bench/README.md, "Fleet".
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from sshd import SshServer, missing_tools  # noqa: E402


def cpu_of(pids: list[int]) -> float:
    """User + system seconds of those processes and their reaped children (sshd's per-connection
    children are reaped by their sshd listener)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def bare_handshakes(srv: SshServer, n: int, kex: str | None = None) -> dict:
    """paramiko start_client + public-key auth, one after another: wall, this process's CPU, sshd's.
    `kex`: the one key exchange offered (None: paramiko's own order, the first both sides know)."""
    import paramiko

    key = paramiko.Ed25519Key.from_private_key_file(str(srv.key_path))
    walls = []
    cpu0, srv0 = time.process_time(), cpu_of([srv.proc.pid])
    for _ in range(n):
        t0 = time.perf_counter()
        sock = socket.create_connection((srv.host, srv.port))
        t = paramiko.Transport(sock)
        if kex:
            t.get_security_options().kex = (kex,)
        t.start_client(timeout=10)
        t.auth_publickey(srv.user, key)
        walls.append(time.perf_counter() - t0)
        t.close()
    time.sleep(0.3)  # sshd's children exit and are reaped
    return {"wall": statistics.median(walls), "client_cpu": (time.process_time() - cpu0) / n,
            "server_cpu": (cpu_of([srv.proc.pid]) - srv0) / n}


def berth_steps(ws, name: str) -> dict:
    """Berth's own steps on a fresh connection, each timed."""
    out = {}
    t0 = time.perf_counter()
    c0 = time.process_time()
    t = ws.connect(name)
    out["connect (handshake, host key, auth)"] = time.perf_counter() - t0
    out["  its CPU in this process"] = time.process_time() - c0
    t0 = time.perf_counter()
    t.ensure_agent()
    out["ensure_agent (install check over SFTP)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    t.agent("hello")
    out["first agent call (session start + hello)"] = time.perf_counter() - t0
    pid = t._session.pid  # the same process from sshd's shell on: `bash -c` execs python3 (or its shim)
    out["  the session process's CPU (shell rc files, python3, imports)"] = cpu_of([pid]) if pid else 0.0
    t0 = time.perf_counter()
    ws.server_status(t, with_jobs=True)
    out["status (+ journal check), session running"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    t.close()
    out["close"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int, nargs="?", default=10, help="servers connected at once in the last step")
    p.add_argument("--handshakes", type=int, default=20)
    args = p.parse_args(argv)
    if missing_tools():
        print("needs openssh-server", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="berth-connect-"))
    os.environ.update(BERTH_HOME=str(folder / "home"), BERTH_SSH_DIR=str(folder / "ssh"),
                      PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    (folder / "home").mkdir()
    (folder / "ssh").mkdir()
    servers = []
    try:
        for i in range(args.n):
            srv = SshServer(folder=folder / f"s{i}", max_startups="200:30:400", max_sessions=200)
            srv.start()
            servers.append(srv)
        from app.store.servers import ServerConfig
        from app.workspace import Workspace

        ws = Workspace(anchor_later=True)
        for i, srv in enumerate(servers):
            name = f"s{i}"
            ws.servers.save(ServerConfig(name=name, host=srv.host, port=srv.port, user=srv.user,
                                         key_path=str(srv.key_path), root=str(folder / name / "root")))
            ws.connect(name, accept_fingerprint=srv.fingerprint).close()  # trusted, agent installed

        print("bare handshake + ed25519 auth, ed25519 host key (the sshd fixture's), one after another:")
        bares = {}
        for kex in (None, "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256"):
            bare = bares[kex] = bare_handshakes(servers[0], args.handshakes, kex)
            print(f"  kex {kex or 'paramiko default':30} {bare['wall'] * 1000:6.1f} ms wall, client CPU "
                  f"{bare['client_cpu'] * 1000:5.1f} ms, sshd CPU {bare['server_cpu'] * 1000:5.1f} ms -> floor on "
                  f"{os.cpu_count()} cores: {os.cpu_count() / (bare['client_cpu'] + bare['server_cpu']):.0f} "
                  f"handshakes/s (client alone, one GIL: {1 / bare['client_cpu']:.0f}/s)")
        srv0 = cpu_of([servers[0].proc.pid])
        runs = [berth_steps(ws, "s0") for _ in range(3)]
        time.sleep(0.5)  # the session's python3, its shell and sshd's child exit and are reaped
        server_cpu = (cpu_of([servers[0].proc.pid]) - srv0) / len(runs)
        for key in runs[0]:
            print(f"  {key:45} {statistics.median(r[key] for r in runs) * 1000:8.1f} ms")
        print(f"  sshd's own CPU per connection: {server_cpu * 1000:.0f} ms (the bare handshake's: "
              f"{bares[None]['server_cpu'] * 1000:.0f} ms)")

        def one(name, into):
            w = Workspace(anchor_later=True)
            t0 = time.perf_counter()
            with w.connect(name) as t:
                w.server_status(t, with_jobs=True)
            into.append(time.perf_counter() - t0)
            w.close()

        done: list[float] = []
        c0 = time.process_time()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=one, args=(f"s{i}", done)) for i in range(args.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        print(f"{args.n} connects + statuses at once: {wall:.2f} s wall (slowest {max(done):.2f} s), "
              f"client CPU {time.process_time() - c0:.2f} s; load {os.getloadavg()[0]:.1f}")
    finally:
        for srv in servers:
            srv.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
