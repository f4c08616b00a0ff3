"""Many servers need many descriptors: `berth` raises its soft open-files limit to the hard one."""
import subprocess
import sys
from pathlib import Path

from app.remote.fdlimit import raise_open_files_limit

REPO = Path(__file__).resolve().parent.parent
PROBE = ("import resource, sys\nimport app.__main__ as m\ntry:\n    m.main(['--version'])\nexcept SystemExit:\n    pass\n"
         "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], file=sys.stderr)\n")


def run_with_limits(soft, hard, code=PROBE):
    def limit():
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, preexec_fn=limit, capture_output=True, text=True)


def test_berth_raises_a_low_soft_limit_to_the_hard_one():
    r = run_with_limits(256, 4096)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "4096"


def test_the_limit_goes_up_to_what_berth_wants_and_a_higher_soft_one_is_never_lowered():
    code = ("import sys\nfrom app.remote.fdlimit import raise_open_files_limit\n"
            "print(raise_open_files_limit(wanted=1000), file=sys.stderr)\n")
    assert run_with_limits(256, 4096, code).stderr.strip() == "1000"
    assert run_with_limits(3000, 4096, code).stderr.strip() == "3000"
    assert run_with_limits(256, 512, code).stderr.strip() == "512"


def test_the_function_says_what_the_limit_is_now():
    import resource
    assert raise_open_files_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
