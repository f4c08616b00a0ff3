"""How Berth writes figures and names for people: one spelling for sizes everywhere (CLI, console,
reports), and one order for server names (natural: s2 before s10)."""
import re


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def natural_key(name: str) -> tuple:
    """Sort key that reads numbers as numbers, as people do: s2 before s10, web-9 before web-10.
    Text parts compare case-insensitively; a number part sorts before a text part."""
    return tuple((0, int(part), part) if part.isdigit() else (1, part.lower(), part)
                 for part in re.split(r"(\d+)", name) if part)
