import os
import signal
import sys

from . import main as agent_main
from .main import main, on_signal

# Whatever the login's umask (000 was seen), nothing the agent or its runners write is writable, or
# readable, by other users: request logs hold model inputs and outputs, the journal who did what.
os.umask(0o077)
agent_main.OWN_PROCESS = True  # a shared root's commands set its own umask (027: layout.Root.umask)

for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, on_signal)
sys.exit(main(sys.argv[1:]))
