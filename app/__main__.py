"""`berth` with no arguments opens the window; with a subcommand, it is the command line."""
import os
import sys

NO_DESKTOP = ("berth: the console needs a desktop session (no display found); "
              "for the command line see `berth --help`, to try it out `berth demo`")


def has_display(environ=None) -> bool:
    """Checked before any QApplication exists: without a display Qt aborts the process (exit 134)
    with advice about reinstalling. A platform named in QT_QPA_PLATFORM (offscreen, vnc) is trusted;
    macOS and Windows always have their window system."""
    env = os.environ if environ is None else environ
    if sys.platform in ("darwin", "win32") or env.get("QT_QPA_PLATFORM"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def utf8_locale(environ=None) -> None:
    """Qt needs a UTF-8 locale: under LANG=C or LC_ALL=C (a service, `env -i`, a minimal container) it
    switches to C.UTF-8 itself after printing four lines of warning. The same switch, made first and
    quietly (what Python's own C-locale coercion does from source, which the packaged app lacks)."""
    env = os.environ if environ is None else environ
    current = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or "C"
    if sys.platform in ("darwin", "win32") or current.lower().replace("-", "").endswith("utf8"):
        return
    env["LC_ALL" if env.get("LC_ALL") else "LC_CTYPE"] = "C.UTF-8"


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from app.remote.fdlimit import raise_open_files_limit

    raise_open_files_limit()  # a console or a --parallel CLI with many servers
    if args[:1] == ["--keeper"]:  # the held connections' keeper (app/remote/keeper.py), also in a frozen build
        from app.remote.keeper import main as keeper_main

        return keeper_main(args[1:])
    if not args or args == ["--self-test"]:
        utf8_locale()
    if args == ["--self-test"]:  # the installed console, end to end, offscreen (docs/packaging.md)
        from app.ui.selftest import run_self_test

        return run_self_test()
    if not args:
        if not has_display():
            print(NO_DESKTOP, file=sys.stderr)
            return 1
        from app.ui.app import run_gui

        return run_gui()
    from app.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
