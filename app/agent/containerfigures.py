"""A container release's CPU and memory for the sampler: the container's main process (the Berth
runner inside it, with the model) and its children, from /proc by the pid the host runner keeps in
run/<version>.container.json (containerrun.py). No engine call per sample: `docker stats` costs
about a second of the engine's time each. Stdlib only."""
import json
import os

from .workerfigures import WorkerFigures, _stat
from .procfile import CLK_TCK


class ContainerFigures:
    def __init__(self, model, version):
        self.path = os.path.join(model.run, "%s.container.json" % version)
        self.pid, self.prev, self.workers = None, None, None

    def measure(self, now):
        """{"pid", "cpu_percent", "rss_bytes"} of the container, or None (not a container, or down)."""
        try:
            with open(self.path) as f:
                pid = json.load(f).get("pid")
        except (OSError, ValueError, AttributeError):
            return None
        if not isinstance(pid, int) or pid <= 0:
            return None
        if pid != self.pid:  # restarted by its policy: a new process
            self.pid, self.prev, self.workers = pid, None, WorkerFigures(pid)
        st = _stat(pid)
        if st is None:
            return {"pid": pid, "cpu_percent": None, "rss_bytes": None, "running": False}
        ticks, rss = st
        prev, self.prev = self.prev, (now, ticks)
        cpu = 0.0
        if prev is not None and now > prev[0]:
            cpu = round(100.0 * (ticks - prev[1]) / CLK_TCK / (now - prev[0]), 1)
        rss, cpu, _ = self.workers.measure(now, rss, cpu)
        return {"pid": pid, "cpu_percent": cpu, "rss_bytes": rss, "running": True}
