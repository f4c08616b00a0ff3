"""The run side of a container release, in two halves. In the agent (`spec`): what the container
runs with: its image, name, published port (127.0.0.1 only), restart policy, limits, read-only root,
no new privileges, no host network; written to run/<version>.container.json for the runner. In the
host runner (`Container`): start it, wait until it answers, forward each prediction to it, and stop
and remove it when the runner stops. The runner on the host keeps the model's stable port (its
listening socket handed from runner to runner, endpoint.py), so deploy, rollback and the watchdog
work as for a venv release. Stdlib only."""
import json
import os
import socket
import threading
import time

from . import containerengine as engines
from .containerimage import PORT_INSIDE
from .fsutil import read_json, write_json_atomic, _unlink
from .layout import AgentError
from .runnerenv import declared_problem

RESTART = "unless-stopped"  # a container killed from outside comes back; `stop` ends it for good
STOP_TIMEOUT_S = 10


def container_name(model, version):
    return "berth-%s-%s" % (model, "".join(c if c.isalnum() or c in "_.-" else "_" for c in version))


def spec_file(model, version):
    return os.path.join(model.run, "%s.container.json" % version)


def is_container(release_dir):
    rel = read_json(os.path.join(release_dir, "release.json"))
    return isinstance(rel, dict) and (rel.get("manifest") or {}).get("runtime") == "container"


def spec(root, model, version, manifest):
    """Write the runner's container spec; its path."""
    settings = engines.settings(root)
    memory = manifest.get("memory") or settings.get("memory")
    cpus = manifest.get("cpus") or settings.get("cpus")
    env = {k: v for k, v in (manifest.get("env") or {}).items() if declared_problem(k, v) is None}
    data = {"engine": engines.require(root), "image": engines.image_tag(model.name, version),
            "name": container_name(model.name, version), "env": env,
            "memory": engines.check_memory(memory) if memory else None,
            "cpus": engines.check_cpus(cpus) if cpus else None,
            "health_timeout_s": float(manifest.get("health_timeout_s") or 60)}
    write_json_atomic(spec_file(model, version), data)
    return spec_file(model, version)


def run_args(s, host_port):
    args = ["run", "--detach", "--name", s["name"], "--restart", RESTART,
            "--publish", "127.0.0.1:%d:%d" % (host_port, PORT_INSIDE),
            "--read-only", "--tmpfs", "/tmp:rw,size=64m", "--security-opt", "no-new-privileges",
            "--cap-drop", "ALL", "--network", "bridge", "--label", "berth.runner=1"]
    if s.get("memory"):
        args += ["--memory", s["memory"]]
    if s.get("cpus"):
        args += ["--cpus", "%g" % s["cpus"]]
    for k, v in sorted(s.get("env", {}).items()):
        args += ["--env", "%s=%s" % (k, v)]
    return args + [s["image"]]


def remove(path):
    """Stop and remove the container a spec names (the runner's record is going): quietly."""
    s = read_json(path)
    if isinstance(s, dict) and s.get("engine") and s.get("name"):
        engines.run(s["engine"], ["rm", "--force", s["name"]], timeout=STOP_TIMEOUT_S + 20)
        _unlink(path)


class Container:
    """The host runner's container: started once, asked over HTTP, pid kept for the sampler."""

    def __init__(self, spec_path):
        self.path = spec_path
        self.s = read_json(spec_path)
        if not isinstance(self.s, dict):
            raise AgentError("the container spec %s is missing" % spec_path, "start_failed")
        self.local = threading.local()
        self.stopping = False
        self.conns = []  # every thread's connection, closed at stop so the container's runner drains at once
        self.port = None

    def start(self):
        engine, name = self.s["engine"], self.s["name"]
        engines.run(engine, ["rm", "--force", name], timeout=30)  # one left by a killed runner
        self.port = _free_port()
        code, out, err = engines.run(engine, run_args(self.s, self.port), timeout=120)
        if code != 0:
            raise AgentError("the container did not start: %s" % (err.strip() or out.strip()), "start_failed")
        print("berth-runner: container %s (%s) on 127.0.0.1:%d" % (name, self.s["image"], self.port), flush=True)
        self._wait_ready(self.s.get("health_timeout_s", 60))
        self.save_pid()
        threading.Thread(target=self._follow_pid, daemon=True).start()

    def _follow_pid(self):
        """Keep the spec's pid right for the sampler when the restart policy brings the container back
        (an engine call only when the process is gone: a /proc check each second otherwise)."""
        while not self.stopping:
            time.sleep(1.0)
            pid = self.s.get("pid")
            if not pid or not os.path.exists("/proc/%d" % pid):
                try:
                    self.save_pid()
                except OSError:
                    pass

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = engines.inspect(self.s["engine"], self.s["name"], "{{json .State}} {{.RestartCount}}")
            if isinstance(state, str) and " " in state:
                raw, _, count = state.rpartition(" ")
                st = json.loads(raw)
                if not st.get("Running") or st.get("Restarting") or count != "0":
                    raise AgentError("the container exited at start (exit %s)" % st.get("ExitCode"), "start_failed")
            try:
                status, _ = self._ask("GET", "/health", None, 2.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AgentError("the container did not answer within %ss" % timeout, "start_timeout")

    def logs(self, lines=30):
        _code, out, err = engines.run(self.s["engine"], ["logs", "--tail", str(lines), self.s["name"]], timeout=30)
        return (out + err).strip()

    def save_pid(self):
        pid = engines.inspect(self.s["engine"], self.s["name"], "{{.State.Pid}}")
        self.s["pid"] = pid if isinstance(pid, int) and pid > 0 else None
        self.s["port"] = self.port
        write_json_atomic(self.path, self.s)

    def predict(self, data):
        status, body = self._ask("POST", "/predict", json.dumps(data).encode(), 60.0)
        if status != 200:
            try:
                message = json.loads(body).get("error")
            except (ValueError, AttributeError):
                message = body[:200].decode("utf-8", "replace")
            raise RuntimeError("the container answered %d: %s" % (status, message))
        return json.loads(body)

    def _ask(self, method, path, body, timeout):
        import http.client  # in the runner only: the agent's own commands never load it (ssl, email)

        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
                self.conns.append(conn)
            try:
                conn.request(method, path, body, {"Content-Type": "application/json"} if body else {})
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                self._forget(conn)
                if attempt:
                    raise
        raise OSError("unreachable")

    def _forget(self, conn):
        try:
            self.conns.remove(conn)
        except ValueError:
            pass

    def stop(self):
        self.stopping = True
        for conn in list(self.conns):
            conn.close()
        engines.run(self.s["engine"], ["stop", "--time", str(STOP_TIMEOUT_S), self.s["name"]],
                    timeout=STOP_TIMEOUT_S + 20)
        engines.run(self.s["engine"], ["rm", "--force", self.s["name"]], timeout=30)


def _free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()
