"""Options several commands share, declared once so their spelling and help stay the same
(Ansible's cli/arguments/option_helpers.py)."""
from __future__ import annotations

import argparse

from app.agent.intervals import MAX_INTERVAL, MIN_INTERVAL

CHANGE_REASON_HELP = "why (kept in the audit log; Berth can require one for production servers)"


SERVERS_HELP = ("a server's name, a glob of names ('web-*') or env:ENVIRONMENT; repeat for more "
                "(default: all)")
PARALLEL = 16  # servers worked on at once: enough for a fleet on a LAN, few enough for a laptop's sshd limits


def add_server(parser, required: bool = False, help: str | None = None) -> None:
    """One server, by name (the commands that change one server; predict)."""
    parser.add_argument("--server", required=required, help=help)


def add_servers(parser, required: bool = False, help: str = SERVERS_HELP, parallel: bool = True) -> None:
    """`--server SELECTOR`, repeatable (args.server is a list, empty when none was given): resolve it
    with app/cli/selectors.py `resolve_servers`. `parallel`: also `--parallel N`."""
    parser.add_argument("--server", action="append", default=[], required=required, metavar="SELECTOR", help=help)
    if parallel:
        add_parallel(parser)


def add_parallel(parser) -> None:
    parser.add_argument("--parallel", type=parallel_count, default=PARALLEL, metavar="N",
                        help=f"servers worked on at once (default {PARALLEL})")


def parallel_count(text: str) -> int:
    """argparse type of --parallel: a whole number from 1 to 256 (wrong usage otherwise, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("must be 1 to 256")
    return value


def add_json(parser, help: str | None = None) -> None:
    parser.add_argument("--json", action="store_true", help=help)


def add_reason(parser, help: str = CHANGE_REASON_HELP) -> None:
    parser.add_argument("--reason", default="", help=help)


def add_timeouts(parser) -> None:
    for flag, what in (("connect-timeout", "TCP connect and SSH handshake (default: the alias's ConnectTimeout, "
                                           "else 15)"),
                       ("auth-timeout", "login (default: the connect timeout)"),
                       ("command-timeout", "how long an agent command may stay silent (default 900)"),
                       ("keepalive", "seconds between keepalives (default: ServerAliveInterval, else 15)")):
        parser.add_argument(f"--{flag}", type=float, default=0, metavar="SECONDS", help=what)


def add_accept_jump_key(parser) -> None:
    parser.add_argument("--accept-jump-key", action="append", default=[], metavar="SHA256:...",
                        help="trust the (unknown) host key of a jump host with this fingerprint; repeat for "
                             "several hops (--accept-host-key trusts only the server itself)")


def add_audit_filters(parser) -> None:
    parser.add_argument("--since", metavar="TIME", type=audit_time,
                        help="UTC date/time (2026-11-01, 2026-11-01T10:00) or age (7d, 24h)")
    parser.add_argument("--until", metavar="TIME", type=audit_time,
                        help="UTC date/time; a date means its whole day")
    for name in ("server", "model", "actor", "text"):
        parser.add_argument(f"--{name}")
    parser.add_argument("--action", dest="event_action",
                        help="e.g. deploy, rollback, server.add (deploy also matches deploy.*)")
    parser.add_argument("--outcome", help="ok, failed, started, cancelled, or interrupted")


def interval(text: str) -> float:
    """argparse type of --interval: the agent's bounds, refused as wrong usage (exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise argparse.ArgumentTypeError(f"must be {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds")
    return value


def audit_time(text: str) -> str:
    """argparse type of --since/--until: a time Berth cannot read is wrong usage (exit 2), checked
    before any work; the text itself is kept, as the audit filter reads it."""
    from app.audit.period import parse_time

    try:
        parse_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text
