#!/usr/bin/env python3
"""Deploy bench: how long each phase of a Berth deploy (and a rollback) takes, on `local` and over
a loopback OpenSSH server, next to plain references measured in the same run.

    .venv/bin/python bench/deploy.py [--repeat N] [--ssh/--no-ssh] [--big-mb MB] [--keep] [-v]

Everything happens under a fresh temp folder ($BERTH_HOME included); every runner started is
stopped at the end (the `berth stop` path), and the sshd too. Exit 0 on success, 1 on any failure.
See bench/README.md for what each figure means.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT / "tests"), str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import _kit  # noqa: E402
from _kit import PHASES, Samples, fmt_s, ratio, table, time_steps, timed_run  # noqa: E402

MODELS = ("iris", "scaler", "irisbig")
SCENARIOS = [  # (key, label)
    ("iris-first", "iris 1.0.0, first deploy"),
    ("iris-redeploy", "iris 1.0.1, re-deploy"),
    ("rollback", "rollback iris 1.0.1 -> 1.0.0"),
    ("scaler", "scaler 1.0.0 (pip install of a bundled wheel)"),
    ("big", "irisbig 1.0.0 (+ random weights)"),
]
IMPORT_SNIPPET = ("import json, sys; sys.path.insert(0, '.'); import model; "
                  "m = model.Model(); m.predict(json.load(open('example.json')))")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="runs of every scenario (default 3); medians are reported")
    p.add_argument("--ssh", action=argparse.BooleanOptionalAction, default=True,
                   help="also bench a loopback OpenSSH server (default: yes)")
    p.add_argument("--big-mb", type=int, default=50, help="size of the random weights file (default 50)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (printed) for inspection")
    p.add_argument("-v", "--verbose", action="store_true", help="print every phase of every run as it happens")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.big_mb < 1:
        p.error("--repeat and --big-mb must be at least 1")
    return args


class Bench:
    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.s = Samples()
        self.targets = ["local"] + (["ssh"] if args.ssh else [])
        self.srv = None
        self.server_python = None
        self.pending_stops: list[tuple] = []  # (home, ws, target, model) that may have a runner
        self.upload_bytes: dict[str, int] = {}
        self.notes: list[str] = []
        self.interp_refs: dict[tuple, dict] = {}  # (repeat, base interpreter) -> reference seconds
        self.shared_refs: set[str] = set()  # targets whose interpreter references came from another target

    # -- setup -----------------------------------------------------------------------------
    def setup(self):
        b = self.tmp / "bundles"
        b.mkdir()
        t0 = time.perf_counter()
        self.iris1 = _kit.iris_copy(b / "iris-1.0.0")
        self.iris2 = _kit.iris_copy(b / "iris-1.0.1", "1.0.1")
        self.scaler = _kit.wheel_bundle(b / "scaler-1.0.0")
        self.big = _kit.big_bundle(b / "irisbig-1.0.0", self.args.big_mb)
        print(f"bundles built in {time.perf_counter() - t0:.2f} s under {b} "
              f"(wheel: {_kit.WHEEL_FILE}, weights: {self.args.big_mb} MB)")
        if self.args.ssh:
            from sshd import SshServer, missing_tools

            missing = missing_tools()
            if missing:
                raise RuntimeError(f"--ssh needs {', '.join(missing)} (apt-get install -y openssh-server), "
                                   f"or run with --no-ssh")
            self.srv = SshServer(folder=self.tmp / "sshd").start()
            t, sftp = self.plain_ssh()
            try:
                chan = t.open_session()
                chan.exec_command("python3 -c 'import os, sys; print(sys.executable); print(sys.version.split()[0]); "
                                  "print(os.path.realpath(getattr(sys, \"_base_executable\", sys.executable)))'")
                out = chan.makefile("rb").read().decode().split()
                if chan.recv_exit_status() != 0 or len(out) < 3:
                    raise RuntimeError("python3 over SSH did not answer")
                self.server_python, self.server_python_version, self.server_base = out[0], out[1], out[2]
            finally:
                sftp.close()
                t.close()
            print(f"sshd on {self.srv.host}:{self.srv.port} as {self.srv.user}; "
                  f"its python3 is {self.server_python} ({self.server_python_version})")

    def plain_ssh(self):
        """A bare paramiko connection (the reference): TCP, handshake, public-key auth, SFTP."""
        import paramiko

        sock = socket.create_connection((self.srv.host, self.srv.port), timeout=15)
        t = paramiko.Transport(sock)
        t.start_client(timeout=15)
        t.auth_publickey(self.srv.user, paramiko.PKey.from_path(str(self.srv.key_path)))
        return t, paramiko.SFTPClient.from_transport(t)

    def python_for(self, target):
        return sys.executable if target == "local" else self.server_python

    def base_for(self, target):
        """The real interpreter under `python_for(target)` (a venv's python is a link to it)."""
        if target == "local":
            return os.path.realpath(getattr(sys, "_base_executable", sys.executable))
        return self.server_base

    # -- one repeat ------------------------------------------------------------------------
    def run(self):
        for i in range(1, self.args.repeat + 1):
            rep = self.tmp / f"rep{i}"
            home = rep / "home"
            os.environ["BERTH_HOME"] = str(home)  # a fresh Berth (database, known hosts, local root)
            from app.store.servers import ServerConfig
            from app.workspace import Workspace

            ws = Workspace()
            if self.args.ssh:
                # a fresh server root too, so the first deploy really uploads everything
                ws.add_server(ServerConfig(name="ssh", host=self.srv.host, port=self.srv.port, user=self.srv.user,
                                           key_path=str(self.srv.key_path), root=str(rep / "ssh-root")),
                              self.srv.fingerprint)  # installs the agent there (as `berth server add` does)
            with ws.connect("local") as t:
                t.hello()  # installs the agent under the local root, so both targets start alike
            for target in self.targets:
                self.scenarios(i, home, ws, target)
                self.references(i, rep, target)
            self.stop_runners(home, ws, only_pending=True)

    def op(self, i, home, ws, target, key, make, launch_row=False, bundle=None):
        import time as _t
        t0 = _t.perf_counter()
        t = ws.connect(target)
        opened = _t.perf_counter() - t0
        try:
            timed = time_steps(lambda: make(t), self.run_to_end, launch_row)
        finally:
            t.close()
        phases = {"(open transport)": opened, **timed.phases}
        for phase, secs in phases.items():
            self.s.add((target, key, phase), secs)
        self.s.add((target, key, "TOTAL"), opened + timed.total)
        if timed.upload_bytes:
            self.s.add((target, key, "transfer"), timed.transfer_s)
            self.upload_bytes[key] = timed.upload_bytes
        line = f"  rep {i} {target:5} {key:14} {opened + timed.total:6.2f} s"
        if self.args.verbose:
            line += "  " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
        print(line, flush=True)
        return timed

    def scenarios(self, i, home, ws, target):
        from app.deploy.changes import change
        from app.deploy.deploy import Deploy

        def deploy(key, bundle, model, version):
            self.pending_stops.append((home, ws, target, model))
            holder = {}

            def make(t):
                holder["d"] = Deploy(t, bundle, ws.audit)
                return holder["d"].run()

            timed = self.op(i, home, ws, target, key, make)
            got = (holder["d"].result or {}).get("version")
            if got != version:
                raise RuntimeError(f"{target}: deploying {model} {version} ended with {got!r} current")
            return timed

        deploy("iris-first", self.iris1, "iris", "1.0.0")
        deploy("iris-redeploy", self.iris2, "iris", "1.0.1")
        timed = self.op(i, home, ws, target, "rollback", lambda t: change(t, ws.audit, "rollback", "iris"),
                        launch_row=True)
        if (timed.result or {}).get("version") != "1.0.0":
            raise RuntimeError(f"{target}: rollback ended with {timed.result!r}")
        timed = deploy("scaler", self.scaler, "scaler", "1.0.0")
        if not any("Successfully installed" in l and _kit.WHEEL_PKG in l for l in timed.log_lines):
            raise RuntimeError(f"{target}: pip did not report installing {_kit.WHEEL_PKG}:\n"
                               + "\n".join(timed.log_lines[-10:]))
        if any(l.lstrip().startswith("Downloading") for l in timed.log_lines):
            self.notes.append(f"{target}: pip went to the network during the scaler install")
        deploy("big", self.big, "irisbig", "1.0.0")

    @staticmethod
    def run_to_end(gen, on):
        from app.deploy.changes import run_to_end

        return run_to_end(gen, on)

    # -- references ------------------------------------------------------------------------
    def references(self, i, rep, target):
        py = self.python_for(target)
        ref = rep / f"ref-{target}"
        ref.mkdir(parents=True)
        add = lambda name, secs: self.s.add((target, "ref", name), secs)
        # The interpreter-only references (the loopback "server" is this very machine) are measured
        # once per repeat and base interpreter: when ssh's python3 is the same real Python as the
        # local agent's, they are shared rather than paid twice (ensurepip alone costs ~7 s).
        key = (i, self.base_for(target))
        shared = self.interp_refs.get(key)
        if shared is None:
            shared = {}
            shared["venv --without-pip"] = timed_run([py, "-m", "venv", "--without-pip", str(ref / "bare")])
            shared["venv (with pip)"] = timed_run([py, "-m", "venv", str(ref / "withpip")])
            scaler = shutil.copytree(self.scaler, ref / "scaler")
            shared["pip install -r"] = timed_run([str(ref / "withpip/bin/python"), "-m", "pip", "install",
                                                  "--disable-pip-version-check", "--no-input", "-r",
                                                  "requirements.txt"], cwd=scaler)
            iris = shutil.copytree(self.iris1, ref / "iris")  # fresh copy: model.py gets compiled, as in a release
            shared["import+predict"] = timed_run([str(ref / "bare/bin/python"), "-c", IMPORT_SNIPPET], cwd=iris)
            self.interp_refs[key] = shared
            shutil.rmtree(ref / "withpip", ignore_errors=True)
        else:
            self.shared_refs.add(target)
        for name, secs in shared.items():
            add(name, secs)
        weights = self.big / "weights.bin"
        add("python3 -c pass", self.bare_exec(target, "python3 -c pass"))
        if target == "local":
            t0 = time.perf_counter()
            shutil.copyfile(weights, ref / "weights.copy")
            add("copy/put", time.perf_counter() - t0)
            (ref / "weights.copy").unlink()
        else:
            t0 = time.perf_counter()
            t, sftp = self.plain_ssh()
            add("open transport", time.perf_counter() - t0)
            try:
                t0 = time.perf_counter()
                sftp.put(str(weights), str(ref / "weights.put"))
                add("copy/put", time.perf_counter() - t0)
            finally:
                sftp.close()
                t.close()
            (ref / "weights.put").unlink()

    def bare_exec(self, target, command, tries=3) -> float:
        """Best of `tries` runs of a trivial command the way Berth runs the agent: a subprocess on
        `local`, an SSH exec channel (through the login user's shell) on a fresh plain connection."""
        if target == "local":
            argv = command.split()
            argv[0] = sys.executable if argv[0] == "python3" else argv[0]
            return min(timed_run(argv) for _ in range(tries))
        t, sftp = self.plain_ssh()
        try:
            best = None
            for _ in range(tries):
                t0 = time.perf_counter()
                chan = t.open_session()
                chan.exec_command(command)
                chan.makefile("rb").read()
                if chan.recv_exit_status() != 0:
                    raise RuntimeError(f"`{command}` failed over SSH")
                took = time.perf_counter() - t0
                best = took if best is None else min(best, took)
            return best
        finally:
            sftp.close()
            t.close()

    # -- cleanup ---------------------------------------------------------------------------
    def stop_runners(self, home, ws, only_pending=False, quiet=False) -> list[str]:
        """`berth stop` for every model this run may have started, on every target."""
        from app.deploy.changes import change, run_to_end

        errors = []
        for entry in list(self.pending_stops):
            h, w, target, model = entry
            if only_pending and h != home:
                continue
            if entry not in self.pending_stops:
                continue
            os.environ["BERTH_HOME"] = str(h)
            try:
                with w.connect(target) as t:
                    run_to_end(change(t, w.audit, "stop", model))
            except Exception as e:  # noqa: BLE001 - reported, cleanup goes on
                if getattr(e, "code", "") != "nothing_deployed":
                    errors.append(f"stop {model} on {target}: {e}")
            while entry in self.pending_stops:
                self.pending_stops.remove(entry)
        if errors and not quiet:
            for e in errors:
                print(f"cleanup: {e}", file=sys.stderr)
        return errors

    def leftover_runners(self) -> list[int]:
        """Pids of runner processes whose command line points into our temp folder."""
        pids = []
        needle = str(self.tmp).encode()
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if needle in cmd and b"runner" in cmd and b"--release" in cmd:
                pids.append(int(d))
        return pids

    def cleanup(self) -> list[str]:
        errors = self.stop_runners(None, None, quiet=True)
        left = self.leftover_runners()
        for pid in left:  # should never happen: the stop above is what Berth offers; say so loudly
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        if left:
            errors.append(f"{len(left)} runner(s) survived `stop` and were sent SIGTERM: pids {left}")
        if self.srv is not None:
            self.srv.stop()
        return errors

    # -- report ----------------------------------------------------------------------------
    def med(self, target, key, row):
        return self.s.med((target, key, row))

    def sum_med(self, target, key, rows):
        vals = [self.med(target, key, r) for r in rows]
        vals = [v for v in vals if v is not None]
        return sum(vals) if vals else None

    def report(self):
        from app.agent.operations import SETTLE_S

        n = self.args.repeat
        for target in self.targets:
            rows = []
            for key, label in SCENARIOS:
                first = True
                for phase in PHASES + ["TOTAL"]:
                    v = self.s.get((target, key, phase))
                    if not v:
                        continue
                    rows.append((label if first else "", phase, fmt_s(self.med(target, key, phase)),
                                 fmt_s(min(v)), fmt_s(max(v))))
                    first = False
                    tv = self.s.get((target, key, "transfer"))
                    if phase == "upload" and tv:
                        rows.append(("", "  of which transfer", fmt_s(self.med(target, key, "transfer")),
                                     fmt_s(min(tv)), fmt_s(max(tv))))
                rows.append(("", "", "", "", ""))
            print(f"\n== {target} ({'this computer' if target == 'local' else 'loopback OpenSSH'}; "
                  f"seconds over {n} run{'s' * (n > 1)}) ==")
            print(table(rows[:-1], ("scenario", "phase", "median", "min", "max")))
            refs = [(name, fmt_s(self.med(target, "ref", name)), fmt_s(min(v)), fmt_s(max(v)))
                    for (t, k, name), v in self.s.data.items() if t == target and k == "ref"]
            print(f"\n  references on {target} (python: {self.python_for(target)})")
            if target in self.shared_refs:
                print(f"  (venv, pip and import references shared with local: same real interpreter, {self.base_for(target)})")
            print("  " + table(refs, ("reference", "median", "min", "max")).replace("\n", "\n  "))
            print()
            for line in self.ratio_lines(target, SETTLE_S):
                print("  " + line)
        print("\n" + self.summary(SETTLE_S))

    def ratio_lines(self, target, settle):
        m = lambda key, row: self.med(target, key, row)
        mb = self.upload_bytes.get("big", 0) / 1e6
        up_phase, transfer, ref_put = m("big", "upload"), m("big", "transfer"), m("ref", "copy/put")
        rate = lambda s: f"{mb / s:6.1f} MB/s" if s else "n/a"
        ref_name = "shutil.copyfile" if target == "local" else "paramiko sftp.put"
        lines = [
            f"upload {mb:.1f} MB: phase {rate(up_phase)}, transfer only {rate(transfer)}; {ref_name} {rate(ref_put)}"
            f"  -> phase/ref {ratio(up_phase, ref_put)}, transfer/ref {ratio(transfer, ref_put)}",
        ]
        lines.append(f"connect (1 agent call: hello with the missing blobs): {ratio(m('iris-first', 'connect'), m('ref', 'python3 -c pass'))}"
                     f" of one bare `python3 -c pass` {'subprocess' if target == 'local' else 'SSH exec'} "
                     f"({fmt_s(m('ref', 'python3 -c pass')).strip()} s); rollback's agent launch: "
                     f"{ratio(m('rollback', '(agent launch)'), m('ref', 'python3 -c pass'))}")
        if target != "local":
            lines.append(f"open transport: Berth {fmt_s(m('iris-first', '(open transport)')).strip()} s vs bare paramiko "
                         f"connect+auth+sftp {fmt_s(m('ref', 'open transport')).strip()} s"
                         f"  -> {ratio(m('iris-first', '(open transport)'), m('ref', 'open transport'))}")
        lines += [
            f"venv (no requirements): {ratio(m('iris-first', 'venv'), m('ref', 'venv --without-pip'))} of "
            f"`python3 -m venv --without-pip`",
            f"venv (with requirements): {ratio(m('scaler', 'venv'), m('ref', 'venv (with pip)'))} of `python3 -m venv`; "
            f"install {ratio(m('scaler', 'install'), m('ref', 'pip install -r'))} of a bare `pip install -r`; "
            f"venv+install {ratio(self.sum_med(target, 'scaler', ['venv', 'install']), self.sum_med(target, 'ref', ['venv (with pip)', 'pip install -r']))}",
            f"start+health (iris first deploy): "
            f"{ratio(self.sum_med(target, 'iris-first', ['start', 'health']), m('ref', 'import+predict'))} of a fresh "
            f"`python -c 'import model; Model().predict(example)'`; rollback: "
            f"{ratio(self.sum_med(target, 'rollback', ['start', 'health']), m('ref', 'import+predict'))}",
            f"switch: {fmt_s(m('iris-redeploy', 'switch')).strip()} s, of which {settle} s is the agent's fixed settle "
            f"sleep (SETTLE_S)",
        ]
        return lines

    def summary(self, settle):
        from importlib.metadata import version as pkg_version

        try:
            pmk = pkg_version("paramiko")
        except Exception:  # noqa: BLE001
            pmk = "?"
        n = self.args.repeat
        out = ["```",
               f"Berth deploy bench (bench/deploy.py --repeat {n}): {_kit.source_state()}, "
               f"{os.cpu_count()} cores, {platform.system()} {platform.release()}",
               f"client python {platform.python_version()} ({sys.executable}), paramiko {pmk}"
               + (f"; server python3 {self.server_python_version} ({self.server_python})" if self.args.ssh else ""),
               "medians in seconds (open transport + whole operation)"]
        head = ("scenario",) + tuple(self.targets)
        rows = [(label,) + tuple(fmt_s(self.med(t, key, "TOTAL")).strip() for t in self.targets)
                for key, label in SCENARIOS]
        out.append(table(rows, head))
        out.append("")
        out.append("where the time goes (median s; x = ratio to a plain reference measured in the same run):")
        for t in self.targets:
            m = lambda key, row: self.med(t, key, row)
            s = lambda key, rows: self.sum_med(t, key, rows)
            f = lambda v: fmt_s(v).strip()
            mb = self.upload_bytes.get("big", 0) / 1e6
            tr, ph, ref_put = m("big", "transfer"), m("big", "upload"), m("ref", "copy/put")
            mbs = lambda v: f"{mb / v:.0f} MB/s" if v else "n/a"
            out.append(f"  {t}:")
            if t != "local":
                out.append(f"    open transport {f(m('iris-first', '(open transport)'))} "
                           f"({ratio(m('iris-first', '(open transport)'), m('ref', 'open transport'))} of bare paramiko connect+auth+sftp)")
            out += [
                f"    connect {f(m('iris-first', 'connect'))} = 1 agent call; one bare `python3 -c pass` "
                f"{'subprocess' if t == 'local' else 'over an SSH exec channel'} takes {f(m('ref', 'python3 -c pass'))}; "
                f"rollback's agent launch {f(m('rollback', '(agent launch)'))}",
                f"    upload {mb:.0f} MB: transfer {mbs(tr)}, whole phase {mbs(ph)} "
                f"(vs {'shutil.copyfile' if t == 'local' else 'paramiko sftp.put'} {mbs(ref_put)}: {ratio(tr, ref_put)} / {ratio(ph, ref_put)})",
                f"    venv {f(m('iris-first', 'venv'))} ({ratio(m('iris-first', 'venv'), m('ref', 'venv --without-pip'))} of venv --without-pip); "
                f"with requirements venv+install {f(s('scaler', ['venv', 'install']))} "
                f"({ratio(s('scaler', ['venv', 'install']), s('ref', ['venv (with pip)', 'pip install -r']))} of venv + pip install -r; "
                f"venv alone {f(m('scaler', 'venv'))}, install {f(m('scaler', 'install'))})",
                f"    start+health {f(s('iris-first', ['start', 'health']))} "
                f"({ratio(s('iris-first', ['start', 'health']), m('ref', 'import+predict'))} of a fresh import+predict, "
                f"{f(m('ref', 'import+predict'))}); switch {f(m('iris-redeploy', 'switch'))} (incl. {settle} s settle sleep); "
                f"stop_previous {f(m('iris-redeploy', 'stop_previous'))}",
            ]
        out += [f"  note: {x}" for x in dict.fromkeys(self.notes)]
        out.append("```")
        return "\n".join(out)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tmp = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    os.environ["BERTH_HOME"] = str(tmp / "home")  # never the user's own Berth data
    started = time.perf_counter()
    bench = Bench(args, tmp)
    rc = 0
    try:
        bench.setup()
        bench.run()
        bench.report()
    except BaseException as e:  # noqa: BLE001 - any failure: say what, exit 1
        rc = 1
        if isinstance(e, KeyboardInterrupt):
            print("\ninterrupted", file=sys.stderr)
        else:
            traceback.print_exc()
            log = getattr(e, "log", None)
            if log:
                print("agent log:\n  " + "\n  ".join(map(str, log[-20:])), file=sys.stderr)
            print(f"\nbench failed: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        try:
            errors = bench.cleanup()
        except BaseException as e:  # noqa: BLE001
            errors = [f"cleanup failed: {e}"]
        for e in errors:
            print(f"cleanup: {e}", file=sys.stderr)
        if errors:
            rc = 1
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nbench {'finished' if rc == 0 else 'FAILED'} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
