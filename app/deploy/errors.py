from app import errors
from app.errors import BerthError


class OperationFailed(BerthError):
    """A deploy, rollback, start or stop that did not happen. `log` holds the server's last lines
    (runner log, pip output) so the operator sees why without another command."""

    def __init__(self, message: str, log: list[str] | None = None, code: str = errors.FAILED):
        super().__init__(message, code, log=log or [])


def named(listed: list[dict], name: str, *, what: str, server: str, add: str, code: str) -> dict:
    """The item of `listed` named `name`, or one line naming what the server has (a typo, usually)."""
    import difflib

    for item in listed:
        if item["name"] == name:
            return item
    names = [i["name"] for i in listed]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]}?" if close else (f"; its {what}s: {', '.join(names)}" if names else
                                                        f"; it has no {what}s yet ({add})")
    raise OperationFailed(f"there is no {what} {name} on {server}{hint}", code=code)
