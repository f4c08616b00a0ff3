"""The fleet tree says which models have an experiment running: a real A/B experiment started on
the built-in `local` server (experiment_kit's two releases, real runners and router) shows as
"running · ab 30%" on its model's row once the console's status round has read it."""
import pytest

from agent_kit import call
from app.ui.main_window import MainWindow
from experiment_kit import stop_routers, two_releases

WAIT = 60000


@pytest.fixture
def experiment(berth_home, tmp_path, stop_local_runners):
    root = stop_local_runners
    two_releases(root, tmp_path)
    result, error, _ = call(root, "experiment_start", model="echo", b="2.0.0", mode="ab", weight=0.3)
    assert error is None, error
    yield root
    stop_routers(root)


def test_a_running_experiment_shows_its_label_in_the_fleet(qtbot, task_runner, experiment):
    win = MainWindow(task_runner)
    qtbot.addWidget(win)
    win.show()
    model = win.fleet_model

    def state() -> str:
        item = model.model_item("local", "echo")
        return item.parent().child(item.row(), 1).text() if item is not None else ""

    qtbot.waitUntil(lambda: state() != "", timeout=WAIT)
    assert state() == "running · ab 30%", state()
    assert model.model_item("local", "echo").text() == "echo  1.0.0"  # A, the current release, serves
    win.close()
