#!/usr/bin/env python3
"""Fleet bench: N real OpenSSH servers on 127.0.0.1 (each its own port, host key and Berth root),
added with `berth server add`, the iris example deployed to each; then the fleet-wide CLI commands
and the console, every figure beside the same at N=1 measured in the same run, with its ratio.

    .venv/bin/python bench/fleet.py N [--starts K] [--console-s 60] [--window-s 30] [--parallel 10] [--keep]
    .venv/bin/python bench/fleet.py 100 --starts 20 --console-s 120 --console-only   (the hung-server count)
    .venv/bin/python bench/fleet.py 100 --console-only --plain-shell   (servers whose login shell runs nothing)

Slow (minutes; N=10 ~6 min, most of it the console's minutes): not part of `make bench`. Everything
lives in one temp folder (sshd's, server roots, two Berth data dirs: $BERTH_HOME, $BERTH_SSH_DIR,
keyring's "fail" backend), removed at the end with every runner and sshd stopped, Ctrl-C included.
See bench/README.md, "Fleet".
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(HERE)]
from _kit import iris_copy, source_state, table  # noqa: E402
from sshd import SshServer, missing_tools  # noqa: E402

MAX_STARTUPS = "200:30:400"  # sshd drops unauthenticated connections beyond 10 by default: N logins at once
MAX_SESSIONS = 200
GROUP = "fleet-*"


class BenchFailed(RuntimeError):
    pass


class Fleet:
    """n sshd's and one Berth data dir naming them fleet-1..fleet-n; `berth` runs as a child process
    with this data dir (the developer's own Berth data and keyring are never read)."""

    def __init__(self, folder: Path, n: int, plain_shell: bool = False):
        self.folder, self.n, self.plain_shell = folder, n, plain_shell
        self.names = [f"fleet-{i}" for i in range(1, n + 1)]
        self.roots = [folder / name / "root" for name in self.names]
        self.sshds: list[SshServer] = []
        home, ssh_dir = folder / "berth-home", folder / "berth-ssh"
        for d in (home, ssh_dir):
            d.mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV", "BERTH_THEME")}
        self.env.update(PYTHONPATH=str(ROOT), BERTH_HOME=str(home), BERTH_SSH_DIR=str(ssh_dir),
                        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", QT_QPA_PLATFORM="offscreen")

    def start_sshds(self) -> None:
        def one(name):
            return SshServer(folder=self.folder / name / "sshd", max_startups=MAX_STARTUPS,
                             max_sessions=MAX_SESSIONS, set_env=self._plain_home(name))

        with ThreadPoolExecutor(4) as pool:  # ssh-keygen twice per server
            self.sshds = list(pool.map(one, self.names))
        for srv in self.sshds:
            srv.start()

    def _plain_home(self, name: str) -> dict:
        """With plain_shell, sshd's SetEnv gives each login a HOME of its own holding Debian's default
        start-up files (/etc/skel: a non-interactive bash returns at once), as on a plain server,
        in place of this user's own (here root's, whose ~/.bashrc runs `pyenv init`: ~150 ms of CPU
        a login, and `python3` is pyenv's shim, ~75 ms more a start)."""
        if not self.plain_shell:
            return {}
        home = self.folder / name / "home"
        home.mkdir(parents=True)
        for dotfile in (".bashrc", ".profile"):
            if (Path("/etc/skel") / dotfile).is_file():
                shutil.copyfile(Path("/etc/skel") / dotfile, home / dotfile)
        return {"HOME": str(home)}

    def berth(self, *argv: str, timeout: float = 1800) -> tuple[float, str]:
        """Seconds and stdout of `berth ARGV` (this worktree's code); BenchFailed on a non-zero exit."""
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "app", *argv], cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        took = time.perf_counter() - t0
        if proc.returncode != 0:
            failed = [line for line in proc.stdout.splitlines() if " failed: " in line][:10]  # a group's own
            raise BenchFailed(f"`berth {' '.join(argv)}` (N={self.n}) exited {proc.returncode}:\n"
                              + "".join(line + "\n" for line in failed) + f"{proc.stdout[-1500:]}{proc.stderr[-2500:]}")
        return took, proc.stdout

    def stop(self) -> None:
        """The keeper's held connections (app/remote/held.py), every runner under every root (the
        agent's own stop: SIGTERM its process group), then sshd."""
        from agent_kit import stop_all

        try:
            self.berth("server", "disconnect", "--all", timeout=60)
        except (BenchFailed, subprocess.TimeoutExpired) as e:
            print(f"  cleanup: ending the held connections failed: {e}", file=sys.stderr)
        for root in self.roots:
            if root.is_dir():
                try:
                    stop_all(root)
                except Exception as e:  # one broken root must not keep the others running
                    print(f"  cleanup: stopping the runners under {root} failed: {e}", file=sys.stderr)
        for srv in self.sshds:
            srv.stop()


# -- the measured steps -----------------------------------------------------------------------------

def add_all(fleet: Fleet) -> float:
    """`berth server add` per server, host keys trusted by the fingerprints of the key files made here."""
    t0 = time.perf_counter()
    for name, srv, root in zip(fleet.names, fleet.sshds, fleet.roots):
        fleet.berth("server", "add", name, "--host", srv.host, "--port", str(srv.port), "--user", srv.user,
                    "--key", str(srv.key_path), "--root", str(root), "--accept-host-key", srv.fingerprint)
    return time.perf_counter() - t0


def group_deploy_supported(fleet: Fleet) -> bool:
    return "--parallel" in fleet.berth("deploy", "--help")[1]


def deploy_all(fleet: Fleet, bundle: Path, group: bool, parallel: int) -> float:
    if group:
        return fleet.berth("deploy", str(bundle), "--server", GROUP, "--parallel", str(parallel))[0]
    t0 = time.perf_counter()
    for name in fleet.names:
        fleet.berth("deploy", str(bundle), "--server", name)
    return time.perf_counter() - t0


def status_all(fleet: Fleet) -> float:
    took, out = fleet.berth("status", "--json")
    running = {r["server"] for r in json.loads(out) if r["model"] == "iris" and r["state"] == "running"}
    missing = sorted(set(fleet.names) - running)
    if missing:
        raise BenchFailed(f"`berth status --json` (N={fleet.n}) shows no running iris on {', '.join(missing)}")
    return took


def fresh(step):
    """The step with a connection of its own per call (BERTH_SSH_PERSIST=0), as before keepers."""
    def run(fleet: Fleet) -> float:
        fleet.env["BERTH_SSH_PERSIST"] = "0"
        try:
            return step(fleet)
        finally:
            del fleet.env["BERTH_SSH_PERSIST"]
    return run


def held_count(fleet: Fleet) -> int:
    """Servers whose connection the keeper holds now (a path too long or a failed start: fewer)."""
    return len(json.loads(fleet.berth("server", "connections", "--json")[1]))


def monitor_all(fleet: Fleet) -> float:
    took, out = fleet.berth("monitor", "--once", "--json")
    sampled = {s.get("server") for s in json.loads(out)}
    missing = sorted(set(fleet.names) - sampled)
    if missing:
        raise BenchFailed(f"`berth monitor --once --json` (N={fleet.n}) has no sample of {', '.join(missing)}")
    return took


def console(fleet: Fleet, seconds: float, window_s: float, tag: str, children: list) -> dict:
    """One console start (bench/_fleet_console.py, a process of its own) for `seconds`."""
    out, log = fleet.folder / f"console-{tag}.json", fleet.folder / f"console-{tag}.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, str(HERE / "_fleet_console.py"), str(out), str(seconds),
                                 str(window_s), *fleet.names], cwd=ROOT, env=fleet.env, stdin=subprocess.DEVNULL,
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        children.append(proc)
        try:
            code = proc.wait(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            code = "timeout"
    if code != 0 or not out.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BenchFailed(f"the console (N={fleet.n}) ended with {code}:\n{tail}")
    return json.loads(out.read_text())


# -- the table --------------------------------------------------------------------------------------

def fmt(v, unit: str) -> str:
    if v is None:
        return "-"
    return {"s": f"{v:.2f} s", "%": f"{v:.1f} %", "MB": f"{v / 2**20:.1f} MB"}.get(unit, f"{v:.3g}")


def ratio(a, b) -> str:
    return "n/a" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def slowest(runs: list[dict], key: str, names: list[str]) -> str:
    """The slowest server to reach `key` over all starts, and how many never did (those hung)."""
    times = [r[key].get(n) for r in runs for n in names]
    reached = [t for t in times if t is not None]
    never = len(times) - len(reached)
    return (fmt(max(reached), "s") if reached else "-") + (f" ({never} never)" if never else "")


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def rows(n: int, one: dict, many: dict, runs1: list[dict], runsn: list[dict], names1, namesn) -> list[tuple]:
    out = []
    for label, key in (("add, total (one `server add` per server)", "add"),
                       ("deploy iris to every server (held connections)", "deploy"),
                       ("`berth status --json`, a fresh connection each", "status_fresh"),
                       ("`berth status --json`, held", "status"),
                       ("`berth monitor --once --json`, a fresh connection each", "monitor_fresh"),
                       ("`berth monitor --once --json`, held", "monitor")):
        a, b = one[key], many[key]
        out.append((label, fmt(a, "s"), fmt(b, "s"), ratio(b, a), fmt(b / n, "s")))

    window = runsn[0]["window_s"]
    for label, key, unit in ((f"console CPU, % of a core (last {window:g} s)", "cpu_pct", "%"),
                             ("console RSS", "rss", "MB"), ("console threads", "threads", ""),
                             ("console TCP connections", "tcp", "")):
        a, b = med(runs1, key), med(runsn, key)
        d = (b - a) / (n - 1)
        out.append((label, fmt(a, unit), fmt(b, unit), ratio(b, a), ("+" if d >= 0 else "-") + fmt(abs(d), unit)))
    for label, key in (("slowest server to show its models", "models_at"),
                       ("slowest server's first monitor sample", "sample_at")):
        out.append((label, slowest(runs1, key, names1), slowest(runsn, key, namesn), "", ""))
    at = runsn[0]["seconds"] - runsn[0]["window_s"]
    for label, key in ((f"hung servers at {at:g} s (no models or no sample)", "hung_at_window"),
                       ("  of which still hung at the end", "hung_at_end")):
        a = sum(len(r[key]) for r in runs1)
        b = sum(len(r[key]) for r in runsn)
        out.append((label, f"{a} of {len(names1) * len(runs1)}", f"{b} of {len(namesn) * len(runsn)}", "", ""))
    return out


def console_summary(args, runs: list[dict], names: list[str]) -> str:
    at = args.console_s - args.window_s
    window = sum(len(r["hung_at_window"]) for r in runs)
    end = sum(len(r["hung_at_end"]) for r in runs)
    return (f"{len(runs)} console starts at N={args.n}: hung at {at:g} s {window} of {len(names) * len(runs)}, "
            f"hung at the end ({args.console_s:g} s) {end} of {len(names) * len(runs)}; slowest server to show its "
            f"models {slowest(runs, 'models_at', names)}, slowest first sample {slowest(runs, 'sample_at', names)}; "
            f"medians: CPU {med(runs, 'cpu_pct'):.1f} % of a core, RSS {med(runs, 'rss') / 2**20:.1f} MB, "
            f"{med(runs, 'threads'):g} threads; load {load()}")


# -- main -------------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int, help="servers in the fleet (the reference is always 1)")
    p.add_argument("--starts", type=int, default=1, help="console starts at each size (default 1); hung servers "
                                                         "are counted over all of them, other figures are medians")
    p.add_argument("--console-s", type=float, default=60.0, help="seconds each console runs (default 60)")
    p.add_argument("--window-s", type=float, default=30.0, help="the last seconds measured (default 30): CPU over "
                                                                "them, and a server without models or a sample "
                                                                "when they begin is hung")
    p.add_argument("--parallel", type=int, default=10, help="--parallel of a group deploy (default 10)")
    p.add_argument("--console-only", action="store_true", help="add and deploy, then only the console starts at N "
                                                                   "(no CLI figures, no N=1 consoles): hung servers "
                                                                   "over many starts")
    p.add_argument("--plain-shell", action="store_true", help="log in with Debian's default start-up files "
                                                                  "(/etc/skel) in a HOME of each server's own, not "
                                                                  "this user's (a plain server's login shell)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (logs, data dirs) and print it")
    args = p.parse_args(argv)
    if args.n < 2:
        p.error("N must be at least 2 (N=1 is measured beside it in every run)")
    if args.starts < 1 or args.parallel < 1:
        p.error("--starts and --parallel must be at least 1")
    if not 0 < args.window_s < args.console_s:
        p.error("--window-s must be more than 0 and less than --console-s")
    return args


def load() -> str:
    """The machine's load average (1, 5, 15 min): every figure here moves with it."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def busy_cpu() -> float:
    """Seconds of CPU the whole machine spent (/proc/stat: user, nice, system, irq, softirq; not idle,
    iowait or a VM's steal): on loopback the servers' side shares these cores, so a step's wall time is
    at least this / cores."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def leftovers(folder: Path) -> list[psutil.Process]:
    """Processes started from anything under `folder` (a runner cleanup missed): found, to be killed."""
    found, me = [], os.getpid()
    for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            text = " ".join(p.info["cmdline"] or []) + " " + (p.info["cwd"] or "")
        except (psutil.Error, TypeError):
            continue
        if str(folder) in text and p.pid != me:
            found.append(p)
    return found


def run(args, folder: Path, children: list, fleets: list) -> int:
    bundle = iris_copy(folder / "iris")
    sizes = {"1": Fleet(folder / "n1", 1, args.plain_shell), "N": Fleet(folder / f"n{args.n}", args.n, args.plain_shell)}
    fleets.extend(sizes.values())
    t0 = started = time.perf_counter()
    for fleet in sizes.values():
        fleet.start_sshds()
    print(f"started {1 + args.n} sshd's (MaxStartups {MAX_STARTUPS}, MaxSessions {MAX_SESSIONS}) in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    figures = {"1": {}, "N": {}}
    group = group_deploy_supported(sizes["N"])
    print("deploy: " + (f"a group deploy, `berth deploy iris --server '{GROUP}' --parallel {args.parallel}`" if group
                        else "`berth deploy --help` has no --parallel: a loop of `berth deploy iris --server "
                             "fleet-I`, one server after another"), flush=True)
    steps = [("add", add_all), ("deploy", lambda f: deploy_all(f, bundle, group, args.parallel)),
             ("status_fresh", fresh(status_all)), ("status", status_all), ("monitor_fresh", fresh(monitor_all)),
             ("monitor", monitor_all)]
    if args.console_only:
        steps = steps[:2]
    for key, step in steps:
        for size, fleet in sizes.items():
            cpu0 = busy_cpu()
            figures[size][key] = step(fleet)
            used = busy_cpu() - cpu0
            print(f"  {key:13} N={fleet.n:<4} {figures[size][key]:8.2f} s  (load {load()}; the machine's busy CPU "
                  f"{used:.1f} s, {used / figures[size][key]:.2f} of {os.cpu_count()} cores)", flush=True)
    for fleet in sizes.values():
        print(f"  held connections N={fleet.n:<4} {held_count(fleet)} of {fleet.n}", flush=True)
    runs = {"1": [], "N": []}
    for k in range(args.starts):
        for size, fleet in sizes.items():
            if args.console_only and size == "1":
                continue
            r = console(fleet, args.console_s, args.window_s, f"{size}-{k + 1}", children)
            runs[size].append(r)
            print(f"  console N={fleet.n:<4} start {k + 1}: CPU {r['cpu_pct']:.1f} %, RSS {r['rss'] / 2**20:.1f} MB, "
                  f"{r['threads']} threads, {r['tcp']} TCP, hung at {args.console_s - args.window_s:g} s: "
                  f"{', '.join(r['hung_at_window']) or 'none'}; load {load()}"
                  + (f" (states: {r['states']})" if r["hung_at_end"] else ""), flush=True)
            if r.get("thread_pct"):
                print("    by thread, % of a core: " + ", ".join(f"{kind} {pct:.2f}" for kind, pct in
                                                          list(r["thread_pct"].items())[:8]), flush=True)
    print()
    if args.console_only:
        print(console_summary(args, runs["N"], sizes["N"].names))
        return 0
    headers = ("figure", "N=1", f"N={args.n}", "ratio", "per server at N")
    print(table(rows(args.n, figures["1"], figures["N"], runs["1"], runs["N"], sizes["1"].names, sizes["N"].names),
                headers))
    print(f"\n(console: {args.starts} start(s) of {args.console_s:g} s at each size, medians; CPU over the last "
          f"{args.window_s:g} s; 'per server' is N's figure / N, for the console (N's - 1's) / (N - 1))")
    print(f"{source_state()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, python "
          f"{platform.python_version()}; deploy: {'group --parallel ' + str(args.parallel) if group else 'a loop'}; "
          f"the bench took {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"fleet bench: needs {', '.join(missing)}: `apt-get install -y openssh-server`", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="berth-fleet-"))
    # Ctrl-C (even when started with SIGINT ignored, as a shell's background job is) and SIGTERM clean up
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    children: list[subprocess.Popen] = []
    fleets: list[Fleet] = []
    code = 1
    try:
        code = run(args, folder, children, fleets)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        code = 130
    except (BenchFailed, subprocess.TimeoutExpired) as e:
        print(f"FAILED: {e}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave sshd's and runners behind
        for proc in children:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for fleet in fleets:
            fleet.stop()
        stray = leftovers(folder)
        for p in stray:
            p.kill()
        if stray:
            print(f"cleanup: killed {len(stray)} leftover process(es): {[p.pid for p in stray]}", file=sys.stderr)
            code = code or 1
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
