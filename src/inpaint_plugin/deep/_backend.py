"""Deep networks as backends: :func:`make_backend` wraps a :class:`ModelSpec` into a
:class:`~inpaint_plugin._backend.Backend`; :func:`find_spec` and :func:`random_checkpoint` look a
registered deep method up."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from .._backend import Backend, Param
from ._device import DEVICES, require_torch
from ._spec import ModelSpec

__all__ = ["find_spec", "make_backend", "random_checkpoint"]

#: the backend calls progress(done, total) after each batch of crops/tiles (see ``_run.run``); only
#: passed where this version of :class:`Backend` has the field
_PROGRESS = {"reports_progress": True} if "reports_progress" in {f.name for f in dataclasses.fields(Backend)} else {}


def make_backend(spec: ModelSpec, description: str, extra_params: Sequence[Param] = ()) -> Backend:
    """A :class:`Backend` running ``spec`` through :func:`run`.

    The backend is 2-D, RGB (the API maps other channel counts), float32 and normalised to [0, 1], and
    needs weights. Its parameters are ``weights`` (path, default None = registry default), ``device``,
    ``resolution`` and ``extra_params`` (passed on to ``spec.predict``). It reports progress: ``func``
    takes ``progress=callback(done, total)``, called after each batch of crops/tiles; the callback may
    raise to cancel between them.

    Parameters
    ----------
    spec : ModelSpec
        The network.
    description : str
        One line for ``methods()``, the CLI and the widget.
    extra_params : sequence of Param
        Further parameters, passed on to ``spec.predict``.

    Returns
    -------
    Backend
    """
    default = spec.registry[0] if spec.registry and spec.registry[0].downloadable else None
    params = (
        Param("weights", "path", None,
              f"checkpoint ({'folder' if any(e.folder for e in spec.registry) else 'file'})"
              + "; None uses the weights imported with `inpaint-plugin weights import`"
              + (f", else downloads the official {default.name!r} weights" if default else "")
              + f". {spec.weights_help}"),
        Param("device", "str", "auto", "torch device: auto (cuda, then mps, then cpu), cpu, cuda or mps", choices=DEVICES),
        Param("resolution", "str", "auto", "how images of any size are fed to the network", choices=spec.resolutions),
        *extra_params,
    )

    def func(image, mask, weights=None, device="auto", resolution="auto", progress=None, **extra):
        require_torch(f"method {spec.name!r}")
        from ._run import run

        return run(spec, image, mask, weights=weights, device=device, resolution=resolution, progress=progress,
                   **extra)

    func.__name__ = f"{spec.name}_inpaint"
    func.__doc__ = f"Fill holes with the {spec.name} network (see inpaint_plugin.deep._run.run)."
    func.spec = spec  # lets random_checkpoint() find the spec of a registered method
    return Backend(
        name=spec.name,
        func=func,
        description=description,
        spatial_ndim=2,
        channels="rgb",
        params=params,
        needs_weights=True,
        dtype="float32",
        normalize="range",
        margin=spec.margin,
        deterministic=True,
        **_PROGRESS,
    )


def find_spec(method_name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered deep method.

    Parameters
    ----------
    method_name : str
        A registered deep method, e.g. ``"lama"``.

    Returns
    -------
    ModelSpec

    Raises
    ------
    ValueError
        Naming the registered deep methods when ``method_name`` is not one of them.
    """
    from inpaint_plugin._registry import backends

    table = backends()
    spec = getattr(getattr(table.get(method_name), "func", None), "spec", None)
    if not isinstance(spec, ModelSpec):
        deep = sorted(n for n, b in table.items() if isinstance(getattr(b.func, "spec", None), ModelSpec))
        raise ValueError(f"method_name={method_name!r} is not a registered deep method; known: {deep}")
    return spec


def random_checkpoint(method_name: str, path, seed: int = 0) -> Path:
    """Write a checkpoint with deterministic random weights, in the official format, for a deep method.

    Parameters
    ----------
    method_name : str
        A registered deep method (e.g. ``"medfe"``).
    path : str or os.PathLike
        File or folder to write (as the method's official format needs).
    seed : int

    Returns
    -------
    Path
        ``path``.
    """
    spec = find_spec(method_name)
    path = Path(os.fspath(path))
    spec.save_random(path, seed=seed)
    return path
