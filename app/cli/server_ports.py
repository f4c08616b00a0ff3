"""`berth server set-port-range S LOW-HIGH`: the range a server chooses new models' stable ports
from (the agent's portrange.py checks it against the ports models already have, and journals it)."""
from __future__ import annotations

import argparse

from . import options


def port_range(text: str) -> str:
    """argparse type: a malformed, inverted or privileged range is a usage error, before connecting."""
    from app.agent.layout import AgentError
    from app.agent.portrange import parse_range

    try:
        return "%d-%d" % parse_range(text)
    except AgentError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(actions) -> None:
    a = actions.add_parser("set-port-range", help="the range new models' stable ports are chosen from on a server "
                                                  "(default 18000-18999; audited)")
    a.add_argument("name")
    a.add_argument("range", type=port_range, metavar="LOW-HIGH")
    options.add_reason(a, help="why (kept in the audit log)")


def run(args, ws) -> int:
    from app.deploy.changes import run_to_end

    with ws.connect_to_change("port_range.set", args.name, args.reason) as t:
        result = run_to_end(ws.change(t, "port_range.set", "", reason=args.reason, range=args.range))
    print(f"{args.name}: {result['detail']}")
    return 0
