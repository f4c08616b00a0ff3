"""The model bundle: manifest parsing and validation, content identity, packing, safe unpacking."""
from .archive import check_archive, extract_archive, pack
from .check import CheckResult, check_folder, check_path
from .content import FileEntry, content_sha256, list_files
from .errors import BundleError, InvalidBundle, UnsafeArchive, UnsafeFile
from .junk import is_junk
from .manifest import ENTRYPOINT_RE, NAME_RE, VERSION_RE, Manifest, Problem, parse_manifest
from .opened import OpenedBundle, open_bundle
from .scaffold import init_bundle

__all__ = [
    "BundleError", "InvalidBundle", "UnsafeArchive", "UnsafeFile",
    "Manifest", "Problem", "parse_manifest", "NAME_RE", "VERSION_RE", "ENTRYPOINT_RE",
    "FileEntry", "list_files", "content_sha256", "is_junk",
    "pack", "check_archive", "extract_archive",
    "CheckResult", "check_folder", "check_path",
    "OpenedBundle", "open_bundle", "init_bundle",
]
