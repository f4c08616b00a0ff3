"""Testing or saving a server whose login needs a secret the operator just typed.

The connection reads its password or key passphrase from the keyring (credentials.py), so the
secret goes there first; a check that fails puts back what the keyring held before, so a typo never
replaces a working password. A check that passed keeps the new secret; a save that passed also
drops the accounts it made stale (a renamed server's password, a password no longer used). No Qt: the
console's server dialog runs this on a worker thread, and any other front end can too."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from app.remote import credentials
from app.remote.credentials import NoSecureKeyring
from app.store.servers import ServerConfig

TEST, SAVE = "test", "save"
KEEP = object()  # as a secret: "the password already in the keyring" (editing, the field left empty)


@dataclass(frozen=True)
class SecretChanges:
    """What a test or save puts in the keyring (account → secret, or KEEP: copy the one stored under
    `keep_from`), and the accounts a successful save deletes. `put` stays out of the repr: a secret
    never reaches a log or a message."""
    put: dict = field(default_factory=dict, repr=False)
    drop: tuple[str, ...] = ()
    keep_from: str | None = None

    def kinds(self) -> set[str]:
        """"password" and / or "key passphrase": what the operator is told could not be stored."""
        password = credentials.password_account("")  # the prefix of every server's password account
        return {"password" if a.startswith(password) else "key passphrase" for a in self.put}


def secret_changes(config: ServerConfig, old: ServerConfig | None, password: str = "",
                   passphrase: str = "") -> SecretChanges:
    """The keyring changes for saving `config` (replacing `old`, when editing) with what was typed."""
    put: dict = {}
    drop: list[str] = []
    account = credentials.password_account(config.name)
    old_account = credentials.password_account(old.name) if old and old.auth == "password" else None
    if config.auth == "password":
        if password:
            put[account] = password
        elif old_account and old_account != account:
            put[account] = KEEP  # renamed: the stored password moves with it
    if old_account and (config.auth != "password" or old_account != account):
        drop.append(old_account)
    if config.key_path and passphrase:
        put[credentials.key_passphrase_account(config.key_path)] = passphrase
    return SecretChanges(put, tuple(drop), old_account)


def check_server(ws, mode: str, config: ServerConfig, accept: str | None, secrets: SecretChanges,
                 replacing: str | None = None) -> dict:
    """Put the secrets in the keyring, then test (TEST) or test and save (SAVE) with the workspace
    `ws`; returns the server's facts. A failure puts back what the keyring held before; a check
    that passed keeps the new secrets (they log in), and only a save drops the stale accounts."""
    previous: dict[str, str | None] = {}
    try:
        for account, value in secrets.put.items():
            if value is KEEP:
                value = credentials.get_secret(secrets.keep_from) if secrets.keep_from else None
                if value is None:
                    raise ValueError("no password is stored for this server yet: type it in the Password field")
            previous[account] = credentials.get_secret(account)
            credentials.set_secret(account, value)
        if mode == TEST:
            info = ws.test_server(config, accept)
        else:
            info = ws.save_server(config, accept, replacing=replacing)
    except BaseException:
        _restore(previous)
        raise
    if mode == SAVE:
        _drop(secrets.drop)
    return info


def _restore(previous: dict) -> None:
    for account, value in previous.items():
        if value is None:
            credentials.delete_secret(account)
        else:
            try:
                credentials.set_secret(account, value)
            except NoSecureKeyring:
                pass


def _drop(accounts: Iterable[str]) -> None:
    for account in accounts:
        credentials.delete_secret(account)
