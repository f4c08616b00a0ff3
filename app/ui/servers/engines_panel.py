"""The server page's container engines: each docker or podman the server has, its version, and
whether the SSH user may use it (rootless podman counts), from the agent's `container_check`. The
engine container releases use comes first and is marked; one that is not usable says why."""
from html import escape

from PySide6.QtWidgets import QLabel

from app.ui.operations import ServerOp

USABLE_STYLE = "color: #1b7f3b;"
UNUSABLE_STYLE = "color: #8a5300;"


def engine_line(found: dict, chosen: bool) -> str:
    """One engine as rich text: "docker 20.10.24 at /usr/bin/docker: usable (releases use it)"."""
    kind = escape(str(found.get("engine") or "?"))
    where = f" at {escape(str(found['path']))}" if found.get("path") else ""
    if found.get("usable"):
        who = "rootless" if found.get("rootless") else "usable"
        state = f'<span style="{USABLE_STYLE}">{who}</span>' + (" (container releases use it)" if chosen else "")
        return f"<b>{kind} {escape(str(found.get('version', '')))}</b>{where}: {state}"
    return f'<b>{kind}</b>{where}: <span style="{UNUSABLE_STYLE}">not usable</span> ({escape(str(found.get("detail")))})'


def engines_text(found: dict) -> str:
    engines = found.get("engines")
    if engines is None:  # an older agent: only the one it chose
        engines = [found] if found.get("engine") else []
    if not engines:
        return "none (neither docker nor podman is on the server's PATH)"
    return "<br>".join(engine_line(e, i == 0 and bool(found.get("usable"))) for i, e in enumerate(engines))


class EnginesPanel(QLabel):
    def __init__(self, runner, parent=None):
        super().__init__("—", parent)
        self.runner = runner
        self.server = ""
        self.setObjectName("enginesLabel")
        self.setWordWrap(True)

    def refresh(self, server: str) -> None:
        self.server = server
        (ServerOp(self, server, f"container engines {server}", lambda ctx: ctx.transport.agent("container_check", {}))
         .only_if(lambda: self.server == server)
         .success(lambda found: self.setText(engines_text(found)))
         .failure(lambda e: self.setText(f"cannot ask: {escape(str(e))}")).run())
