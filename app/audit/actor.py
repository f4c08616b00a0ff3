"""Who is acting: the local OS user and host (the SSH user is recorded beside it)."""
import functools
import getpass
import socket


@functools.lru_cache(maxsize=1)
def local_actor_label() -> str:
    """Asked for every event; the user and host of a running Berth do not change."""
    return actor_label(local_actor())


def local_actor() -> dict:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"user": user, "host": socket.gethostname()}


def actor_label(actor: dict) -> str:
    return f"{actor.get('user', '?')}@{actor.get('host', '?')}"
