"""Questions about what runs where: status, releases, predictions."""
import difflib
import json
import time

from app import errors
from app.remote.transport import Transport

from .errors import OperationFailed


def status(transport: Transport, model: str | None = None) -> list[dict]:
    rows = transport.agent("status", {"model": model} if model else {})["models"]
    return [dict(r, server=transport.name) for r in rows]


NOT_DEPLOYED_CODES = frozenset({"not_deployed", "nothing_deployed"})


def releases(transport: Transport, model: str, *, requirements: bool = False, files_of=()) -> list[dict]:
    """[] for a model never deployed there (a deploy plans its first release from that).
    `requirements`: each release's requirements file as text; `files_of`: the file lists of those
    versions (for a diff)."""
    req = {"model": model}
    if requirements:
        req["requirements"] = True
    if files_of:
        req["files_of"] = list(files_of)
    return transport.agent("releases", req)["releases"]


def not_deployed(transport: Transport, model: str, said: str = "") -> OperationFailed:
    """`wien is not deployed on box` (or what the agent `said`), with the models that are and the
    close one: a typo is the usual reason (difflib, as git's "did you mean"). Asks the server's
    status for the names."""
    names = sorted(r["model"] for r in status(transport))
    text = said.rstrip(".").split("; deploy it first")[0] if said else f"{model} is not deployed on {transport.name}"
    if not names:
        return OperationFailed(f"{text}; nothing is deployed on {transport.name} yet: `berth deploy FOLDER "
                               f"--server {transport.name}`", code="not_deployed")
    close = difflib.get_close_matches(model, names, n=1)
    hint = f"; did you mean {close[0]}?" if close else "; deploy it first"
    return OperationFailed(f"{text} (deployed there: {', '.join(names)}){hint}", code="not_deployed")


def known_model(transport: Transport, model: str) -> bool:
    return any(r["model"] == model for r in status(transport))


def runner_port(transport: Transport, model: str) -> int:
    rows = status(transport, model)
    if not rows:
        raise not_deployed(transport, model)
    row = rows[0]
    if row["state"] != "running" or not row.get("port"):
        raise OperationFailed(f"{model} {row['version']} is {row['state']} on {transport.name}; start it with "
                              f"`berth start {model} --server {transport.name}`", code="not_running")
    return int(row["port"])


def predict(transport: Transport, model: str, payload: bytes) -> tuple[object, float, dict]:
    """POST the JSON input to the model's runner; returns (output, seconds, response headers)."""
    port = runner_port(transport, model)
    t0 = time.perf_counter()
    try:
        status_code, headers, body = transport.http(port, "POST", "/predict", payload)
    except OSError as e:
        raise OperationFailed(f"{model} on {transport.name} did not answer: {e}", code="unreachable") from None
    seconds = time.perf_counter() - t0
    try:
        data = json.loads(body)
    except ValueError:
        raise OperationFailed(f"{model} answered with something that is not JSON (HTTP {status_code})") from None
    err = data.get("error") if isinstance(data, dict) else data
    if status_code == 422:
        raise OperationFailed(f"{model} refused the input (HTTP 422): {err}", code=errors.INVALID_INPUT)
    if status_code != 200:
        raise OperationFailed(f"{model} could not answer (HTTP {status_code}): {err}", code="predict_failed")
    return data, seconds, headers
