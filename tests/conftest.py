"""Shared fixtures.

``shared_dir`` is the read-only ``../shared`` folder beside the repository (conformance vectors,
benchmark cases). Tests that need it skip with a clear reason where it is absent (e.g. a user's
clone); CI has it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INPAINT_PLUGIN_SHARED", REPO.parent / "shared"))


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


@pytest.fixture(scope="session")
def bench_dir(shared_dir) -> Path:
    d = shared_dir / "bench"
    if not d.is_dir():
        pytest.skip(f"no benchmark cases at {d}")
    return d


def pytest_collection_modifyitems(config, items):
    """The fast loop (``pytest -m "not slow"``): the contract tests that run every registered method
    mark their deep-network cases slow (full-width networks on a CPU take seconds per call; the
    networks' own tests and the public-path tests check them)."""
    try:
        import inpaint_plugin as ip

        deep = {name for name, b in ip.methods().items() if b.needs_weights}
    except Exception:  # pragma: no cover - a broken package fails in the tests themselves
        return
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(isinstance(v, str) and v in deep for v in params.values()):
            item.add_marker(pytest.mark.slow)
