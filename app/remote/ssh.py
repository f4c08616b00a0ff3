"""A server reached over SSH with paramiko. The host key is checked against Berth's known-hosts
before any authentication is attempted, so nothing is sent to an unverified server."""
import functools
import http.client
import os
import shlex
import socket
import stat
import time
from pathlib import Path

import paramiko

from . import credentials
from .errors import AuthFailed, ConnectFailed, RemoteError
from .hostkeys import KnownHosts
from .transport import Transport, http_exchange

DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")


def _lost_is_connection_error(method):
    """paramiko reports a dropped link as SSHException or EOFError; callers see one ConnectionError
    (an OSError), whatever the primitive, so they can fail cleanly without knowing paramiko."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (paramiko.SSHException, EOFError) as e:
            raise ConnectionError(f"lost the connection to {self.host}:{self.port} ({e or type(e).__name__})") from None
    return wrapper


class SSHTransport(Transport):
    def __init__(self, name: str, host: str, port: int, user: str, root: str, known_hosts: KnownHosts,
                 key_path: str = "", accept_fingerprint: str | None = None, timeout: float = 15.0,
                 auth: str = "auto"):
        super().__init__(root)
        self.name, self.host, self.port = name, host, port
        self.ssh_user = user
        self.key_path = key_path
        self.auth = auth
        self.known_hosts = known_hosts
        self.timeout = timeout
        self.key_added = False
        self._client = self._connect(accept_fingerprint)
        self._sftp = paramiko.SFTPClient.from_transport(self._client)
        self._home = self._sftp.normalize(".")

    # -- connection ----------------------------------------------------------------------------
    def _connect(self, accept):
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except TimeoutError:
            raise ConnectFailed(self._no_answer("no TCP answer")) from None
        except OSError as e:
            raise ConnectFailed(f"cannot reach {self.host}:{self.port}: {e.strerror or e}") from None
        t = paramiko.Transport(sock)
        t.banner_timeout = t.handshake_timeout = t.auth_timeout = self.timeout
        preferred = [a for a in self.known_hosts.preferred_algorithms(self.host, self.port)
                     if a in t.get_security_options().key_types]
        if preferred:
            opts = t.get_security_options()
            opts.key_types = tuple(preferred + [k for k in opts.key_types if k not in preferred])
        started = time.monotonic()
        try:
            t.start_client(timeout=self.timeout)
            self.key_added = self.known_hosts.verify(self.host, self.port, t.get_remote_server_key(), accept)
            self._authenticate(t)
        except RemoteError:
            t.close()
            raise
        except (paramiko.SSHException, OSError, EOFError) as e:
            t.close()
            # start_client gives up silently at its timeout; the next call then says "No existing session"
            if isinstance(e, TimeoutError) or time.monotonic() - started >= self.timeout - 0.5:
                raise ConnectFailed(self._no_answer("no SSH answer")) from None
            raise ConnectFailed(f"SSH to {self.host}:{self.port} failed: {e or type(e).__name__}") from None
        t.set_keepalive(30)
        sock.settimeout(None)
        return t

    def _no_answer(self, what: str) -> str:
        return (f"{what} from {self.host}:{self.port} within {self.timeout:g} s "
                f"(is the server up, the port right, or a firewall dropping packets?)")

    def _authenticate(self, t: paramiko.Transport):
        tried = []
        if self.auth == "password":
            password = credentials.get_secret(credentials.password_account(self.name))
            if password is None:
                raise AuthFailed(f"no password for {self.name} is stored in the system keyring; "
                                 f"enter it in the server's settings")
            try:
                t.auth_password(self.ssh_user, password)
            except paramiko.AuthenticationException:
                raise AuthFailed(f"the server {self.host} refused the password for {self.ssh_user}") from None
            return
        for label, key in self._candidate_keys(tried):
            try:
                t.auth_publickey(self.ssh_user, key)
            except paramiko.AuthenticationException:
                tried.append(f"{label}: rejected by the server")
                continue
            if t.is_authenticated():
                return
        raise AuthFailed(f"could not log in to {self.host} as {self.ssh_user}; tried " +
                         ("; ".join(tried) if tried else "nothing (no key file given and no SSH agent keys)"))

    def _candidate_keys(self, tried):
        if self.key_path:
            key = _load_key(self.key_path, tried)
            if key:
                yield f"key file {self.key_path}", key
            return
        try:
            agent_keys = paramiko.Agent().get_keys()
        except paramiko.SSHException:
            agent_keys = ()
        if not agent_keys:
            tried.append("SSH agent: no keys")
        for k in agent_keys:
            yield f"SSH agent key {k.get_name()}", k
        for name in DEFAULT_IDENTITIES:
            path = Path.home() / ".ssh" / name
            if path.exists():
                key = _load_key(str(path), tried)
                if key:
                    yield f"key file {path}", key

    # -- Transport primitives ------------------------------------------------------------------
    @_lost_is_connection_error
    def _exec(self, argv, stdin):
        chan = self._client.open_session(timeout=self.timeout)
        chan.exec_command(" ".join(shlex.quote(a) for a in argv))
        chan.sendall(stdin)
        chan.shutdown_write()
        out = chan.makefile("rb")
        err = chan.makefile_stderr("rb")

        def wait():
            code = chan.recv_exit_status()
            text = err.read().decode("utf-8", "replace")
            chan.close()
            return code, text

        return out, wait, chan.close

    def resolve(self, path):
        if path == "~" or path.startswith("~/"):
            return self._home + path[1:]
        return path if path.startswith("/") else f"{self._home}/{path}"

    @_lost_is_connection_error
    def exists(self, path):
        try:
            self._sftp.stat(path)
            return True
        except FileNotFoundError:
            return False

    @_lost_is_connection_error
    def mkdirs(self, path):
        parts = path.strip("/").split("/")
        current = ""
        for p in parts:
            current += "/" + p
            try:
                if not stat.S_ISDIR(self._sftp.stat(current).st_mode):
                    raise RemoteError(f"{current} exists on the server and is not a folder")
            except FileNotFoundError:
                self._sftp.mkdir(current)

    @_lost_is_connection_error
    def put(self, local, remote, progress=None):
        self._sftp.put(str(local), remote, callback=progress, confirm=True)

    @_lost_is_connection_error
    def write_bytes(self, remote, data):
        with self._sftp.open(remote, "wb") as f:
            f.write(data)

    @_lost_is_connection_error
    def rename(self, src, dst):
        try:
            self._sftp.posix_rename(src, dst)
        except IOError as e:
            raise OSError(str(e)) from None

    @_lost_is_connection_error
    def remove_tree(self, path):
        try:
            for entry in self._sftp.listdir_attr(path):
                child = f"{path}/{entry.filename}"
                if stat.S_ISDIR(entry.st_mode):
                    self.remove_tree(child)
                else:
                    self._sftp.remove(child)
            self._sftp.rmdir(path)
        except FileNotFoundError:
            pass

    @_lost_is_connection_error
    def remove_file(self, path):
        try:
            self._sftp.remove(path)
        except FileNotFoundError:
            pass

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
        try:
            self._sftp.close()
        finally:
            self._client.close()


class _ChannelHTTPConnection(http.client.HTTPConnection):
    def __init__(self, channel):
        super().__init__("127.0.0.1")
        self.sock = channel

    def connect(self):  # already connected through the channel
        pass


def _load_key(path: str, tried: list) -> paramiko.PKey | None:
    if not os.path.exists(path):
        tried.append(f"key file {path}: not found")
        return None
    passphrase = credentials.get_secret(credentials.key_passphrase_account(path))
    secret = passphrase.encode() if passphrase is not None else None  # paramiko 4+ wants bytes
    try:
        return paramiko.PKey.from_path(path, password=secret)
    except (paramiko.PasswordRequiredException, TypeError):  # cryptography's "no password given" is a TypeError
        tried.append(f"key file {path}: encrypted, and no passphrase is stored in the keyring")
    except (paramiko.SSHException, ValueError, OSError) as e:
        why = "the passphrase in the keyring does not open it" if secret else f"cannot be read ({type(e).__name__})"
        tried.append(f"key file {path}: {why}")
    return None
