"""`berth` with no arguments opens the window; with a subcommand, it is the command line."""
import sys


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        from app.ui.app import run_gui

        return run_gui()
    from app.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
