"""Logging in to an SSH server whose host key is already verified: the SSH agent, key files (with
their passphrases from the keyring, this run's memory, or the operator) and the keyring's password.
Apart from ssh.py, which makes the connection (sockets, jump hosts, host keys, the primitives)."""
import base64
import contextlib
import os

import paramiko

from . import credentials
from .credentials import AskPassphrase
from .errors import AuthFailed
from .sshconfig import Endpoint, default_identities

METHODS = ("agent", "key", "password")
NO_PASSWORD = "password: none stored in the system keyring for"


def auth_methods(auth: str) -> list[str]:
    """"auto" is agent, key files, password; else the comma-separated methods, in that order."""
    if auth in ("", "auto"):
        return list(METHODS)
    methods = [m.strip() for m in auth.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise AuthFailed(f"unknown authentication method(s) {', '.join(bad) or '(none)'}: use auto, or "
                         f"some of {', '.join(METHODS)} separated by commas")
    return methods


def authenticate(t: paramiko.Transport, ep: Endpoint, methods: list[str], server: str, where: str,
                 ask: AskPassphrase | None = None) -> None:
    """Log in to `ep` on the started transport `t` with `methods` in order (the password is the
    one stored for `server`; `ask` asks the operator for a key's passphrase, None: never asked).
    AuthFailed names `where` and lists every method tried and why it failed; no secret is ever
    part of it."""
    tried: list[str] = []
    offered: set[bytes] = set()  # public keys already refused: a file key the agent also holds
    for method in methods:
        if method == "password":
            if _try_password(t, ep, server, tried):
                return
            continue
        keys = _agent_keys(ep, tried) if method == "agent" else _file_keys(ep, tried, ask)
        with contextlib.closing(keys):  # the agent's socket closes once its keys are done with
            for label, key in keys:
                if key.asbytes() in offered:
                    continue
                offered.add(key.asbytes())
                try:
                    t.auth_publickey(ep.user, key)
                except paramiko.AuthenticationException:
                    tried.append(f"{label}: rejected by the server")
                    continue
                except (paramiko.SSHException, EOFError, OSError) as e:  # e.g. the server's MaxAuthTries
                    tried.append(f"{label}: the server ended the login ({str(e) or type(e).__name__})")
                    return _auth_failed(ep, tried, where)
                if t.is_authenticated():
                    return
    _auth_failed(ep, tried, where)


def _auth_failed(ep: Endpoint, tried: list[str], where: str):
    summary = f"could not log in to {where} as {ep.user}; tried " + \
        ("; ".join(tried) if tried else "nothing (no key file given and no SSH agent keys)")
    missing = any(t.startswith(NO_PASSWORD) for t in tried)
    raise AuthFailed(summary + (" (enter the password in the server's settings)" if missing else ""), summary, missing)


def _try_password(t, ep: Endpoint, server: str, tried: list[str]) -> bool:
    password = credentials.get_secret(credentials.password_account(server))
    if password is None:
        tried.append(f"{NO_PASSWORD} {server}")
        return False
    try:
        t.auth_password(ep.user, password)
    except paramiko.BadAuthenticationType as e:  # a subclass of the next: first
        tried.append(f"password: refused, this server takes no passwords (it allows {', '.join(e.allowed_types)})")
        return False
    except paramiko.AuthenticationException:
        tried.append("password (from the keyring): refused by the server")
        return False
    return t.is_authenticated()


def _agent_keys(ep: Endpoint, tried: list[str]):
    if not os.environ.get("SSH_AUTH_SOCK"):
        tried.append("SSH agent: not running (SSH_AUTH_SOCK is not set)")
        return
    try:
        agent = paramiko.Agent()
    except (paramiko.SSHException, OSError) as e:
        tried.append(f"SSH agent: cannot be asked ({str(e) or type(e).__name__})")
        return
    try:  # the keys sign through the agent's socket: it stays open until the caller is done
        yield from _agent_offers(agent.get_keys(), ep, tried)
    finally:
        agent.close()


def _agent_offers(agent_keys, ep: Endpoint, tried: list[str]):
    if ep.identities_only:
        wanted = {_public_blob(p) for p in ep.identity_files} - {None}
        skipped = [k for k in agent_keys if k.asbytes() not in wanted]
        agent_keys = [k for k in agent_keys if k.asbytes() in wanted]
        if skipped:
            tried.append(f"SSH agent: {len(skipped)} key(s) not offered (IdentitiesOnly: only the key files)")
    if not agent_keys:
        if not ep.identities_only:
            tried.append("SSH agent: no keys")
        return
    for k in agent_keys:
        yield f"SSH agent key {k.get_name()} {_short_fp(k)}", k


def _file_keys(ep: Endpoint, tried: list[str], ask: AskPassphrase | None):
    paths = ep.identity_files or tuple(p for p in default_identities() if os.path.exists(p))
    if not paths:
        tried.append("key files: none given and no default ~/.ssh/id_* files")
    for path in paths:
        key = _load_key(os.path.expanduser(path), tried, ask)
        if key:
            yield f"key file {path}", key


def _public_blob(key_path: str) -> bytes | None:
    """The public key next to a private key file (KEY.pub), to pick the agent key that is it."""
    try:
        with open(os.path.expanduser(key_path) + ".pub") as f:
            fields = f.read().split()
        return base64.b64decode(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def _short_fp(key) -> str:
    from .hostkeys import fingerprint

    return fingerprint(key)[:19]


def _load_key(path: str, tried: list, ask: AskPassphrase | None = None) -> paramiko.PKey | None:
    """A key file, opened with the passphrase from the keyring, this run's memory, or (when a front
    end can `ask`) the operator; the passphrase itself never appears in `tried`."""
    if not os.path.exists(path):
        tried.append(f"key file {path}: not found")
        return None
    passphrase = credentials.get_secret(credentials.key_passphrase_account(path))
    if passphrase is None:
        passphrase = credentials.remembered_passphrase(path)
    try:
        return _open_key(path, passphrase)
    except (paramiko.PasswordRequiredException, TypeError):  # cryptography's "no password given" is a TypeError
        if ask is None:
            tried.append(f"key file {path}: encrypted, and no passphrase is stored in the keyring")
            return None
    except (paramiko.SSHException, ValueError, OSError) as e:
        if not passphrase:
            tried.append(f"key file {path}: cannot be read ({type(e).__name__})")
            return None
        if ask is None:
            tried.append(f"key file {path}: the stored passphrase does not open it")
            return None
    answer = ask(path)  # asked once: a wrong answer is not asked again
    if not answer or not answer[0]:
        tried.append(f"key file {path}: encrypted, and no passphrase was given")
        return None
    try:
        key = _open_key(path, answer[0])
    except (paramiko.SSHException, ValueError, OSError, TypeError):
        tried.append(f"key file {path}: the passphrase given does not open it")
        return None
    credentials.remember_passphrase(path, answer[0], keep=bool(answer[1]))
    return key


def _open_key(path: str, passphrase: str | None) -> paramiko.PKey:
    return paramiko.PKey.from_path(path, password=passphrase.encode() if passphrase is not None else None)
