"""One sample of a server measured over a short window (`berth monitor --once`), and whether a
model runs on the servers sampled. One agent call per server: the sampler takes its baseline and,
`window` seconds later, the one sample (CPU% and rates need two readings; both are on the server).
Up to ONCE_MAX_WINDOW it is `sample_once`, answered by the connection's agent session (no new
interpreter through the login shell per server); a longer window is the streamed `sample`'s."""
from __future__ import annotations

import time

from app import errors
from app.agent.intervals import ONCE_MAX_WINDOW
from app.errors import BerthError
from app.store.servers import LOCAL

WINDOW = 0.25  # seconds a --once sample is measured over unless --interval says otherwise


class ModelNotRunning(BerthError):
    default_code = errors.NOT_RUNNING


def one_sample(workspace, name: str, window: float = WINDOW) -> dict:
    """`workspace` gives the servers (`.servers`) and connections (`.connect`); the sample gets "server"."""
    if name == LOCAL:
        from .local_sampler import FIRST_INTERVAL, LocalSampler

        sampler = LocalSampler(workspace.servers.get(LOCAL).root, window)
        sample = sampler.sample()  # a baseline, FIRST_INTERVAL (the shortest window), the sample
        if window > FIRST_INTERVAL:  # in this process: a second one costs no connection
            time.sleep(window)
            sample = sampler.sample()
    else:
        events: list[dict] = []
        # agent(), not stream(): no extra `hello` call first; `held`: through the CLI's kept connection
        command, payload = ("sample_once", {"window": window}) if window <= ONCE_MAX_WINDOW else \
            ("sample", {"interval": window, "count": 1, "window": window})
        with workspace.connect(name, held=True) as t:
            t.agent(command, payload, on_event=lambda e: events.append(e) if e.get("event") == "sample" else None)
        if not events:
            raise BerthError(f"{name}: the agent sent no sample")
        sample = {k: v for k, v in events[-1].items() if k != "event"}
    sample["server"] = name
    return sample


def check_model(model: str | None, samples: list[dict]) -> None:
    """A model asked for by name must run on at least one of the servers sampled."""
    if model and samples and not any(model in (s.get("models") or {}) for s in samples):
        where = ", ".join(s["server"] for s in samples)
        raise ModelNotRunning(f"model '{model}' is not running on {where}; see `berth status`")
