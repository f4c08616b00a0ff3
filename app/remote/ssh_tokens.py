"""OpenSSH's `%`-tokens (readconf.c's percent_expand and the client's token set) and its host-name
lowercasing, for the config resolver in sshconfig.py."""
from __future__ import annotations

import getpass
import hashlib
import os
import socket

from .errors import SSHConfigError


def expand(text: str, tokens: dict[str, str], what: str = "HostName") -> str:
    """OpenSSH's percent_expand: `%%` is `%`, `%X` a token; an unknown one is an error, as in ssh."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        key = text[i + 1:i + 2]
        if key == "%":
            out.append("%")
        elif key in tokens:
            out.append(tokens[key])
        else:
            raise SSHConfigError(f"{what} {text!r}: unknown token %{key}")
        i += 2
    return "".join(out)


def lowercase_host(host: str) -> str:
    """OpenSSH lowercases the host name, but not what looks like an address (`%`, `:`, digits)."""
    if "%" in host or ":" in host or all(c in "0123456789." for c in host):
        return host
    return host.lower()


def client_tokens(alias: str, host: str, port: int, user: str, key_alias: str | None) -> dict[str, str]:
    local = socket.gethostname()
    return {"h": host, "p": str(port), "r": user, "u": getpass.getuser(), "d": os.path.expanduser("~"),
            "n": alias, "l": local, "L": local.split(".")[0], "i": str(os.getuid()),
            "k": key_alias or alias,
            "C": hashlib.sha1(f"{local}{host}{port}{user}".encode()).hexdigest()}


def expand_path(value: str, tokens: dict[str, str], what: str) -> str:
    """A file option: `~` first, then the tokens (OpenSSH's order)."""
    return expand(os.path.expanduser(value), tokens, what)
