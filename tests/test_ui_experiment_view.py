"""The Experiment tab's view on its own: the form asks for what `berth experiment start` takes and
refuses bad settings with one line; a running experiment's status fills both sides, their training
metadata and the graphs; the two buttons say which way it ends."""
import pytest

from app.ui.model.experiment_view import ExperimentView, parse_steps

RELEASES = [
    {"version": "1.0.0", "current": True, "manifest": {"training": {"metrics": {"accuracy": 0.9333},
                                                                     "params": {"C": 1.0}, "dataset": "d.csv"}}},
    {"version": "1.1.0", "current": False, "manifest": {"training": {"metrics": {"accuracy": 0.9667},
                                                                      "params": {"C": 0.01}, "dataset": "d.csv"}}},
]


def status(requests_a=100, requests_b=10, errors_b=0, state="running"):
    return {"mode": "canary", "state": state, "started": "2026-12-01T18:00:00Z",
            "a": {"version": "1.0.0", "weight": 0.95, "requests": requests_a, "errors": 1, "rejected": 0,
                  "p50_ms": 1.2, "p95_ms": 3.4, "p99_ms": 9.0, "accuracy": 0.93, "labelled": 50},
            "b": {"version": "1.1.0", "weight": 0.05, "requests": requests_b, "errors": errors_b, "rejected": 2,
                  "p50_ms": 1.0, "p95_ms": 2.9, "p99_ms": 7.5, "accuracy": None, "labelled": 0},
            "agreement": None, "verdict": {"text": "no difference yet: about 1,900 more requests to tell"}}


@pytest.fixture
def view(qtbot):
    v = ExperimentView()
    qtbot.addWidget(v)
    v.set_releases(RELEASES)
    v.show()
    return v


def test_canary_steps_must_increase_and_end_at_100():
    assert parse_steps("5, 25,50,100") == [5, 25, 50, 100]
    for bad in ("5,25,50", "25,5,100", "0,100", "5,x,100", ""):
        with pytest.raises(ValueError):
            parse_steps(bad)


def test_the_form_asks_for_each_mode_with_its_settings(qtbot, view):
    assert [view.b_version.itemText(i) for i in range(view.b_version.count())] == ["1.1.0"]  # not the current one
    with qtbot.waitSignal(view.start_requested) as got:
        view.start_button.click()
    assert got.args[0] == {"b": "1.1.0", "mode": "canary", "canary": [5, 25, 50, 100], "step_requests": 500,
                           "step_minutes": 10, "max_error_rate": 0.01, "max_p95_ms": 200.0}
    view.mode_buttons["ab"].setChecked(True)
    view.weight.setValue(0.25)
    view.sticky.setText("X-Customer-Id")
    assert view.request() == {"b": "1.1.0", "mode": "ab", "weight": 0.25, "sticky_header": "X-Customer-Id"}
    view.mode_buttons["shadow"].setChecked(True)
    assert view.request() == {"b": "1.1.0", "mode": "shadow"}


def test_bad_settings_are_one_line_and_nothing_is_asked(qtbot, view):
    view.steps.setText("5,25,50")
    with qtbot.assertNotEmitted(view.start_requested):
        view.start_button.click()
    assert view.form_error.text() == "canary steps must increase and end at 100, e.g. 5,25,50,100"
    view.set_releases(RELEASES[:1])
    view.mode_buttons["shadow"].setChecked(True)
    with qtbot.assertNotEmitted(view.start_requested):
        view.start_button.click()
    assert view.form_error.text().startswith("deploy a second release first")


def test_a_running_experiment_shows_both_sides_and_ends_either_way(qtbot, view):
    view.show_status(status())
    assert view.stack.currentIndex() == 1
    assert "A = 1.0.0, B = 1.1.0, B at 5 %" in view.headline.text()
    assert "about 1,900 more requests" in view.verdict.text()
    cells = {view.table.verticalHeaderItem(r).text(): (view.table.item(r, 0).text(), view.table.item(r, 1).text())
             for r in range(view.table.rowCount())}
    assert cells["Requests"] == ("100", "10") and cells["p95 (ms)"] == ("3.4", "2.9") and cells["Accuracy"] == ("0.93", "")
    training = {view.training.verticalHeaderItem(r).text(): view.training.item(r, 1).text()
                for r in range(view.training.rowCount())}
    assert training["metric accuracy"] == "0.9667" and training["param C"] == "0.01"
    assert view.training.item(1, 0).font().bold()  # C differs
    view.graphs.add(status(requests_a=150, requests_b=20, errors_b=5), now=view.graphs.times[-1] + 5)
    assert view.graphs.series["a_rps"][-1] == pytest.approx(10.0) and view.graphs.series["b_eps"][-1] == pytest.approx(1.0)
    with qtbot.waitSignal(view.stop_requested) as got:
        view.promote_button.click()
    assert got.args == [True]
    with qtbot.waitSignal(view.stop_requested) as got:
        view.stop_button.click()
    assert got.args == [False]
    view.show_status(status(state="promoted"))
    assert view.stack.currentIndex() == 0 and "promoted" in view.last.text()


def _sides(n, errors_b, correct_b, b_ms):
    import random

    rng = random.Random(7)
    a = {"version": "1.0.0", "requests": n, "errors": n // 100, "labelled": n // 4, "correct": int(n // 4 * 0.9),
         "latencies_ms": [rng.uniform(1, 3) for _ in range(n)]}
    b = {"version": "1.1.0", "requests": n, "errors": errors_b, "labelled": n // 4, "correct": correct_b,
         "latencies_ms": [rng.uniform(*b_ms) for _ in range(n)]}
    return a, b


@pytest.mark.parametrize("n,errors_b,correct_b,b_ms,state", [(2000, 60, 400, (2, 5), "worse"),
                                                             (200, 3, 44, (1, 3), "none")])
def test_the_intervals_and_requests_still_needed_are_those_of_experiment_status(qtbot, view, capsys, n, errors_b,
                                                                                correct_b, b_ms, state):
    """The tab shows each comparison's B − A and interval, and the requests still needed, as
    `berth experiment status` prints them from the same verdict (a decided one, and a too early one)."""
    from app.agent.verdict import verdict
    from app.cli.experiment import _print_verdict

    a, b = _sides(n, errors_b, correct_b, b_ms)
    v = verdict(a, b)
    assert v["state"] == state
    view.show_status(dict(status(), verdict=v))
    _print_verdict(v)
    printed = {line.split(":")[0].strip(): line for line in capsys.readouterr().out.splitlines()[1:]}
    table = view.intervals.table
    names = {"Error rate": "error_rate", "Accuracy": "accuracy", "p95 (ms)": "p95_ms"}
    shown = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
    assert sorted(shown) == sorted(names) and set(printed) == set(names.values())
    for r, name in enumerate(shown):
        line = printed[names[name]]
        diff, interval = table.item(r, 2).text(), table.item(r, 3).text()
        assert f"B-A {diff}" in line and interval.split(" ", 1)[1] in line, (line, interval)
    needed = view.intervals.needed.text()
    if v["state"] == "none":
        assert v["requests_needed"] and f"about {v['requests_needed']:,}" in needed
        assert f"about {v['requests_needed']} more requests" in v["text"]  # what the CLI's verdict line says
    else:
        assert v["state"] == "worse" and needed.startswith("Enough data")
        assert "B worse" in [table.item(r, 4).text() for r in range(table.rowCount())]
