"""`berth`: with a subcommand, the command line; the window comes with the desktop console issue."""
import sys


def main(argv=None) -> int:
    from app.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
