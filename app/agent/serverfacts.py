"""What a server's pip can install, asked once and cached by the desktop (`berth server check`): the
Python version and ABI, the platform tags its wheels may carry (manylinux with the glibc version,
or musllinux), and whether its package index answers. The desktop resolves an offline server's
wheels for exactly these tags (`pip download --platform ...`)."""
import configparser
import glob
import os
import platform
import re
import socket
import subprocess
import sys
from urllib.parse import urlsplit

DEFAULT_INDEX = "https://pypi.org/simple"
REACH_TIMEOUT_S = 3.0
OLDEST_GLIBC_MINOR = 17  # manylinux2014: older glibcs are not worth listing
LEGACY = (("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5))


def server_facts(ctx, req):
    """The agent command: tags always; the index check unless `reach` is false (a quick TCP connect)."""
    facts = platform_facts()
    if req.get("reach", True) is not False:
        facts["index"] = index_reach(configured_index())
    return facts


def platform_facts():
    major, minor = sys.version_info[:2]
    arch = platform.machine() or "unknown"
    libc, version = libc_version()
    return {"python": platform.python_version(), "python_short": "%d.%d" % (major, minor),
            "implementation": "cp" if sys.implementation.name == "cpython" else sys.implementation.name,
            "abi": "cp%d%d" % (major, minor), "machine": arch, "libc": libc, "libc_version": version,
            "platforms": platform_tags(libc, version, arch)}


def libc_version():
    """("glibc", "2.36"), ("musl", "1.2"), or ("", "") when neither is found."""
    name, version = platform.libc_ver()
    if name == "glibc" and version:
        return "glibc", version
    for loader in sorted(glob.glob("/lib/ld-musl-*.so.1")):
        try:
            out = subprocess.run([loader], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=5).stdout.decode("utf-8", "replace")
        except (OSError, subprocess.SubprocessError):
            continue
        found = re.search(r"Version (\d+)\.(\d+)", out)
        if found:
            return "musl", "%s.%s" % found.groups()
    return "", ""


def platform_tags(libc, version, arch):
    """Most specific first, as pip orders them: manylinux_2_36_x86_64 ... manylinux2014_x86_64,
    then linux_x86_64 (a wheel built on such a machine)."""
    found = re.match(r"(\d+)\.(\d+)", version or "")
    tags = []
    if libc == "glibc" and found and int(found.group(1)) == 2:
        newest = int(found.group(2))
        tags = ["manylinux_2_%d_%s" % (m, arch) for m in range(newest, OLDEST_GLIBC_MINOR - 1, -1)]
        tags += ["%s_%s" % (name, arch) for name, m in LEGACY if m <= newest]
    elif libc == "musl" and found and int(found.group(1)) == 1:
        tags = ["musllinux_1_%d_%s" % (m, arch) for m in range(int(found.group(2)), 0, -1)]
    return tags + ["linux_%s" % arch]


def configured_index(environ=None):
    """The index this server's pip uses: PIP_INDEX_URL, else the last pip.conf naming one, else PyPI."""
    environ = os.environ if environ is None else environ
    if environ.get("PIP_INDEX_URL"):
        return environ["PIP_INDEX_URL"].split()[0]
    home = os.path.expanduser("~")
    files = ["/etc/pip.conf", "/etc/xdg/pip/pip.conf", os.path.join(home, ".pip", "pip.conf"),
             os.path.join(environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "pip", "pip.conf")]
    if environ.get("PIP_CONFIG_FILE"):
        files.append(environ["PIP_CONFIG_FILE"])
    url = DEFAULT_INDEX
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, "index-url"):
                url = parser.get(section, "index-url").split()[0]
    return url


def shown_url(url):
    """The URL without any user or password: what may be said or kept."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = "%s:%d" % (host, parts.port)
    return "%s://%s%s" % (parts.scheme, host, parts.path) if parts.scheme else url


def index_reach(url, timeout=REACH_TIMEOUT_S):
    """{"url", "reachable", "detail"}: a TCP connect to the index's host (no request, no credentials)."""
    parts = urlsplit(url)
    out = {"url": shown_url(url)}
    if parts.scheme == "file":
        out["reachable"] = os.path.isdir(parts.path)
        out["detail"] = "a folder on the server" if out["reachable"] else "no such folder on the server"
        return out
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
        out.update(reachable=True, detail="answers")
    except (OSError, ValueError) as e:
        out.update(reachable=False, detail="not reachable: %s" % (getattr(e, "strerror", None) or e))
    return out
COMMANDS = {"server_facts": server_facts}
