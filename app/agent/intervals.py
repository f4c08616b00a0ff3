"""The bounds of a sampling interval, for the agent's `sample` command and every desktop caller
(the stream, the CLI's --interval): written once, here, because the agent is the leaf both sides
may import."""
MIN_INTERVAL, MAX_INTERVAL = 0.25, 60.0
# `sample_once` (berth monitor --once inside the agent session) holds a session thread this long at most
ONCE_MAX_WINDOW = 5.0
