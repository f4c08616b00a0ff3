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

from app.remote.agent_digest_check import shipped_digest

AGENT_SOURCE = Path(__file__).resolve().parent.parent / "agent"
LAUNCHER = b"""import os, runpy, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
runpy.run_module("berth_agent", run_name="__main__", alter_sys=True)
"""
AGENT_MODIFIED = "agent_modified"
DIR_MODE, FILE_MODE = 0o700, 0o600



def _code_of(source: str) -> str:
    """The module's code without its docstring (the command line is shown to people, by hand)."""
    import ast

    first = ast.parse(source).body[0]
    lines = source.splitlines(keepends=True)
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines = lines[first.end_lineno:]
    return "".join(lines).lstrip("\n")


# the rules (its functions, not the session's class), from this computer's copy
SELFCHECK = _code_of((AGENT_SOURCE / "selfcheck.py").read_text()).split("\nclass SelfCheck")[0]
# argv: <folder>/agent.py (for people and `ps`: the launcher's path), the expected sha256, the command.
# The rules are selfcheck.py's own (the session applies them again before each request), sent in
# the command line with the rest: nothing of the server's copy runs before it passed.
BOOTSTRAP = SELFCHECK + """
import json, runpy, sys
os.umask(0o077)
launcher, want = sys.argv[1], sys.argv[2]
d = os.path.dirname(launcher)
digest, bad = state(os.path.join(d, "berth_agent"))
if bad or digest != want:
    why = "writable by others, or not its files: %s" % ", ".join(bad[:3]) if bad else "its content changed"
    sys.stdout.write(json.dumps({"event": "error", "code": "agent_modified", "paths": bad[:20],
                                 "message": "the Berth agent at %s was modified (%s)" % (d, why)}) + "\\n")
    sys.exit(1)
sys.argv = [launcher] + sys.argv[3:]
sys.path.insert(0, d)
runpy.run_module("berth_agent", run_name="__main__", alter_sys=True)
"""


# -I: no PYTHONPATH, PYTHONSTARTUP or user site; -B: no bytecode beside the agent, since the bootstrap
# hashes sources only and refuses any (the exec-channel file helper runs under the same interpreter);
# -S: no site-packages, whose .pth files run at every start (the agent is stdlib-only, as its lean
# sampler already runs): 87 -> 16 ms of CPU per agent start on the bench VM (bench/README.md, Fleet)
PYTHON = ("python3", "-I", "-B", "-S")


def agent_argv(launcher: str, command: str) -> list[str]:
    return [*PYTHON, "-c", BOOTSTRAP, launcher, shipped_digest(), command]


def install(transport, target: str, shared: bool = False) -> None:
    """Upload the agent into a private temporary folder and rename it into place. In a shared root
    (`.berth/agent/<user>/<version>`) `.berth` and `.berth/agent` are the group's: only the user's own
    folder is made private."""
    import uuid

    shipped_digest()  # a packaged app whose agent files were edited says so here, before any upload
    base = target.rsplit("/", 1)[0]
    tmp = f"{base}/.tmp-{uuid.uuid4().hex[:12]}"
    transport.mkdirs(f"{tmp}/berth_agent")
    private = (base,) if shared else (base.rsplit("/", 1)[0], base)  # .berth/agent[/<user>] (and .berth)
    for folder in (*private, tmp, f"{tmp}/berth_agent"):
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
