"""Shared fixtures, and the settings of parallel runs.

``shared_dir`` is the read-only ``../shared`` folder beside the repository (conformance vectors,
benchmark cases). Tests that need it skip with a clear reason where it is absent (e.g. a user's
clone); CI has it.

Parallel runs: ``pyproject.toml`` asks for ``-n auto --dist loadfile`` (pytest-xdist, one worker per
CPU; the tests of one file run in one worker, so a module fixture that writes a big checkpoint or
runs TensorFlow is made once). Each worker runs torch, BLAS and numba on one thread (set below,
before anything imports them), so that the workers do not oversubscribe the CPUs. ``-n 0`` runs in
this one process; ``-p no:xdist``, or a machine without pytest-xdist, too: :func:`pytest_addoption`
then accepts and ignores ``-n``/``--dist`` (with a line in the report header) so the options in
``addopts`` do not break the run. (``--dist loadgroup`` with ``xdist_group`` marks would balance
finer, but pytest 9.2 broke it silently: pytest-xdist issue #1386.)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INPAINT_PLUGIN_SHARED", REPO.parent / "shared"))

#: the name of this pytest-xdist worker ("gw0", ...), or None in a run without workers
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
#: thread pools sized at import by torch (OpenMP), BLAS and numba: one thread per worker
WORKER_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
if XDIST_WORKER:
    for _var in WORKER_THREAD_VARS:
        if _var == "NUMBA_NUM_THREADS" and "numba" in sys.modules:
            # numba read its configuration at import (another pytest plugin imported it): changing the
            # variable now makes its next compilation raise "Cannot set NUMBA_NUM_THREADS to a
            # different value once the threads have been launched" (seen in CI, where no compiled
            # cache exists yet); pytest_configure caps this thread with numba.set_num_threads instead
            continue
        os.environ.setdefault(_var, "1")


def pytest_addoption(parser, pluginmanager):
    """Without pytest-xdist (not installed, or ``-p no:xdist``), accept its ``-n``/``--dist`` options
    from ``addopts`` and run the tests in this process."""
    if pluginmanager.has_plugin("xdist"):
        return
    group = parser.getgroup("xdist (absent)")
    # pytest reserves lowercase short options for plugins: _addoption is how xdist itself adds -n
    group._addoption("-n", "--numprocesses", dest="numprocesses", default=None,
                     help="ignored: pytest-xdist is not installed or disabled (-p no:xdist)")
    group.addoption("--dist", dest="dist", default="no",
                    help="ignored: pytest-xdist is not installed or disabled (-p no:xdist)")


def pytest_report_header(config):
    if not config.pluginmanager.has_plugin("xdist") and config.getoption("numprocesses", None) not in (None, 0, "0"):
        return "pytest-xdist absent or disabled: -n/--dist ignored, the tests run in this process"
    return None


def pytest_configure(config):
    if not XDIST_WORKER:
        return
    # imported (by another pytest plugin: napari's imports numba) before this file set the variables
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(1)  # this thread's parallel loops (the tests' own thread)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared material not found at {SHARED} (set INPAINT_PLUGIN_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def conformance_dir(shared_dir) -> Path:
    d = shared_dir / "conformance"
    if not d.is_dir():
        pytest.skip(f"no conformance vectors at {d}")
    return d


@pytest.fixture(scope="session")
def fill_state_dict(conformance_dir):
    """``fill_state_dict(state_dict, seed, gain)`` from ``shared/conformance/fill.py``."""
    if str(conformance_dir) not in sys.path:
        sys.path.insert(0, str(conformance_dir))
    from fill import fill_state_dict as f

    return f


@pytest.fixture(scope="module")
def tiny_deep_methods():
    """Registers the tiny-width variants of the deep methods (``_tiny_deep.py``) while the tests of
    one module run; yields ``{name: Backend}`` of the variants."""
    import _tiny_deep
    import inpaint_plugin as ip

    ip.register(_tiny_deep.TinyDeepPlugin(), name=_tiny_deep.PLUGIN_NAME)
    try:
        yield dict(_tiny_deep.BACKENDS)
    finally:
        ip.unregister(name=_tiny_deep.PLUGIN_NAME)
        if "inpaint_plugin.deep._run" in sys.modules:  # the variants' networks are of no further use
            sys.modules["inpaint_plugin.deep._run"].clear_model_cache()


@pytest.fixture(scope="session")
def bench_dir(shared_dir) -> Path:
    d = shared_dir / "bench"
    if not d.is_dir():
        pytest.skip(f"no benchmark cases at {d}")
    return d


def pytest_collection_modifyitems(config, items):
    """The fast loop (``pytest -m "not slow"``): tests parametrized with a registered deep method
    (a full-width network: seconds per call on a CPU) are marked slow; the contract tests run the
    tiny-width variants (``_tiny_deep.py``) instead, which are not registered methods and stay in the
    fast loop."""
    try:
        import inpaint_plugin as ip

        deep = {name for name, b in ip.methods().items() if b.needs_weights}
    except Exception:  # pragma: no cover - a broken package fails in the tests themselves
        return
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(isinstance(v, str) and v in deep for v in params.values()):
            item.add_marker(pytest.mark.slow)
