"""The torch device: ``"auto"`` picks CUDA, then MPS, then the CPU; TF32 is switched off.

TF32 changes results by ~1e-3 and breaks conformance with the reference implementations.
"""
from __future__ import annotations

import re

__all__ = ["DEVICES", "check_device_name", "get_device", "require_torch"]

DEVICES = ("auto", "cpu", "cuda", "mps")


def get_device(device: str = "auto"):
    """The torch device for ``device``.

    ``"auto"`` takes CUDA when available, then MPS, then the CPU. TF32 matmuls/convolutions are
    switched off (they change results by ~1e-3 and break conformance with the references).

    Parameters
    ----------
    device : str, optional
        ``"auto"`` (default), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (any case).

    Returns
    -------
    torch.device
        The device to run on.

    Raises
    ------
    TypeError
        If ``device`` is not a string.
    ValueError
        If ``device`` is unknown or not available on this machine.
    """
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    name = check_device_name(device)
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available; use device='cpu' or 'auto'")
        try:
            dev = torch.device(name)
        except RuntimeError as e:
            raise ValueError(f"device={device!r} is not a valid CUDA device: {e}") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) available")
        return dev
    if name == "mps":
        if not mps_ok:
            raise ValueError(f"device={device!r} was requested but MPS is not available; use device='cpu' or 'auto'")
        return torch.device("mps")
    raise AssertionError(f"unhandled device {device!r}")  # pragma: no cover - check_device_name refuses it


def check_device_name(device) -> str:
    """The spelling of a device name (without torch: whether it is available is not checked).

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (any case).

    Returns
    -------
    str
        The name in lower case.

    Raises
    ------
    TypeError
        If ``device`` is not a string.
    ValueError
        If ``device`` is not one of those names.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, one of {list(DEVICES)}, got {device!r}")
    name = device.lower()
    if name not in DEVICES and not re.fullmatch(r"cuda:\d+", name):
        raise ValueError(f"device must be one of {list(DEVICES)} (or 'cuda:N'), got {device!r}")
    return name


def require_torch(what: str):
    """``import torch``, or an ImportError that says how to install it (the ``deep`` extra).

    Parameters
    ----------
    what : str
        What needs torch, named at the start of the message (e.g. ``"method 'lama'"``).

    Returns
    -------
    module
        The ``torch`` module.

    Raises
    ------
    ImportError
        When PyTorch is not installed.
    """
    try:
        import torch
    except ImportError:
        raise ImportError(f"{what} needs PyTorch, which is not installed: pip install 'inpaint-plugin[deep]' "
                          "(or a torch build for your GPU from pytorch.org)") from None
    return torch
