"""Ending what still runs from a temporary root (a profile's trial, the self-test) before the folder
goes: a scheduler asked to stop before it wrote its pid file, or a runner whose stop failed, would
otherwise hold a port or a CPU after its root is gone."""
import psutil


def end_processes_naming(path: str, timeout: float = 5.0) -> int:
    """Terminate, then kill after `timeout`, every process whose command line names `path`; how many."""
    left = [p for p in psutil.process_iter(["cmdline"]) if any(path in part for part in p.info["cmdline"] or ())]
    for proc in left:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(left, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return len(left)
