"""`berth demo`: the whole story on the `local` server. Deploys the iris example, predicts, deploys
a second version, rolls back, predicts again."""
import json
import shutil
import sys
import tempfile
from pathlib import Path

from .base import Command, workspace
from .output import ProgressPrinter

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "resources" / "examples"


class DemoCommand(Command):
    name = "demo"
    help = "deploy the example bundle to `local`, predict, deploy v2, roll back"

    def run(self, args) -> int:
        return run_demo(workspace(), verbose=args.verbose)


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run_demo(ws, verbose: bool = False) -> int:
    from app.deploy import queries
    from app.deploy.changes import run_to_end

    example = EXAMPLES / "iris"
    if not (example / "berth.toml").exists():
        print(f"berth: the example bundle is missing ({example})", file=sys.stderr)
        return 1
    printer = ProgressPrinter(verbose, stream=sys.stdout)
    with tempfile.TemporaryDirectory(prefix="berth-demo-") as tmp:
        v2 = Path(tmp) / "iris-v2"
        shutil.copytree(example, v2)
        toml = (v2 / "berth.toml").read_text()
        name, version = _name_version(toml)
        (v2 / "berth.toml").write_text(toml.replace(f'version = "{version}"', f'version = "{version}+demo2"', 1))
        sample = (example / "example.json").read_bytes()
        with ws.connect("local") as t:
            _say(f"deploy {example.name} {version} to local ({t.abs_root})")
            run_to_end(ws.deploy(t, example).run(), printer)
            _predict(t, name, sample)
            _say(f"deploy a second version, {version}+demo2")
            run_to_end(ws.deploy(t, v2).run(), printer)
            _predict(t, name, sample)
            _say("roll back to the previous release")
            run_to_end(ws.change(t, "rollback", name, to=version), printer)
            _predict(t, name, sample)
            _say("status")
            for row in queries.status(t):
                print(f"  {row['model']} {row['version']} {row['state']} on 127.0.0.1:{row['port']}")
    print("\nThe model keeps running: try `berth predict iris --server local --input @resources/examples/iris/example.json`"
          "\nand `berth audit list`. Stop it with `berth stop iris --server local`.")
    return 0


def _predict(t, name: str, sample: bytes) -> None:
    from app.deploy import queries

    output, seconds, headers = queries.predict(t, name, sample)
    print(f"  predict {json.dumps(json.loads(sample))}\n       -> {json.dumps(output)}  "
          f"[{headers.get('X-Berth-Version')}, {seconds * 1000:.1f} ms]")


def _name_version(toml: str) -> tuple[str, str]:
    import tomllib

    model = tomllib.loads(toml)["model"]
    return model["name"], model["version"]
