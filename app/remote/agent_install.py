"""The agent on a server: installed once per version, private to its user, and checked by content
hash before every use. `ensure_agent` used to check only that the launcher existed, so an agent that
another Unix user appended code to (under a login umask of 000) ran as the operator.

Every agent command starts with BOOTSTRAP, which Berth sends in the command line (so it is never
read from the server's disk): it hashes the agent's files, refuses to run them when the hash or their
permissions are wrong or a `__pycache__` file is there (Python would run that instead of the hashed
source; the agent and its runners run with -B / PYTHONDONTWRITEBYTECODE so none is written) (code
"agent_modified"), and runs them otherwise; Berth then replaces the agent
and audits it. `python3 -I` keeps PYTHONPATH, PYTHONSTARTUP and the user's site-packages out."""
from __future__ import annotations

from pathlib import Path

from app.agent.queries import agent_digest

AGENT_SOURCE = Path(__file__).resolve().parent.parent / "agent"
LAUNCHER = b"""import os, runpy, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
runpy.run_module("berth_agent", run_name="__main__", alter_sys=True)
"""
AGENT_MODIFIED = "agent_modified"
DIR_MODE, FILE_MODE = 0o700, 0o600

# argv: <folder>/agent.py (for people and `ps`: the launcher's path), the expected sha256, the command
BOOTSTRAP = """\
import hashlib, json, os, runpy, stat, sys
os.umask(0o077)
launcher, want = sys.argv[1], sys.argv[2]
d = os.path.dirname(launcher)
pkg = os.path.join(d, "berth_agent")
h, bad = hashlib.sha256(), []
def unsafe(p, kind):
    st = os.lstat(p)
    return not kind(st.st_mode) or st.st_mode & 0o022 or st.st_uid != os.getuid()
try:
    for p in (d, pkg):
        if unsafe(p, stat.S_ISDIR): bad.append(p)
    # d is first on sys.path (and the runners' PYTHONPATH): any other file there shadows a module
    bad.extend(os.path.join(d, n) for n in os.listdir(d) if n not in ("agent.py", "berth_agent"))
    for n in sorted(os.listdir(pkg)):
        f = os.path.join(pkg, n)
        if n == "__pycache__":  # bytecode is not hashed and runs instead of its source: none may exist
            if unsafe(f, stat.S_ISDIR): bad.append(f)
            bad.extend(os.path.join(f, c) for c in os.listdir(f))
        elif n.endswith(".py") and not unsafe(f, stat.S_ISREG):
            with open(f, "rb") as fh:
                h.update(n.encode() + b"\\0" + fh.read())
        else:
            bad.append(f)
except OSError as e:
    bad.append(str(e))
if bad or h.hexdigest() != want:
    why = "writable by others, or not its files: %s" % ", ".join(bad[:3]) if bad else "its content changed"
    sys.stdout.write(json.dumps({"event": "error", "code": "agent_modified", "paths": bad[:20],
                                 "message": "the Berth agent at %s was modified (%s)" % (d, why)}) + "\\n")
    sys.exit(1)
sys.argv = [launcher] + sys.argv[3:]
sys.path.insert(0, d)
runpy.run_module("berth_agent", run_name="__main__", alter_sys=True)
"""


def agent_argv(launcher: str, command: str) -> list[str]:
    # -B: no bytecode beside the agent, since the bootstrap hashes sources only and refuses any
    return ["python3", "-I", "-B", "-c", BOOTSTRAP, launcher, agent_digest(), command]


def install(transport, target: str) -> None:
    """Upload the agent into a private temporary folder and rename it into place."""
    import uuid

    base = target.rsplit("/", 1)[0]
    tmp = f"{base}/.tmp-{uuid.uuid4().hex[:12]}"
    transport.mkdirs(f"{tmp}/berth_agent")
    for folder in (base.rsplit("/", 1)[0], base, tmp, f"{tmp}/berth_agent"):  # .berth, .berth/agent, ...
        transport.chmod(folder, DIR_MODE)
    for src in sorted(AGENT_SOURCE.glob("*.py")):
        transport.write_bytes(f"{tmp}/berth_agent/{src.name}", src.read_bytes())
        transport.chmod(f"{tmp}/berth_agent/{src.name}", FILE_MODE)
    transport.write_bytes(f"{tmp}/agent.py", LAUNCHER)
    transport.chmod(f"{tmp}/agent.py", FILE_MODE)
    try:
        transport.rename(tmp, target)
    except OSError:
        transport.remove_tree(tmp)
        if not transport.exists(f"{target}/agent.py"):
            raise
