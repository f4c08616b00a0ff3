"""`berth settings`: list Berth's settings, or `set KEY VALUE` (audited by the Workspace)."""
from __future__ import annotations

from . import options
from .base import Command, Failed, workspace
from .output import print_json, print_table


class SettingsCommand(Command):
    name = "settings"
    help = "Berth's settings (list, or `set KEY VALUE`)"

    def add_arguments(self, parser) -> None:
        parser.add_argument("words", nargs="*", metavar="set KEY VALUE")
        options.add_json(parser)

    def run(self, args) -> int:
        ws = workspace()
        if args.words:
            if len(args.words) != 3 or args.words[0] != "set":
                raise Failed("usage: berth settings set KEY VALUE")
            old, new = ws.set_setting(args.words[1], args.words[2])
            print(f"{args.words[1]}: {old} -> {new}")
            return 0
        rows = ws.settings.describe()
        print_json(rows) if args.json else print_table(rows, ["key", "value", "default", "meaning"])
        return 0
