"""What every `berth` command shares: its shape (a parser and a run), the one failure it raises
itself, and the workspace it starts from."""
from __future__ import annotations

import argparse

from app import errors
from app.errors import BerthError


class Failed(BerthError):
    """Ends the command with exit code 1 and this message (the operator's input cannot be used)."""

    default_code = errors.USAGE


class Command:
    """One top-level command: `add_to` declares its arguments, `run` does it and returns the exit code."""

    name = ""
    help = ""
    has_actions = False  # a group of ACTIONs: without one, `berth NAME` shows the help and exits 2

    def add_to(self, subparsers) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(self.name, help=self.help)
        self.add_arguments(parser)
        return parser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


class ActionGroup(Command):
    """`berth NAME ACTION ...`: each action is declared in `add_actions` and run by the method
    `do_<action>` (dashes as underscores), so an action is one parser and one method."""

    has_actions = True

    def add_to(self, subparsers) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(self.name, help=self.help)
        self.add_actions(parser.add_subparsers(dest="action", metavar="ACTION"))
        return parser

    def add_actions(self, actions) -> None:
        raise NotImplementedError

    def run(self, args: argparse.Namespace) -> int:
        return self.dispatch(args)

    def dispatch(self, args: argparse.Namespace, *extra) -> int:
        return getattr(self, "do_" + args.action.replace("-", "_"))(args, *extra) or 0


def workspace(ask_passphrase=None):
    """Opened per command, not at import: `berth --help` and usage errors touch no database. Its
    audit anchor is attached on first use: a read-only command reads no keyring."""
    from app.workspace import Workspace

    return Workspace(ask_passphrase=ask_passphrase, anchor_later=True)
