"""What a bundle's requirements file may ask pip for: packages from the server's usual index, and
files of the bundle itself. pip obeys options inside the file, so without these rules a bundle
could switch the index (`--index-url`, `--extra-index-url`, `--trusted-host`, `--find-links`), run
a project's build from anywhere (`-e`, direct URLs), or make pip read and print files outside the
bundle (`-r /etc/shadow`). Used by `berth bundle check` (with line numbers) and by the agent before
it runs pip, so a check skipped on the desktop does not open the door on the server."""
import os
import posixpath
import re

SAFE_OPTIONS = ("--pre", "--prefer-binary", "--only-binary", "--no-binary", "--require-hashes", "--no-index")
FILE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")
REQUIREMENT_OPTIONS = ("--hash",)  # allowed after a requirement on its line
URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//|\S)")  # https://, git+ssh://, file:...
MAX_NESTING = 5


COMMENT_RE = re.compile(r"(^|\s+)#.*$")
CODING_RE = re.compile(r"coding[:=]\s*([-\w.]+)")


def logical_lines(text):
    """(line number, text) exactly as pip builds them (req_file.join_lines, then ignore_comments): a
    line ending in a backslash is glued to the next with no space and its backslashes stripped, so
    `htt\\` + `ps://...` is a URL to pip and must be one here."""
    out, start, parts = [], None, []

    def emit(number, line):
        line = COMMENT_RE.sub("", line).strip()
        if line:
            out.append((number, line))
    for number, line in enumerate(text.splitlines(), 1):
        if not line.endswith("\\") or COMMENT_RE.match(line):
            if COMMENT_RE.match(line):
                line = " " + line
            if parts:
                emit(start, "".join(parts) + line)
                parts = []
            else:
                emit(number, line)
        else:
            if not parts:
                start = number
            parts.append(line.strip("\\"))
    if parts:
        emit(start, "".join(parts))
    return out


def encoding_problem(text):
    """Why pip would decode this file otherwise than as the UTF-8 read here, or None: pip honours a
    byte-order mark (UTF-8, -16, -32) and a PEP 263 `# coding:` line, and a UTF-16 or UTF-7 file
    can spell `--index-url` in bytes that read as a package name."""
    if text.startswith("\ufeff"):
        return "starts with a byte-order mark; save it as plain UTF-8"
    if "\ufffd" in text or "\x00" in text:
        return "is not UTF-8 text; save it as plain UTF-8"
    for line in text.split("\n")[:2]:
        found = CODING_RE.search(line) if line.startswith("#") else None
        if found and found.group(1).lower().replace("_", "-") not in ("utf-8", "utf8", "ascii", "us-ascii"):
            return "declares the encoding %s, which pip would use; save it as plain UTF-8" % found.group(1)
    return None


def inside(rel, base_dir):
    """`rel` (from a file in `base_dir`, both relative to the bundle root) as a bundle path, or None
    when it is absolute or climbs out."""
    if not rel or rel.startswith(("/", "\\", "~")) or URL_RE.match(rel):
        return None
    joined = posixpath.normpath(posixpath.join(base_dir, rel.replace("\\", "/")))
    return None if joined == ".." or joined.startswith("../") or joined.startswith("/") else joined


def file_option(words):
    """(option, target) when a line is `-r FILE` / `-c FILE` in any of pip's spellings, else None."""
    name, eq, value = words[0].partition("=")
    if name in FILE_OPTIONS:
        return name, value if eq else (words[1] if len(words) > 1 else "")
    if words[0][:2] in ("-r", "-c") and len(words[0]) > 2 and not words[0].startswith("--"):
        return words[0][:2], words[0][2:]
    return None


def line_problems(line, base_dir):
    """(problem or None, bundle path of a nested -r/-c file or None) for one logical line."""
    if "${" in line:
        return "uses an environment variable (${...}), which pip would expand on the server", None
    words = line.split()
    head, name = words[0], words[0].partition("=")[0]
    nested = file_option(words)
    if nested:
        option, target = nested
        path = inside(target, base_dir)
        if path is None:
            return "%s %s points outside the bundle; only files of the bundle may be named" % (option, target), None
        return None, path
    if head.startswith("-"):
        if name in SAFE_OPTIONS:
            return None, None
        if name in ("-i", "--index-url", "--extra-index-url", "--trusted-host", "-f", "--find-links"):
            return ("%s changes where pip downloads from; the server's package index is set on the server, "
                    "not in a bundle" % name), None
        if name in ("-e", "--editable"):
            return "%s installs a project in development mode; ship a wheel in the bundle instead" % name, None
        return "the option %s is not allowed in a bundle's requirements" % name, None
    bad = [w for w in words[1:] if w.startswith("-") and w.partition("=")[0] not in REQUIREMENT_OPTIONS]
    if bad:
        return "the option %s is not allowed after a requirement (only --hash)" % bad[0], None
    if URL_RE.match(head) or re.search(r"@\s*[A-Za-z][A-Za-z0-9+.-]*:", line):
        return "%s is a URL; name the package (from the index) or ship its wheel in the bundle" % line, None
    if ("/" in head or "\\" in head or head.startswith(".")) and inside(head, base_dir) is None:
        return "%s is a path outside the bundle" % head, None
    return None, None


def requirement_problems(read, path):
    """Every (file, line, problem) of the requirements file `path` (bundle-relative) and of the files
    it names with -r / -c, each read once; `read(path)` returns a file's text, or None when the
    bundle has no such file."""
    problems, seen, todo = [], set(), [(path, 0, None)]
    while todo:
        current, depth, named_at = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        text = read(current)
        if text is None:
            problems.append(named_at + ("%s is not a file of the bundle" % current,) if named_at
                            else (current, None, "not found in the bundle"))
            continue
        encoding = encoding_problem(text)
        if encoding:
            problems.append((current, 1, encoding))
            continue
        for number, line in logical_lines(text):
            problem, nested = line_problems(line, posixpath.dirname(current))
            if problem:
                problems.append((current, number, problem))
            elif nested is not None and depth >= MAX_NESTING:
                problems.append((current, number, "requirements files nest more than %d deep" % MAX_NESTING))
            elif nested is not None:
                todo.append((nested, depth + 1, (current, number)))
    return problems


def folder_reader(bundle_dir):
    """`read` for requirement_problems over a bundle folder: None for a missing file or one that
    leaves the folder through a link."""
    root = os.path.realpath(bundle_dir)

    def read(rel):
        full = os.path.realpath(os.path.join(root, rel))
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            return None
        with open(full, encoding="utf-8", errors="replace") as f:
            return f.read()
    return read
