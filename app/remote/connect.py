"""Open the right transport for a configured server."""
from app.store import paths
from app.store.servers import LOCAL, ServerConfig

from .hostkeys import KnownHosts
from .local import LocalTransport
from .transport import Transport


def open_transport(server: ServerConfig, accept_fingerprint: str | None = None) -> Transport:
    if server.kind == LOCAL:
        return LocalTransport(server.root)
    from .ssh import SSHTransport  # paramiko loads only when a real server is used

    return SSHTransport(server.name, server.host, server.port, server.user, server.root,
                        KnownHosts(paths.known_hosts_path()), key_path=server.key_path,
                        accept_fingerprint=accept_fingerprint, auth=server.auth)
