"""PostgreSQL for jobs, from the agent's side (standard library only): psycopg 3 (the binary wheel)
installed into the release's virtualenv with pip on the server, and the `job add` check run by that
virtualenv's python (`-m berth_agent.jobpostgres`, the request as JSON on stdin, so no password or
query is ever on a command line)."""
import json
import subprocess

from . import supervise
from .layout import AgentError
from .pgurl import passfile_path
from .runnerenv import pip_environment, runner_environment

DRIVER = "psycopg[binary]>=3.1,<4"
CHECK_TIMEOUT_S = 60


def has_driver(python):
    return subprocess.call([python, "-I", "-c", "import psycopg"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def ensure(release_dir, emit=None):
    """psycopg in the release's virtualenv; False when it was there already. pip's lines go to `emit`."""
    python = supervise.venv_python(release_dir)
    if has_driver(python):
        return False
    say = emit or (lambda kind, **f: print(f.get("line", ""), flush=True))
    say("step", step="driver", line="installing the PostgreSQL driver (%s) into %s" % (DRIVER, release_dir))
    if subprocess.call([python, "-I", "-c", "import pip"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) != 0:
        _stream([python, "-I", "-m", "ensurepip", "--default-pip"], say)  # a venv made --without-pip
    _stream([python, "-I", "-m", "pip", "install", "--disable-pip-version-check", "--no-input", DRIVER], say)
    return True


def _stream(cmd, say):
    env = dict(pip_environment(), PIP_NO_INPUT="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    for raw in proc.stdout:
        lines.append(raw.decode("utf-8", "replace").rstrip())
        say("log", step="driver", line=lines[-1])
    proc.stdout.close()
    code = proc.wait()
    if code != 0:
        last = [l for l in lines if l.strip()][-2:]
        raise AgentError("installing the PostgreSQL driver (psycopg) into the release's virtualenv failed (exit %d): "
                         "%s; the server needs to reach the package index (pip's settings apply)"
                         % (code, " | ".join(last) or "no output"), "driver_failed", log=lines[-2000:])


def job_environment(root):
    """What a job process using PostgreSQL adds to the runner's environment: where its password is."""
    return {"PGPASSFILE": passfile_path(root)}


def check(release_dir, request, passfile):
    """Run jobpostgres.check(request) in the release's virtualenv, libpq reading `passfile`."""
    return in_venv(release_dir, request, passfile)


def in_venv(release_dir, request, passfile):
    """`python -m berth_agent.jobpostgres` in the release's virtualenv: the request on stdin, its answer."""
    env = dict(runner_environment(), PYTHONPATH=supervise.PACKAGE_PARENT, PYTHONDONTWRITEBYTECODE="1",
               PGPASSFILE=passfile, PGCONNECT_TIMEOUT="10")
    try:
        proc = subprocess.run([supervise.venv_python(release_dir), "-m", supervise.PACKAGE + ".jobpostgres"],
                              input=json.dumps(request).encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, cwd=release_dir, timeout=CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AgentError("the PostgreSQL database did not answer in %d s; is it reachable from the server?"
                         % CHECK_TIMEOUT_S, "bad_output")
    try:
        answer = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        err = " ".join(proc.stderr.decode("utf-8", "replace").split())[-300:]
        raise AgentError("the PostgreSQL driver did not run in the release's virtualenv: %s" % (err or "no output"),
                         "bad_output")
    if "error" in answer:
        raise AgentError(answer["error"], answer.get("code") or "bad_output")
    return answer
