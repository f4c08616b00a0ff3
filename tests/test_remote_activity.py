"""The Remote activity log: every agent command Berth runs (and each upload) is listed with its
arguments, duration and result, and the command shown for running it by hand really does the same."""
import json
import subprocess

from PySide6.QtWidgets import QPlainTextEdit, QTableWidget

from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.remote.errors import RemoteError
from app.store.servers import LOCAL
from app.ui.servers.page import ServerPage
from app.workspace import Workspace
from cli_kit import iris_copy

import pytest


def by_hand_result(command: str, env: dict | None = None) -> dict:
    r = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, env=env)
    assert r.stdout.strip(), r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def fresh_shell(tmp_path) -> dict:
    """A terminal's environment with an empty home: no ~/.ssh, no agent, no ssh config."""
    home = tmp_path / "fresh home"
    home.mkdir()
    return {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def test_commands_are_logged_and_can_be_repeated_by_hand(tmp_path, stop_local_runners):
    ws = Workspace()
    with ws.connect(LOCAL) as t:
        run_to_end(Deploy(t, iris_copy(tmp_path), ws.audit).run())
        ws.server_status(t)
        with pytest.raises(RemoteError):
            t.agent("rollback", {"model": "iris"})  # nothing before 1.0.0: a failure, logged as such
    rows = ws.activity.list(LOCAL)
    assert [r["command"] for r in reversed(rows)][:4] == ["hello", "upload", "deploy", "status"]
    deploy = next(r for r in rows if r["command"] == "deploy")
    assert deploy["outcome"] == "ok" and "model=iris" in deploy["summary"] and "files=[" in deploy["summary"]
    assert deploy["seconds"] > 0.1 and "BERTH_REQUEST" in deploy["by_hand"]
    upload = next(r for r in rows if r["command"] == "upload")
    assert "files=" in upload["summary"] and upload["by_hand"] == ""
    failed = rows[0]
    assert failed["command"] == "rollback" and failed["outcome"] == "no_release" and "no release" in failed["message"]

    status = next(r for r in rows if r["command"] == "status")
    answer = by_hand_result(status["by_hand"])  # the very command, typed into a terminal
    assert answer["event"] == "result" and answer["result"]["models"][0]["version"] == "1.0.0"


def test_over_ssh_the_command_names_the_host_and_key(sshd, tmp_path):
    from app.store.servers import ServerConfig

    ws = Workspace()
    ws.add_server(ServerConfig(name="box", host=sshd.host, port=sshd.port, user=sshd.user,
                               key_path=str(sshd.key_path), root=str(tmp_path / "srv")), sshd.fingerprint)
    with ws.connect("box") as t:
        ws.server_status(t)
    status = ws.activity.list("box")[0]
    assert status["command"] == "status" and status["outcome"] == "ok"
    by_hand = status["by_hand"]
    assert f"ssh -i {sshd.key_path} -p {sshd.port}" in by_hand and f"{sshd.user}@{sshd.host}" in by_hand
    assert "StrictHostKeyChecking=yes" in status["by_hand"]
    # the very command as printed, in a fresh shell: it carries the key, the port and the known hosts
    assert by_hand_result(status["by_hand"], fresh_shell(tmp_path))["result"]["models"] == []


def test_the_command_goes_through_the_jump_hosts_from_a_fresh_shell(bastion_and_target, user_ssh_dir, tmp_path):
    from app.store.servers import ServerConfig

    bastion, target, net = bastion_and_target
    (user_ssh_dir / "config").write_text(f"""
Host bastion
    HostName {net.bastion_ip}
    Port {bastion.port}
    User {bastion.user}
    IdentityFile {bastion.key_path}
Host target
    HostName {net.target_ip}
    User {target.user}
    IdentityFile {target.key_path}
    ProxyJump bastion
""")
    (user_ssh_dir / "known_hosts").write_text(f"[{net.bastion_ip}]:{bastion.port} {bastion.host_public_key}\n")
    ws = Workspace()
    ws.add_server(ServerConfig(name="tgt", host=net.target_ip, user=target.user, ssh_alias="target",
                               root=str(tmp_path / "srv")), target.fingerprint)
    with ws.connect("tgt") as t:
        ws.server_status(t)
    status = ws.activity.list("tgt")[0]
    assert "ProxyCommand=" in status["by_hand"] and bastion.key_path.name in status["by_hand"]
    before = target.log_path.read_text().count(f"Connection from {net.bastion_inner_ip}")
    assert by_hand_result(status["by_hand"], fresh_shell(tmp_path))["result"]["models"] == []
    assert target.log_path.read_text().count(f"Connection from {net.bastion_inner_ip}") == before + 1


def test_the_command_refuses_a_changed_host_key_as_berth_does(sshd_factory, tmp_path):
    from app.store.servers import ServerConfig

    srv = sshd_factory()
    ws = Workspace()
    ws.add_server(ServerConfig(name="box", host=srv.host, port=srv.port, user=srv.user,
                               key_path=str(srv.key_path), root=str(tmp_path / "srv")), srv.fingerprint)
    with ws.connect("box") as t:
        ws.server_status(t)
    command = ws.activity.list("box")[0]["by_hand"]
    srv.restart_with_new_host_key()
    r = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, env=fresh_shell(tmp_path))
    assert r.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr and not r.stdout


def test_server_page_shows_the_log(qtbot, task_runner, tmp_path, stop_local_runners):
    ws = Workspace()
    with ws.connect(LOCAL) as t:
        run_to_end(Deploy(t, iris_copy(tmp_path), ws.audit).run())
    page = ServerPage(task_runner)
    qtbot.addWidget(page)
    page.resize(900, 700)
    page.show()
    page.show_server(ws.servers.get(LOCAL))
    table = page.findChild(QTableWidget, "activityTable")
    qtbot.waitUntil(lambda: table.rowCount() >= 3, timeout=10000)
    commands = [table.item(i, 1).text() for i in range(table.rowCount())]
    assert {"hello", "upload", "deploy"} <= set(commands)
    table.selectRow(commands.index("deploy"))
    text = page.findChild(QPlainTextEdit, "byHand").toPlainText()
    assert "deploy <<'BERTH_REQUEST'" in text and '"model": "iris"' in text
    assert page.activity.copy_button.isEnabled()


def test_a_connection_the_sample_stream_opened_first_still_logs_its_activity(sshd, tmp_path):
    """The console's one shared connection per server may be opened by the monitor's stream (which
    sets no activity log); the operations that share it later are logged all the same."""
    from app.monitor.sources import open_source
    from app.remote.shared import CONNECTIONS
    from app.store.servers import ServerConfig

    ws = Workspace()
    ws.add_server(ServerConfig(name="box", host=sshd.host, port=sshd.port, user=sshd.user,
                               key_path=str(sshd.key_path), root=str(tmp_path / "srv")), sshd.fingerprint)
    before, connections = len(ws.activity.list("box")), CONNECTIONS.count()
    source = open_source("box")()  # the stream's share, opened first
    try:
        with ws.connect("box", shared=True) as t:
            assert t.transport is source.transport.transport  # the same connection, not a second one
            ws.server_status(t)
        rows = ws.activity.list("box")
        assert len(rows) > before and rows[0]["command"] == "status" and rows[0]["outcome"] == "ok"
    finally:
        source.close()
    assert CONNECTIONS.count() == connections  # both shares let go: the connection closed


def test_a_jobs_database_password_is_never_shown():
    """job_add carries db_passwords (keyring -> the server's passfile): the activity's summary and its
    by-hand command show the URL, never the password."""
    import json

    from app.remote.activity import by_hand, summarize

    request = {"name": "j", "db_passwords": {"postgresql://u@h:5432/db": "hunter2"}, "root": "/srv"}
    assert summarize(request) == 'name=j db_passwords={"postgresql://u@h:5432/db":"<hidden: in the keyring>"}'
    shown = by_hand(["ssh", "srv"], ["python3", "agent.py", "job_add"], json.dumps(request).encode())
    assert "hunter2" not in shown and '"postgresql://u@h:5432/db": "<hidden: in the keyring>"' in shown
    assert "hunter2" not in by_hand([], ["agent.py"], b'{"db_passwords": {"u": "hunter2"')  # cut short: not parsed
