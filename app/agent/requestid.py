"""Request ids: every prediction answer carries one (`X-Request-Id`) and the request log records it,
so labels that arrive later (`POST /feedback`) and an experiment's two versions can be matched to
the request. An id the client (or the experiment router) sent is kept when it is a plain token;
anything else is replaced, so a header cannot inject lines into a log or a response."""
import os
import re

HEADER = "X-Request-Id"
SHADOW_HEADER = "x-berth-shadow"  # the router's copy of a request for shadow B (lower case: as parsed)
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")


def request_id(incoming=None):
    if incoming and _TOKEN.match(incoming):
        return incoming
    return os.urandom(12).hex()
