"""Secrets live in the system keyring only: never in SQLite, config files, logs or messages.
When no secure keyring exists, Berth says so and asks each time instead of storing."""
from collections.abc import Callable

from app import errors
from app.errors import BerthError

SERVICE = "berth"


class NoSecureKeyring(BerthError, RuntimeError):
    """No secure keyring backend: the secret is asked for each time instead of stored."""

    default_code = errors.CONFIG


def _keyring():
    """keyring (and its backend discovery) loads on first use, not at start-up."""
    import keyring
    import keyring.errors

    return keyring, keyring.errors


def get_secret(account: str) -> str | None:
    keyring, errors = _keyring()
    try:
        return keyring.get_password(SERVICE, account)
    except (errors.NoKeyringError, errors.KeyringError):
        return None


def set_secret(account: str, secret: str) -> None:
    keyring, errors = _keyring()
    try:
        keyring.set_password(SERVICE, account, secret)
    except errors.NoKeyringError as e:
        raise NoSecureKeyring("no secure keyring is available on this computer; the secret was not saved") from e


def secure_keyring() -> bool:
    """Whether a secret can be stored at all: keyring's `fail` backend (none found) cannot."""
    keyring, _errors = _keyring()
    import keyring.backends.fail

    backend = keyring.get_keyring()
    if isinstance(backend, keyring.backends.fail.Keyring):
        return False
    return bool(getattr(backend, "backends", True))  # a chainer of nothing stores nothing


def key_passphrase_account(key_path: str) -> str:
    return f"key-passphrase:{key_path}"


def password_account(server: str) -> str:
    return f"password:{server}"


def smtp_password_account(server: str) -> str:
    """The SMTP relay's password for a server's e-mail alerts (a copy is on the server: smtp.json)."""
    return f"smtp-password:{server}"


def index_password_account(server: str) -> str:
    """A server's private package index password (`berth server set NAME --index URL`): sent to the agent
    in a deploy's request, to pip's environment there for that one call; never written anywhere."""
    return f"index-password:{server}"


def delete_secret(account: str) -> None:
    keyring, errors = _keyring()
    try:
        keyring.delete_password(SERVICE, account)
    except (errors.KeyringError, errors.NoKeyringError):
        pass


# -- asking for a key passphrase ----------------------------------------------------------------
# A front end that can ask (the CLI on a terminal) passes an AskPassphrase down to the transport
# (Workspace(ask_passphrase=...) -> open_transport -> SSHTransport): `ask(key_path) -> (passphrase,
# keep)`; keep=True stores it in the keyring. An answer is remembered for the rest of the process
# (in memory only), so one run asks once per key however many connections it opens.
AskPassphrase = Callable[[str], "tuple[str, bool] | None"]
_session: dict[str, str] = {}


def remembered_passphrase(key_path: str) -> str | None:
    return _session.get(key_path)


def remember_passphrase(key_path: str, passphrase: str, keep: bool) -> None:
    _session[key_path] = passphrase
    if keep:
        try:
            set_secret(key_passphrase_account(key_path), passphrase)
        except NoSecureKeyring:
            pass  # asked again next run; the front end said so when it offered
