"""A throwaway OpenSSH server on 127.0.0.1 for tests (see the `sshd` fixtures in conftest.py).

    with SshServer() as srv:              # or the `sshd` / `sshd_factory` fixtures
        srv.host, srv.port, srv.user      # "127.0.0.1", a free port, the current user
        srv.key_path                      # the user's private key (unencrypted ed25519)
        srv.fingerprint                   # host key, "SHA256:..." as ssh-keygen prints it
        srv.restart_with_new_host_key()   # same port, new host key (a "reinstalled" server)
    SshServer(sftp=None)                  # no `Subsystem sftp` (a hardened server); or a path, e.g.
                                          # "/usr/lib/openssh/sftp-server" (its own process per session)
    SshServer(set_env={"PIP_INDEX_URL": "http://127.0.0.1:9/"})  # sshd's SetEnv for every session

The server runs `/usr/sbin/sshd -D -e -f CONFIG` in the foreground as a child process, logging
to `log_path`. Everything lives in `folder`; nothing outside it is touched except `/run/sshd`.
"""
from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
HOST_KEY_TYPES = {"ed25519": ["-t", "ed25519"], "ecdsa": ["-t", "ecdsa", "-b", "256"], "rsa": ["-t", "rsa", "-b", "2048"]}


def missing_tools() -> list[str]:
    """The programs SshServer needs that this machine lacks (empty when all is there)."""
    missing = []
    if not os.access(SSHD, os.X_OK):
        missing.append(SSHD)
    if shutil.which(SSH_KEYGEN) is None:
        missing.append(SSH_KEYGEN)
    return missing


def require_sshd() -> None:
    """pytest.fail (never skip) when OpenSSH is missing: an SSH test that cannot run is a defect."""
    missing = missing_tools()
    if missing:
        import pytest

        pytest.fail(
            f"OpenSSH is needed for the SSH tests but {', '.join(missing)} is missing: "
            "install it with `apt-get install -y openssh-server` (Debian) and run again.",
            pytrace=False,
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path, key_type: str) -> None:
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(
        [SSH_KEYGEN, "-q", *HOST_KEY_TYPES[key_type], "-N", "", "-C", path.name, "-f", str(path)],
        check=True, stdin=subprocess.DEVNULL, capture_output=True,
    )


def fingerprint_of(pub_path: Path) -> str:
    """'SHA256:...' exactly as `ssh-keygen -l -E sha256 -f KEY.pub` prints it (second field)."""
    out = subprocess.run(
        [SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(pub_path)],
        check=True, stdin=subprocess.DEVNULL, capture_output=True, text=True,
    ).stdout
    return out.split()[1]


class SshServer:
    host = "127.0.0.1"

    def __init__(self, folder: str | os.PathLike | None = None, host_key_type: str = "ed25519",
                 port: int | None = None, start_timeout: float = 10.0, listen: str = "127.0.0.1",
                 netns: str | None = None, max_startups: str = "100", max_sessions: int = 100,
                 sftp: str | None = "internal-sftp", set_env: dict | None = None):
        if host_key_type not in HOST_KEY_TYPES:
            raise ValueError(f"host_key_type must be one of {sorted(HOST_KEY_TYPES)}, not {host_key_type!r}")
        if (not re.fullmatch(r"[0-9]+(:[0-9]+:[0-9]+)?", str(max_startups))
                or not isinstance(max_sessions, int) or max_sessions < 1):
            raise ValueError(f"max_startups must be N or START:RATE:FULL and max_sessions at least 1, "
                             f"not {max_startups!r} and {max_sessions!r}")
        self._own_folder = folder is None
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="berth-sshd-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.host_key_type = host_key_type
        self.user = getpass.getuser()
        self.host = listen
        self.sftp = sftp  # the sftp subsystem's command; None: the server has none
        # sshd's SetEnv: variables every session gets (e.g. DOCKER_HOST); a pytest-xdist worker's own
        # stable-port range (tests/conftest.py) so two workers' agents never pick the same port
        self.set_env = {**({"BERTH_PORT_RANGE": os.environ["BERTH_PORT_RANGE"]} if "BERTH_PORT_RANGE" in os.environ
                           else {}), **dict(set_env or {})}
        self.netns = netns  # run inside this network namespace (`ip netns exec`): see NetnsPair
        # sshd's limits on unauthenticated connections ("start:rate:full" or a number) and on sessions
        # per connection: a fleet bench logging in to many servers at once raises them
        self.max_startups, self.max_sessions = str(max_startups), max_sessions
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.start_timeout = start_timeout
        self.config_path = self.folder / "sshd_config"
        self.host_key_path = self.folder / f"ssh_host_{host_key_type}_key"
        self.host_pub_path = self.folder / f"ssh_host_{host_key_type}_key.pub"
        self.key_path = self.folder / "id_ed25519"
        self.pub_key_path = self.folder / "id_ed25519.pub"
        self.authorized_keys_path = self.folder / "authorized_keys"
        self.pid_path = self.folder / "sshd.pid"
        self.log_path = self.folder / "sshd.log"
        self.proc: subprocess.Popen | None = None
        self._log_file = None

        _keygen(self.host_key_path, host_key_type)
        _keygen(self.key_path, "ed25519")
        shutil.copyfile(self.pub_key_path, self.authorized_keys_path)
        self.fingerprint = fingerprint_of(self.host_pub_path)
        self._write_config()

    # -- helpers for tests ------------------------------------------------------------------
    @property
    def host_public_key(self) -> str:
        """'ssh-ed25519 AAAA...' (type and base64, no comment)."""
        return " ".join(self.host_pub_path.read_text().split()[:2])

    def known_hosts_line(self) -> str:
        """A known_hosts line for this server, e.g. '[127.0.0.1]:2222 ssh-ed25519 AAAA...'."""
        return f"[{self.host}]:{self.port} {self.host_public_key}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------------
    def _write_config(self) -> None:
        self.config_path.write_text(
            "\n".join([
                f"Port {self.port}",
                f"ListenAddress {self.host}",
                f"HostKey {self.host_key_path}",
                f"AuthorizedKeysFile {self.authorized_keys_path}",
                f"PidFile {self.pid_path}",
                "UsePAM no",
                "StrictModes no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                *([f"Subsystem sftp {self.sftp}"] if self.sftp else []),
                f"MaxStartups {self.max_startups}",
                f"MaxSessions {self.max_sessions}",
                "PrintMotd no",
                "LogLevel VERBOSE",
                *([f"SetEnv {' '.join(f'{k}={v}' for k, v in sorted(self.set_env.items()))}"] if self.set_env else []),
                "",
            ])
        )

    def start(self) -> "SshServer":
        if self.running:
            return self
        try:
            os.makedirs("/run/sshd", exist_ok=True)  # privilege separation dir (root)
        except PermissionError:
            pass
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            try:
                self._start_once()
                return self
            except RuntimeError:
                # Another process may have taken the free port between probing and binding.
                if attempt + 1 == attempts or "Cannot bind" not in self.log_tail(50):
                    raise
                self.port = free_port()
                self._write_config()
        return self

    def _start_once(self) -> None:
        self._log_file = open(self.log_path, "ab")
        self._log_start = self._log_file.tell()  # a restart appends: an earlier start's lines do not count
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen(
            [*prefix, SSHD, "-D", "-e", "-f", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._close_log()
                self.proc = None
                raise RuntimeError(f"sshd exited with status {code} on port {self.port}:\n{self.log_tail()}")
            if self._answers_ssh():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"sshd did not accept connections on {self.host}:{self.port} within "
                    f"{self.start_timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _answers_ssh(self) -> bool:
        """True once our sshd says it listens and the port answers with an SSH banner. The log line
        first: when two servers probed the same free port, the one that cannot bind would otherwise
        take the other's banner for its own and be "up" until it exits (a fleet of 100 lost one so).
        Inside a namespace this process may not reach, the log line has to do."""
        if f"Server listening on {self.host} port {self.port}" not in self._log_since_start():
            return False
        if self.netns:
            return True
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                return s.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def _log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart_with_new_host_key(self) -> str:
        """Stop, make a fresh host key of the same type, start on the SAME port; return the new fingerprint."""
        self.stop()
        old = self.fingerprint
        _keygen(self.host_key_path, self.host_key_type)
        self.fingerprint = fingerprint_of(self.host_pub_path)
        assert self.fingerprint != old
        self._fixed_port = True  # the point is the same address with a different key
        self._start_once()
        return self.fingerprint

    def close(self) -> None:
        """Stop, and remove the folder if this object created it."""
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "SshServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<SshServer {self.user}@{self.host}:{self.port} {self.host_key_type} {state} {self.folder}>"


class NetnsUnavailable(RuntimeError):
    pass


class NetnsPair:
    """Two network namespaces in a row: this machine -- `bastion` -- `target`, so a server in
    `target` is reachable only through one in `bastion` (no routing or forwarding between the
    links). Addresses are a random 10.200.N.0/29 (two /30 links); everything is removed by close().

        with NetnsPair() as net:
            net.bastion_ip  # 10.200.N.2, reachable from here
            net.target_ip   # 10.200.N.6, reachable from the bastion namespace only
    """

    def __init__(self):
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise NetnsUnavailable("network namespaces need root and iproute2's `ip`")
        import secrets

        tag = secrets.token_hex(3)
        self.bastion_ns, self.target_ns = f"berth-b-{tag}", f"berth-t-{tag}"
        self._veths = (f"bb{tag}h", f"bb{tag}n", f"bt{tag}b", f"bt{tag}n")
        taken = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        for _ in range(50):
            n = secrets.randbelow(250) + 1
            if f"10.200.{n}." not in taken:
                break
        self.net = n
        self.host_ip, self.bastion_ip = f"10.200.{n}.1", f"10.200.{n}.2"
        self.bastion_inner_ip, self.target_ip = f"10.200.{n}.5", f"10.200.{n}.6"
        self._made: list[str] = []

    def _ip(self, *argv, ns: str | None = None) -> None:
        cmd = ["ip", *(["-n", ns] if ns else []), *argv]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise NetnsUnavailable(f"`{' '.join(cmd)}` failed: {r.stderr.strip()}")

    def start(self) -> "NetnsPair":
        hb, bh, bt, tb = self._veths
        try:
            for ns in (self.bastion_ns, self.target_ns):
                self._ip("netns", "add", ns)
                self._made.append(ns)
                self._ip("link", "set", "lo", "up", ns=ns)
            self._ip("link", "add", hb, "type", "veth", "peer", "name", bh)
            self._made.append("veth")
            self._ip("link", "set", bh, "netns", self.bastion_ns)
            self._ip("addr", "add", f"{self.host_ip}/30", "dev", hb)
            self._ip("link", "set", hb, "up")
            self._ip("addr", "add", f"{self.bastion_ip}/30", "dev", bh, ns=self.bastion_ns)
            self._ip("link", "set", bh, "up", ns=self.bastion_ns)
            self._ip("link", "add", bt, "type", "veth", "peer", "name", tb, ns=self.bastion_ns)
            self._ip("link", "set", tb, "netns", self.target_ns, ns=self.bastion_ns)
            self._ip("addr", "add", f"{self.bastion_inner_ip}/30", "dev", bt, ns=self.bastion_ns)
            self._ip("link", "set", bt, "up", ns=self.bastion_ns)
            self._ip("addr", "add", f"{self.target_ip}/30", "dev", tb, ns=self.target_ns)
            self._ip("link", "set", tb, "up", ns=self.target_ns)
        except NetnsUnavailable:
            self.close()
            raise
        return self

    def close(self) -> None:
        if "veth" in self._made:  # the host end; its peer goes with the namespace anyway
            subprocess.run(["ip", "link", "del", self._veths[0]], capture_output=True)
        for ns in (self.target_ns, self.bastion_ns):
            if ns in self._made:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._made.clear()

    def __enter__(self) -> "NetnsPair":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
