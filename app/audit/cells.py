"""What each column of the Audit table says for an event: local time, who, the change, where it was
recorded. Plain functions (no Qt) so the worker thread formats a page before the GUI paints it."""
from datetime import datetime

COLUMNS = (("time", "Time"), ("who", "Who"), ("server", "Server"), ("model", "Model"), ("version", "Version"),
           ("action", "Action"), ("outcome", "Outcome"), ("change", "Change"), ("reason", "Reason"),
           ("detail", "Detail"), ("origin", "Origin"))
KEYS = tuple(key for key, _ in COLUMNS)


def local_time(ts: str) -> str:
    """An ISO UTC timestamp shown in the computer's own time zone."""
    try:
        return datetime.fromisoformat(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return ts or ""


def who(row: dict) -> str:
    actor, ssh_user = row.get("actor") or "", row.get("ssh_user") or ""
    return f"{actor} (as {ssh_user})" if ssh_user else actor


def change(row: dict) -> str:
    old, new = row.get("old") or "", row.get("new") or ""
    return f"{old} → {new}".strip() if old or new else ""


def origin(row: dict) -> str:
    """Empty: recorded by this desktop; `server:NAME`: imported from that server's journal."""
    value = row.get("origin") or ""
    if not value:
        return "this desktop"
    return f"journal of {value[len('server:'):]}" if value.startswith("server:") else value


def cell(row: dict, key: str) -> str:
    if key == "time":
        return local_time(row.get("ts", ""))
    if key == "who":
        return who(row)
    if key == "outcome":
        return row.get("state") or row.get("outcome") or ""
    if key == "change":
        return change(row)
    if key == "origin":
        return origin(row)
    if key in ("detail", "reason"):
        return (row.get(key) or "").replace("\n", " ")
    return str(row.get(key) or "")


def cells(row: dict) -> tuple[str, ...]:
    return tuple(cell(row, key) for key in KEYS)
