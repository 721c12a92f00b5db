"""Whether a deep method has weights to run with, in words for the dock widget (no torch import).

A deep method (``Backend.needs_weights``) runs with, in this order (see
:func:`inpaint_plugin.deep._weights.resolve_weights`): the checkpoint in its ``weights`` field, the
weights imported into the cache (``inpaint-plugin weights import``, the widget's "Import weights…"),
or the official weights downloaded on first use where the weights table has a direct link. This
module tells which applies without loading anything, so the widget can say it next to the method
and refuse a run that would fail for want of weights before any worker starts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = ["WeightsState", "weights_state", "licence_text"]


@dataclass(frozen=True)
class WeightsState:
    """What a run of a deep method would use.

    Attributes
    ----------
    ready : bool
        A run has weights (given, imported, or downloadable now).
    text : str
        One line for the info text, e.g. ``"weights: imported (big-lama.ckpt, 2026-12-05)"``.
    problem : str
        Why a run cannot start (empty when ``ready``): what is missing and how to get it.
    """

    ready: bool
    text: str
    problem: str = ""


def _spec(method: str):
    """The ModelSpec of a registered deep method, or None (e.g. a third-party backend without one)."""
    try:
        from ..deep._backend import find_spec

        return find_spec(method)
    except (ImportError, ValueError):
        return None


def licence_text(method: str) -> str:
    """The licences of the official weights of ``method``, from its weights table.

    Parameters
    ----------
    method : str
        A registered method.

    Returns
    -------
    str
        ``"licence of the official weights: ..."`` (distinct licences joined by ``"; "``), or ``""``
        when the method has no weights table or it names no licence.
    """
    spec = _spec(method)
    if spec is None:
        return ""
    seen = []
    for entry in spec.registry:
        licence = getattr(entry, "licence", "")
        if licence and licence not in seen:
            seen.append(licence)
    if not seen:
        return ""
    return "licence of the official weights: " + "; ".join(seen)


def weights_state(method: str, given: Optional[str]) -> Optional[WeightsState]:
    """The weights a run of ``method`` would use, or None when ``method`` needs no weights.

    Parameters
    ----------
    method : str
        A registered method.
    given : str or None
        The value of its ``weights`` field (None or ``""`` when empty).

    Returns
    -------
    WeightsState or None
        Whether a run is ready and the line to show; None for methods without weights (and for
        unknown method names).
    """
    from .. import methods

    backend = methods().get(method)
    if backend is None or not backend.needs_weights:
        return None
    if given:
        path = Path(os.fspath(given)).expanduser()
        if path.exists():
            return WeightsState(True, f"weights: {path.name} (from the weights field)")
        return WeightsState(False, f"weights: {path} not found",
                            f"the weights file or folder {str(path)!r} does not exist; choose another one "
                            "in the weights field, or clear the field to use the imported weights")
    spec = _spec(method)
    if spec is None:  # a third-party deep backend: its own business where the weights come from
        return WeightsState(True, "weights: the method's default")
    from ..deep import _weights

    info = _weights.imported_info(spec.name) if hasattr(_weights, "imported_info") else None
    if info is not None:
        source = Path(str(info.get("source", "?"))).name or str(info.get("source"))
        when = str(info.get("imported_at", ""))[:10]
        return WeightsState(True, f"weights: imported ({source}{', ' + when if when else ''})")
    entry = spec.registry[0] if spec.registry else None
    if entry is not None and entry.downloadable and not _weights.is_offline():
        return WeightsState(True, f"weights: the official {entry.name!r} weights are downloaded on the first run")
    how = (entry.instructions if entry is not None and entry.instructions else spec.weights_help).rstrip(".")
    return WeightsState(False, "weights: none (import them with “Import weights…”)",
                        f"method {spec.name!r} needs trained weights and none are imported: use "
                        f"“Import weights…” (a checkpoint file or folder) or choose a file in the weights field. "
                        f"{how}.")
