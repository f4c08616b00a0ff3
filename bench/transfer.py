#!/usr/bin/env python3
"""Transfer bench: Berth's upload over SFTP, and over exec channels to a server without SFTP (its
sshd has no `Subsystem sftp`), against `scp -r` and `rsync -e ssh` of the same folder, to loopback
OpenSSH servers, in the same run; then through a delaying TCP proxy (added latency); then a
redeploy that changes one 1 MB file of the bundle.

    .venv/bin/python bench/transfer.py [--mb 200] [--files 20] [--delay-ms 100] [--repeat 2]

Goals (the SSH issue): upload >= 0.8x scp on loopback and >= 0.5x scp through the delaying proxy;
the redeploy sends under 2 MB and takes under 3 s with its health check. Everything lives in a temp
folder (sshd, BERTH_HOME, the server root), removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT / "tests"), str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import _kit  # noqa: E402
from _kit import ratio, table  # noqa: E402

MB = 1024 * 1024


def make_bundle(dest: Path, total_mb: int, files: int) -> Path:
    """iris + `files` weight files: one of 1 MB (the one a redeploy changes), the rest share the remainder."""
    folder = _kit.iris_copy(dest)
    each = (total_mb - 1) * MB // (files - 1)
    (folder / "weights").mkdir()
    (folder / "weights" / "small.bin").write_bytes(os.urandom(MB))
    for i in range(files - 1):
        (folder / "weights" / f"part{i:02d}.bin").write_bytes(os.urandom(each))
    return folder


def ssh_opts(srv, port: int) -> list[str]:
    return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-i", str(srv.key_path), "-o", f"Port={port}"]


def run_scp(srv, port: int, src: Path, dest: str) -> float:
    started = time.perf_counter()
    subprocess.run(["scp", "-q", "-r", *ssh_opts(srv, port), str(src), f"{srv.user}@{srv.host}:{dest}"], check=True)
    return time.perf_counter() - started


def run_rsync(srv, port: int, src: Path, dest: str) -> float | None:
    if not shutil.which("rsync"):
        return None
    ssh = "ssh " + " ".join(ssh_opts(srv, port))
    started = time.perf_counter()
    subprocess.run(["rsync", "-a", "-e", ssh, f"{src}/", f"{srv.user}@{srv.host}:{dest}/"], check=True)
    return time.perf_counter() - started


def run_berth_upload(srv, port: int, bundle: Path, root: str, kind: str = "sftp") -> tuple[float, int]:
    """The deploy's upload step alone: hello, then every blob the server lacks (all of them)."""
    from app.bundle import open_bundle
    from app.deploy.upload import unique_blobs, upload_blobs
    from app.remote.hostkeys import KnownHosts
    from app.remote.ssh import SSHTransport

    known = KnownHosts(Path(tempfile.mkdtemp()) / "known_hosts")
    with open_bundle(bundle) as b, SSHTransport("bench", srv.host, port, srv.user, root, known,
                                                key_path=str(srv.key_path), accept_fingerprint=srv.fingerprint) as t:
        assert t.file_path_kind == kind, f"{srv} moves files over {t.file_path_kind}, not {kind}"
        info = t.hello(hashes=[f.sha256 for f in b.files])
        blobs = unique_blobs(b.files, set(info["missing"]))
        started = time.perf_counter()
        result = upload_blobs(t, info["blobs"], blobs, lambda p: None, partials=info.get("partials") or {})
        return time.perf_counter() - started, result.sent


def clear(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def throughput_rows(srv, port: int, bundle: Path, work: Path, repeat: int, label: str,
                    nosftp=None, nosftp_port: int = 0) -> list[tuple]:
    """`nosftp`: a server without SFTP (at `nosftp_port`), for Berth's exec-channel path."""
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
    best: dict[str, float | None] = {}
    for _ in range(repeat):
        for name, fn in (("scp -r", lambda d: run_scp(srv, port, bundle, d)),
                         ("rsync -e ssh", lambda d: run_rsync(srv, port, bundle, d)),
                         ("berth upload", lambda d: run_berth_upload(srv, port, bundle, d)[0]),
                         ("berth exec (no SFTP)",
                          lambda d: run_berth_upload(nosftp, nosftp_port, bundle, d, "exec")[0])):
            dest = str(work / f"dest-{name.split()[0]}")
            clear(dest)
            seconds = fn(dest)
            clear(dest)
            if seconds is not None:
                best[name] = min(best.get(name) or seconds, seconds)
            else:
                best.setdefault(name, None)
    rows = []
    for name, seconds in best.items():
        rate = size / seconds / 1e6 if seconds else None
        rows.append((label, name, f"{seconds:.2f} s" if seconds else "n/a (not installed)",
                     f"{rate:.1f} MB/s" if rate else "n/a", ratio(best["scp -r"], seconds) if seconds else "n/a"))
    return rows, best


def redeploy_one_file(srv, bundle: Path, work: Path) -> tuple[int, float]:
    """A full deploy, then the same bundle with its 1 MB file changed: bytes sent and wall time."""
    from app.deploy.changes import run_to_end
    from app.deploy.deploy import Deploy
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    ws = Workspace()
    ws.add_server(ServerConfig(name="box", host=srv.host, port=srv.port, user=srv.user,
                               key_path=str(srv.key_path), root=str(work / "srv")), srv.fingerprint)
    with ws.connect("box") as t:
        run_to_end(Deploy(t, bundle, ws.audit).run())
    (bundle / "weights" / "small.bin").write_bytes(os.urandom(MB))
    toml = bundle / "berth.toml"
    toml.write_text(toml.read_text().replace('version = "1.0.0"', 'version = "1.0.1"', 1))
    seen = []
    started = time.perf_counter()
    with ws.connect("box") as t:
        run_to_end(Deploy(t, bundle, ws.audit).run(), seen.append)
    seconds = time.perf_counter() - started
    sent = max((p.done or 0) for p in seen if p.step == "upload")
    with ws.connect("box") as t:
        from app.deploy import changes

        run_to_end(changes.change(t, ws.audit, "stop", "iris"))
    return sent, seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--delay-ms", type=float, default=100.0, help="added round-trip latency (half each way)")
    ap.add_argument("--repeat", type=int, default=2, help="best of N for each tool")
    args = ap.parse_args()

    from delay_proxy import DelayProxy
    from sshd import SshServer, missing_tools

    if missing_tools() or not shutil.which("scp"):
        print("bench/transfer.py needs sshd, ssh-keygen and scp (apt-get install openssh-server openssh-client)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="berth-transfer-"))
    os.environ["BERTH_HOME"] = str(work / "home")
    print(f"transfer bench: {args.mb} MB in {args.files} files, loopback sshd, {_kit.source_state()}, "
          f"{os.cpu_count()} cores")
    try:
        bundle = make_bundle(work / "src", args.mb, args.files)
        with SshServer(work / "sshd") as srv, SshServer(work / "sshd-nosftp", sftp=None) as bare:
            rows, plain = throughput_rows(srv, srv.port, bundle, work, args.repeat, "loopback", bare, bare.port)
            with DelayProxy(srv.port, args.delay_ms / 2000) as proxy, \
                    DelayProxy(bare.port, args.delay_ms / 2000) as bare_proxy:
                slow_rows, slow = throughput_rows(srv, proxy.port, bundle, work, 1, f"+{args.delay_ms:g} ms RTT",
                                                  bare, bare_proxy.port)
            print(table(rows + slow_rows, ("link", "tool", "time", "throughput", "vs scp")))
            sent, seconds = redeploy_one_file(srv, bundle, work)
        print()
        print(f"redeploy after changing one 1 MB file: {sent / MB:.2f} MB sent (goal < 2 MB), "
              f"{seconds:.2f} s with its health check (goal < 3 s)")
        print()
        print(f"upload vs scp, loopback: {ratio(plain['scp -r'], plain['berth upload'])} (goal >= 0.80x); "
              f"through the proxy: {ratio(slow['scp -r'], slow['berth upload'])} (goal >= 0.50x)")
        exec_ = "berth exec (no SFTP)"
        print(f"exec channels (no SFTP) vs scp, loopback: {ratio(plain['scp -r'], plain[exec_])}; "
              f"through the proxy: {ratio(slow['scp -r'], slow[exec_])}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
