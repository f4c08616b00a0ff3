"""What each column of the Audit table says for an event (app/audit/cells.py): plain functions,
formatted on a worker thread, so no Qt is needed to test them."""
from datetime import datetime

from app.audit.cells import COLUMNS, KEYS, cell, cells, local_time


def test_cells_say_who_what_changed_and_where_it_was_recorded():
    row = dict(actor="alice@laptop", ssh_user="deploy", old="1.0.0", new="1.1.0", origin="server:alpha",
               reason="hotfix\nfor #12", state="interrupted", outcome="started")
    assert cell(row, "who") == "alice@laptop (as deploy)"
    assert cell(row, "change") == "1.0.0 → 1.1.0"
    assert cell(row, "origin") == "journal of alpha"
    assert cell(dict(row, origin=""), "origin") == "this desktop"
    assert cell(row, "reason") == "hotfix for #12"
    assert cell(row, "outcome") == "interrupted"
    assert cell(dict(old="", new=""), "change") == ""


def test_time_is_local_and_a_bad_time_is_shown_as_it_is():
    ts = "2024-05-01T10:00:04.000+00:00"
    assert local_time(ts) == datetime.fromisoformat(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert local_time("not a time") == "not a time" and local_time("") == ""


def test_one_cell_per_column_in_the_table_order():
    row = dict(ts="", actor="bob", server="alpha", model="iris", version="1.0.0", action="deploy", outcome="ok",
               detail="line 1\nline 2")
    out = cells(row)
    assert len(out) == len(COLUMNS) == len(KEYS)
    assert dict(zip(KEYS, out)) == {"time": "", "who": "bob", "server": "alpha", "model": "iris",
                                    "version": "1.0.0", "action": "deploy", "outcome": "ok", "change": "",
                                    "reason": "", "detail": "line 1 line 2", "origin": "this desktop"}
