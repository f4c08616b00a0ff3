"""A virtualenv per release, with the bundle's requirements; pip's output is streamed as it runs."""
import os
import re
import subprocess
import sys

from .layout import AgentError
from .requirements_rules import folder_reader, requirement_problems
from .runnerenv import pip_environment


def build(release_dir, requirements, emit, cancelled):
    return build_at(os.path.join(release_dir, ".venv"), requirements, os.path.join(release_dir, "bundle"), emit,
                    cancelled)


def build_at(env_dir, requirements, bundle_dir, emit, cancelled, source=None):
    """A virtualenv at `env_dir` with the bundle's requirements (paths in them relative to the bundle);
    `source` (wheelhouse.Source): offline wheels or a private index instead of the server's own."""
    # -I: `-m` would otherwise put the working folder (the bundle) first on sys.path, and a bundle's
    # own venv.py or pip/ would run here with the agent's environment, outside every check
    cmd = [sys.executable, "-I", "-S", "-m", "venv"]  # -S: venv is stdlib; no .pth files read (pip runs apart)
    if not requirements:
        cmd.append("--without-pip")  # nothing to install: no need to spend seconds on ensurepip
    _stream(cmd + [env_dir], "venv", emit, cancelled, bundle_dir)
    if requirements:
        refuse_unsafe(bundle_dir, requirements)
        req = os.path.join(bundle_dir, requirements)
        py = os.path.join(env_dir, "bin", "python")
        emit("step", step="install", requirements=requirements)
        # -X utf8: pip decodes a requirements file without a BOM in the locale's encoding, which is not
        # the UTF-8 the rules read (in Latin-1, the byte 0x85 of "Å" is a line break)
        _stream([py, "-I", "-X", "utf8", "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
                + (source.args if source else []) + ["-r", req],
                "install", emit, cancelled, bundle_dir, requirements, source)
    return env_dir


# pip's words (20.x to 25.x) for a requirement no index has: the name is what the operator can fix
_NOT_FOUND = re.compile(r"No matching distribution found for (\S+)|"
                        r"Could not find a version that satisfies the requirement (\S+)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NOTHING_CHANGED = "nothing changed on the server: the release that was current still serves"


def _missing_requirement(lines, bundle_dir, requirements):
    """"requirements.txt:3: no package 'wien-tools' ..." when pip found no such distribution;
    None for any other failure. The line is the first in the file naming it (pip does not say)."""
    wanted = None
    for line in reversed(lines):
        m = _NOT_FOUND.search(line)
        if m:
            wanted = m.group(1) or m.group(2)
            break
    if wanted is None:
        return None
    m = _NAME.match(wanted)
    name = _canonical(m.group(0) if m else wanted)
    where = requirements
    try:
        with open(os.path.join(bundle_dir, requirements), encoding="utf-8", errors="replace") as f:
            for number, text in enumerate(f, 1):
                m = _NAME.match(text.strip())
                if m and _canonical(m.group(0)) == name:
                    where = "%s:%d" % (requirements, number)
                    break
    except OSError:
        pass
    return ("%s: no version of %r is on the package index (pip: no matching distribution); check its name "
            "and version; %s (-v, or the console's Details, shows pip's log)" % (where, wanted, NOTHING_CHANGED))


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def refuse_unsafe(bundle_dir, requirements):
    """The bundle check's rules again, here: the desktop that checked the bundle is not the server."""
    problems = requirement_problems(folder_reader(bundle_dir), requirements)
    if problems:
        where, line, message = problems[0]
        raise AgentError("%s%s: %s (%d problem(s) in the requirements; see `berth bundle check`)"
                         % (where, ":%d" % line if line else "", message, len(problems)), "bad_requirements")


def _stream(cmd, step, emit, cancelled, cwd, requirements=None, source=None):
    env = dict(pip_environment(), PIP_NO_INPUT="1", PYTHONUNBUFFERED="1")  # an allow-list, like a runner's
    if source is not None:
        env.update(source.env)  # a private index's URL with its password: this child only
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    lines = []
    try:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if source is not None:
                line = source.scrub(line)
            lines.append(line)
            emit("log", step=step, line=line)
            if cancelled():
                proc.kill()
                break
    finally:
        proc.stdout.close()
        code = proc.wait()
    if code != 0:
        log = lines[-2000:]  # pip's whole log, for -v and the console's Details; the message stays one line
        said = _missing_requirement(lines, cwd, requirements) if requirements else None
        if said:
            raise AgentError(said, step + "_failed", log=log)
        last = [l for l in lines if l.strip()][-3:]
        what = "installing the requirements" if step == "install" else "creating the virtualenv"
        raise AgentError("%s failed (exit %d): %s" % (what, code, " | ".join(last) or "no output"),
                         step + "_failed", log=log)
