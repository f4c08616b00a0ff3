"""A job against a model that misbehaves: it prints without end, its predict_batch returns the wrong
number of results, its outputs are not JSON (NaN, bytes). The run stays bounded and each row lands
once, as a result or as an error."""
import os

import pytest

from agent_kit import call, deploy, make_bundle
from jobs_kit import add_dir_job, cleanup, rows, wait_run

UNRULY = '''
import math
import sys


class Model:
    def predict(self, row):
        if row.get("mode") == "loud":
            sys.stdout.write("x" * 1024 * 1024 + "\\n")
            print("y" * 1024 * 1024, file=sys.stderr)
        if row.get("mode") == "nan":
            return {"v": math.nan}
        if row.get("mode") == "bytes":
            return {"v": b"\\x00\\xff"}
        return {"v": row.get("n")}

    def predict_batch(self, rows):
        out = [self.predict(r) for r in rows]
        return out[:-1] if any(r.get("mode") == "short" for r in rows) else out
'''


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    folder = make_bundle(tmp_path / "bundle", name="unruly", model_src=UNRULY)
    _result, error, _ = deploy(r, folder)
    assert error is None, error
    yield r
    cleanup(r)


def _run(root, tmp_path, csv_text):
    inbox, out = tmp_path / "inbox", tmp_path / "out.db"
    _r, error, _ = add_dir_job(root, inbox, out, model="unruly", every="1d")
    assert error is None, error
    (inbox / "a.csv").write_text(csv_text)
    run = wait_run(root, "hourly", call(root, "job_run", name="hourly")[0]["run"]["run_id"])
    return run, out


def test_a_model_printing_without_end_does_not_fill_the_disk(root, tmp_path):
    run, out = _run(root, tmp_path, "mode,n\n" + "loud,1\n" * 12)  # 24 MB of prints
    assert (run["state"], run["rows_out"]) == ("ok", 12), run
    log = root / "jobs" / "hourly" / "job.log"
    assert log.stat().st_size < 6 * 1024 * 1024
    text = log.read_text()
    assert "output past 5 MB in this run is not kept" in text and text.rstrip().endswith("ok: 1 batch(es)")


def test_a_batch_call_with_the_wrong_number_of_results_falls_back_to_row_by_row(root, tmp_path):
    run, out = _run(root, tmp_path, "mode,n\nshort,1\nok,2\nok,3\n")
    assert (run["state"], run["rows_out"], run["errors"]) == ("ok", 3, 0), run
    assert rows(out, "SELECT v FROM scores ORDER BY v") == [(1,), (2,), (3,)]


def test_outputs_that_are_not_json_are_stored_or_errors_never_a_failed_batch(root, tmp_path):
    run, out = _run(root, tmp_path, "mode,n\nnan,1\nbytes,2\nok,3\n")
    assert run["state"] == "ok" and run["rows_out"] + run["errors"] == 3, run
    stored = {ref.split(":")[1]: v for ref, v in rows(out, "SELECT input_ref, v FROM scores")}
    errors = {ref.split(":")[1]: reason for ref, reason in rows(out, "SELECT input_ref, reason FROM scores_errors")}
    assert stored == {"2": None, "4": 3}, stored  # SQLite keeps a NaN as NULL
    assert list(errors) == ["3"] and "bytes is not JSON serializable" in errors["3"], errors
    assert os.path.exists(tmp_path / "inbox" / "done" / "a.csv")
