"""`berth server init-shared-root S --group GROUP [--writers W]`: the server's root, set up for a team of Unix users
(docs/permissions.md): the agent does it, as the root's owner or root, and says what it changed."""
from __future__ import annotations

import argparse

from .base import Failed


def unix_group(text: str) -> str:
    """argparse type: a name the agent would refuse is refused before connecting."""
    from app.agent.policy import PRINCIPAL_RE

    if text.startswith("@") or not PRINCIPAL_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid group {text!r} (a Unix group name, without @)")
    return text


def add_arguments(actions) -> None:
    a = actions.add_parser("init-shared-root", help="set a server's root up for a team of Unix users (group "
                                                    "ownership, setgid folders; run as the root's owner or root)")
    a.add_argument("name")
    a.add_argument("--group", required=True, type=unix_group, help="the Unix group of the team (on the server)")
    a.add_argument("--writers", type=unix_group, help="a Unix group of the members who may change any model (its "
                                                     "deployers and releasers; viewers must not be in it)")


def run(args, ws) -> int:
    from app.deploy.errors import OperationFailed
    from app.deploy.policy import init_shared_root

    with ws.connect(args.name) as t:
        try:
            result = init_shared_root(t, ws.audit, args.group, args.writers)
        except OperationFailed as e:
            raise Failed(f"{t.name}: {e}") from None
    for line in result["changes"]:
        print(f"{args.name}: {line}")
    if not result["changes"]:
        print(f"{args.name}: {result['root']} is already shared by the group {args.group}: nothing changed")
    else:
        writers = f", models writable by the group {args.writers}" if args.writers else ""
        print(f"{args.name}: {result['root']} is shared by the group {args.group}{writers}; its members log in "
              f"as themselves, and the policy gives them their roles (berth policy grant)")
    return 0
