"""job_preview: the latest result rows and error rows of a job's output database, read-only (the
console's Jobs tab shows them). A SQLite output is read here, in the agent; any other output needs
its driver, which only the release's virtualenv has (the agent stays stdlib-only), so it is read by
a short process of that venv's python (`python -m berth_agent.jobpreview`, the request as JSON on
stdin, the answer as JSON on stdout), started like a run (jobrun.py). Every value comes back
JSON-safe: bytes as hex text, other non-JSON values (a Decimal, a time) as their str()."""
import json
import math
import subprocess
import sys

from . import pgurl
from .jobio import open_output
from .jobrun import job_version, process_env, venv_command
from .jobstore import JobDir
from .layout import AgentError

DEFAULT_LIMIT = 20
MAX_LIMIT = 500
TIMEOUT_S = 60


def job_preview(ctx, req):
    jobdir = JobDir(ctx.root, req.get("name"))
    job = jobdir.read()
    limit = req.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise AgentError("limit must be a whole number from 1 to %d" % MAX_LIMIT, "usage")
    if str(job["output"].get("url", "")).startswith("sqlite:"):
        answer = read_preview(job["output"], jobdir.name, limit)
    else:
        answer = _in_venv(ctx.root, job, jobdir.name, limit)
    return safe_preview(answer)


def read_preview(spec, name, limit):
    output = open_output(spec, name, readonly=True)
    try:
        return output.preview(limit)
    finally:
        output.close()


def _in_venv(root, job, name, limit):
    release = root.model(job["model"]).release(job_version(root, job))
    request = json.dumps({"output": job["output"], "job": name, "limit": limit}).encode()
    try:
        done = subprocess.run(venv_command(release, "jobpreview"), input=request, cwd=release, env=process_env(root, job),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AgentError("the output of job %s did not answer in %ds" % (name, TIMEOUT_S), "bad_output")
    try:
        answer = json.loads(done.stdout.decode("utf-8", "replace"))
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no answer"])[-1]
        raise AgentError("cannot read the output of job %s: %s" % (name, last[:300]), "bad_output")
    if "error" in answer:
        raise AgentError(str(answer["error"]), str(answer.get("code") or "bad_output"))
    return answer


def json_safe(value):
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)


def safe_preview(answer):
    def part(p):
        p = p if isinstance(p, dict) else {}
        return {"columns": [str(c) for c in p.get("columns") or []],
                "rows": [[json_safe(v) for v in row] for row in p.get("rows") or []]}
    out = part(answer)
    out["errors"] = part(answer.get("errors"))
    return out


def main():
    """In the release's venv: read {output, job, limit} on stdin, print the preview (or {error, code})."""
    try:
        req = json.loads(sys.stdin.read())
        answer = safe_preview(read_preview(req["output"], req["job"], int(req["limit"])))
    except AgentError as e:
        answer = {"error": str(e), "code": e.code}
    except Exception as e:  # the driver's own error, in one line (never its traceback)
        said = pgurl.redact(" ".join(str(e).split()))  # a driver's message may echo the connection string
        answer = {"error": "cannot read the output: %s: %s" % (type(e).__name__, said[:300]), "code": "bad_output"}
    sys.stdout.write(json.dumps(answer))
    return 0


COMMANDS = {"job_preview": job_preview}

if __name__ == "__main__":
    sys.exit(main())
