"""`berth server set NAME --index online|offline|auto|URL`: where a server's packages come from (a
private index's password from stdin to the keyring only), and the lines `berth server check` adds:
the server's Python, ABI, platform tags and whether its index answers (cached for deploys)."""
from __future__ import annotations

import sys

from .base import Failed


def add_arguments(actions) -> None:
    a = actions.add_parser("set", help="where a server's packages come from: its own index (online, the default), "
                                       "none (offline: wheels resolved here and uploaded), auto (offline when its "
                                       "index does not answer), or a private index URL (audited)")
    a.add_argument("name")
    a.add_argument("--index", required=True, metavar="online|offline|auto|URL")
    a.add_argument("--index-password-stdin", action="store_true",
                   help="read the private index's password from stdin's first line; kept in the keyring only")


def run_set(args, ws) -> int:
    from app.remote import credentials
    from app.store.server_index import ServerIndexes, parse_choice

    server = ws.servers.get(args.name)
    try:
        mode, url = parse_choice(args.index)
    except ValueError as e:
        raise Failed(str(e)) from None
    account = credentials.index_password_account(server.name)
    if args.index_password_stdin:
        if mode != "url":
            raise Failed("--index-password-stdin goes with a private index URL (--index https://user@host/simple)")
        from urllib.parse import urlsplit

        if not urlsplit(url).username:
            raise Failed("the index URL names no user for the password: give it as https://USER@host/...")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise Failed("--index-password-stdin: stdin gave no password")
        credentials.set_secret(account, password)  # NoSecureKeyring says itself what to do
    elif mode != "url":
        credentials.delete_secret(account)
    old = ServerIndexes(ws.db).set_mode(server.name, mode, url)
    ws.audit.record("server.edit", "ok", server=server.name, ssh_user=server.user, old=old.describe(),
                    new=url or mode, detail="index")
    print(f"{server.name}: packages {_said(old.mode, old.url)} -> {_said(mode, url)}")
    return 0


def _said(mode: str, url: str) -> str:
    return {"online": "from its own index", "offline": "uploaded from here (offline)",
            "auto": "from its index when it answers, else uploaded (auto)"}.get(mode, f"from {url}")


def check_facts(ws, transport, name: str) -> dict:
    """Asks the server (and caches the answer for deploys); the setting beside it."""
    from app.deploy.offline import ask_facts
    from app.store.server_index import ServerIndexes

    indexes = ServerIndexes(ws.db)
    facts = ask_facts(transport)
    indexes.remember(name, facts)
    setting = indexes.get(name)
    return dict(facts, index_setting=setting.describe())


def facts_lines(facts: dict) -> list[str]:
    index = facts.get("index") or {}
    tags = facts.get("platforms") or []
    libc = f"{facts.get('libc')} {facts.get('libc_version')}".strip() or "unknown libc"
    return [f"platform: {facts.get('abi')} {facts.get('machine')}, {libc}; wheels: "
            f"{', '.join(tags[:1] + (['...', tags[-2]] if len(tags) > 2 else tags[1:-1]))}",
            f"package index: {index.get('url')} {'answers' if index.get('reachable') else 'does not answer'}"
            f"{'' if index.get('reachable') else ' (' + str(index.get('detail')) + ')'}; "
            f"deploys use: {facts['index_setting']}"]
