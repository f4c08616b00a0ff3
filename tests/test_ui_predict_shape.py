"""The console's Predict panel against a real runner of iris on `local`: input of the wrong shape
shows the runner's 422 message in the banner and the input example in the output pane; the model's
own failure (a 500) shows its message and no example."""
import json

import pytest
from PySide6.QtCore import Qt

from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.deploy.queries import status
from app.remote.local import LocalTransport
from app.ui.model.page import ModelPage
from app.ui.model.predict_panel import EXPECTED_HEADING
from app.workspace import Workspace
from cli_kit import EXAMPLES, iris_copy

WAIT = 60000
EXAMPLE = json.loads((EXAMPLES / "iris" / "example.json").read_text())


@pytest.fixture
def panel(qtbot, task_runner, berth_home, tmp_path, stop_local_runners):
    with LocalTransport(str(berth_home / "local")) as t:
        run_to_end(Deploy(t, iris_copy(tmp_path), Workspace().audit).run())
        row = status(t, "iris")[0]
    page = ModelPage(task_runner)
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()
    page.show_model("local", row)
    panel = page.predict
    page.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: "instances" in panel.input.toPlainText(), timeout=WAIT)
    return panel


def send(qtbot, panel, text):
    panel.input.setPlainText(text)
    panel.output.setPlainText("previous answer")
    qtbot.mouseClick(panel.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.banner.isVisible() and panel.send_button.isEnabled(), timeout=WAIT)
    return panel.banner.label.text()


def expected_pane(panel):
    text = panel.output.toPlainText()
    assert text.startswith(EXPECTED_HEADING), text
    return json.loads(text[len(EXPECTED_HEADING):])


def test_a_wrong_shape_shows_the_422_message_and_the_example_beside_the_input(qtbot, panel):
    message = send(qtbot, panel, '{"instances": [[5.1, 3.5, 1.4]]}')
    assert "iris refused the input (HTTP 422)" in message
    assert "instances[0]: expected a list of 4 numbers, got 3" in message
    assert expected_pane(panel) == EXAMPLE
    assert json.loads(panel.input.toPlainText()) == {"instances": [[5.1, 3.5, 1.4]]}  # the input is kept
    assert panel.latency.text() == ""


def test_the_example_is_fetched_when_the_panel_has_none(qtbot, panel):
    panel.example_text = ""  # as when the operator typed before the example came
    send(qtbot, panel, '{"features": "long petals"}')
    qtbot.waitUntil(lambda: panel.output.toPlainText().startswith(EXPECTED_HEADING), timeout=WAIT)
    assert expected_pane(panel) == EXAMPLE


def test_the_models_own_failure_shows_no_example(qtbot, panel):
    message = send(qtbot, panel, '{"features": [NaN, 3.5, 1.4, 0.2]}')
    assert "could not answer (HTTP 500)" in message and "must be finite" in message
    assert panel.output.toPlainText() == "previous answer"
