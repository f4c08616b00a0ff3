"""The code that runs ON a server: standard library only, Python 3.8+.

Berth copies this package to `<root>/.berth/agent/<version>/berth_agent/` and runs it as
`python3 <root>/.berth/agent/<version>/agent.py <command>` with JSON on stdin. Every change on the
server happens here, in one process that can lock, check and undo. Modules import each other
relatively only, so the package works both as `app.agent` (tests, local disk) and `berth_agent`.
"""
