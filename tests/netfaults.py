"""A test host with a bad network: one network namespace joined to this machine by a veth pair,
an OpenSSH server inside, and the faults this kernel can make without netem.

    with FaultyHost(tmp_path / "host") as host:
        host.ip, host.port        # 10.201.N.2, 22: the sshd inside the namespace
        host.sshd                 # its SshServer (key_path, fingerprint, user, proc)
        host.rate(200)            # tc tbf: 200 Mbit/s in each direction
        host.loss(1)              # nftables in the namespace: drop 1 % of TCP packets, both ways
        host.cut(); host.restore()  # the link goes down / comes back (namespace side of the veth)

Addresses are a random 10.201.N.0/30 (host side .1, namespace side .2) not in use here; nothing
else is touched. close() (also on a failed start) kills every process left in the namespace (SSH
sessions, agents, model runners), then removes the veth pair and the namespace.

Needs root and iproute2's `ip` (otherwise the caller skips, with `unavailable_reason()`); `tc`
(iproute2) and `nft` (nftables) must be there too: a missing one fails the test, since CI has to
install them (`apt-get install -y iproute2 nftables openssh-server`).
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

try:
    from .sshd import SshServer  # type: ignore[import-not-found]
except ImportError:
    from sshd import SshServer

NET = "10.201"


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (the only reasons to skip), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is missing"
    return None


def missing_tools() -> list[str]:
    """What must be installed for the faults themselves (a failure, not a skip, when missing)."""
    out = []
    if shutil.which("tc") is None:
        out.append("tc (apt-get install -y iproute2)")
    if shutil.which("nft") is None:
        out.append("nft (apt-get install -y nftables)")
    return out


class NetFaultError(RuntimeError):
    pass


def _run(*argv: str) -> str:
    r = subprocess.run(list(argv), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise NetFaultError(f"`{' '.join(argv)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


class FaultyHost:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        tag = secrets.token_hex(3)
        self.ns = f"berth-f-{tag}"
        self.host_if, self.ns_if = f"bf{tag}h", f"bf{tag}n"  # 9 characters: under IFNAMSIZ
        taken = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        for _ in range(100):
            n = secrets.randbelow(250) + 1
            if f"{NET}.{n}." not in taken:
                break
        else:
            raise NetFaultError(f"no free {NET}.N.0/30 here")
        self.host_ip, self.ip = f"{NET}.{n}.1", f"{NET}.{n}.2"
        self.port = 22
        self.sshd: SshServer | None = None
        self._made_ns = self._made_link = False

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "FaultyHost":
        try:
            _run("ip", "netns", "add", self.ns)
            self._made_ns = True
            _run("ip", "-n", self.ns, "link", "set", "lo", "up")
            _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            self._made_link = True
            _run("ip", "link", "set", self.ns_if, "netns", self.ns)
            _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _run("ip", "link", "set", self.host_if, "up")
            _run("ip", "-n", self.ns, "addr", "add", f"{self.ip}/30", "dev", self.ns_if)
            _run("ip", "-n", self.ns, "link", "set", self.ns_if, "up")
            self.sshd = SshServer(folder=self.folder / "sshd", listen=self.ip, port=self.port, netns=self.ns)
            self.sshd.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.sshd is not None:
            self.kill_sessions()
            self.sshd.stop()
            self.sshd = None
        if self._made_ns:
            self._kill_namespace_processes()
        if self._made_link:  # its peer goes with the namespace anyway
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
            self._made_link = False
        if self._made_ns:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
            self._made_ns = False

    def __enter__(self) -> "FaultyHost":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- processes ----------------------------------------------------------------------------
    def session_processes(self):
        """psutil processes under this host's sshd: SSH sessions and what they run (agents)."""
        import psutil

        if self.sshd is None or self.sshd.proc is None:
            return []
        try:
            return psutil.Process(self.sshd.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill_sessions(self) -> int:
        """SIGKILL every SSH session process of this host (not the listener): as if sshd died."""
        import psutil

        n = 0
        for p in self.session_processes():
            try:
                if "sshd" in p.name():
                    p.kill()
                    n += 1
            except psutil.NoSuchProcess:
                pass
        return n

    def _kill_namespace_processes(self) -> None:
        for _ in range(3):
            pids = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True).stdout.split()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            time.sleep(0.1)

    # -- faults -------------------------------------------------------------------------------
    def cut(self) -> None:
        """The link goes down (the namespace side of the veth): packets vanish, nothing is refused."""
        _run("ip", "-n", self.ns, "link", "set", self.ns_if, "down")

    def restore(self) -> None:
        _run("ip", "-n", self.ns, "link", "set", self.ns_if, "up")
        _run("ip", "-n", self.ns, "addr", "replace", f"{self.ip}/30", "dev", self.ns_if)

    def loss(self, percent: int) -> None:
        """Drop `percent` % of TCP packets at random, in and out of the namespace (0: no loss)."""
        self._require("nft")
        subprocess.run(["ip", "netns", "exec", self.ns, "nft", "delete", "table", "inet", "berth_loss"],
                       capture_output=True)
        if percent <= 0:
            return
        rules = (
            "table inet berth_loss {\n"
            f"  chain in {{ type filter hook input priority 0; policy accept; "
            f"meta l4proto tcp numgen random mod 100 < {int(percent)} counter drop; }}\n"
            f"  chain out {{ type filter hook output priority 0; policy accept; "
            f"meta l4proto tcp numgen random mod 100 < {int(percent)} counter drop; }}\n"
            "}\n"
        )
        r = subprocess.run(["ip", "netns", "exec", self.ns, "nft", "-f", "-"], input=rules, capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise NetFaultError(f"nft in {self.ns} failed: {r.stderr.strip()}")

    def dropped(self) -> int:
        """Packets the loss rules dropped so far (proof that the loss was real)."""
        out = subprocess.run(["ip", "netns", "exec", self.ns, "nft", "list", "table", "inet", "berth_loss"],
                             capture_output=True, text=True).stdout
        import re

        return sum(int(m) for m in re.findall(r"packets (\d+)", out))

    def rate(self, mbit: float | None) -> None:
        """Limit both directions to `mbit` Mbit/s with a token bucket (None: no limit)."""
        self._require("tc")
        for argv in (["tc"], ["tc", "-n", self.ns]):
            dev = self.host_if if len(argv) == 1 else self.ns_if
            subprocess.run([*argv, "qdisc", "del", "dev", dev, "root"], capture_output=True)
            if mbit:
                burst = max(32 * 1024, int(mbit * 1e6 / 8 / 100))  # 10 ms worth, at least 32 KB
                _run(*argv, "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{mbit}mbit",
                     "burst", str(burst), "latency", "200ms")

    def _require(self, tool: str) -> None:
        if shutil.which(tool) is None:
            raise NetFaultError(f"`{tool}` is missing: install {'nftables' if tool == 'nft' else 'iproute2'}")

    def __repr__(self) -> str:
        return f"<FaultyHost {self.ns} {self.ip}>"
