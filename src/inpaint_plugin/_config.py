"""Run-time settings shared by the backends."""
from __future__ import annotations

import os

__all__ = ["num_threads"]

#: environment variable that caps the threads a backend may use (e.g. 1 inside a process pool)
THREADS_ENV = "INPAINT_PLUGIN_NUM_THREADS"


def num_threads() -> int:
    """Threads a backend may use.

    ``$INPAINT_PLUGIN_NUM_THREADS`` if set, otherwise the CPUs this process may run on
    (``os.sched_getaffinity``, which respects taskset/cgroup pinning, else ``os.cpu_count``).

    Returns
    -------
    int
        The number of threads, at least 1.

    Raises
    ------
    ValueError
        When the environment variable is set to something other than a positive integer.
    """
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}")
        return n
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)
