"""`berth server connections` and `berth server disconnect S|--all`: the connections Berth holds
between CLI calls (app/remote/held.py), listed, and ended (their keepers exit at once)."""
from __future__ import annotations

import time

from .base import Failed
from .output import print_json, print_table
from . import options


def add_arguments(actions) -> None:
    a = actions.add_parser("connections", help="the SSH connections held between CLI calls (one keeper each)")
    options.add_json(a)
    a = actions.add_parser("disconnect", help="end a server's held connection (its keeper exits), or all of them")
    a.add_argument("name", nargs="?", help="the server (a name, not a glob)")
    a.add_argument("--all", action="store_true", help="every held connection of this Berth")


def connections(args, _ws) -> int:
    from app.remote.held import keepers

    now = time.time()
    rows = [{"server": k["server"], "pid": k["pid"], "for_s": round(now - k["since"]), "idle_s": k["idle_for"],
             "idle_limit_s": k["idle_limit"], "calls": k["calls"], "socket": k["socket"]} for k in keepers()]
    print_json(rows) if args.json else print_table(rows, ["server", "pid", "for_s", "idle_s", "idle_limit_s", "calls"])
    return 0


def disconnect(args, ws) -> int:
    from app.remote.held import retire

    if bool(args.name) == bool(args.all):
        raise Failed("give one server's name, or --all")
    if args.name:
        ws.servers.get(args.name)  # an unknown name says so
    gone = retire(None if args.all else args.name)
    for k in gone:
        print(f"{k['server']}: disconnected (keeper {k['pid']} exits)")
    if not gone:
        print("no held connection" + (f" to {args.name}" if args.name else ""))
    return 0


def retire_quietly(name: str) -> None:
    """A removed server's held connection ends with it."""
    from app.remote.held import retire

    try:
        retire(name)
    except OSError:  # a socket folder that is not private holds nothing of ours
        pass
