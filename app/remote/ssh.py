"""A server reached over SSH with paramiko, directly or through jump hosts (ProxyJump). Every host
key on the way is checked against the known hosts before any authentication is attempted, so
nothing is sent to an unverified server, nor through an unverified jump host."""
import functools
import http.client
import logging
import shlex
import socket
import time

import paramiko

from .credentials import AskPassphrase
from .errors import (ConnectFailed, HostKeyChanged, HostKeyRevoked, JumpHostKeyRefused, RemoteError,
                     UnknownHostKey)
from .hostkeys import KnownHosts
from .liveness import CheckedTransport, hung_why, tcp_liveness
from .session_reader import taken_stderr
from .sftp_files import FILE_TIMEOUT
from .sshauth import auth_methods, authenticate
from .sshconfig import Endpoint
from .transport import Transport, http_exchange

# paramiko logs a failed handshake (a reset, a banner timeout) with its traceback from its own
# thread; with no handler Python prints that to the operator's terminal. Berth reports the same
# failure once, in its own words (ConnectFailed), so paramiko's records go nowhere by default.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

DEFAULT_TIMEOUT = 15.0  # connect, and (unless set apart) authentication
DEFAULT_KEEPALIVE = 15.0  # OpenSSH's ServerAliveInterval; 3 unanswered intervals end the link
DEFAULT_COMMAND_TIMEOUT = 900.0  # an agent command silent this long is cut off (pip can be quiet)
# AES-GCM first (SSH takes the client's first choice the server supports): cipher and MAC in one
# pass, 1.2-1.4x the throughput of paramiko's default aes128-ctr + HMAC (docs/decisions.md, Uploads)
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _what_to_check(e: OSError, ep: Endpoint) -> str:
    """What an operator checks next, with the command that checks it from this computer."""
    if isinstance(e, socket.gaierror):
        return f"check the host name {ep.host!r} (`getent hosts {ep.host}`)"
    target = f"{ep.user}@{ep.host}" if ep.user else ep.host
    if isinstance(e, ConnectionRefusedError):
        return (f"is sshd running and listening on port {ep.port} there? Check with `nc -vz {ep.host} {ep.port}` "
                f"or `ssh -p {ep.port} {target}`")
    return (f"check the network and any firewall between here and {ep.host} "
            f"(`nc -vz {ep.host} {ep.port}`, `ssh -p {ep.port} {target}`)")


def _lost_is_connection_error(method):
    """paramiko reports a dropped link as SSHException or EOFError; callers see one ConnectionError
    (an OSError), whatever the primitive, so they can fail cleanly without knowing paramiko."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (paramiko.SSHException, EOFError) as e:
            why = hung_why(getattr(self, "_client", None)) or str(e) or type(e).__name__
            raise ConnectionError(f"lost the connection to {self.host}:{self.port} ({why})") from None
    return wrapper


class SSHTransport(Transport):
    def __init__(self, name: str, host: str, port: int, user: str, root: str, known_hosts: KnownHosts,
                 key_path: str = "", accept_fingerprint: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 auth: str = "auto", *, identity_files: tuple = (), identities_only: bool = False,
                 jumps: tuple[Endpoint, ...] = (), accept_jump_keys: tuple[str, ...] = (),
                 auth_timeout: float | None = None, command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
                 keepalive: float = DEFAULT_KEEPALIVE, jumps_only: bool = False,
                 ask_passphrase: AskPassphrase | None = None, file_timeout: float = FILE_TIMEOUT):
        super().__init__(root)
        self.name, self.host, self.port = name, host, port
        self.ssh_user = user
        self.key_path = key_path
        self.auth = auth
        self.known_hosts = known_hosts
        self.timeout = timeout
        self.auth_timeout = auth_timeout or timeout
        self.command_timeout = command_timeout
        self.file_timeout = file_timeout  # one file request unanswered this long fails (no hang)
        self.keepalive = keepalive
        self.ask_passphrase = ask_passphrase  # None: an encrypted key without a stored passphrase is skipped
        self.key_added = False
        self.jump_keys_added: list[str] = []  # "host fingerprint" of jump host keys trusted now
        # an explicit key file means that key (agent keys only if they are it), as IdentitiesOnly does
        files = (key_path,) if key_path else tuple(identity_files)
        self.target = Endpoint(alias=name, host=host, port=port, user=user, identity_files=files,
                               identities_only=identities_only or bool(key_path), jumps=tuple(jumps))
        self._hops: list[paramiko.Transport] = []  # the jump hosts' transports, first hop first
        if jumps_only:  # only check (and trust) the jump hosts' keys; nothing reaches the target
            self._connect(None, tuple(accept_jump_keys), jumps_only=True)
            self._close_hops()
            return
        self._client = self._connect(accept_fingerprint, tuple(accept_jump_keys))
        try:
            self._files, self._home = self._open_files()
        except BaseException:
            self._client.close()
            self._close_hops()
            raise

    @property
    def file_path_kind(self) -> str:
        """How files move on this connection: "sftp", or "exec" where the server has no SFTP."""
        return self._files.kind

    @_lost_is_connection_error
    def _open_files(self):
        """SFTP when the server has it; exec channels (exec_files.py) where sshd has no `Subsystem sftp`.
        Returns them and the login's home folder."""
        from .exec_files import ExecFiles
        from .sftp_files import SftpFiles, SftpRefused

        where = f"{self.host}:{self.port}"
        try:
            try:
                files = SftpFiles(self._client, where, self.file_timeout)
            except SftpRefused:
                files = ExecFiles(self._client, where, self.file_timeout)
            return files, files.home()
        except TimeoutError:
            raise ConnectFailed(f"{where} accepted the login but its SFTP server did not answer within "
                                f"{self.file_timeout:g} s; check the server's sshd (`Subsystem sftp`)") from None

    # -- connection ----------------------------------------------------------------------------
    def _connect(self, accept, accept_jump, jumps_only=False):
        """Each hop's transport runs over a direct-tcpip channel of the previous one."""
        via = None
        chain = [*self.target.jumps] + ([] if jumps_only else [self.target])
        try:
            for ep in chain:
                is_target = ep is self.target
                sock = self._open_socket(ep, via)
                via = self._start(ep, sock, accept if is_target else accept_jump, is_target)
                if not is_target:
                    self._hops.append(via)
        except BaseException as e:
            self._close_hops()
            if isinstance(e, RemoteError) and self.jump_keys_added:  # trusted on the way: still on record
                e.detail["jump_keys_added"] = list(self.jump_keys_added)
            raise
        return via

    def _open_socket(self, ep: Endpoint, via):
        if via is not None:
            try:
                return via.open_channel("direct-tcpip", (ep.host, ep.port), ("127.0.0.1", 0), timeout=self.timeout)
            except paramiko.ChannelException as e:
                raise ConnectFailed(f"the jump host {self._hop_name(via)} cannot reach {ep.host}:{ep.port}: "
                                    f"{e.text or e}") from None
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise ConnectFailed(f"the jump host {self._hop_name(via)} gave no channel to {ep.host}:{ep.port} "
                                    f"within {self.timeout:g} s ({str(e) or type(e).__name__})") from None
        try:
            sock = socket.create_connection((ep.host, ep.port), timeout=self.timeout)
        except TimeoutError:
            raise ConnectFailed(self._no_answer("no TCP answer", ep)) from None
        except OSError as e:
            raise ConnectFailed(f"cannot reach {ep.host}:{ep.port}: {e.strerror or str(e) or type(e).__name__}; "
                                f"{_what_to_check(e, ep)}") from None
        tcp_liveness(sock, self.keepalive)
        return sock

    def _hop_name(self, t) -> str:
        ep = t.berth_endpoint
        return f"{ep.host}:{ep.port}"

    def _start(self, ep: Endpoint, sock, accept, is_target: bool) -> paramiko.Transport:
        t = CheckedTransport(sock)
        t.berth_endpoint = ep
        t.banner_timeout = t.handshake_timeout = self.timeout
        t.auth_timeout = self.auth_timeout
        opts = t.get_security_options()
        preferred = [a for a in self.known_hosts.preferred_algorithms(ep.host, ep.port) if a in opts.key_types]
        if preferred:
            opts.key_types = tuple(preferred + [k for k in opts.key_types if k not in preferred])
        fast = [c for c in FAST_CIPHERS if c in opts.ciphers]
        opts.ciphers = tuple(fast + [c for c in opts.ciphers if c not in fast])
        started = time.monotonic()
        try:
            t.start_client(timeout=self.timeout)
            key = t.get_remote_server_key()
            try:
                added = self.known_hosts.verify(ep.host, ep.port, key, accept)
            except (UnknownHostKey, HostKeyChanged) as e:
                if is_target:
                    raise
                raise JumpHostKeyRefused(e, f"{self.host}:{self.port}") from None
            except HostKeyRevoked as e:  # never trustable: no --accept-jump-key hint
                if is_target:
                    raise
                raise HostKeyRevoked(f"jump host {e.host} (on the way to {self.host}:{self.port})", e.key_type,
                                     e.fingerprint, e.where) from None
            if is_target:
                self.key_added = added
            elif added:
                from .hostkeys import fingerprint, host_id
                self.jump_keys_added.append(f"{host_id(ep.host, ep.port)} {fingerprint(key)}")
            self._authenticate(t, ep, is_target)
        except RemoteError:
            t.close()
            raise
        except (paramiko.SSHException, OSError, EOFError) as e:
            t.close()
            # start_client gives up silently at its timeout; the next call then says "No existing session"
            if isinstance(e, TimeoutError) or time.monotonic() - started >= self.timeout - 0.5:
                raise ConnectFailed(self._no_answer("no SSH answer", ep)) from None
            hung_up = isinstance(e, (EOFError, ConnectionResetError)) or any(
                w in str(e) for w in ("reset by peer", "protocol banner"))
            if hung_up:
                raise ConnectFailed(f"{ep.host}:{ep.port} closed the connection before SSH began: is an SSH server "
                                    f"listening there, and does it take this computer (its MaxStartups, "
                                    f"AllowUsers, a firewall)? Check with `ssh -p {ep.port} {ep.host}`") from None
            raise ConnectFailed(f"SSH to {ep.host}:{ep.port} failed: {str(e) or type(e).__name__}") from None
        t.check_alive(self.keepalive)
        if isinstance(sock, socket.socket):
            sock.settimeout(None)
        return t

    def _no_answer(self, what: str, ep: Endpoint | None = None) -> str:
        ep = ep or self.target
        return (f"{what} from {ep.host}:{ep.port} within {self.timeout:g} s "
                f"(is the server up, the port right, or a firewall dropping packets?)")

    def _authenticate(self, t: paramiko.Transport, ep: Endpoint, is_target: bool):
        """The configured methods on the target; a jump host gets the agent and the key files."""
        authenticate(t, ep, auth_methods(self.auth) if is_target else ["agent", "key"], self.name,
                     ep.host if is_target else f"jump host {ep.host}:{ep.port}", self.ask_passphrase)

    def _close_hops(self):
        for t in reversed(self._hops):
            t.close()
        self._hops.clear()

    def shell_prefix(self) -> list[str]:
        """The Remote activity's "by hand" command: works from a fresh shell, checks host keys as Berth does."""
        import os

        from .activity import ssh_argv
        from .sshconfig import default_identities

        files = [str(self.known_hosts.path), *(str(p) for p in self.known_hosts.user_paths)]
        return ssh_argv(self.target, files, [p for p in default_identities() if os.path.exists(p)])

    # -- Transport primitives ------------------------------------------------------------------
    @_lost_is_connection_error
    def _exec(self, argv, stdin):
        chan = self._client.open_session(timeout=self.timeout)
        if self.command_timeout > 0:  # a read that waits this long fails (TimeoutError) instead of hanging
            chan.settimeout(self.command_timeout)
        chan.exec_command(" ".join(shlex.quote(a) for a in argv))
        chan.sendall(stdin)
        chan.shutdown_write()
        out = chan.makefile("rb")
        err = chan.makefile_stderr("rb")

        def wait():
            code = chan.recv_exit_status()
            rest = err.read()  # what the session reader took off while it ran comes first
            text = (taken_stderr(chan) + rest).decode("utf-8", "replace")
            chan.close()
            return code, text

        return out, wait, chan.close

    @_lost_is_connection_error
    def _exec_interactive(self, argv):
        """argv on a channel whose stdin stays open (the agent session). No read timeout: the session
        is idle between commands; the keepalive finds a dead link, and each request has its own timeout."""
        from .agent_session import Interactive

        chan = self._client.open_session(timeout=self.timeout)
        chan.exec_command(" ".join(shlex.quote(a) for a in argv))
        err = chan.makefile_stderr("rb")

        def wait():
            code = chan.recv_exit_status()
            rest = err.read()  # what the session reader took off while it ran comes first
            text = (taken_stderr(chan) + rest).decode("utf-8", "replace")
            chan.close()
            return code, text

        host = self.host  # not self: the shared reader holds this session until its channel ends, and
        # must not hold the transport (nor the workspace its callbacks reach) that long

        def write(data):
            try:
                chan.sendall(data)
            except (paramiko.SSHException, EOFError) as e:
                raise ConnectionError(f"lost the agent session on {host}: {e}") from None

        return Interactive(chan.makefile("rb"), write, chan.shutdown_write, wait, chan.close)

    def resolve(self, path):
        if path == "~" or path.startswith("~/"):
            return self._home + path[1:]
        return path if path.startswith("/") else f"{self._home}/{path}"

    @_lost_is_connection_error
    def exists(self, path):
        return self._files.exists(path)

    @_lost_is_connection_error
    def mkdirs(self, path):
        self._files.mkdirs(path)

    @_lost_is_connection_error
    def put(self, local, remote, progress=None):
        self._files.put(local, remote, progress)

    @_lost_is_connection_error
    def write_bytes(self, remote, data):
        self._files.write_bytes(remote, data)

    @_lost_is_connection_error
    def chmod(self, path, mode):
        self._files.chmod(path, mode)

    @_lost_is_connection_error
    def rename(self, src, dst):
        self._files.rename(src, dst)

    @_lost_is_connection_error
    def remove_tree(self, path):
        self._files.remove_tree(path)

    @_lost_is_connection_error
    def remove_file(self, path):
        self._files.remove_file(path)

    @_lost_is_connection_error
    def open_write(self, remote, offset):
        return self._files.open_write(remote, offset)

    def connected(self):
        return self._client.is_active()

    def lost_why(self):
        return hung_why(self._client)

    def send_files(self, jobs, on_bytes, should_stop=lambda: False):
        if self.file_path_kind == "sftp":
            from .sftp_send import send_parallel

            send_parallel(self._client, jobs, on_bytes, should_stop, timeout=self.file_timeout)
        else:
            self._files.send_files(jobs, on_bytes, should_stop)

    @_lost_is_connection_error
    def http(self, port, method, path, body=None, timeout=30.0):
        """HTTP to a runner through an SSH channel (direct-tcpip): no port opens on the server."""
        try:
            chan = self._client.open_channel("direct-tcpip", ("127.0.0.1", port), ("127.0.0.1", 0),
                                             timeout=timeout)
        except paramiko.ChannelException as e:
            raise ConnectionRefusedError(f"the server refused a tunnel to its port {port}: {e}") from None
        chan.settimeout(timeout)
        conn = _ChannelHTTPConnection(chan)
        return http_exchange(conn, method, path, body)

    def close(self):
        self.end_session()
        try:
            self._files.close()
        finally:
            self._client.close()
            self._close_hops()


class _ChannelHTTPConnection(http.client.HTTPConnection):
    def __init__(self, channel):
        super().__init__("127.0.0.1")
        self.sock = channel

    def connect(self):  # already connected through the channel
        pass
