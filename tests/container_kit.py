"""Real container engines for the container tests, each on storage of its own so nothing touches the
machine's: Debian's dockerd on its own data root and unix socket, without touching the host
firewall (--iptables=false --ip-masq=false), and Debian's podman (with runc: crun fails here) on its
own containers.conf (CONTAINERS_CONF), storage.conf (CONTAINERS_STORAGE_CONF), file locks and CNI
network (its own bridge and subnet). A Python base image made with debootstrap, cached on disk
between runs (~/.cache/berth-test, about a minute to make). Whatever they start they stop; the
bridges and any nft table they added go too. Both have `env` (what a client needs), `path` (the
client binary), `kind`, `cli(*args)`, `start()`, `stop()`."""
from __future__ import annotations

import json
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
PODMAN = "/usr/bin/podman"
NEEDS = {"docker": (("/usr/sbin/dockerd", DOCKER, "/usr/sbin/debootstrap"), "docker.io debootstrap"),
         "podman": ((PODMAN, "/usr/sbin/runc", "/usr/bin/catatonit", "/usr/sbin/debootstrap"),
                    "podman runc catatonit debootstrap")}


def missing(kind: str = "docker") -> str | None:
    tools, packages = NEEDS[kind]
    for tool in tools:
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing (apt-get install {packages})"
    return None


def engine(kind: str) -> "Dockerd | Podman":
    return Dockerd() if kind == "docker" else Podman()


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

    kind, path = "docker", DOCKER

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="berth-dockerd-", dir="/tmp"))
        self.sock = self.dir / "docker.sock"
        # podman is on PATH here too, and the agent lists every engine: its probe stays in this folder
        self.env = {"DOCKER_HOST": f"unix://{self.sock}", **podman_confs(self.dir / "podman", "berth-unused")}
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
        while self.cli("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dockerd did not start: " + (self.dir / "dockerd.log").read_text()[-2000:])
            time.sleep(0.2)
        self.cli("import", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin", str(base_tar()), BASE_IMAGE)
        return self

    def cli(self, *args, check=True, timeout=120):
        return subprocess.run([DOCKER, *args], env=dict(os.environ, **self.env), capture_output=True, text=True,
                              check=check, timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None:
            ids = self.cli("ps", "-aq", check=False).stdout.split()
            if ids:
                self.cli("rm", "-f", *ids, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if not self.bridge_before and Path("/sys/class/net/docker0").exists():
            subprocess.run(["ip", "link", "del", "docker0"], check=False)
        for table in _nft_tables() - self.tables_before:
            subprocess.run(["nft", "delete", *table.split()], check=False)  # nft delete table ip nat
        for mount in sorted(_mounts_under(self.dir), reverse=True):  # a podman probe's storage
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


PODMAN_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "{dir}/tmp"
[network]
network_config_dir = "{dir}/cni"
default_network = "{net}"
"""
STORAGE_CONF = """[storage]
driver = "overlay"
graphroot = "{dir}/graph"
runroot = "{dir}/run"
"""


def podman_confs(folder: Path, net: str) -> dict[str, str]:
    """A containers.conf and storage.conf keeping podman in `folder`; the environment naming them."""
    (folder / "cni").mkdir(parents=True, exist_ok=True)
    (folder / "containers.conf").write_text(PODMAN_CONF.format(dir=folder, net=net))
    (folder / "storage.conf").write_text(STORAGE_CONF.format(dir=folder))
    return {"CONTAINERS_CONF": str(folder / "containers.conf"), "CONTAINERS_STORAGE_CONF": str(folder / "storage.conf")}


def _mounts_under(folder: Path) -> list[str]:
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return [p for p in points if p == str(folder) or p.startswith(f"{folder}/")]


class Podman:
    """podman on a temp folder's storage, locks and CNI network (a bridge and subnet of its own: the
    machine's cni-podman0 and 10.88/16 stay untouched); no daemon, so `start` only imports the base."""

    kind, path = "podman", PODMAN

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="berth-podman-", dir="/tmp"))
        n = os.getpid() % 200 + 20
        self.net, self.bridge = f"berth-test-{os.getpid()}", f"berthpod{os.getpid() % 100000}"
        self.env = podman_confs(self.dir, self.net)
        plugins = [{"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                    "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                             "ranges": [[{"subnet": f"10.77.{n}.0/24", "gateway": f"10.77.{n}.1"}]]}},
                   {"type": "portmap", "capabilities": {"portMappings": True}}]
        (self.dir / "cni" / f"{self.net}.conflist").write_text(
            json.dumps({"cniVersion": "0.4.0", "name": self.net, "plugins": plugins}))
        self.tables_before = _nft_tables()
        self.started = False

    def start(self) -> "Podman":
        self.started = True
        self.cli("import", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin", str(base_tar()), BASE_IMAGE)
        return self

    def cli(self, *args, check=True, timeout=120):
        return subprocess.run([PODMAN, *args], env=dict(os.environ, **self.env), capture_output=True, text=True,
                              check=check, timeout=timeout)

    def stop(self) -> None:
        if self.started:
            self.cli("rm", "--all", "--force", "--time", "2", check=False, timeout=120)
            self.cli("rmi", "--all", "--force", check=False, timeout=120)
        for mount in sorted(_mounts_under(self.dir), reverse=True):  # the overlay driver's own mounts
            subprocess.run(["umount", "-l", mount], check=False)
        if Path(f"/sys/class/net/{self.bridge}").exists():
            subprocess.run(["ip", "link", "del", self.bridge], check=False)
        for table in _nft_tables() - self.tables_before:
            subprocess.run(["nft", "delete", *table.split()], check=False)  # nft delete table ip nat
        shutil.rmtree(f"/var/lib/cni/networks/{self.net}", ignore_errors=True)  # host-local's leases
        shutil.rmtree(self.dir, ignore_errors=True)
