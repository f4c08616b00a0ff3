"""The job process's column-at-a-time paths (CSV cells, storable outputs, the output's rows) give exactly
what the cell-by-cell and row-by-row code gives, and fall back to it for anything unusual; the injected
clock's sleep ends when the clock file changes."""
import os
import sqlite3
import threading
import time

import pytest

from app.agent import jobclock
from app.agent.jobinputs import Batch, column, number, read_csv
from app.agent.jobprocess import predict_all
from app.agent.jobsqlite import SqliteOutput

TRICKY = ["1", "-1", "+1", "007", "1.", "-.5", "+.5", ".5", "1.5e3", "1E-2", "1e5", " 2", "2 ", "", "-", "+", ".",
          "1..2", "1_0", "١٢", "inf", "nan", "1.5e", "0x1", "9" * 5000, "3\n4", "1.5.", ".e1", "1.-2", "--1", "e1", "x",
          " x", "\u00a0x", "\u00a01", "\u2003 2", "²", "²1", "٣", "x\n1", "-x", "a b"]


@pytest.mark.parametrize("others", [["12", "-3"], ["1.5", "-.25"], ["1.5", "2"], ["x", "abc"], ["x", " 1"], []])
def test_a_column_is_what_number_makes_of_each_cell(others):
    for cell in TRICKY:
        for values in ([cell] + others, others + [cell]):
            if values:
                assert repr(column(values)) == repr([number(v) for v in values]), values
    assert column(["alpha 1", "b"]) == ["alpha 1", "b"] and column(["a", "", "1"]) == ["a", None, 1]
    assert repr(column(["3", "-4", "+5"])) == "[3, -4, 5]" and repr(column(["1.5", "-2.", "1.5e3"])) == "[1.5, -2.0, 1500.0]"


def test_csv_rows_keep_their_line_numbers_and_bad_rows():
    data = b'id,text,x\n1,"two\nlines",1.5\n\n2,short\n3,plain,2.5\n4,"a ""quoted"" cell",\n'
    items, bad = read_csv(data, "50%.csv")
    assert items == [("50%.csv:3", {"id": 1, "text": "two\nlines", "x": 1.5}),
                     ("50%.csv:6", {"id": 3, "text": "plain", "x": 2.5}),
                     ("50%.csv:7", {"id": 4, "text": 'a "quoted" cell', "x": None})]
    assert bad == [("50%.csv:5", "the row has 2 fields, the header 3", "2,short")]
    assert read_csv(b"a,b\n", "empty.csv") == ([], [])


class Model:
    def predict(self, row):
        return {"y": row["x"] * 2}


def test_a_batch_with_an_output_that_cannot_be_stored_is_taken_row_by_row():
    items = [("f:2", {"x": 1}), ("f:3", {"x": 2})]
    results, errors = predict_all(Model().predict, lambda rows: [{"y": 2}, {"y": object()}], None, items)
    assert results == [("f:2", {"y": 2})] and [e[0] for e in errors] == ["f:3"] and "TypeError" in errors[0][1]
    results, errors = predict_all(Model().predict, lambda rows: [{"y": r["x"] * 2} for r in rows], None, items)
    assert results == [("f:2", {"y": 2}), ("f:3", {"y": 4})] and errors == []
    results, errors = predict_all(Model().predict, lambda rows: [r["x"] for r in rows], None, items)
    assert results == [("f:2", 1), ("f:3", 2)] and errors == []


def stored(path, sql):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("outputs, columns, cells", [
    ([{"y": 1, "ok": True}, {"y": 2.5, "ok": None}], ["y", "ok"], [(1, 1), (2.5, None)]),  # a column at a time
    ([{"time": 1, "y": "a"}, {"time": 2, "y": "b"}], ["output_time", "y"], [(1, "a"), (2, "b")]),
    ([{"y": 1}, {"y": [1, 2]}], ["y"], [(1,), ("[1, 2]",)]),  # nested: JSON text, row by row
    ([{"y": 1}, {"z": 2}], ["y", "z"], [(1, None), (None, 2)]),  # other keys: the union of columns
    ([{"y": 1, "z": 2}, {"z": 3, "y": 4}], ["y", "z"], [(1, 2), (4, 3)]),  # another key order
    ([{}, {}], [], [(), ()]),
    ([3, "x"], ["output"], [("3",), ('"x"',)]),
])
def test_the_output_rows_are_the_same_either_way(tmp_path, outputs, columns, cells):
    db = tmp_path / "out.db"
    out = SqliteOutput(f"sqlite:///{db}", "scores", "job")
    try:
        results = [("f:%d" % (i + 2), o) for i, o in enumerate(outputs)]
        out.commit(Batch("f", [], [], "file:abc"), results, [("f:9", "bad", "{}")], "run1", "1.0.0", "T")
    finally:
        out.close()
    names = [r[1] for r in stored(db, "PRAGMA table_info(scores)")]
    assert names == ["run_id", "model_version", "input_ref", "time"] + columns
    got = stored(db, "SELECT * FROM scores ORDER BY input_ref")
    assert [r[:4] for r in got] == [("run1", "1.0.0", "f:%d" % (i + 2), "T") for i in range(len(outputs))]
    assert [r[4:] for r in got] == cells
    assert stored(db, "SELECT input_ref, reason FROM scores_errors") == [("f:9", "bad")]
    assert stored(db, "SELECT job, mark FROM berth_job_done") == [("job", "file:abc")]


def test_the_injected_clocks_sleep_ends_when_the_file_changes(tmp_path, monkeypatch):
    clock = tmp_path / "now.txt"
    clock.write_text("2026-01-01T00:00:00Z")
    monkeypatch.setenv(jobclock.CLOCK_ENV, str(clock))
    t = time.monotonic()
    jobclock.sleep(0.3)  # nothing changes: the whole time
    assert 0.3 <= time.monotonic() - t < 2

    def step():
        time.sleep(0.2)
        (tmp_path / "next.txt").write_text("2026-01-01T01:00:00Z")
        os.replace(tmp_path / "next.txt", clock)

    stepper = threading.Thread(target=step)
    stepper.start()
    t = time.monotonic()
    jobclock.sleep(30)
    took = time.monotonic() - t
    stepper.join()
    assert 0.15 < took < 5 and jobclock.now().hour == 1


def test_row_by_row_errors_stay_in_row_order():
    def predict(row):
        if row["x"] < 0:
            raise ValueError("x must not be negative")
        return {"y": object()} if row["x"] == 5 else {"y": row["x"]}

    items = [("f:%d" % i, {"x": x}) for i, x in enumerate([1, -1, 5, 2, -2])]
    for batch in (None, lambda rows: [predict(r) for r in rows]):  # a batch call that raises: row by row
        results, errors = predict_all(predict, batch, None, items)
        assert results == [("f:0", {"y": 1}), ("f:3", {"y": 2})]
        assert [(ref, reason.split(":")[0]) for ref, reason, _raw in errors] == [
            ("f:1", "ValueError"), ("f:2", "TypeError"), ("f:4", "ValueError")]
        assert errors[0][1] == "ValueError: x must not be negative" and errors[0][2] == '{"x": -1}'
