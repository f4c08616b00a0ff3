"""One sample of a server measured over a whole interval (`berth monitor --once`), and whether a
model runs on the servers sampled. The first sample of a stream covers only a short start-up
interval, so one honest sample takes two and keeps the second."""
from __future__ import annotations

import time

from app import errors
from app.errors import BerthError
from app.store.servers import LOCAL


class ModelNotRunning(BerthError):
    default_code = errors.NOT_RUNNING


def one_sample(workspace, name: str, interval: float) -> dict:
    """`workspace` gives the servers (`.servers`) and connections (`.connect`); the sample gets "server"."""
    if name == LOCAL:
        from .local_sampler import LocalSampler

        sampler = LocalSampler(workspace.servers.get(LOCAL).root, interval)
        sampler.sample()
        time.sleep(interval)
        sample = sampler.sample()
    else:
        with workspace.connect(name) as t:
            stream = t.stream("sample", {"interval": interval, "count": 2})
            with stream:
                events = [e for e in stream if e.get("event") == "sample"]
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
