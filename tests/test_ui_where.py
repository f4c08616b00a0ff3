"""The Releases tab's "Where has this run?": the same iris bundle deployed (for real, by the CLI) to
the built-in `local` server and to a loopback sshd ("box"). The panel lists both servers and what
each holds now; once box's sshd is stopped it says box
did not answer, and the window stays responsive while it asks."""
import pytest
from PySide6.QtCore import Qt

from app.deploy.queries import status
from app.promotion import where_ran
from app.remote.local import LocalTransport
from app.ui.model.page import ModelPage
from app.workspace import Workspace
from cli_kit import berth, iris_copy

WAIT = 60000


@pytest.fixture
def deployed(capsys, box, tmp_path, berth_home, stop_local_runners):
    """The same iris 1.0.0 folder deployed to box and to local: (its sha256, box's sshd)."""
    folder = iris_copy(tmp_path)
    for server in ("box", "local"):
        r = berth(capsys, "deploy", folder, "--server", server)
        assert r.code == 0, r
    rows = berth(capsys, "releases", "iris", "--server", "box", "--json").json()
    return rows[0]["sha256"], box[0]


def test_where_has_this_run_lists_each_server_and_one_that_does_not_answer(qtbot, task_runner, deployed, berth_home):
    sha, sshd = deployed
    page = ModelPage(task_runner)
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()
    with LocalTransport(str(berth_home / "local")) as t:
        page.show_model("local", status(t, "iris")[0])
    qtbot.waitUntil(lambda: len(page.releases) == 1, timeout=WAIT)
    view, where = page.releases_view, page.releases_view.where
    page.tabs.setCurrentWidget(view)
    assert not where.button.isEnabled()  # nothing selected yet
    view.select_version("1.0.0")
    assert where.sha256 == sha and sha[:12] in where.title.text() and where.button.isEnabled()

    where.button.click()
    assert not where.button.isEnabled() and "asking the servers" in where.title.text()  # the answer comes later
    qtbot.waitUntil(lambda: bool(where.rows()), timeout=WAIT)
    rows = {r[0]: r for r in where.rows()}
    assert rows["box"][2:4] == ("1.0.0", "current"), rows
    assert rows["local"][1:4] == ("local", "1.0.0", "current"), rows
    assert set(rows) == {"box", "local"} and "on 2 server(s), current on 2" in where.title.text()

    sshd.stop()
    qtbot.waitUntil(where.button.isEnabled, timeout=WAIT)
    where.button.click()
    qtbot.waitUntil(lambda: bool(where.rows()) and dict((r[0], r[3]) for r in where.rows())["box"] == "did not answer",
                    timeout=WAIT)
    box_row = where.table.findItems("did not answer", Qt.MatchFlag.MatchExactly)[0]
    assert box_row.toolTip(), "the reason it did not answer is in the tooltip"
    assert dict((r[0], r[3]) for r in where.rows())["local"] == "current"
    assert "current on 1" in where.title.text()

    view.table.clearSelection()  # no release selected: the answer about it goes
    assert where.rows() == [] and not where.button.isEnabled()


def test_where_ran_of_a_hash_no_server_holds(berth_home):
    assert where_ran(Workspace(), "0" * 64, "iris") == []
    with pytest.raises(ValueError, match="is not a bundle sha256"):
        where_ran(Workspace(), "xyz", "iris")
