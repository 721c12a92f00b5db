"""The files a training run writes beside its checkpoint ``out``.

- ``out``: the generator in the method's official checkpoint format (``inpaint(..., weights=out)``);
- ``<out>.state.pt``: the full training state, for ``resume`` (:func:`state_path`);
- ``<out>.train.json``: the held-out comparison with the classical methods (:func:`report_path`,
  :func:`read_report`; ``inpaint()`` reads it to warn about weights worse than biharmonic).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["read_report", "report_path", "state_path", "write_report"]


def state_path(out) -> Path:
    """The training-state file that belongs to the checkpoint ``out``: ``<out>.state.pt``.

    Parameters
    ----------
    out : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    Path
    """
    out = Path(os.fspath(out))
    return out.with_name(out.name + ".state.pt")


def report_path(out) -> Path:
    """The held-out comparison written beside the checkpoint ``out``: ``<out>.train.json``.

    Parameters
    ----------
    out : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    Path
    """
    from ..deep._weights import training_report_path

    return training_report_path(out)


def read_report(weights) -> dict | None:
    """The training report (``<weights>.train.json``) of a checkpoint trained by ``train()``, or None.

    It holds ``method``, ``step``, ``val_psnr``, ``baseline`` (classical PSNRs on the same held-out
    crops), ``best_classical``, ``beats_biharmonic`` and ``verdict``; ``inpaint(..., weights=...)``
    warns when such weights were worse than biharmonic on held-out data.

    Parameters
    ----------
    weights : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    dict or None
    """
    from ..deep._weights import read_training_report

    return read_training_report(weights)


def write_report(out, payload: dict) -> None:
    """Write ``payload`` as JSON to :func:`report_path` of ``out`` (atomically: a temporary file, then renamed).

    Parameters
    ----------
    out : str or os.PathLike
        The checkpoint file.
    payload : dict
        The report (floats, ints, strings, lists and dicts).
    """
    import json

    path = report_path(out)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=float))
    os.replace(tmp, path)
