"""`berth db-password URL`: a job's PostgreSQL password into this computer's keyring (read from
stdin, or asked for on a terminal), and the lookup `job add` makes there. The password never goes in
the URL (it is stored in the job's definition and shown in `job list`), nor on a command line."""
from __future__ import annotations

import getpass
import sys

from app.agent import pgurl
from app.agent.layout import AgentError
from app.remote import credentials

from .base import Command, Failed


def account(url: str) -> str:
    return "db:" + url


def canonical(url: str, what: str) -> str:
    try:
        return pgurl.canonical(url, what)
    except AgentError as e:
        raise Failed(str(e)) from None


def passwords_for(urls: list[str]) -> dict[str, str]:
    """{url: password} from the keyring; a missing one is asked for on a terminal (and kept), or one
    line naming the command that stores it."""
    found = {}
    for url in urls:
        secret = credentials.get_secret(account(url))
        if secret is None:
            if not sys.stdin.isatty():
                raise Failed(f"no password for {url} in this computer's keyring; store it with "
                             f"`berth db-password {url}` (reads it from stdin), then run this again")
            secret = _ask(url)
            _keep(url, secret)
        found[url] = secret
    return found


def _ask(url: str) -> str:
    secret = getpass.getpass(f"password of {url}: ")
    if not secret:
        raise Failed("no password given")
    return secret


def _keep(url: str, secret: str) -> bool:
    try:
        credentials.set_secret(account(url), secret)
        return True
    except credentials.NoSecureKeyring:
        print("berth: no secure keyring on this computer: the password is used once, not stored", file=sys.stderr)
        return False


class DbPasswordCommand(Command):
    name = "db-password"
    help = "store a job's PostgreSQL password in this computer's keyring (from stdin)"

    def add_arguments(self, parser) -> None:
        parser.add_argument("url", metavar="URL", help="postgresql://USER@HOST:PORT/DATABASE (no password in it)")

    def run(self, args) -> int:
        url = canonical(args.url, "url")
        if sys.stdin.isatty():
            secret = _ask(url)
        else:
            lines = sys.stdin.read().splitlines()
            secret = lines[0] if lines else ""
            if not secret:
                raise Failed("no password on stdin (give it as the first line)")
        try:
            credentials.set_secret(account(url), secret)
        except credentials.NoSecureKeyring as e:
            raise Failed(f"{e}; jobs on {url} ask for it when added from a terminal") from None
        print(f"the password of {url} is in this computer's keyring (jobs on it send it to the server's passfile)")
        return 0
