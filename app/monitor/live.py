"""The bookkeeping of a live view of several servers (`berth monitor`): the latest sample of each,
when the first table may be drawn, and the one check that the chosen model runs somewhere.

A view waits for every server's first sample, or its first failure, before drawing: a table that
grows one server at a time would jump. The model is checked once, after that first round: a model
that stops later is shown as gone, not an error."""
from __future__ import annotations

from .once import check_model


class LiveBoard:
    def __init__(self, servers: list[str], model: str | None = None):
        self.servers = list(servers)
        self.model = model
        self.latest: dict[str, dict] = {}
        self._heard: set[str] = set()  # servers that sent a sample or failed at least once
        self._model_checked = False

    def reconnecting(self, server: str) -> None:
        self._heard.add(server)

    def add(self, sample: dict) -> None:
        """Keep `sample` (it has "server"); raises ModelNotRunning once every server was heard from."""
        self.latest[sample["server"]] = sample
        self._heard.add(sample["server"])
        if not self._model_checked and len(self._heard) == len(self.servers):
            self._model_checked = True
            check_model(self.model, list(self.latest.values()))

    @property
    def ready(self) -> bool:
        """Every server has a sample, or every one was heard from (some are reconnecting)."""
        return len(self.latest) >= len(self.servers) or len(self._heard) >= len(self.servers)

    def table(self) -> list[dict]:
        """The latest samples in the servers' order."""
        return [self.latest[n] for n in self.servers if n in self.latest]
