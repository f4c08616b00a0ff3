"""Servers named by an ~/.ssh/config alias, with their own timeouts. Kept out of db.py so it can be
appended to MIGRATIONS as ("0006_server_ssh", server_ssh) without touching the other migrations."""


def server_ssh(db):
    """0 in a timeout column means "from the alias's ssh config, else Berth's default" (see
    app/remote/connect.py); old rows keep working unchanged."""
    db["servers"].add_column("ssh_alias", str, not_null_default="")
    for column in ("connect_timeout", "auth_timeout", "command_timeout", "keepalive"):
        db["servers"].add_column(column, float, not_null_default=0)
