import signal
import sys

from .main import main, on_signal

for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, on_signal)
sys.exit(main(sys.argv[1:]))
