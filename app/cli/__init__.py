"""`berth <subcommand>`: the operations of the console, headless and scriptable.

Exit codes: 0 success, 1 the operation failed (one clear line on stderr), 2 wrong usage.

Each command is a small class (app/cli/base.py: `add_to(subparsers)` and `run(args)`) on the shared
option helpers of app/cli/options.py, one module per group, all registered in COMMANDS below, in
the order of `berth --help`. A new group (experiments, jobs, policies) is one new module and one
line here."""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from app import errors
from app.errors import BerthError, error_code, error_log, one_line

from .alerts import AlertGroup, AlertsCommand
from .approvals import ApprovalsCommand, ApproveCommand
from .audit import AuditGroup
from .base import Command
from .cache import CacheGroup
from .bundle import BundleGroup
from .changes import COMMANDS as CHANGES
from .dbpassword import DbPasswordCommand
from .diff import DiffCommand
from .demo import DemoCommand
from .experiment import ExperimentGroup
from .export import ExportGroup
from .feedback import FeedbackCommand
from .jobs import JobGroup
from .monitor import MonitorCommand
from .policy import PolicyGroup, WhoamiCommand
from .promote import PromoteCommand
from .server import ServerGroup
from .settings import SettingsCommand

COMMANDS: tuple[Command, ...] = (
    ServerGroup(), *CHANGES, AuditGroup(), SettingsCommand(), BundleGroup(), MonitorCommand(), DemoCommand(), JobGroup(),
    AlertGroup(), AlertsCommand(), DbPasswordCommand(), DiffCommand(), FeedbackCommand(), PromoteCommand(),
    ExperimentGroup(), WhoamiCommand(), PolicyGroup(),
    ApprovalsCommand(), ApproveCommand(),
)
COMMANDS += (CacheGroup(),)  # issue 20: the wheels kept for offline servers
COMMANDS += (ExportGroup(),)  # issue 19: berth export kubernetes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="berth", description="Deploy, serve and roll back model bundles.")
    p.add_argument("-v", "--verbose", action="store_true", help="show server logs and pip output")
    p.add_argument("-V", "--version", action="version", version=f"berth {version()}")
    # run by app/__main__.py before this parser (the console's own test; docs/packaging.md): listed for --help
    p.add_argument("--self-test", action="store_true",
                   help="open the console offscreen, deploy the example to a temporary local server, predict, "
                        "roll back, export a PDF report; exit 0 when all worked")
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
            code = command.run(args) or 0
        except sqlite3.DatabaseError as e:  # berth.sqlite damaged after it opened (a truncated file)
            from app.store.db import damaged

            raise damaged(None, e) from None
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except (BerthError, ValueError, OSError) as e:
        if args.verbose:
            for line in error_log(e):
                print(f"    | {line}", file=sys.stderr)
        print(f"berth: {_for_cli(e, args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("berth: interrupted", file=sys.stderr)
        return 130


def _stdout_closed() -> int:
    """The reader of stdout left (`berth audit list --json | head`): stop quietly, as `cat` does.
    Python's own advice: point stdout at devnull so the exit's flush does not fail again. 141 is
    what a shell reports for a command ended by SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def version() -> str:
    """The installed package's version; from a source tree that was never installed, pyproject's."""
    from importlib import metadata

    try:
        return metadata.version("berth")
    except metadata.PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            with pyproject.open("rb") as f:
                return tomllib.load(f)["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def _for_cli(e: BaseException, args) -> str:
    """The error's line, with the command-line way to fix a login (the console's says where its
    settings are, which a CLI user never saw)."""
    if error_code(e) != errors.AUTH_FAILED or not e.detail.get("summary"):
        return one_line(e)
    if getattr(args, "action", None) == "add":
        fix = ("check --user and --key FILE, or log in with a password: --auth password (asked on a terminal) "
               "or --password-stdin")
    else:
        name = getattr(args, "server", None) or getattr(args, "name", None) or "SERVER"
        if isinstance(name, list):  # a repeatable --server (selectors): the advice names one server only
            name = name[0] if len(name) == 1 and not any(c in name[0] for c in ":*?[") else "SERVER"
        password = f"store its password with `berth server password {name}` (or --password-stdin)"
        other = (f"to log in another way, `berth server remove {name}` and add it again with --user, --key FILE or "
                 f"--auth (e.g. --auth key,password)")
        fix = f"{password}; {other}" if e.detail.get("password_missing") else f"{other}; or {password}"
    return f"{one_line(BerthError(e.detail['summary']))}; {fix}"
