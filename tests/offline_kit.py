"""Offline installs without PyPI: tiny wheels made here (a zip with its metadata), a PEP 503
"simple" index of them served over loopback HTTP (optionally behind basic auth), and a bundle that
needs them. Nothing here reaches the internet or the machine's local wheel folder."""
from __future__ import annotations

import base64
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

TINY = "berth_tiny_offline"
DEP = "berth_tiny_dep"


def make_wheel(folder: Path, name: str, version: str, code: str, requires: tuple[str, ...] = (),
               tag: str = "py3-none-any") -> Path:
    """A minimal valid wheel of one module `name` with `code`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-{tag}.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": code,
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (
            name.replace("_", "-"), version, "".join(f"Requires-Dist: {r}\n" for r in requires)),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: berth-tests\nRoot-Is-Purelib: true\nTag: {tag}\n",
    }
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for arc, text in files.items():
            data = text.encode()
            z.writestr(zipfile.ZipInfo(arc, (2020, 1, 1, 0, 0, 0)), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{arc},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        z.writestr(zipfile.ZipInfo(f"{info}/RECORD", (2020, 1, 1, 0, 0, 0)), "\n".join(record) + "\n")
    return path


BACKEND = """\"\"\"An in-tree PEP 517 backend (stdlib only): builds this sdist's one module into a wheel tagged TAG.\"\"\"
import base64, hashlib, os, zipfile

NAME, VERSION, TAG = %r, %r, %r
HERE = os.path.dirname(os.path.abspath(__file__))


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    import time
    time.sleep(%r)  # a build that compiles for a long time
    info = "%%s-%%s.dist-info" %% (NAME, VERSION)
    with open(os.path.join(HERE, NAME + ".py")) as f:
        files = {NAME + ".py": f.read(),
                 info + "/METADATA": "Metadata-Version: 2.1\\nName: %%s\\nVersion: %%s\\n" %% (NAME.replace("_", "-"), VERSION),
                 info + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: berth-tests\\nRoot-Is-Purelib: true\\nTag: %%s\\n" %% TAG}
    name = "%%s-%%s-%%s.whl" %% (NAME, VERSION, TAG)
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for arc, text in files.items():
            data = text.encode()
            z.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append("%%s,sha256=%%s,%%d" %% (arc, digest, len(data)))
        record.append(info + "/RECORD,,")
        z.writestr(info + "/RECORD", "\\n".join(record) + "\\n")
    return name
"""


def make_sdist(folder: Path, name: str, version: str, code: str, tag: str = "py3-none-any",
               build_seconds: float = 0) -> Path:
    """A source distribution (no wheel) whose in-tree backend needs nothing from an index; the
    wheel it builds carries `tag` (a platform tag for an sdist that is not pure Python)."""
    import io
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    top = f"{name}-{version}"
    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "tinybackend"\nbackend-path = ["."]\n',
        "tinybackend.py": BACKEND % (name, version, tag, build_seconds),
        f"{name}.py": code,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
    }
    path = folder / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.mtime, info.mode = len(data), 1577836800, 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def tiny_wheels(folder: Path) -> list[Path]:
    """berth-tiny-offline 1.0 (needs berth-tiny-dep) and berth-tiny-dep 1.0."""
    return [make_wheel(folder, TINY, "1.0", f"from {DEP} import FACTOR\n\ndef scale(x):\n    return x * FACTOR\n",
                       requires=("berth-tiny-dep>=1.0",)),
            make_wheel(folder, DEP, "1.0", "FACTOR = 0.5\n")]


def write_simple_index(wheels: list[Path], root: Path) -> Path:
    """`root/simple/<project>/index.html` linking each wheel or sdist (copied to `root/files/`)."""
    (root / "files").mkdir(parents=True, exist_ok=True)
    by_project: dict[str, list[str]] = {}
    for w in wheels:
        (root / "files" / w.name).write_bytes(w.read_bytes())
        project = w.name.split("-")[0].replace("_", "-").lower()  # name-version.tar.gz too
        digest = hashlib.sha256(w.read_bytes()).hexdigest()
        by_project.setdefault(project, []).append(f'<a href="/files/{w.name}#sha256={digest}">{w.name}</a>')
    for project, links in by_project.items():
        (root / "simple" / project).mkdir(parents=True, exist_ok=True)
        (root / "simple" / project / "index.html").write_text("<html><body>%s</body></html>" % "<br>".join(links))
    return root


class IndexServer:
    """The folder `root` over http://127.0.0.1:PORT; with `auth=(user, password)`, basic auth is
    required (401 otherwise). `.authorized` counts the requests that carried the right password."""

    def __init__(self, root: Path, auth: tuple[str, str] | None = None):
        self.root, self.auth = root, auth
        self.authorized = 0
        self.refused = 0
        self.requests = 0
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def do_GET(self):
                outer.requests += 1
                if outer.auth is not None:
                    wanted = "Basic " + base64.b64encode(("%s:%s" % outer.auth).encode()).decode()
                    if self.headers.get("Authorization") != wanted:
                        outer.refused += 1
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="test"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    outer.authorized += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/simple/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


MODEL = '''from berth_tiny_offline import scale


class Model(object):
    def predict(self, input):
        return {"y": scale(float(sum(input["features"])))}
'''


def tiny_bundle(folder: Path, version: str = "1.0.0", requirement: str = "berth-tiny-offline==1.0",
                name: str = "tiny") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "berth.toml").write_text(
        f'[model]\nname = "{name}"\nversion = "{version}"\nentrypoint = "model:Model"\npython = ">=3.8"\n'
        'requirements = "requirements.txt"\ninput_example = "example.json"\n\n[serve]\nruntime = "venv"\n')
    (folder / "model.py").write_text(MODEL)
    (folder / "example.json").write_text('{"features": [1, 2, 3]}\n')
    (folder / "requirements.txt").write_text(requirement + "\n")
    return folder
