"""Running one piece of work on several servers: a server that fails is reported and the others
still run, unless the operator named that one server, whose failure is then the command's."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.errors import one_line
from app.remote.errors import RemoteError

T = TypeVar("T")


@dataclass
class PerServer(Generic[T]):
    results: list[T] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def for_each_server(names: list[str], work: Callable[[str], T], named: bool) -> PerServer[T]:
    """`work(name)` for each server, in order; a RemoteError or OSError is one line on stderr
    (`berth: NAME: message`) and the next server follows. `named`: the operator named the server,
    so its failure is raised instead."""
    outcome: PerServer[T] = PerServer()
    for name in names:
        try:
            outcome.results.append(work(name))
        except (RemoteError, OSError) as e:
            if named:
                raise
            outcome.failed.append(name)
            print(f"berth: {name}: {one_line(e)}", file=sys.stderr)
    return outcome
