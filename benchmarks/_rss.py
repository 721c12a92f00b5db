"""Peak resident memory of the running process, comparable between processes the benchmarks spawn."""
from __future__ import annotations

import resource
import sys


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB.

    On Linux ``VmHWM`` of ``/proc/self/status``: it starts afresh at exec, whereas ``ru_maxrss`` is
    carried over from the parent across fork + exec (a child of a parent holding 650 MiB reports at
    least 650 MiB). Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
