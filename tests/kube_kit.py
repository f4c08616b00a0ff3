"""Debian's podman for `podman kube play` in the Kubernetes export test, on a temp folder's storage,
locks and CNI network (a bridge and subnet of its own, so the machine's cni-podman* and 10.88/16 stay
untouched), with runc (crun fails here) and explicit ulimits (/work/shared/MACHINE-NOTES.md). The
agent on `local` reaches it through a wrapper script that names the configuration: the local
transport passes the agent only an allow-list of the environment (CONTAINERS_CONF is not on it).
Whatever it starts it stops; its bridge, mounts and any nft table it added go too."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from container_kit import BASE_IMAGE, _nft_tables, base_tar

PODMAN = "/usr/bin/podman"
TOOLS = (PODMAN, "/usr/sbin/runc", "/usr/bin/catatonit", "/usr/sbin/debootstrap")

CONF = """[containers]
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
STORAGE = """[storage]
driver = "overlay"
graphroot = "{dir}/graph"
runroot = "{dir}/run"
"""


def missing() -> str | None:
    for tool in TOOLS:
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing (apt-get install podman runc catatonit debootstrap)"
    return None


class Podman:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="berth-kube-", dir="/tmp"))
        n = os.getpid() % 200 + 20
        self.net, self.bridge = f"berth-kube-{os.getpid()}", f"berthkube{os.getpid() % 100000}"
        (self.dir / "cni").mkdir()
        (self.dir / "containers.conf").write_text(CONF.format(dir=self.dir, net=self.net))
        (self.dir / "storage.conf").write_text(STORAGE.format(dir=self.dir))
        plugins = [{"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                    "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                             "ranges": [[{"subnet": f"10.78.{n}.0/24", "gateway": f"10.78.{n}.1"}]]}},
                   {"type": "portmap", "capabilities": {"portMappings": True}}]
        (self.dir / "cni" / f"{self.net}.conflist").write_text(
            json.dumps({"cniVersion": "0.4.0", "name": self.net, "plugins": plugins}))
        self.env = {"CONTAINERS_CONF": str(self.dir / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(self.dir / "storage.conf")}
        self.wrapper = self.dir / "podman"  # what the agent runs as its engine (see the docstring)
        self.wrapper.write_text("#!/bin/sh\nexec env " + " ".join(f"{k}={v}" for k, v in self.env.items())
                                + f' {PODMAN} "$@"\n')
        self.wrapper.chmod(0o755)
        self.tables_before = _nft_tables()

    def start(self) -> "Podman":
        self.cli("import", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin", str(base_tar()), BASE_IMAGE)
        return self

    def cli(self, *args, check=True, timeout=120):
        return subprocess.run([PODMAN, *args], env=dict(os.environ, **self.env), capture_output=True, text=True,
                              check=check, timeout=timeout)

    def stop(self) -> None:
        self.cli("pod", "rm", "--all", "--force", check=False, timeout=120)
        self.cli("rm", "--all", "--force", check=False, timeout=120)
        self.cli("rmi", "--all", "--force", check=False, timeout=120)
        with open("/proc/self/mounts") as f:
            points = [line.split()[1] for line in f]
        for point in sorted((p for p in points if p.startswith(f"{self.dir}/")), reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        if Path(f"/sys/class/net/{self.bridge}").exists():
            subprocess.run(["ip", "link", "del", self.bridge], check=False)
        for table in _nft_tables() - self.tables_before:
            subprocess.run(["nft", "delete", *table.split()[1:]], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
