"""The bounds of a sampling interval, for the agent's `sample` command and every desktop caller
(the stream, the CLI's --interval): written once, here, because the agent is the leaf both sides
may import."""
MIN_INTERVAL, MAX_INTERVAL = 0.25, 60.0
