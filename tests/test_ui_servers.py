"""Adding and editing servers in the console, against a real OpenSSH server on loopback: host keys
are never accepted silently, secrets go to the keyring only, and a dead host never freezes the window."""
import socket
import subprocess
import threading
import time

import keyring
import keyring.backends.fail
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QPushButton, QSpinBox

from app.store import paths
from app.store.servers import ServerConfig
from app.ui.servers.hostkey_dialog import HostKeyDialog
from app.ui.servers.dialog import ServerDialog
from app.workspace import Workspace
from ui_kit import SLOW, click, fill, w, wait_host_key_dialog



def open_dialog(qtbot, runner, existing=None) -> ServerDialog:
    dialog = ServerDialog(runner, existing)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def actions(ws: Workspace) -> set:
    return {(e["action"], e["outcome"]) for e in ws.audit.list()}


def test_add_server_after_trusting_its_unknown_host_key(qtbot, task_runner, sshd):
    dialog = open_dialog(qtbot, task_runner)
    fill(dialog, sshd, key=sshd.key_path)
    with qtbot.waitSignal(dialog.saved, timeout=SLOW) as saved:
        click(qtbot, w(dialog, QPushButton, "saveButton"))
        assert not w(dialog, QPushButton, "saveButton").isEnabled()  # busy
        assert not w(dialog, QPushButton, "testButton").isEnabled()
        hk = wait_host_key_dialog(qtbot, dialog)
        assert w(hk, QLabel, "fingerprintLabel").text() == sshd.fingerprint
        assert "ssh-keygen -l -E sha256" in w(hk, QLabel, "checkCommandLabel").text()
        assert w(hk, QPushButton, "refuseButton").isDefault() and not w(hk, QPushButton, "trustButton").isDefault()
        click(qtbot, w(hk, QPushButton, "trustButton"))
    assert saved.args == ["box"]
    ws = Workspace()
    box = ws.servers.get("box")
    assert (box.host, box.port, box.user, box.auth, box.environment) == (sshd.host, sshd.port, sshd.user, "auto", "staging")
    assert box.key_path == str(sshd.key_path)
    assert {("hostkey.trust", "ok"), ("server.add", "ok")} <= actions(ws)
    assert paths.known_hosts_path().exists()


def test_refused_host_key_saves_nothing(qtbot, task_runner, sshd):
    before = sshd.log_path.read_text().count("Accepted publickey")
    dialog = open_dialog(qtbot, task_runner)
    fill(dialog, sshd, auth="key")
    saved = []
    dialog.saved.connect(saved.append)
    click(qtbot, w(dialog, QPushButton, "saveButton"))
    hk = wait_host_key_dialog(qtbot, dialog)
    click(qtbot, w(hk, QPushButton, "refuseButton"))
    result = w(dialog, QLabel, "resultLabel")
    qtbot.waitUntil(lambda: "refused" in result.text(), timeout=5000)
    assert saved == [] and dialog.isVisible() and hk.trusted_fingerprint is None
    assert w(dialog, QPushButton, "saveButton").isEnabled()
    ws = Workspace()
    assert [s.name for s in ws.servers.list()] == ["local"]
    assert ("hostkey.refused", "failed") in actions(ws) and ("hostkey.trust", "ok") not in actions(ws)
    assert sshd.log_path.read_text().count("Accepted publickey") == before  # nothing sent to it


def test_test_connection_reports_python_and_free_disk(qtbot, task_runner, sshd):
    dialog = open_dialog(qtbot, task_runner)
    fill(dialog, sshd, auth="key")
    click(qtbot, w(dialog, QPushButton, "testButton"))
    click(qtbot, w(wait_host_key_dialog(qtbot, dialog), QPushButton, "trustButton"))
    result = w(dialog, QLabel, "resultLabel")
    qtbot.waitUntil(lambda: "Connected" in result.text(), timeout=SLOW)
    assert "Python 3." in result.text() and "Free disk" in result.text(), result.text()
    assert [s.name for s in Workspace().servers.list()] == ["local"]  # a test saves nothing


def test_changed_host_key_is_resolved_only_deliberately(qtbot, task_runner, sshd_factory):
    srv = sshd_factory()
    ws = Workspace()
    ws.save_server(ServerConfig(name="box", host=srv.host, port=srv.port, user=srv.user, key_path=str(srv.key_path),
                                root=str(srv.folder / "root")), accept_fingerprint=srv.fingerprint)
    old = srv.fingerprint
    new = srv.restart_with_new_host_key()

    dialog = open_dialog(qtbot, task_runner, ws.servers.get("box"))
    click(qtbot, w(dialog, QPushButton, "testButton"))
    hk = wait_host_key_dialog(qtbot, dialog)
    assert hk.changed and "CHANGED" in w(hk, QLabel, "warningLabel").text()
    assert old in w(hk, QLabel, "expectedLabel").text() and new in w(hk, QLabel, "fingerprintLabel").text()
    buttons = hk.findChildren(QPushButton)
    assert buttons and not any(b.isDefault() or b.autoDefault() for b in buttons)
    forget = w(hk, QPushButton, "forgetAndTrustButton")
    confirm = w(hk, QLineEdit, "confirmNameEdit")
    assert not forget.isEnabled()
    qtbot.keyClick(hk, Qt.Key.Key_Return)
    qtbot.keyClicks(confirm, "bo")
    assert not forget.isEnabled()
    qtbot.keyClick(confirm, Qt.Key.Key_Return)
    qtbot.keyClicks(confirm, "x")
    assert forget.isEnabled()
    qtbot.keyClick(confirm, Qt.Key.Key_Return)  # Enter still decides nothing
    qtbot.keyClick(hk, Qt.Key.Key_Enter)
    qtbot.wait(100)
    assert hk.isVisible() and hk.trusted_fingerprint is None
    click(qtbot, forget)
    result = w(dialog, QLabel, "resultLabel")
    qtbot.waitUntil(lambda: "Connected" in result.text(), timeout=SLOW)
    assert hk.trusted_fingerprint == new
    assert {("hostkey.forget", "ok"), ("hostkey.trust", "ok")} <= actions(Workspace())
    from app.remote.hostkeys import KnownHosts, fingerprint
    known = KnownHosts(paths.known_hosts_path()).known(srv.host, srv.port)
    assert [fingerprint(k) for k in known.values()] == [new]


def test_unknown_host_key_dialog_refuses_on_enter(qtbot):
    from app.remote.errors import UnknownHostKey

    hk = HostKeyDialog("box", UnknownHostKey("[127.0.0.1]:2222", "ssh-ed25519", "SHA256:abc"))
    qtbot.addWidget(hk)
    hk.show()
    with qtbot.waitSignal(hk.finished, timeout=2000):
        qtbot.keyClick(hk, Qt.Key.Key_Return)
    assert hk.trusted_fingerprint is None and hk.result() == 0


def stored_bytes() -> bytes:
    """Every byte Berth keeps on disk (the database with its WAL, known hosts, settings)."""
    return b"".join(p.read_bytes() for p in paths.db_path().parent.rglob("*") if p.is_file())


def test_a_password_goes_to_the_keyring_and_nowhere_else(qtbot, task_runner, sshd, memory_keyring):
    # sshd has password logins off: the login fails, but the transport read the password from the keyring
    password = "pw-9d2e41-secret"
    seen = []
    real_get = memory_keyring.get_password
    memory_keyring.get_password = lambda s, u: seen.append((u, real_get(s, u))) or real_get(s, u)
    dialog = open_dialog(qtbot, task_runner)
    fill(dialog, sshd, name="pw-box", auth="password", password=password)
    click(qtbot, w(dialog, QPushButton, "saveButton"))
    click(qtbot, w(wait_host_key_dialog(qtbot, dialog), QPushButton, "trustButton"))
    result = w(dialog, QLabel, "resultLabel")
    qtbot.waitUntil(lambda: "Not saved" in result.text(), timeout=SLOW)
    assert "password: refused, this server takes no passwords" in result.text(), result.text()
    assert password not in result.text()
    assert ("password:pw-box", password) in seen
    assert ("berth", "password:pw-box") not in memory_keyring.passwords  # a failed save leaves no stale secret
    assert password.encode() not in stored_bytes()
    assert all(password not in e["detail"] for e in Workspace().audit.list())


def test_a_key_passphrase_goes_to_the_keyring_and_nowhere_else(qtbot, task_runner, sshd, memory_keyring, tmp_path):
    passphrase = "pass-phrase-7f3a9c"
    key = tmp_path / "id_encrypted"
    key.write_bytes(sshd.key_path.read_bytes())
    key.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", passphrase, "-f", str(key)], check=True,
                   capture_output=True)
    dialog = open_dialog(qtbot, task_runner)
    fill(dialog, sshd, name="box", auth="key", key=key, passphrase=passphrase)
    with qtbot.waitSignal(dialog.saved, timeout=SLOW, raising=False) as blocker:
        click(qtbot, w(dialog, QPushButton, "saveButton"))
        click(qtbot, w(wait_host_key_dialog(qtbot, dialog), QPushButton, "trustButton"))
    assert blocker.signal_triggered, w(dialog, QLabel, "resultLabel").text()
    assert memory_keyring.passwords[("berth", f"key-passphrase:{key}")] == passphrase
    assert passphrase.encode() not in stored_bytes()
    assert [s.name for s in Workspace().servers.list()] == ["local", "box"]


def test_without_a_secure_keyring_the_password_is_not_stored(qtbot, task_runner, monkeypatch):
    keyring.set_keyring(keyring.backends.fail.Keyring())
    dialog = open_dialog(qtbot, task_runner)
    w(dialog, QLineEdit, "nameEdit").setText("box")
    w(dialog, QLineEdit, "hostEdit").setText("127.0.0.1")
    w(dialog, QLineEdit, "userEdit").setText("me")
    combo = w(dialog, QComboBox, "authCombo")
    combo.setCurrentIndex(combo.findData("password"))
    w(dialog, QLineEdit, "passwordEdit").setText("hunter2-xyz")
    click(qtbot, w(dialog, QPushButton, "saveButton"))
    result = w(dialog, QLabel, "resultLabel")
    qtbot.waitUntil(lambda: "keyring" in result.text(), timeout=10000)
    assert "No secure system keyring" in result.text() and "hunter2" not in result.text()
    assert [s.name for s in Workspace().servers.list()] == ["local"]


def test_fields_are_validated_inline(qtbot, task_runner):
    dialog = open_dialog(qtbot, task_runner)
    name, host = w(dialog, QLineEdit, "nameEdit"), w(dialog, QLineEdit, "hostEdit")
    name_error = w(dialog, QLabel, "nameError")
    for bad in ("Big Name", "local", "-x"):
        name.setText(bad)
        assert name_error.text() and name_error.isVisible(), bad
    name.setText("gpu-1.lab")
    assert not name_error.isVisible()
    port = w(dialog, QSpinBox, "portSpin")
    assert (port.minimum(), port.maximum()) == (1, 65535)
    click(qtbot, w(dialog, QPushButton, "saveButton"))  # host missing: nothing starts
    assert dialog.task is None and w(dialog, QLabel, "hostError").isVisible()
    host.setText("example.invalid")
    assert not w(dialog, QLabel, "hostError").isVisible()
    assert w(dialog, QLineEdit, "rootEdit").text() == "~/berth"
    env = w(dialog, QComboBox, "envCombo")
    assert env.isEditable() and [env.itemText(i) for i in range(env.count())] == ["development", "staging", "production"]
    combo = w(dialog, QComboBox, "authCombo")
    combo.setCurrentIndex(combo.findData("password"))
    assert w(dialog, QLineEdit, "passwordEdit").isVisible() and not w(dialog, QLineEdit, "keyEdit").isVisible()
    combo.setCurrentIndex(combo.findData("key"))
    assert w(dialog, QLineEdit, "keyEdit").isVisible() and w(dialog, QLineEdit, "passphraseEdit").isVisible()


@pytest.fixture
def blackhole():
    """A TCP listener on 127.0.0.1 that accepts connections and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for s in held:
        s.close()
    listener.close()


def test_a_silent_host_never_freezes_the_dialog(qtbot, task_runner, blackhole):
    dialog = open_dialog(qtbot, task_runner)
    w(dialog, QLineEdit, "nameEdit").setText("silent")
    w(dialog, QLineEdit, "hostEdit").setText("127.0.0.1")
    w(dialog, QSpinBox, "portSpin").setValue(blackhole)
    w(dialog, QLineEdit, "userEdit").setText("nobody")
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    started = time.monotonic()
    click(qtbot, w(dialog, QPushButton, "testButton"))
    result = w(dialog, QLabel, "resultLabel")
    assert w(dialog, QLabel, "resultLabel").text().startswith("Testing")
    qtbot.waitUntil(lambda: "failed" in result.text(), timeout=25000)
    elapsed = time.monotonic() - started
    timer.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    print(f"\nsilent host: failed after {elapsed:.1f} s; {len(ticks)} ticks, max gap {max(gaps) * 1000:.0f} ms; "
          f"{result.text()!r}")
    assert max(gaps) < 0.25
    assert elapsed < 15 + 3  # the transport's timeout, plus a little
    assert f"no SSH answer from 127.0.0.1:{blackhole} within 15 s" in result.text(), result.text()
    assert w(dialog, QPushButton, "testButton").isEnabled()


def test_pick_an_alias_from_the_ssh_config(qtbot, task_runner, sshd, user_ssh_dir):
    (user_ssh_dir / "config").write_text(
        f"Host web-1\n    HostName {sshd.host}\n    Port {sshd.port}\n    User {sshd.user}\n"
        f"    IdentityFile {sshd.key_path}\n    IdentitiesOnly yes\n"
        f"Host jumpy\n    HostName 10.9.9.9\n    User ops\n    ProxyJump web-1\n"
        f"Host *.wild\n    User nobody\n")
    dialog = open_dialog(qtbot, task_runner)
    combo = w(dialog, QComboBox, "aliasCombo")
    qtbot.waitUntil(lambda: combo.count() == 3, timeout=5000)
    assert [combo.itemData(i) for i in range(combo.count())] == ["", "jumpy", "web-1"]  # no patterns
    combo.setCurrentIndex(combo.findData("jumpy"))
    combo.activated.emit(combo.currentIndex())
    assert (w(dialog, QLineEdit, "hostEdit").text(), w(dialog, QLineEdit, "userEdit").text()) == ("10.9.9.9", "ops")
    assert f"through {sshd.user}@{sshd.host}:{sshd.port}" in w(dialog, QLabel, "aliasNote").text()
    w(dialog, QLineEdit, "nameEdit").clear()
    combo.setCurrentIndex(combo.findData("web-1"))
    combo.activated.emit(combo.currentIndex())
    assert w(dialog, QLineEdit, "nameEdit").text() == "web-1"
    assert w(dialog, QLineEdit, "hostEdit").text() == sshd.host
    assert w(dialog, QSpinBox, "portSpin").value() == sshd.port and w(dialog, QLineEdit, "userEdit").text() == sshd.user
    assert w(dialog, QComboBox, "authCombo").currentData() == "agent"  # the alias's IdentityFile logs in
    w(dialog, QLineEdit, "rootEdit").setText(str(sshd.folder / "root web-1"))
    with qtbot.waitSignal(dialog.saved, timeout=SLOW):
        click(qtbot, w(dialog, QPushButton, "saveButton"))
        click(qtbot, w(wait_host_key_dialog(qtbot, dialog), QPushButton, "trustButton"))
    saved = Workspace().servers.get("web-1")
    assert (saved.ssh_alias, saved.host, saved.port, saved.key_path) == ("web-1", sshd.host, sshd.port, "")
    # editing it shows the alias chosen
    again = open_dialog(qtbot, task_runner, saved)
    combo = w(again, QComboBox, "aliasCombo")
    qtbot.waitUntil(lambda: combo.count() == 3, timeout=5000)
    assert combo.currentData() == "web-1" and again.config().ssh_alias == "web-1"
