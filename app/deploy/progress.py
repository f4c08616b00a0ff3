"""Progress of long operations, as plain values: the CLI prints them, the console draws them."""
import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass

STEP_LABELS = {
    "check": "Checking the bundle",
    "fetch": "Copying the release from its server",
    "connect": "Connecting",
    "plan": "What changes",
    "profile": "Measuring",
    "resolve": "Resolving wheels for the server",
    "download": "Downloading wheels",
    "upload": "Uploading",
    "assemble": "Assembling the release",
    "venv": "Creating the virtualenv",
    "install": "Installing requirements",
    "start": "Starting the runner",
    "health": "Health check",
    "switch": "Switching current",
    "stop_previous": "Stopping the previous runner",
    "rollback.auto": "Rolled back automatically",
    "prune": "Removing old releases",
    "done": "Done",
}


@dataclass(frozen=True)
class Progress:
    step: str
    message: str = ""
    done: int | None = None
    total: int | None = None
    line: str | None = None  # one line of a streamed log (pip), when this event carries one
    rate: float | None = None  # bytes/s for uploads

    @property
    def label(self) -> str:
        return STEP_LABELS.get(self.step, self.step)


def from_agent(event: dict) -> Progress:
    """An agent event (`{"event": "step"|"log", "step": ...}`) as a Progress value."""
    if event.get("event") == "log":
        return Progress(event.get("step", "log"), line=event.get("line", ""))
    step = event.get("step", "")
    return Progress(step, _describe(step, event), done=event.get("done"), total=event.get("total"))


def _describe(step: str, e: dict) -> str:
    version = e.get("version") or ""
    if step == "switch":
        return f"{e.get('previous') or 'nothing'} -> {version}"
    if step == "health":
        return f"{version} answering on port {e.get('port')}"
    if step == "rollback.auto":
        return f"{e.get('failed')} failed after the switch; {version or 'nothing'} is current again"
    if step == "assemble" and e.get("total") is not None and e.get("done") is None:
        return f"{e['total']} files"
    return version


_DONE = object()


def pump(work: Callable[[Callable[[object], None]], object]) -> Generator[object, None, object]:
    """Run `work(emit)` in a thread and yield what it emits as it happens; return its result.
    Lets a blocking call with a callback (paramiko, subprocess) feed a generator of progress."""
    q: queue.Queue = queue.Queue()
    box: dict = {}

    def run():
        try:
            box["result"] = work(q.put)
        except BaseException as e:  # handed to the caller's thread below
            box["error"] = e
        finally:
            q.put(_DONE)

    t = threading.Thread(target=run, name="berth-pump", daemon=True)
    t.start()
    while (item := q.get()) is not _DONE:
        yield item
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def agent_stream(transport, command: str, request: dict) -> Generator[Progress, None, dict]:
    """Run an agent command, yielding its progress events as Progress; return its result."""
    return (yield from pump(lambda emit: transport.agent(command, request, lambda ev: emit(from_agent(ev)))))
