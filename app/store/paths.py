"""Where Berth keeps its own state: $BERTH_HOME when set (tests, portable installs), else the
platform's data folder (platformdirs). The folder holds the audit log and known_hosts, so one that
other users may write is refused (they could plant a host key), and a new one is private."""
import os
import stat
from pathlib import Path

import platformdirs

from app import errors
from app.errors import BerthError

FIX = "set BERTH_HOME to a folder you can write (or fix XDG_DATA_HOME / HOME)"


def berth_home() -> Path:
    env = os.environ.get("BERTH_HOME")
    home = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("berth", appauthor=False))
    try:
        if not home.is_dir():
            home.mkdir(parents=True, exist_ok=True)
            os.chmod(home, 0o700)  # whatever the umask: others have no business in the audit log
        info = home.stat()
    except FileExistsError:
        raise _unusable(home, "it exists and is not a folder") from None
    except OSError as e:
        raise _unusable(home, e.strerror or str(e)) from None
    if os.name == "posix":
        _check_owner(home, info)
    return home


def _unusable(home: Path, why: str) -> BerthError:
    return BerthError(f"Berth cannot use {home} as its data folder ({why}): {FIX}", code=errors.CONFIG,
                      detail={"path": str(home)})


def _check_owner(home: Path, info: os.stat_result) -> None:
    if info.st_uid != os.geteuid():
        raise BerthError(f"{home} belongs to another user (uid {info.st_uid}), so Berth will not keep its data "
                         f"there: {FIX}", code=errors.CONFIG, detail={"path": str(home)})
    if info.st_mode & stat.S_IWOTH:
        raise BerthError(f"{home} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}): they could "
                         f"change its known host keys or audit log; check its files, then run `chmod 700 {home}`",
                         code=errors.CONFIG, detail={"path": str(home)})


def db_path() -> Path:
    return berth_home() / "berth.sqlite"


def known_hosts_path() -> Path:
    return berth_home() / "known_hosts"


def local_root() -> Path:
    """The built-in `local` server's Berth root."""
    return berth_home() / "local"
