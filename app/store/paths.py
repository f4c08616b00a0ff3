"""Where Berth keeps its own state: $BERTH_HOME when set (tests, portable installs), else the
platform's data folder (platformdirs)."""
import os
from pathlib import Path

import platformdirs


def berth_home() -> Path:
    env = os.environ.get("BERTH_HOME")
    home = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("berth", appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home


def db_path() -> Path:
    return berth_home() / "berth.sqlite"


def known_hosts_path() -> Path:
    return berth_home() / "known_hosts"


def local_root() -> Path:
    """The built-in `local` server's Berth root."""
    return berth_home() / "local"
