"""req/s of `[serve] workers = N` for a model that computes (~1 ms of pure Python per prediction),
measured with wrk (bench/_wrk.py) at 16 connections on the stable port, N in turn, round by round.

    .venv/bin/python bench/workers_speed.py [--workers 1,2] [--rounds 2] [--seconds 5]

On a machine the load generator shares with the runner, N beyond the free cores buys nothing."""
import argparse
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests"), str(HERE)]

import _wrk  # noqa: E402
from agent_kit import call, deploy, make_bundle, stop_all  # noqa: E402

BUSY = '''
class Model:
    def predict(self, data):
        n = 0
        for i in range(20000):
            n += i * i
        return {"n": n}
'''


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", default="1,2")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="berth-workers-speed-"))
    lua = _wrk.script(tmp, b'{"x": 1}')
    ports = {}
    try:
        for n in (int(x) for x in a.workers.split(",")):
            root = tmp / ("srv%d" % n)
            folder = make_bundle(tmp / ("b%d" % n), name="busy%d" % n, model_src=BUSY, extra_toml="workers = %d\n" % n)
            _, error, _ = deploy(root, folder)
            assert error is None, error
            ports[n] = (root, call(root, "status")[0]["models"][0]["port"])
        for r in range(a.rounds):
            for n, (_, port) in ports.items():
                res = _wrk.run(port, lua, 16, a.seconds)
                print("round %d  workers=%d  %8.0f req/s  p50 %.2f ms  p99 %.2f ms"
                      % (r + 1, n, res["rps"], res["p50"] * 1000, res["p99"] * 1000), flush=True)
    finally:
        for root, _ in ports.values():
            stop_all(root)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
