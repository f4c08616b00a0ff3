"""`berth server init-shared-root S --group GROUP`: the server's root, set up for a team of Unix users
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


def run(args, ws) -> int:
    from app.deploy.errors import OperationFailed
    from app.deploy.policy import init_shared_root

    with ws.connect(args.name) as t:
        try:
            result = init_shared_root(t, ws.audit, args.group)
        except OperationFailed as e:
            raise Failed(f"{t.name}: {e}") from None
    for line in result["changes"]:
        print(f"{args.name}: {line}")
    if not result["changes"]:
        print(f"{args.name}: {result['root']} is already shared by the group {args.group}: nothing changed")
    else:
        print(f"{args.name}: {result['root']} is shared by the group {args.group}; its members log in as "
              f"themselves, and the policy gives them their roles (berth policy grant)")
    return 0
