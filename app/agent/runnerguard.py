"""Limits that keep one client from starving a runner: a bound on open connections (excess ones
refused at once with a 503) and deadlines for a request's headers, its body and its answer, kept as
timers of the runner's loop (httploop.py). Before them, 300 half-sent headers held 301 threads for
ever and 2,000 idle connections 1,886.

A connection's next request must be in (request line and headers) within REQUEST_DEADLINE, which
closes idle keep-alive connections and half-sent headers alike; a large body, and an answer the
client does not read, have BODY_DEADLINE; the model's own time to answer is never cut. At the bound a
new connection displaces the one whose next head has been awaited longest, once that is EVICT_AFTER_S:
MAX_CONNECTIONS half-sent heads (slowloris) no longer lock honest clients out for REQUEST_DEADLINE.
Large bodies under way (announced, until their answer is sent) are bounded together by MAX_LARGE_BODIES, a 503
beyond: 256 unfinished 64-MB bodies were 16 GB. A request cut off by its deadline is told so (408)."""

MAX_CONNECTIONS = 256
EVICT_AFTER_S = 1.0  # at the bound, a connection whose next head is awaited this long gives way to a new one
REQUEST_DEADLINE = 15.0  # from the end of one request (or the connect) to the end of the next one's headers
BODY_DEADLINE = 60.0  # to receive a whole body (64 MB at ~1 MB/s)
MAX_LARGE_BODIES = 256 * 1024 * 1024  # announced bytes of large bodies (> 256 KB) a runner holds at once
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 48\r\n"
        b"Retry-After: 1\r\nConnection: close\r\n\r\n"
        b'{"error": "too many connections; retry shortly"}')
BODIES_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 57\r\n"
               b"Retry-After: 1\r\nConnection: close\r\n\r\n"
               b'{"error": "too many large bodies at once; retry shortly"}')
TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: 59\r\n"
           b"Connection: close\r\n\r\n"
           b'{"error": "the request did not arrive in time; send again"}')
