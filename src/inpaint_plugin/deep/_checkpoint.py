"""Checkpoint files: safe loading (safetensors or ``torch.load(weights_only=True)``), strict key, shape,
type and value checking, atomic writing and seeded random state_dicts.

A file from the internet never runs code here: pickles that would construct arbitrary objects are
refused by ``weights_only=True`` and never executed. What a plain pickle of tensors can still hold is
checked at load time, each refused with a ``ValueError`` naming the file: sparse tensors, wrappers nested
without end (a dict that contains itself, or thousands of ``{'state_dict': ...}`` levels: at most
:data:`MAX_WRAPPER_DEPTH` are unwrapped), and, for the tensors a network loads, NaN/inf values and
integer/bool/complex tensors where the network has floating-point weights.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MAX_WRAPPER_DEPTH", "WRAPPER_KEYS", "load_checked", "load_state_dict_file", "random_state_dict", "write_checkpoint"]

#: Wrapper keys unwrapped (repeatedly) by :func:`load_state_dict_file`, in this order of preference.
WRAPPER_KEYS = ("state_dict", "netG", "net", "generator", "G", "model", "params_ema", "params")

#: Most wrapper levels :func:`load_state_dict_file` unwraps (published checkpoints use one or two).
MAX_WRAPPER_DEPTH = 8


def _is_state_dict(obj) -> bool:
    import torch

    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def load_state_dict_file(path, *, argument: str = "weights") -> dict:
    """Load a state_dict (``{name: tensor}``) from a checkpoint file, safely.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(path, map_location="cpu", weights_only=True)``, which refuses pickles that would
    construct arbitrary objects or run code. Wrappers such as ``{"state_dict": ...}``, ``{"netG": ...}``,
    ``{"net": ...}``, ``{"generator": ...}`` or ``{"G": ...}`` (see :data:`WRAPPER_KEYS`) are unwrapped
    and a ``module.`` prefix (DataParallel) on every key is removed.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    argument : str
        Name of the user-facing argument the path came from (used in error messages).

    Returns
    -------
    dict of str to torch.Tensor

    Raises
    ------
    ValueError
        If the file is missing, truncated or corrupt, is not a state_dict, or holds objects other than
        tensors and plain containers (a pickle that would run code is refused and never executed).
    """
    import pickle

    import torch

    path = Path(os.fspath(path))
    where = f"{argument}={str(path)!r}"
    _refuse_tensorflow_checkpoint(path, where)
    if not path.is_file():
        raise ValueError(f"{where}: no such checkpoint file")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"{where}: not a readable safetensors file (truncated or corrupt?): {e}") from None
    else:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(
                f"{where}: refused to load: the file is not a plain checkpoint of tensors (it holds other "
                f"Python objects, possibly code, which are never unpickled here), or it is corrupt: {msg}"
            ) from None
        except Exception as e:  # zip / EOF / runtime errors of a truncated or foreign file
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{where}: could not read the checkpoint (truncated or corrupt?): {msg}") from None
    seen: list[str] = []
    visited: set[int] = set()
    while not _is_state_dict(obj):
        if not isinstance(obj, Mapping):
            raise ValueError(f"{where}: expected a state_dict (a mapping of names to tensors), got {type(obj).__name__}")
        if id(obj) in visited or len(seen) >= MAX_WRAPPER_DEPTH:
            raise ValueError(
                f"{where}: refused: the checkpoint's wrappers nest without end ("
                + ("a mapping contains itself" if id(obj) in visited else f"more than {MAX_WRAPPER_DEPTH} levels")
                + f": {'/'.join(seen[:MAX_WRAPPER_DEPTH])}/...); not a plain checkpoint of tensors"
            )
        visited.add(id(obj))
        key = next((k for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
        if key is None:
            keys = [k if isinstance(k, (str, int)) else type(k).__name__ for k in list(obj)[:8]]
            raise ValueError(
                f"{where}: not a state_dict: a mapping whose keys {keys} are not all names of tensors and "
                f"that has none of the wrapper keys {list(WRAPPER_KEYS)}{' (inside ' + '/'.join(seen) + ')' if seen else ''}"
            )
        seen.append(key)
        obj = obj[key]
    state = dict(obj)
    sparse = [k for k, v in state.items() if v.layout != torch.strided]
    if sparse:
        raise ValueError(f"{where}: refused: sparse or other non-dense tensors ({_shown(sparse)}); a network's "
                         "weights are dense tensors")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _refuse_tensorflow_checkpoint(path: Path, where: str) -> None:
    """A TensorFlow checkpoint (folder, ``.index``/``.data-*``/``.meta`` file or prefix) given where a
    PyTorch file is read: say so, and which network it looks like (deepfill_v1/v2 and gmcnn_tf read them)."""
    from ._tf_checkpoint import NETWORKS, find_prefix, identify, list_variables

    try:
        if find_prefix(path) is None:
            return
        kind = identify(list_variables(path))
    except (OSError, ValueError):
        return  # not a readable TF checkpoint: the PyTorch reader reports on the path
    hint = f"; it looks like {NETWORKS[kind]}" if kind else ""
    if kind:
        hint += f": use method={kind!r}, which reads it"
    raise ValueError(f"{where}: a TensorFlow checkpoint, where this method reads a PyTorch checkpoint file{hint}")


def _shown(items: Sequence[str], n: int = 10) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


def load_checked(module, state_dict: Mapping, *, path=None, argument: str = "weights",
                 drop_prefixes: Sequence[str] = ()) -> None:
    """Load ``state_dict`` into ``module`` with strict key and shape checking.

    Parameters
    ----------
    module : torch.nn.Module
    state_dict : mapping of str to torch.Tensor
    path : str or os.PathLike, optional
        Where the state_dict came from (for the error message).
    argument : str
        User-facing argument name (for the error message).
    drop_prefixes : sequence of str
        Keys starting with one of these are ignored (e.g. training-only sub-modules).

    Raises
    ------
    ValueError
        Listing the missing keys, the unexpected keys and the shape mismatches; or naming the tensors
        that are not dense, that are not floating point where the network's are (integer buffers such
        as BatchNorm's ``num_batches_tracked`` take integers), or that hold NaN or infinite values.
    """
    import torch

    state = {k: v for k, v in state_dict.items() if not any(k.startswith(p) for p in drop_prefixes)}
    own = module.state_dict()
    where = f"{argument}={str(path)!r}" if path is not None else argument
    not_tensor = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensor:
        raise ValueError(f"{where}: entries that are not tensors: {_shown(not_tensor)}")
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
             for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong)):
            if items:
                parts.append(f"{title}: {_shown(items)}")
        raise ValueError(f"{where}: the checkpoint does not fit the {type(module).__name__} network; " + "; ".join(parts))
    sparse = [k for k, v in state.items() if v.layout != torch.strided]
    if sparse:
        raise ValueError(f"{where}: refused: sparse or other non-dense tensors ({_shown(sparse)})")
    bad_type = [f"{k} ({str(state[k].dtype).replace('torch.', '')}, network {str(own[k].dtype).replace('torch.', '')})"
                for k in own
                if (own[k].is_floating_point() and not state[k].is_floating_point())
                or (not own[k].is_floating_point() and (state[k].is_floating_point() or state[k].is_complex()))]
    if bad_type:
        raise ValueError(f"{where}: refused: tensors of the wrong kind of type ({_shown(bad_type)}); the network's "
                         "weights are floating point")
    not_finite = [k for k, v in state.items() if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all())]
    if not_finite:
        raise ValueError(f"{where}: refused: NaN or infinite values in {_shown(not_finite)} (a diverged training run "
                         "or a corrupt file)")
    module.load_state_dict(state, strict=True)


def write_checkpoint(obj, path) -> None:
    """``torch.save`` to a temporary sibling, then rename: a crash never leaves a half-written file.

    Parameters
    ----------
    obj : object
        What to save (a state_dict, or a dict holding one).
    path : str or os.PathLike
        The checkpoint file; replaced when it exists. The temporary file ``.<name>.tmp`` sits in the
        same folder.
    """
    import torch

    path = Path(os.fspath(path))
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, str(tmp))
    os.replace(tmp, path)


def random_state_dict(build: Callable[[], Any], seed: int = 0) -> dict:
    """State_dict of ``build()`` created with a fixed seed (global RNG state left untouched).

    Parameters
    ----------
    build : callable
        ``build()`` returns a fresh ``torch.nn.Module``.
    seed : int, optional
        The seed of ``torch.manual_seed`` inside a forked RNG (default 0).

    Returns
    -------
    dict
        ``{name: tensor}``, detached copies of the module's parameters and buffers.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build()
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
