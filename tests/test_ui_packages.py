"""The server page's Packages row (issue 20): the server's Python, ABI, libc and wheel tags, whether
its index answers, where deploys take packages from and when that was checked, from the real agent
on `local`; "Check again" asks the server again and caches the answer for deploys."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from app.store.server_index import IndexSetting, ServerIndexes
from app.store.servers import LOCAL
from app.ui.servers.packages_panel import describe
from app.ui.servers.page import ServerPage
from app.workspace import Workspace

DEAD = "http://127.0.0.1:9/simple/"


def test_the_server_page_shows_the_servers_package_facts_and_checks_again(qtbot, task_runner, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", DEAD)  # the local agent's pip index: one that does not answer
    ws = Workspace()
    page = ServerPage(task_runner)
    qtbot.addWidget(page)
    page.show()
    page.show_server(ws.servers.get(LOCAL))
    label = page.findChild(QLabel, "packagesLabel")
    qtbot.waitUntil(lambda: "Python" in label.text(), timeout=15000)
    text = label.text()
    assert "(cp3" in text and "glibc 2." in text and "manylinux_2_" in text and "linux_x86_64" in text, text
    assert f"its package index: {DEAD}, does not answer" in text and "own index (online)" in text, text
    first = ServerIndexes(ws.db).get(LOCAL)
    assert first.facts["platforms"][0] in text and first.checked_at  # what a deploy will use, cached

    ServerIndexes(ws.db).set_mode(LOCAL, "offline")
    button = page.packages_panel.button
    qtbot.waitUntil(button.isEnabled, timeout=5000)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "uploaded from this computer (offline)" in label.text(), timeout=15000)
    assert "checked 20" in label.text() and " UTC" in label.text()


def test_musl_an_answering_private_index_and_no_facts_read_plainly():
    musl = IndexSetting("box", "url", "https://ci@pkgs.example.test/simple", {
        "python": "3.9.18", "abi": "cp39", "machine": "aarch64", "libc": "musl", "libc_version": "1.2",
        "platforms": ["musllinux_1_2_aarch64", "musllinux_1_1_aarch64", "linux_aarch64"],
        "index": {"url": "https://pkgs.example.test/simple", "reachable": True}}, "2026-12-02T00:10:00+00:00")
    text = describe(musl)
    assert "Python 3.9.18 (cp39, aarch64), musl 1.2" in text
    assert "musllinux_1_2_aarch64, musllinux_1_1_aarch64, linux_aarch64" in text
    assert "the private index https://ci@pkgs.example.test/simple" in text and "checked 2026-12-02 00:10:00 UTC" in text
    bare = describe(IndexSetting("old", facts={"python": "3.8.10", "abi": "cp38", "machine": "x86_64",
                                               "platforms": ["linux_x86_64"], "libc": "", "libc_version": ""}))
    assert "libc unknown (no manylinux)" in bare and "its package index: not asked yet" in bare and "checked never" in bare
    assert "<script>" not in describe(IndexSetting("x", "url", "http://h/<script>", {}))  # shown as text
