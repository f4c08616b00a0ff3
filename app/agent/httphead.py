"""A request's head (request line and header lines) as the runner's loop reads it (httploop.py):
the limits http.server had (a request line of MAX_LINE, MAX_HEADERS lines), MAX_HEADER_BYTES for all
header lines together (431: http.server let 100 lines of 64 KB each pile up), and how its body is
framed: only a Content-Length body is read (411 for chunked, 400 for a bad or doubled length, 413
over MAX_BODY), and any doubt closes the connection after the answer, so unread bytes are never
taken for the next request."""

MAX_BODY = 64 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024  # all header lines of a request together (431 beyond)
MAX_LINE = 65536  # the request line (414 beyond), as http.server
MAX_HEADERS = 100  # header lines (431 beyond), as http.server
MAX_HEAD = MAX_LINE + MAX_HEADER_BYTES + 4  # an incomplete head longer than this is refused


class Request:
    """What the service sees of a request. `refused`: (status, message, reason) when its framing was
    refused (411, 400, 413) and its body never read; `close`: the connection ends after the answer."""
    __slots__ = ("method", "path", "headers", "body", "refused", "close", "length")

    def __init__(self, method, path, headers, close):
        self.method, self.path, self.headers, self.close = method, path, headers, close
        self.body, self.refused, self.length = b"", None, 0


def too_long(buf, pos):
    """The refusal of an incomplete head in buf[pos:] longer than MAX_HEAD: 414 when its request line
    is over MAX_LINE, else 431. (A complete head is measured exactly by parse().)"""
    if buf.find(b"\r\n", pos, pos + MAX_LINE + 2) < 0:
        return _refusal(414, "request line over %d bytes" % MAX_LINE)
    return _refusal(431, "request headers over %d bytes" % MAX_HEADER_BYTES)


def _refusal(status, message):
    req = Request("", "", {}, True)
    req.refused = (status, message, "bad_request")
    return req


def endpoint(target):
    """The path a request target names, without its query: the absolute form (`http://host/path`,
    RFC 9112 3.2.2: a server must accept it) is its path; `*` and the like stay as they are (404)."""
    if target[:1] != "/" and target[:8].lower().startswith(("http://", "https://")):
        slash = target.find("/", target.find("//") + 2)
        target = target[slash:] if slash >= 0 else "/"
    query = target.find("?")
    return target if query < 0 else target[:query]


def parse(head, bodies):
    """A Request from the head's bytes (request line and header lines, without the blank line).
    `bodies`: {POST path whose body is read: its largest body in bytes}."""
    text = head.decode("latin-1").lstrip("\r\n")  # empty lines before a request are allowed
    lines = text.split("\r\n")
    words = lines[0].split(" ")
    if len(lines[0]) > MAX_LINE:
        return _refusal(414, "request line over %d bytes" % MAX_LINE)
    if len(text) - len(lines[0]) > MAX_HEADER_BYTES:
        return _refusal(431, "request headers over %d bytes" % MAX_HEADER_BYTES)
    if len(lines) > MAX_HEADERS + 1:
        return _refusal(431, "more than %d header lines" % MAX_HEADERS)
    if len(words) != 3:
        return _refusal(400, "bad request line %r" % lines[0][:80])
    method, target, version = words
    path = target if target in bodies else endpoint(target)  # the health check's /predict?probe=... as it is
    if version != "HTTP/1.1" and version != "HTTP/1.0":
        if version.startswith("HTTP/") and version[5:6].isdigit() and version[5:6] >= "2":
            return _refusal(505, "HTTP version %s is not supported; use HTTP/1.1" % version[:16])
        return _refusal(400, "bad HTTP version %r" % version[:16])
    headers, lengths = {}, None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            return _refusal(400, "bad header line %r" % line[:80])
        name, value = name.lower(), value.strip()
        if name == "content-length":
            lengths = [value] if lengths is None else lengths + [value]
        if name not in headers:
            headers[name] = value
    conn_header = headers.get("connection", "").lower()
    close = conn_header == "close" if version == "HTTP/1.1" else conn_header != "keep-alive"
    req = Request(method, path, headers, close)
    if method == "GET" or method == "HEAD":
        if "transfer-encoding" in headers or (lengths is not None and lengths[0] != "0"):
            req.close = True  # a body we do not read must not become the next request
    elif method == "POST":
        if path not in bodies:
            req.close = True  # its body, if any, is not read
        elif "transfer-encoding" in headers:
            req.close = True
            req.refused = (411, "send the body with a Content-Length (chunked bodies are not supported)", "bad_request")
        elif lengths is not None:
            text = lengths[0]
            if len(set(lengths)) != 1 or not (text.isdigit() and text.isascii()):
                req.close = True
                req.refused = (400, "invalid Content-Length %r" % ", ".join(lengths)[:40], "bad_request")
            elif int(text) > bodies.get(path, MAX_BODY):
                req.close = True
                req.refused = (413, "request body over %d bytes" % bodies.get(path, MAX_BODY), "too_large")
            else:
                req.length = int(text)
    else:
        req.close = True
        req.refused = (501, "unsupported method %r" % method[:16], "bad_request")
    return req
