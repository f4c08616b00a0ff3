"""`berth <subcommand>`: the operations of the console, headless and scriptable.

Exit codes: 0 success, 1 the operation failed (one clear line on stderr), 2 wrong usage.

Each command is a small class (app/cli/base.py: `add_to(subparsers)` and `run(args)`) on the shared
option helpers of app/cli/options.py, one module per group, all registered in COMMANDS below, in
the order of `berth --help`. A new group (experiments, jobs, policies) is one new module and one
line here."""
from __future__ import annotations

import argparse
import sqlite3
import sys

from app.errors import BerthError, error_log, one_line

from .audit import AuditGroup
from .base import Command
from .bundle import BundleGroup
from .changes import COMMANDS as CHANGES
from .demo import DemoCommand
from .monitor import MonitorCommand
from .server import ServerGroup
from .settings import SettingsCommand

COMMANDS: tuple[Command, ...] = (
    ServerGroup(), *CHANGES, AuditGroup(), SettingsCommand(), BundleGroup(), MonitorCommand(), DemoCommand(),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="berth", description="Deploy, serve and roll back model bundles.")
    p.add_argument("-v", "--verbose", action="store_true", help="show server logs and pip output")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(sub)
    return p


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = next((c for c in COMMANDS if c.name == args.command), None)
    if command is None or (command.has_actions and not args.action):
        parser.parse_args([*argv, "--help"])
        return 2
    try:
        try:
            return command.run(args) or 0
        except sqlite3.DatabaseError as e:  # berth.sqlite damaged after it opened (a truncated file)
            from app.store.db import damaged

            raise damaged(None, e) from None
    except (BerthError, ValueError, OSError) as e:
        if args.verbose:
            for line in error_log(e):
                print(f"    | {line}", file=sys.stderr)
        print(f"berth: {one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("berth: interrupted", file=sys.stderr)
        return 130
