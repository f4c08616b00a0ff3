"""What the alert evaluator measures each round: the sampler's own figures (sampler.Sampler, kept
across rounds so rates are per round), each deployed model's /health, and the jobs' last runs; then
each rule's alerts (rule x model, rule x job, or the rule alone for the host) with their values."""
import http.client

from . import supervise
from .jobclock import parse
from .jobstore import LATE_S, list_jobs
from .runnerproc import read_port
from .sampler import Sampler

HEALTH_TIMEOUT_S = 2.0


def health_ok(port):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=HEALTH_TIMEOUT_S)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        conn.close()


class Figures:
    def __init__(self, root):
        self.root = root
        self.sampler = Sampler(root)

    def close(self):
        self.sampler.close()

    def take(self, mono, t):
        """{"host": {...}, "models": {name: {...}}, "jobs": {name: {...}}} at monotonic `mono`, clock `t`."""
        s = self.sampler.take(mono)
        host = s["host"]
        mem_total = host["memory"]["total"] or 0
        disk = host["disk"]
        figures = {"host": {"cpu_pct": host["cpu_percent"],
                            "memory_pct": round(100.0 * host["memory"]["used"] / mem_total, 1) if mem_total else None,
                            "disk_free_pct": round(100.0 * disk["free"] / disk["total"], 2) if disk["total"] else None},
                   "models": {}, "jobs": {}}
        for name in self.root.model_names():
            model = self.root.model(name)
            version = model.current_version()
            if version is None:
                continue
            rec = supervise.record(model, version)
            if rec is None:
                continue  # stopped on purpose (berth stop): not down
            m = s["models"].get(name) or {}
            port = rec.get("port") or read_port(model, version)
            down = not supervise.alive(rec) or not port or not health_ok(port)
            lat = m.get("latency_ms") or {}
            requests = m.get("requests_per_s")
            figures["models"][name] = {
                "down": down,
                "cpu_pct": m.get("cpu_percent"),
                "memory_pct": round(100.0 * m["rss_bytes"] / mem_total, 1) if m.get("rss_bytes") and mem_total else None,
                # model errors (5xx) per request; inputs refused as the client's fault (4xx) are not errors
                "error_rate": round(m["errors_per_s"] / requests, 4) if requests else None,
                "p95_ms": lat.get("p95") if lat.get("window") == "interval" else None,
            }
        for jobdir in list_jobs(self.root):
            try:
                job = jobdir.read()
                last = (jobdir.runs_newest_first(1) or [None])[0]
                due = parse(jobdir.state().get("next_run"))
            except Exception:
                continue  # removed while we read, or unreadable: job_list says so
            late = bool(not job.get("paused") and due is not None and (t - due).total_seconds() > LATE_S)
            figures["jobs"][jobdir.name] = {
                "model": job.get("model"),
                "failed": bool(last and last.get("state") == "failed"),
                "late": late or bool(last and last.get("late")),
                "detail": (last or {}).get("detail") or "",
            }
        return figures


def instances(rule, figures):
    """[(alert id, model, active, value, summary)] of one rule now."""
    kind, name, model, th = rule["kind"], rule["name"], rule.get("model"), rule.get("threshold")
    out = []
    if kind in ("job_failed", "job_late"):
        for job, j in sorted(figures["jobs"].items()):
            if model is None or j["model"] == model:
                active = j["failed"] if kind == "job_failed" else j["late"]
                said = ("job %s failed%s" % (job, ": " + j["detail"][:120] if j["detail"] else "")
                        if kind == "job_failed" else "job %s is late" % job)
                out.append(("%s/job:%s" % (name, job), j["model"], active, None, said))
        return out
    if kind == "auto_rollback":
        return out  # fires on the journal event experiment.auto_rollback once experiments exist (docs/alerts.md)
    if model is None and kind in ("disk_free_pct", "memory_pct", "cpu_pct"):
        value = figures["host"].get(kind)
        return [(name, None, _crossed(rule, value), value, _said(kind, value, th, "the server"))]
    names = [model] if model else sorted(figures["models"])
    for m in names:
        f = figures["models"].get(m)
        if kind == "down":
            active = bool(f and f["down"])
            out.append(("%s/%s" % (name, m), m, active, None,
                        "%s is down: its /health does not answer" % m if active else "%s answers its /health" % m))
        else:
            value = f.get(kind) if f else None
            out.append(("%s/%s" % (name, m), m, _crossed(rule, value), value, _said(kind, value, th, m)))
    return out


def _crossed(rule, value):
    if value is None:
        return False  # no figure this round (no request, /metrics not answering): not firing
    return value < rule["threshold"] if rule["op"] == "<" else value > rule["threshold"]


UNITS = {"error_rate": ("error rate", ""), "p95_ms": ("p95 latency", " ms"), "memory_pct": ("memory", "%"),
         "cpu_pct": ("CPU", "%"), "disk_free_pct": ("free disk", "%")}


def _said(kind, value, threshold, who):
    what, unit = UNITS[kind]
    shown = "no figure" if value is None else "%g%s" % (value, unit)
    return "%s of %s: %s (%s %s%g%s)" % (what, who, shown, "alert below" if kind == "disk_free_pct" else "alert above",
                                         "", threshold, unit)
