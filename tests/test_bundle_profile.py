"""`berth bundle profile`: the iris example measured on this computer with the real runner, the
figures kept by bundle sha256 and shown by the next deploy beside what the server has; and checked
against what the monitor then measures of the deployed runner."""
import psutil
import pytest

from app.deploy.profile_report import fit, stored
from cli_kit import berth, iris_copy

# the monitor's RSS of the deployed runner against the profile's after-load RSS: the same runner and
# interpreter on the same machine, so within a few MB (allocator and import order vary)
RSS_MARGIN = 0.25


@pytest.fixture
def profiled(capsys, tmp_path, stop_local_runners):
    folder = iris_copy(tmp_path)
    r = berth(capsys, "bundle", "profile", folder, "--seconds", "0.5", "--connections", "3", "--json")
    assert r.code == 0, r
    return folder, r.json()


def test_the_profile_measures_the_real_runner_and_is_kept(profiled, berth_home):
    folder, p = profiled
    assert (p["model"], p["version"]) == ("iris", "1.0.0") and len(p["bundle_sha256"]) == 64
    assert 5 * 2**20 < p["rss_after_load_bytes"] <= p["rss_peak_bytes"] < 2**30
    assert 0 < p["load_s"] < 60 and p["cpu_ms_per_request"] > 0
    # from the CPU time before it was rounded to the 4 decimals kept: within one request of it
    assert abs(p["requests_per_core_s"] - 1000 / p["cpu_ms_per_request"]) <= 1 + 1e-3 * p["requests_per_core_s"]
    for level, conns in (("one", 1), ("many", 3)):
        f = p[level]
        assert f["connections"] == conns and f["requests"] > 0 and f["failures"] == 0
        assert 0 < f["p50_ms"] <= f["p99_ms"]
    assert p["disk_bytes"] >= p["venv_bytes"] > 0
    assert stored(p["bundle_sha256"]) == p
    # the trial root is gone, and no runner of it is left
    assert not list((berth_home / "local").glob("models/iris"))
    assert not [q for q in psutil.process_iter(["cmdline"]) if "berth-profile" in " ".join(q.info["cmdline"] or ())]


def test_the_deploy_says_what_the_bundle_needs_against_what_the_server_has(capsys, profiled):
    folder, p = profiled
    r = berth(capsys, "deploy", folder, "--server", "local")
    assert r.code == 0, r
    line = next(x.strip() for x in r.err.splitlines() if "needs about" in x)
    assert line.startswith("needs about ") and " of memory, " in line and "ms of CPU per request; local has " in line
    assert line.endswith(f"available and {psutil.cpu_count()} cores")
    rel = berth(capsys, "releases", "iris", "--server", "local", "--json").json()
    assert rel[0]["profile"]["bundle_sha256"] == p["bundle_sha256"]  # kept with the release on the server

    sample = berth(capsys, "monitor", "--once", "--json", "--server", "local").json()[0]
    rss = sample["models"]["iris"]["rss_bytes"]
    assert abs(rss - p["rss_after_load_bytes"]) <= RSS_MARGIN * p["rss_after_load_bytes"], (rss, p["rss_after_load_bytes"])


def test_a_server_that_cannot_hold_it_gets_a_warning():
    p = {"rss_peak_bytes": 300 * 2**20, "cpu_ms_per_request": 0.8, "disk_bytes": 2 * 2**30}
    line, warning = fit(p, "box", {"mem_available": 2 * 2**30, "cpus": 4, "disk_free": 10 * 2**30})
    assert (line, warning) == ("needs about 300 MB of memory, 0.8 ms of CPU per request; box has 2.0 GB available and 4 cores", None)
    line, warning = fit(p, "box", {"mem_available": 400 * 2**20, "cpus": 1, "disk_free": 2**30})
    assert warning == ("box has 400 MB of memory available and the model needs about 300 MB (with headroom 450 MB); "
                       "box has 1.0 GB of disk free and the release with its virtualenv takes 2.0 GB")
    assert fit(p, "old", {})[0].endswith("; old did not say what it has")


def test_a_bundle_without_an_input_example_or_that_fails_says_why(capsys, tmp_path, stop_local_runners):
    bare = iris_copy(tmp_path, folder="bare")
    toml = bare / "berth.toml"
    toml.write_text(toml.read_text().replace('input_example = "example.json"\n', ""))
    r = berth(capsys, "bundle", "profile", bare, "--seconds", "0.2")
    assert r.code != 0 and r.err.strip().splitlines()[-1] == (
        'berth: iris 1.0.0 has no input example to load it with: add input_example = "example.json" to '
        "berth.toml's [model]"), r
    for bad in (["--seconds", "0"], ["--connections", "0"]):
        r = berth(capsys, "bundle", "profile", bare, *bad)
        assert r.code != 0 and "--seconds must be above 0 and --connections at least 1" in r.err, r
