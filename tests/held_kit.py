"""What the held-connection tests share: sshd's login count, and adding a server as `server add` does."""
from app.store.servers import ServerConfig
from app.workspace import Workspace


def logins(srv) -> int:
    return srv.log_path.read_text().count("Accepted publickey")


def add(srv, root, name="box"):
    ws = Workspace()
    try:
        ws.add_server(ServerConfig(name=name, host=srv.host, port=srv.port, user=srv.user,
                                   key_path=str(srv.key_path), root=str(root)), srv.fingerprint)
    finally:
        ws.close()
