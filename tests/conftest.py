import fcntl
import os
import re
import signal
import tempfile
import time

# before anything can create a QApplication: offscreen, on a desktop-sized screen (Qt's offscreen
# screen is 800 pixels wide by default, and it clamps a restored window to it)
if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = "offscreen:configfile=" + os.path.join(os.path.dirname(__file__),
                                                                          "offscreen-screen.json")
# A pytest-xdist worker ignores SIGINT, and a child inherits an ignored signal: a Berth CLI started by
# a test would never see the Ctrl-C the test sends it. Back to Python's own handler (children get SIG_DFL).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# pytest-xdist worker gwN: stable ports from 18000 + 1000 * N (the agent's $BERTH_PORT_RANGE), so two
# workers' models never take the same port between choosing it and binding it
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and _WORKER[2:].isdigit() and int(_WORKER[2:]) < 10:
    _low = 18000 + 1000 * int(_WORKER[2:])
    os.environ["BERTH_PORT_RANGE"] = f"{_low}-{_low + 999}"

from pathlib import Path  # noqa: E402

import keyring  # noqa: E402
import pytest  # noqa: E402

try:  # tests/ as a package or as a rootdir-inserted folder (pytest's default "prepend" mode)
    from .keyring_kit import MemoryKeyring  # type: ignore[import-not-found]  # noqa: F401 (conftest.MemoryKeyring)
    from .sshd import NetnsPair, NetnsUnavailable, SshServer, require_sshd  # type: ignore[import-not-found]
except ImportError:
    from keyring_kit import MemoryKeyring  # noqa: F401 (PYTHON_KEYRING_BACKEND=conftest.MemoryKeyring)
    from sshd import NetnsPair, NetnsUnavailable, SshServer, require_sshd


# --- isolation: no test ever reads or writes the developer's data ------------------------------

@pytest.fixture(autouse=True)
def berth_home(tmp_path_factory, monkeypatch) -> Path:
    """$BERTH_HOME points at a fresh empty folder for every test; returns it."""
    home = tmp_path_factory.mktemp("berth-home")
    monkeypatch.setenv("BERTH_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def user_ssh_dir(tmp_path_factory, monkeypatch) -> Path:
    """$BERTH_SSH_DIR stands in for ~/.ssh (config, known_hosts, id_*): an empty folder per test,
    so no test reads the developer's ssh config, keys or agent."""
    folder = tmp_path_factory.mktemp("dot-ssh")
    monkeypatch.setenv("BERTH_SSH_DIR", str(folder))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return folder


@pytest.fixture(autouse=True)
def no_held_connections(monkeypatch) -> None:
    """CLI calls connect directly, as before keepers (app/remote/held.py): a keeper outlives its
    test by its idle time. tests/test_held_connection.py turns them on (and ends them)."""
    monkeypatch.setenv("BERTH_SSH_PERSIST", "0")


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch) -> MemoryKeyring:
    """A fresh, empty in-memory keyring for every test (request it to look inside: `.passwords`).

    Subprocesses cannot share it; they get keyring's "fail" backend through
    PYTHON_KEYRING_BACKEND, so a child `berth` never reaches the developer's real keyring.
    """
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    yield backend
    keyring.set_keyring(MemoryKeyring())  # nothing a test stored survives it


# --- loopback OpenSSH servers -------------------------------------------------------------------

@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A started SshServer (tests/sshd.py), shared by the tests of one module; stopped after.

    Attributes: host ("127.0.0.1"), port, user, key_path, host_key_path, host_pub_path,
    fingerprint ("SHA256:..."), log_path, folder. Do not change its host key here: use
    `sshd_factory` for a server of your own.
    """
    require_sshd()
    server = SshServer(folder=tmp_path_factory.mktemp("sshd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def sshd_factory(tmp_path_factory):
    """A callable making extra started servers: `sshd_factory(host_key_type="rsa")`; all stopped after."""
    require_sshd()
    servers: list[SshServer] = []

    def make(**kwargs) -> SshServer:
        kwargs.setdefault("folder", tmp_path_factory.mktemp("sshd"))
        server = SshServer(**kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def bastion_and_target(tmp_path_factory):
    """(bastion, target, net): two started SshServers, each in its own network namespace, the
    target reachable only through the bastion (tests/sshd.py NetnsPair); all removed after.
    Skips, saying why, where namespaces cannot be made (not root, no `ip`, no permission)."""
    require_sshd()
    try:
        net = NetnsPair().start()
    except NetnsUnavailable as e:
        pytest.skip(f"no network namespaces here, so no bastion-only target: {e}")
    servers = []
    try:
        for ns, ip, port in ((net.bastion_ns, net.bastion_ip, 2201), (net.target_ns, net.target_ip, 22)):
            server = SshServer(folder=tmp_path_factory.mktemp("sshd-ns"), port=port, listen=ip, netns=ns)
            servers.append(server)
            server.start()
        yield servers[0], servers[1], net
    finally:
        for server in servers:
            server.stop()
        net.close()



@pytest.fixture
def held_on(monkeypatch, berth_home):
    """The CLI's held connections on for one test (conftest turns them off for the others), every
    keeper ended after it."""
    from app.remote import held

    monkeypatch.setenv("BERTH_SSH_PERSIST", "600")
    yield
    held.retire(None)

@pytest.fixture
def box(sshd_factory, tmp_path):
    """(server, root): a loopback sshd of its own, added to this test's Berth as "box" with its host
    key trusted; its runners are stopped after."""
    from agent_kit import stop_all
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    srv = sshd_factory()
    root = tmp_path / "box root"
    Workspace().add_server(ServerConfig(name="box", host=srv.host, port=srv.port, user=srv.user,
                                        key_path=str(srv.key_path), root=str(root)), srv.fingerprint)
    yield srv, root
    stop_all(root)


# What one machine has only once: its Unix users and groups, a container engine's bridge, firewall
# tables and the test image cache. `make test` spreads the files over two pytest-xdist workers
# (`--dist loadfile`: a file's tests in one worker, its module fixtures made once); a file whose source
# (or a tests/*_kit.py it imports) names one of these takes a machine-wide lock first, so two such files
# never run at once. (pytest-xdist's `xdist_group` does not work with pytest 9: it renames
# `item._nodeid`, which pytest no longer reads.) Root's crontab is shared too, but the agent locks it
# (app/agent/jobreboot.py).
MACHINE_WIDE = ("useradd", "groupadd", "dockerd", "podman")
MACHINE_LOCK = Path(tempfile.gettempdir()) / "berth-tests-machine-wide.lock"
_KIT = re.compile(r"^(?:from|import) (\w+_kit)\b", re.M)


def machine_wide(path: Path) -> bool:
    """Whether the test file uses what the machine has once (above)."""
    def text(p: Path) -> str:
        try:
            return p.read_text(encoding="utf-8")
        except OSError:
            return ""
    source = text(path)
    source += "".join(text(path.parent / f"{kit}.py") for kit in set(_KIT.findall(source)))
    return any(word in source for word in MACHINE_WIDE)


@pytest.fixture(scope="module", autouse=True)
def _machine_wide_one_file_at_a_time(request):
    """In a pytest-xdist worker, a machine-wide file (above) waits for the other worker's to end."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or not machine_wide(Path(str(request.fspath))):
        yield
        return
    with open(MACHINE_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def pytest_runtest_setup(item):
    """`.ci/run` gives the slow part a deadline (BERTH_TEST_DEADLINE, seconds since the epoch): a test
    that would start after it is skipped, saying so, so CI's whole run keeps to its time."""
    deadline = os.environ.get("BERTH_TEST_DEADLINE")
    if deadline and time.time() > float(deadline):
        pytest.skip("CI's time budget is spent (BERTH_TEST_DEADLINE): `make test` runs it")


def pytest_collection_modifyitems(config, items):
    """Tests that use an sshd fixture get the `ssh` marker (so `-m "not ssh"` works)."""
    for item in items:
        if {"sshd", "sshd_factory", "bastion_and_target", "box"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ssh)


# --- the console ---------------------------------------------------------------------------------

@pytest.fixture
def task_runner(qtbot):
    """A TaskRunner (app/ui/tasks.py) for one test; its threads are stopped after."""
    from app.ui.tasks import TaskRunner

    runner = TaskRunner()
    yield runner
    runner.shutdown(wait=True)


@pytest.fixture
def stop_local_runners(berth_home):
    """Stops every model runner the test started on the `local` server."""
    yield berth_home / "local"
    from agent_kit import stop_all

    stop_all(berth_home / "local")
