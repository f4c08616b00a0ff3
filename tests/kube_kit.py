"""Podman for `podman kube play` in the Kubernetes export test: container_kit's Podman (its own
storage, locks and CNI network; runc; everything removed after), plus the pods kube play makes, and a
wrapper script naming its configuration that `local`'s agent runs as its engine."""
from __future__ import annotations

from container_kit import PODMAN
from container_kit import Podman as _Podman
from container_kit import missing as _missing


def missing() -> str | None:
    return _missing("podman")


class Podman(_Podman):
    def __init__(self):
        super().__init__()
        self.wrapper = self.dir / "podman"  # the engine `berth server set-container --engine` names
        self.wrapper.write_text("#!/bin/sh\nexec env " + " ".join(f"{k}={v}" for k, v in self.env.items())
                                + f' {PODMAN} "$@"\n')
        self.wrapper.chmod(0o755)

    def stop(self) -> None:
        if self.started:
            self.cli("pod", "rm", "--all", "--force", check=False, timeout=120)
        super().stop()
