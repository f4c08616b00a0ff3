"""Who is acting: the local OS user and host (the SSH user is recorded beside it)."""
import getpass
import socket


def local_actor() -> dict:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"user": user, "host": socket.gethostname()}


def actor_label(actor: dict) -> str:
    return f"{actor.get('user', '?')}@{actor.get('host', '?')}"
