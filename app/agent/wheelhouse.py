"""Where an environment's packages come from, when not from the server's own index: the wheels the
desktop resolved for an offline server (uploaded as blobs, each once per server; linked into a
private folder for one `pip install --no-index --find-links`), or a private index whose password
comes in the request and goes to pip's environment for that one call (never to a file, an argument,
a log line or the journal)."""
import os
import re
import shutil
import tempfile
from urllib.parse import quote, urlsplit, urlunsplit

from . import blobs
from .layout import SHA256_RE, AgentError

WHEEL_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+!-]*\.whl\Z")
HIDDEN = "****"


class Source(object):
    """pip's extra arguments and environment for one install, and the secret to scrub from its output."""

    def __init__(self, args=(), env=None, secret="", wheels=()):
        self.args, self.env, self.secret, self.wheels = list(args), dict(env or {}), secret, list(wheels)

    def scrub(self, line):
        if not self.secret:
            return line
        for form in (self.secret, quote(self.secret, safe="")):
            line = line.replace(form, HIDDEN)
        return line


def wheels_of(req):
    """[(file name, sha256)] of the request's wheels, each checked: a name is a plain wheel file name."""
    listed = req.get("wheels") or []
    if not isinstance(listed, list):
        raise AgentError("wheels must be a list", "usage")
    out = []
    for w in listed:
        name, sha = (w.get("name"), w.get("sha256")) if isinstance(w, dict) else (None, None)
        if not isinstance(name, str) or not WHEEL_NAME_RE.match(name) or not isinstance(sha, str) \
                or not SHA256_RE.fullmatch(sha):
            raise AgentError("invalid wheel in the request: %r" % (name,), "usage")
        out.append((name, sha))
    return out


def source_of(req):
    """The Source a deploy request asks for: offline wheels, a private index, or the server's own (None)."""
    wheels = wheels_of(req)
    index = req.get("index")
    if index == "offline":
        return Source(["--no-index"], wheels=wheels)
    if isinstance(index, dict) and isinstance(index.get("url"), str):
        url = private_url(index["url"], req.get("index_password") or "")
        return Source([], {"PIP_INDEX_URL": url}, req.get("index_password") or "")
    if index not in (None, "online"):
        raise AgentError("index must be 'online', 'offline' or {'url': ...}", "usage")
    return None


def private_url(url, password):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AgentError("the private index must be an http(s) URL", "usage")
    if not password:
        return url
    if not parts.username:
        raise AgentError("the private index URL names no user for its password", "usage")
    host = parts.hostname + (":%d" % parts.port if parts.port else "")
    netloc = "%s:%s@%s" % (quote(parts.username, safe=""), quote(password, safe=""), host)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def linked(root, source):
    """A private folder holding the source's wheels under their names (hard links to the blobs);
    the caller removes it. Adds `--find-links` to the source's arguments."""
    folder = tempfile.mkdtemp(prefix="wheelhouse-", dir=root.meta)
    try:
        for name, sha in source.wheels:
            blobs.place(root, sha, os.path.join(folder, name), 0o400)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    source.args += ["--find-links", folder]
    return folder
