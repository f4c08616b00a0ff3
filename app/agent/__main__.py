import os
import signal
import sys

from .main import main, on_signal

# Whatever the login's umask (000 was seen), nothing the agent or its runners write is writable, or
# readable, by other users: request logs hold model inputs and outputs, the journal who did what.
os.umask(0o077)

for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, on_signal)
sys.exit(main(sys.argv[1:]))
