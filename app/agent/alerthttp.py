"""One JSON POST to an alert receiver (a webhook, Alertmanager) that cannot hold the evaluator.

urllib is not used: it follows redirects (to another host, even to ftp://, with the body dropped)
and its timeout is per socket operation, so a receiver answering 1 byte a second keeps it for
ever. Here a redirect is an answer (never followed), the whole exchange has one deadline (a timer
shuts the socket when it passes), and at most ANSWER_BYTES of the answer are read. Stdlib only,
Python 3.8+. `post(url, body, timeout)` -> (HTTP status, answer text); raises Unreachable."""
import http.client
import socket
import threading
import urllib.parse

ANSWER_BYTES = 200


class Unreachable(Exception):
    """No HTTP answer: refused, timed out, reset; str() says which (never the URL: it may hold a token)."""


def post(url, body, timeout, headers=None):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unreachable("not an http(s) URL")
    try:
        port = parts.port
    except ValueError:
        raise Unreachable("the URL's port is not a number from 1 to 65535")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, port, timeout=timeout)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    expired = threading.Event()

    def cut():
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv/send of the sending thread
            except OSError:
                pass
    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        try:
            conn.connect()
            if expired.is_set():  # the deadline passed while connecting, before there was a socket to cut
                raise socket.timeout()
            conn.request("POST", target, body=body, headers=dict(headers or {}, **{
                "Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close"}))
            answer = conn.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as e:
            if expired.is_set() or isinstance(e, socket.timeout):
                raise Unreachable("no answer within %gs" % timeout)
            raise Unreachable(_reason(e))
        try:
            text = answer.read(ANSWER_BYTES) if answer.status not in (204, 304) else b""
        except (OSError, http.client.HTTPException):
            text = b""  # the status is the answer; a body that trickles or never ends is not waited for
        finally:
            answer.close()  # the answer holds the socket open after conn.close(); a 100 MB body is not drained
        status = answer.status
        if 300 <= status < 400:
            where = answer.getheader("Location") or "?"
            text = ("redirected to %s: not followed; give the receiver's final URL"
                    % _host_of(where)).encode()
        return status, " ".join(text[:ANSWER_BYTES].decode("utf-8", "replace").split())
    finally:
        timer.cancel()
        conn.close()


def _host_of(location):
    try:
        parts = urllib.parse.urlsplit(location)
        return "%s://%s" % (parts.scheme, parts.hostname) if parts.hostname else "another path"
    except ValueError:
        return "an unreadable address"


def _reason(e):
    if isinstance(e, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is the receiver running on that port?)"
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return ("%s: %s" % (type(e).__name__, text))[:ANSWER_BYTES]
