"""/proc files read cheaply, for the sampler: kept open and re-read with pread (no open/close per
sample), and the kernel's units (clock ticks, pages). Stdlib only."""
import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ProcFile:
    """A /proc file kept open and re-read from offset 0 (the kernel regenerates it each time)."""

    def __init__(self, path, size=65536):
        self.path, self.size, self.fd = path, size, None

    def read(self):
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        data = os.pread(self.fd, self.size, 0)
        while len(data) == self.size:  # did not fit: grow once and for all
            self.size *= 4
            data = os.pread(self.fd, self.size, 0)
        return data

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


def uptime(start_ticks):
    """Seconds since a process started, from its start time in clock ticks after boot."""
    try:
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        try:
            with open("/proc/uptime", "rb") as f:
                since_boot = float(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    return round(max(0.0, since_boot - start_ticks / float(CLK_TCK)), 1)
