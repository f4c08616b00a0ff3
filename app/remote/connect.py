"""Open the right transport for a configured server. A server added from an ~/.ssh/config alias
reads the alias again at each connect: its ProxyJump, IdentityFile(s), IdentitiesOnly,
ServerAliveInterval and ConnectTimeout apply; host, port and user are the ones stored."""
from app.store import paths
from app.store.servers import LOCAL, ServerConfig

from .credentials import AskPassphrase
from .errors import ConnectFailed
from .hostkeys import KnownHosts
from .local import LocalTransport
from .transport import Transport


def known_hosts(alias=None) -> KnownHosts:
    """Berth's own file, plus the user's known_hosts read as trusted: ~/.ssh/known_hosts, or the
    alias's UserKnownHostsFile (those of its jump hosts too, as ssh reads each hop's own)."""
    from .sshconfig import user_known_hosts_path

    default = (str(user_known_hosts_path()),)
    files: list[str] = []
    for ep in ((*alias.jumps, alias) if alias else ()):
        files.extend(f for f in (default if ep.known_hosts_files is None else ep.known_hosts_files) if f not in files)
    return KnownHosts(paths.known_hosts_path(), user_paths=tuple(files) if alias else default)


def trust_jump_keys(server: ServerConfig, fingerprints: tuple[str, ...],
                    ask_passphrase: AskPassphrase | None = None) -> list[str]:
    """Walk the server's jump hosts only, trusting an unknown jump host key whose fingerprint is one
    of `fingerprints`; returns "host fingerprint" for each key added. The target is not contacted."""
    if server.kind == LOCAL or not server.ssh_alias:
        return []
    return open_transport(server, accept_jump_keys=tuple(fingerprints), jumps_only=True,
                          ask_passphrase=ask_passphrase).jump_keys_added


def open_transport(server: ServerConfig, accept_fingerprint: str | None = None,
                   accept_jump_keys: tuple[str, ...] = (), jumps_only: bool = False,
                   ask_passphrase: AskPassphrase | None = None) -> Transport:
    """`ask_passphrase`: how to ask the operator for an encrypted key's passphrase (none: never asked)."""
    if server.kind == LOCAL:
        return LocalTransport(server.root)
    from . import ssh  # paramiko loads only when a real server is used
    from .sshconfig import SSHConfigError, resolve

    alias = None
    if server.ssh_alias:
        try:
            alias = resolve(server.ssh_alias)
        except SSHConfigError as e:
            raise ConnectFailed(f"{server.name}: {e}") from None
    timeout = server.connect_timeout or (alias and alias.connect_timeout) or ssh.DEFAULT_TIMEOUT
    keepalive = server.keepalive or (alias and alias.server_alive_interval) or ssh.DEFAULT_KEEPALIVE
    return ssh.SSHTransport(
        server.name, server.host, server.port, server.user, server.root, known_hosts(alias),
        key_path=server.key_path, accept_fingerprint=accept_fingerprint, auth=server.auth, timeout=timeout,
        identity_files=alias.identity_files if alias else (), identities_only=bool(alias and alias.identities_only),
        jumps=alias.jumps if alias else (), accept_jump_keys=tuple(accept_jump_keys),
        auth_timeout=server.auth_timeout or timeout, keepalive=keepalive,
        command_timeout=server.command_timeout or ssh.DEFAULT_COMMAND_TIMEOUT, jumps_only=jumps_only,
        ask_passphrase=ask_passphrase)
