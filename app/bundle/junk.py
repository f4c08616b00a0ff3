"""The one list of files that never belong to a bundle (caches, VCS, local venvs, OS litter).

They are skipped when listing, hashing and packing a folder, so a bundle's identity does not
change because someone ran it once or opened it in Finder.
"""
JUNK_NAMES = frozenset({"__pycache__", ".git", ".venv", "venv", ".DS_Store", ".ipynb_checkpoints"})
JUNK_SUFFIXES = (".pyc", ".egg-info")


def is_junk(name: str) -> bool:
    """True for a file or folder name (one path component) that is excluded at any depth."""
    return name in JUNK_NAMES or name.endswith(JUNK_SUFFIXES)
