"""A real Docker engine for the container tests: Debian's dockerd on its own data root and unix
socket, without touching the host firewall (--iptables=false --ip-masq=false), and a Python base
image made with debootstrap, cached on disk between runs (~/.cache/berth-test, about a minute to
make). Whatever it starts it stops; the docker0 bridge and any nft table it added go too."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

BASE_IMAGE = "berth-test/python:bookworm"
CACHE = Path(os.environ.get("BERTH_TEST_CACHE", Path.home() / ".cache" / "berth-test"))
ROOTFS_TAR = CACHE / "python-bookworm.tar"
DOCKER = "/usr/bin/docker"  # Debian's client, the daemon's own version


def missing() -> str | None:
    for tool in ("/usr/sbin/dockerd", DOCKER, "/usr/sbin/debootstrap"):
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing (apt-get install docker.io debootstrap)"
    return None


def _nft_tables() -> set[str]:
    try:
        out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return set()
    return {line.strip() for line in out.splitlines() if line.startswith("table ")}


def base_tar() -> Path:
    """The debootstrap root file system as a tar, made once and kept."""
    if ROOTFS_TAR.exists():
        return ROOTFS_TAR
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv", "bookworm",
                        str(rootfs)], check=True, stdout=subprocess.DEVNULL, timeout=900)
        part = ROOTFS_TAR.with_suffix(".part")
        with open(part, "wb") as f:
            subprocess.run(["tar", "-C", str(rootfs), "-c", "."], stdout=f, check=True, timeout=300)
        os.replace(part, ROOTFS_TAR)
    return ROOTFS_TAR


class Dockerd:
    """dockerd in a temp folder; `env` is what a client needs to reach it (DOCKER_HOST)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="berth-dockerd-", dir="/tmp"))
        self.sock = self.dir / "docker.sock"
        self.env = {"DOCKER_HOST": f"unix://{self.sock}"}
        self.proc = None
        self.tables_before = _nft_tables()
        self.bridge_before = Path("/sys/class/net/docker0").exists()

    def start(self) -> "Dockerd":
        log = open(self.dir / "dockerd.log", "wb")
        self.proc = subprocess.Popen(
            ["/usr/sbin/dockerd", "--iptables=false", "--ip-masq=false", "--data-root", str(self.dir / "data"),
             "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.dir / "dockerd.pid"),
             "--host", f"unix://{self.sock}"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while self.docker("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dockerd did not start: " + (self.dir / "dockerd.log").read_text()[-2000:])
            time.sleep(0.2)
        self.docker("import", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin", str(base_tar()), BASE_IMAGE)
        return self

    def docker(self, *args, check=True, timeout=120):
        return subprocess.run([DOCKER, *args], env=dict(os.environ, **self.env), capture_output=True, text=True,
                              check=check, timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if not self.bridge_before and Path("/sys/class/net/docker0").exists():
            subprocess.run(["ip", "link", "del", "docker0"], check=False)
        for table in _nft_tables() - self.tables_before:
            subprocess.run(["nft", "delete", *table.split()[1:]], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
