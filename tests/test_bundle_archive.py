"""Packing is reproducible; unpacking refuses hostile archives before writing anything."""
import gzip
import io
import os
import shutil
import tarfile

import pytest

from app.bundle import (BundleError, UnsafeArchive, check_archive, content_sha256, extract_archive,
                        list_files, pack)

MANIFEST = '[model]\nname = "iris"\nversion = "1.0.0"\nentrypoint = "model:Model"\n'


def make_bundle(folder):
    (folder / "data").mkdir(parents=True)
    (folder / "berth.toml").write_text(MANIFEST)
    (folder / "model.py").write_text("class Model:\n    def predict(self, x):\n        return x\n")
    (folder / "data" / "coef.json").write_text("[1, 2, 3]")
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(folder / "run.sh", 0o755)
    return folder


def make_tar(path, members):
    """members: (TarInfo, bytes or None); written as a .tar.gz."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def reg(name, data=b"x"):
    return tarfile.TarInfo(name), data


def link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def special(name, kind):
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = kind, 1, 3
    return info, None


def assert_refused(archive, dest, fragment, **limits):
    with pytest.raises(UnsafeArchive) as caught:
        check_archive(archive, **limits)
    assert fragment in str(caught.value)
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(archive, dest, **limits)
    assert fragment in str(caught.value)
    assert archive.name in str(caught.value)
    assert not dest.exists()  # nothing written, not even the folder
    return str(caught.value)


# --- hostile archives ------------------------------------------------------------------------

@pytest.mark.parametrize("members, fragment", [
    ([reg("berth.toml"), reg("/etc/cron.d/evil")], "'/etc/cron.d/evil' path is absolute"),
    ([reg("berth.toml"), reg("../x")], "'../x' path goes outside the bundle"),
    ([reg("berth.toml"), reg("a/../../x")], "'a/../../x' path goes outside the bundle"),
    ([reg("berth.toml"), reg("a/../b")], "'a/../b' path goes outside the bundle"),
    ([reg("berth.toml"), link("passwd", "/etc/passwd")], "'passwd' is a link to an absolute path ('/etc/passwd')"),
    ([reg("berth.toml"), link("up", "../..")], "'up' is a link that leaves the bundle ('../..')"),
    ([reg("berth.toml"), link("a/up", "../../etc/passwd")], "'a/up' is a link that leaves the bundle"),
    ([reg("berth.toml"), link("hard", "../outside", tarfile.LNKTYPE)], "'hard' is a link that leaves the bundle"),
    ([reg("berth.toml"), link("hard", "/etc/shadow", tarfile.LNKTYPE)], "'hard' is a link to an absolute path"),
    ([reg("berth.toml"), link("dangling", "missing.py")], "'dangling' is a link to nothing in the archive"),
    ([reg("berth.toml"), link("dirlink", ".")], "'dirlink' is a link to a folder"),
    ([reg("berth.toml"), link("a", "b"), link("b", "a")], "is part of a link loop"),
    ([reg("berth.toml"), special("null", tarfile.CHRTYPE)], "'null' is a device"),
    ([reg("berth.toml"), special("disk", tarfile.BLKTYPE)], "'disk' is a device"),
    ([reg("berth.toml"), special("pipe", tarfile.FIFOTYPE)], "'pipe' is a fifo"),
    ([reg("berth.toml"), reg("berth.toml", b"y")], "'berth.toml' appears twice"),
    ([reg("berth.toml"), link("d", "berth.toml"), reg("d/x")], "'d/x' sits under 'd', which is a file or a link"),
    ([reg("berth.toml"), reg("f"), reg("f/x")], "'f/x' sits under 'f'"),
    ([reg("berth.toml"), reg("a\\..\\..\\x")], "path uses backslashes"),
])
def test_hostile_member_is_refused_before_writing(tmp_path, members, fragment):
    archive = make_tar(tmp_path / "evil.tar.gz", members)
    message = assert_refused(archive, tmp_path / "dest", fragment)
    assert "nothing was extracted" in message


def test_refusal_leaves_an_existing_empty_dest_empty(tmp_path):
    archive = make_tar(tmp_path / "evil.tar.gz", [reg("ok.txt"), reg("../x")])
    (tmp_path / "dest").mkdir()
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []
    assert not (tmp_path / "x").exists()


def test_links_inside_become_regular_copies(tmp_path):
    archive = make_tar(tmp_path / "ok.tar.gz", [
        reg("berth.toml", b"toml"), reg("data/real.bin", b"payload"),
        link("data/soft.bin", "real.bin"), link("hard.bin", "data/real.bin", tarfile.LNKTYPE),
        link("chain.bin", "data/soft.bin")])
    extract_archive(archive, tmp_path / "out")
    for name in ("data/soft.bin", "hard.bin", "chain.bin"):
        path = tmp_path / "out" / name
        assert not path.is_symlink() and path.read_bytes() == b"payload"
        assert os.stat(path).st_nlink == 1


def test_too_many_members_via_argument(tmp_path):
    archive = make_tar(tmp_path / "many.tar.gz", [reg(f"f{i}") for i in range(6)])
    assert_refused(archive, tmp_path / "dest", "more than 5 members", max_files=5)
    assert len(check_archive(archive, max_files=6)) == 6


def test_too_large_via_argument(tmp_path):
    archive = make_tar(tmp_path / "big.tar.gz", [reg("a", b"x" * 600), reg("b", b"x" * 500)])
    assert_refused(archive, tmp_path / "dest", "content is larger than 1000 bytes", max_bytes=1000)
    assert len(check_archive(archive, max_bytes=1100)) == 2


def test_link_copies_count_towards_the_size_limit(tmp_path):
    members = [reg("big", b"x" * 400)] + [link(f"l{i}", "big", tarfile.LNKTYPE) for i in range(3)]
    archive = make_tar(tmp_path / "links.tar.gz", members)
    assert_refused(archive, tmp_path / "dest", "larger than 1000 bytes", max_bytes=1000)


def test_limits_from_environment(tmp_path, monkeypatch):
    archive = make_tar(tmp_path / "big.tar.gz", [reg("a", b"x" * 2000), reg("b"), reg("c")])
    monkeypatch.setenv("BERTH_MAX_BUNDLE_BYTES", "1024")
    assert_refused(archive, tmp_path / "dest", "larger than 1024 bytes")
    monkeypatch.delenv("BERTH_MAX_BUNDLE_BYTES")
    monkeypatch.setenv("BERTH_MAX_BUNDLE_FILES", "2")
    assert_refused(archive, tmp_path / "dest", "more than 2 members")
    assert len(check_archive(archive, max_files=3)) == 3  # an argument wins over the environment
    monkeypatch.setenv("BERTH_MAX_BUNDLE_FILES", "lots")
    with pytest.raises(BundleError, match=r"\$BERTH_MAX_BUNDLE_FILES must be a whole number"):
        check_archive(archive)


def test_not_gzip_is_refused(tmp_path):
    archive = tmp_path / "bundle.tar.gz"
    archive.write_text("this is not an archive")
    assert_refused(archive, tmp_path / "dest", "not a gzip file")


def test_plain_tar_is_refused_as_not_gzip(tmp_path):
    archive = tmp_path / "bundle.tar.gz"
    with tarfile.open(archive, "w") as tar:
        tar.addfile(*[tarfile.TarInfo("berth.toml"), io.BytesIO(b"")])
    assert_refused(archive, tmp_path / "dest", "not a gzip file")


def test_truncated_archive_is_refused(tmp_path):
    good = pack(make_bundle(tmp_path / "b"), tmp_path / "good.tar.gz") and (tmp_path / "good.tar.gz").read_bytes()
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(good[: len(good) // 2])
    assert_refused(archive, tmp_path / "dest", "corrupt or truncated archive")


def test_gzip_of_something_else_is_refused(tmp_path):
    archive = tmp_path / "notatar.tar.gz"
    archive.write_bytes(gzip.compress(b"hello " * 1000))
    assert_refused(archive, tmp_path / "dest", "corrupt or truncated archive")


def test_extract_refuses_a_non_empty_dest(tmp_path):
    archive = pack(make_bundle(tmp_path / "b"), tmp_path / "b.tar.gz") and tmp_path / "b.tar.gz"
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "keep.txt").write_text("mine")
    with pytest.raises(BundleError, match="new or empty folder"):
        extract_archive(archive, tmp_path / "dest")
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["keep.txt"]


def test_tar_made_with_dot_prefix_and_dir_members_is_accepted(tmp_path):
    archive = tmp_path / "cli.tar.gz"
    folder = make_bundle(tmp_path / "b")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=".")
    extract_archive(archive, tmp_path / "out")
    assert content_sha256(list_files(tmp_path / "out")) == content_sha256(list_files(folder))


# --- packing ---------------------------------------------------------------------------------

def test_pack_twice_gives_identical_bytes(tmp_path):
    folder = make_bundle(tmp_path / "b")
    first = pack(folder, tmp_path / "one.tar.gz")
    second = pack(folder, tmp_path / "two.tar.gz")
    assert first == second
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()


def test_copy_with_other_mtimes_permissions_and_umask_packs_identically(tmp_path):
    folder = make_bundle(tmp_path / "b")
    old = os.umask(0o077)
    try:
        copy = tmp_path / "copy"
        shutil.copytree(folder, copy, copy_function=shutil.copyfile)  # new mtimes, umask'd modes
    finally:
        os.umask(old)
    os.chmod(copy / "run.sh", 0o700)
    os.chmod(copy / "model.py", 0o600)
    os.chmod(folder / "data" / "coef.json", 0o664)
    os.utime(copy / "model.py", (1_000_000, 1_000_000))
    assert oct(os.stat(copy / "model.py").st_mode & 0o777) != oct(os.stat(folder / "model.py").st_mode & 0o777)
    assert pack(folder, tmp_path / "a.tar.gz") == pack(copy, tmp_path / "b.tar.gz")


def test_archive_members_and_gzip_header_are_normalised(tmp_path):
    folder = make_bundle(tmp_path / "b")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"junk")
    for junk in (".git/config", ".venv/bin/python", "venv/x", "pkg.egg-info/PKG-INFO",
                 ".ipynb_checkpoints/x.ipynb", "data/.DS_Store", "old.pyc"):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_text("junk")
    archive = tmp_path / "out.tar.gz"
    pack(folder, archive)
    raw = archive.read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08" and raw[3] == 0  # gzip, no FNAME flag
    assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["berth.toml", "data/coef.json", "model.py", "run.sh"]
    assert all(m.isreg() and m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert {m.name: m.mode for m in members}["run.sh"] == 0o755
    assert {m.name: m.mode for m in members}["model.py"] == 0o644


def test_content_sha256_of_folder_equals_that_of_extracted_archive(tmp_path):
    folder = make_bundle(tmp_path / "b")
    os.symlink("data/coef.json", folder / "coef-link.json")
    pack(folder, tmp_path / "b.tar.gz")
    extract_archive(tmp_path / "b.tar.gz", tmp_path / "out")
    files = list_files(folder)
    assert [f.path for f in files] == ["berth.toml", "coef-link.json", "data/coef.json", "model.py", "run.sh"]
    assert list_files(tmp_path / "out") != files  # sources differ...
    assert content_sha256(list_files(tmp_path / "out")) == content_sha256(files)  # ...identity does not
    assert os.stat(tmp_path / "out" / "run.sh").st_mode & 0o777 == 0o755


def test_content_sha256_changes_with_content_and_mode(tmp_path):
    folder = make_bundle(tmp_path / "b")
    before = content_sha256(list_files(folder))
    os.chmod(folder / "model.py", 0o755)
    after_mode = content_sha256(list_files(folder))
    (folder / "model.py").write_text("changed")
    assert len({before, after_mode, content_sha256(list_files(folder))}) == 3


def test_link_inside_a_folder_is_packed_as_a_file(tmp_path):
    folder = make_bundle(tmp_path / "b")
    os.symlink("data", folder / "data-link")
    pack(folder, tmp_path / "b.tar.gz")
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        member = tar.getmember("data-link/coef.json")
        assert member.isreg() and tar.extractfile(member).read() == b"[1, 2, 3]"


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.txt"])
def test_link_leaving_a_folder_is_refused(tmp_path, target):
    folder = make_bundle(tmp_path / "b")
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(target, folder / "leak")
    with pytest.raises(BundleError, match=r"^leak: symlink points outside the bundle"):
        pack(folder, tmp_path / "b.tar.gz")
    assert not (tmp_path / "b.tar.gz").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".b.tar.gz")] == []


def test_link_loop_in_a_folder_is_refused(tmp_path):
    folder = make_bundle(tmp_path / "b")
    os.symlink("..", folder / "data" / "up")
    with pytest.raises(BundleError, match="symlink loop"):
        list_files(folder)


def test_pack_needs_a_berth_toml(tmp_path):
    folder = make_bundle(tmp_path / "b")
    (folder / "berth.toml").unlink()
    with pytest.raises(BundleError, match="no berth.toml at its root"):
        pack(folder, tmp_path / "b.tar.gz")


def test_pack_into_the_bundle_folder_does_not_pack_itself(tmp_path):
    folder = make_bundle(tmp_path / "b")
    first = pack(folder, folder / "b.tar.gz")
    assert pack(folder, folder / "b.tar.gz") == first  # the previous archive is not packed in
    with tarfile.open(folder / "b.tar.gz") as tar:
        assert "b.tar.gz" not in tar.getnames()
