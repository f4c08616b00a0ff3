"""The runner watchdog, a thread of the scheduler process (scheduler.py): at each tick it looks at
each model whose current release has a runner record (the operator started it; `berth stop` removes
the record), and when that runner's process is gone it starts the release again on its stable port,
through the code path `berth start` uses, under the server lock (a change in progress holds it: the
watchdog tries at the next tick). Crashes back off and end in "gave up" (crashloop.py); each restart
is journalled as `runner.restarted`.

It also keeps a copy of each running model's stable listening socket (taken from the runner over
its control socket, handoff.py). A SIGKILLed runner's copy dies with it, but the kernel socket lives
on in this process, so connections queue in its backlog (not refused) until the restarted runner,
given this very socket through `fd NAME` on keeper_file, accepts them.

Between ticks it waits on the running runners' pidfds (exitwait.py): a runner's end wakes it at
once, and so does `look` on the control socket, which every change sends when it is done (its new
runner is watched from then on); with nothing happening it ticks every IDLE_S. Without pidfds it
ticks every TICK_S."""
import os
import socket
import threading
import time

from . import crashloop, endpoint, experimentfiles, handoff, journal, releases, supervise
from .exitwait import ExitWaiter
from .fsutil import write_json_atomic
from .layout import AgentError
from .lock import ServerLock

TICK_S = 0.1  # without pidfds: the detection half of the SIGKILL-to-answering time (docs/serving.md)
IDLE_S = 1.0  # with pidfds: how soon a new runner, a removed model or a crash loop's next try is seen
STOP_WITHIN_S = 2 * IDLE_S  # the scheduler waits this long for the thread to end
MAX_PAUSE_S = 2.0
ACTOR = {"user": "berth-watchdog", "host": socket.gethostname()}


class Watchdog:
    def __init__(self, root, log):
        self.root, self.log = root, log
        self.kept = {}  # model name -> (port, socket): the copy of its stable listening socket
        self.handlers = {}  # the keeper's commands, updated as models come and go (read by handoff's thread)
        self.control = None
        self._said = {}
        self.running = {}  # model name -> pid of its live runner, as the last tick found it
        self.exits = ExitWaiter()

    def open(self):
        self.handlers["look"] = lambda: self.exits.wake() or "ok"  # a change just started a runner
        self.control = handoff.listen(endpoint.keeper_file(self.root.meta), self.handlers)

    def close(self):
        if self.control is not None:
            self.control.close()
            try:
                os.unlink(endpoint.keeper_file(self.root.meta))
            except OSError:
                pass
        for name in list(self.kept):
            self._drop(name)
        self.exits.close()

    def pause(self):
        """Until a watched runner ends, or the next tick is due."""
        if self.exits.watch(sorted(set(self.running.values()))):
            self.exits.wait(IDLE_S)
        elif self.exits.usable:
            return  # one ended between the tick and now: look at once
        else:
            time.sleep(TICK_S)

    def tick(self):
        self.running = {}
        names = self.root.model_names()
        for name in set(self.kept) - set(names):
            self._drop(name)  # the model was removed: its port is free again
        for name in names:
            try:
                self.check(self.root.model(name))
                self._said.pop(name, None)
            except Exception as e:  # one model's trouble (a full disk, a broken record) must not stop the rest
                said = "%s: %s" % (type(e).__name__, e)
                if self._said.get(name) != said:
                    self.log(self.root, "watchdog %s: %s" % (name, said))
                self._said[name] = said

    def check(self, model):
        version = model.current_version()
        rec = supervise.record(model, version) if version else None
        if rec is not None and supervise.alive(rec):
            self.running[model.name] = int(rec["pid"])
            self._keep(model, version, rec)
            return
        state = crashloop.read(model)
        if rec is None and not crashloop.owed(state, version):
            self._drop(model.name)  # stopped by the operator (or never started): the port refuses
            return
        if state.get("gave_up_at") and state.get("version") == version:
            self._drop(model.name)  # nobody will accept: refused is better than a connection that hangs
            return
        if time.time() < state.get("next_try", 0) and state.get("version") == version:
            return
        self.restart(model)

    def restart(self, model):
        """Under the server lock: look again (a stop or deploy may just have happened), note the crash,
        and start the current release; a failed start is one more crash."""
        try:
            lock = ServerLock(self.root.lock, {"who": "%s@%s" % (ACTOR["user"], ACTOR["host"]),
                                               "what": "restart %s" % model.name})
            lock.__enter__()
        except AgentError:
            return  # a deploy, rollback or stop is running: it decides; look again next tick
        try:
            self._restart_locked(model)
        finally:
            lock.__exit__(None, None, None)

    def _restart_locked(self, model):
        from . import operations  # the scheduler imports this module only when it serves

        version = model.current_version()
        if version is None:
            return
        rec = supervise.record(model, version)
        state = crashloop.read(model)
        if rec is not None and supervise.alive(rec):
            return
        if rec is None and not crashloop.owed(state, version):
            return
        if rec is not None:  # found dead (not a failed try of ours: that one was counted when it failed)
            pid = rec.get("pid")
            status = supervise.exit_status(pid) if isinstance(pid, int) else None
            state = crashloop.note_crash(model, version, pid, status)
            _log_line(model, version, "runner pid %s %s" % (pid, crashloop.describe_status(status)))
            if state.get("gave_up_at"):
                return self._gave_up(model, version, state)
            supervise.stop(model, version)  # forget the dead record (and its control socket file)
            if time.time() < state.get("next_try", 0):
                return
        info = releases.read_release(model, version) or {}
        n = len(state.get("crashes") or [])
        ctx = operations.Context(self.root, ACTOR, lambda *a, **k: None)
        running = experimentfiles.active(model)  # A crashed mid-experiment: B lives, the router keeps the port
        try:
            supervise.stop_strays(model, {version} | experimentfiles.versions(model))
            port = operations._start_healthy(ctx, model, version, info.get("manifest") or {}, serve=not running)
            if running and running.get("a") == version:
                write_json_atomic(experimentfiles.config_file(model), dict(experimentfiles.active(model) or running,
                                                                           a_port=port))
        except Exception as e:
            said = (str(e) or type(e).__name__).splitlines()[0][:200]
            state = crashloop.note_crash(model, version, None, None, text="restart failed: %s" % said)
            journal.append(self.root, "runner.restarted", "failed", ACTOR, model=model.name, version=version,
                           crashes=n, detail="restart %d of %s %s failed: %s" % (n, model.name, version, e))
            if state.get("gave_up_at"):
                self._gave_up(model, version, state)
            return
        new = supervise.record(model, version) or {}
        if new.get("pid"):
            self.running[model.name] = int(new["pid"])  # watched from now, not from the next tick
        last = state["crashes"][-1] if state.get("crashes") else {}
        state = crashloop.restarted(model, state)
        journal.append(self.root, "runner.restarted", "ok", ACTOR, model=model.name, version=version,
                       old_pid=last.get("pid"), pid=new.get("pid"), status=last.get("status"), crashes=n,
                       port=endpoint.stable_port(model),
                       detail="%s %s restarted on port %s (pid %s, was %s: %s)" % (
                           model.name, version, endpoint.stable_port(model), new.get("pid"), last.get("pid"),
                           last.get("status")))
        self.log(self.root, "watchdog: restarted %s %s (%s)" % (model.name, version, last.get("status")))

    def _gave_up(self, model, version, state):
        self._drop(model.name)
        supervise.stop(model, version)
        _log_line(model, version, "crash loop: the watchdog gave up after %s" % state["reason"])
        journal.append(self.root, "runner.restarted", "failed", ACTOR, model=model.name, version=version,
                       crashes=len(state.get("crashes") or []),
                       detail="crash loop: gave up restarting %s %s after %s" % (model.name, version, state["reason"]))
        self.log(self.root, "watchdog: gave up on %s %s: %s" % (model.name, version, state["reason"]))

    def _keep(self, model, version, rec):
        """Hold a copy of the socket the runner accepts on (asked again when the port changed)."""
        port = rec.get("stable_port")
        if not port or not rec.get("control"):
            return
        have = self.kept.get(model.name)
        if have and have[0] == port:
            return
        try:
            reply, fd = handoff.ask(rec["control"], "fd", timeout=2.0)
        except OSError:
            return  # still starting, or going: next tick
        if fd is None:
            return
        if reply != "ok":
            os.close(fd)
            return
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        if sock.getsockname()[1] != port:
            sock.close()
            return
        self._drop(model.name)
        self.kept[model.name] = (port, sock)
        name = model.name
        self.handlers["fd " + name] = lambda: ("ok", sock.fileno())
        self.handlers["drop " + name] = lambda: self._drop(name) or "ok"
        # looked at again once `drop` can be asked: a `berth stop` that ended while we took the copy
        # (its `drop` found nothing to drop) has removed the record by now, so the copy goes here
        if not supervise.alive(supervise.record(model, version)):
            self._drop(name)

    def _drop(self, name):
        self.handlers.pop("fd " + name, None)
        self.handlers.pop("drop " + name, None)
        have = self.kept.pop(name, None)
        if have:
            have[1].close()


def _log_line(model, version, text):
    try:
        with open(model.runner_log(version), "a") as f:
            f.write("--- %s %s\n" % (journal.utc_now(), text))
    except OSError:
        pass


def run(root, stopping, log):
    """The thread's body, until the scheduler stops."""
    dog = Watchdog(root, log)
    try:
        dog.open()
    except OSError as e:
        log(root, "watchdog: no control socket (%s): a killed runner's port refuses until it restarts" % e)
    try:
        while not stopping:
            try:
                dog.tick()
            except Exception as e:  # the root's folders going away under it: say so, keep watching
                log(root, "watchdog: %s: %s" % (type(e).__name__, e))
                time.sleep(MAX_PAUSE_S)
            dog.pause()
    finally:
        dog.close()


def thread(root, stopping, log):
    t = threading.Thread(target=run, args=(root, stopping, log), name="watchdog", daemon=True)
    t.start()
    return t
