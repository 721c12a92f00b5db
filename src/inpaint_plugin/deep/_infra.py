"""Shared infrastructure of the deep-learning backends.

Everything a deep backend needs besides its network:

- :func:`get_device` picks the torch device (``"auto"``: CUDA, then MPS, then CPU) and disables TF32,
  which would break conformance with the reference implementations.
- :func:`load_state_dict_file` loads a checkpoint *safely* (``safetensors`` or
  ``torch.load(..., weights_only=True)``), unwraps common wrappers and turns every failure into a
  ``ValueError`` that names the argument and the path. :func:`load_checked` loads a state_dict into a
  module with strict key and shape checking and a readable error.
- :class:`ModelSpec` describes one network (build, load the official checkpoint format, predict, write a
  random checkpoint, where to get weights); :class:`WeightsEntry` / :class:`WeightsFile` describe
  downloadable checkpoints.
- :func:`resolve_weights` turns the user's ``weights`` argument into a local path (downloading registry
  entries with pooch into a user cache unless ``INPAINT_PLUGIN_OFFLINE=1``).
- :func:`run` fills a numpy image of any size: fixed-size networks get crops around the holes (resized to
  the network size) or tiles; other networks run on the whole (padded) image or on overlapping tiles.
  Known pixels are never changed.
- :func:`make_backend` wraps a spec into a :class:`~inpaint_plugin._backend.Backend`;
  :func:`random_checkpoint` writes a checkpoint with random weights for a registered deep method.

torch, scipy and pooch are imported lazily, inside the functions that need them.

Environment variables
---------------------
``INPAINT_PLUGIN_OFFLINE``
    ``1`` / ``true``: never download; registry weights must already be in the cache.
``INPAINT_PLUGIN_CACHE``
    Folder of the weights cache (default: the OS user cache folder of ``inpaint-plugin``).
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_plugin._backend import Backend, Param

__all__ = [
    "DEVICES",
    "ModelSpec",
    "WeightsEntry",
    "WeightsFile",
    "cache_dir",
    "clear_model_cache",
    "get_device",
    "is_offline",
    "load_checked",
    "load_state_dict_file",
    "make_backend",
    "random_checkpoint",
    "random_state_dict",
    "resolve_weights",
    "run",
]

DEVICES = ("auto", "cpu", "cuda", "mps")
#: Wrapper keys unwrapped (repeatedly) by :func:`load_state_dict_file`, in this order of preference.
WRAPPER_KEYS = ("state_dict", "netG", "net", "generator", "G", "model", "params_ema", "params")
_MODEL_CACHE_SIZE = 2


# --------------------------------------------------------------------------------------------------
# device
# --------------------------------------------------------------------------------------------------
def get_device(device: str = "auto"):
    """The torch device for ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``).

    ``"auto"`` takes CUDA when available, then MPS, then the CPU. TF32 matmuls/convolutions are
    switched off (they change results by ~1e-3 and break conformance with the references).

    Raises
    ------
    ValueError
        If ``device`` is unknown or not available on this machine.
    """
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, one of {list(DEVICES)}, got {device!r}")
    name = device.lower()
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
    raise ValueError(f"device must be one of {list(DEVICES)} (or 'cuda:N'), got {device!r}")


# --------------------------------------------------------------------------------------------------
# checkpoint files
# --------------------------------------------------------------------------------------------------
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
    if not path.is_file():
        raise ValueError(f"{where}: no such checkpoint file")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj = load_file(str(path), device="cpu")
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
    seen = []
    while not _is_state_dict(obj):
        if not isinstance(obj, Mapping):
            raise ValueError(f"{where}: expected a state_dict (a mapping of names to tensors), got {type(obj).__name__}")
        inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
        if inner is None:
            keys = list(obj)[:8]
            raise ValueError(
                f"{where}: not a state_dict: a mapping whose keys {keys} are not all names of tensors and "
                f"that has none of the wrapper keys {list(WRAPPER_KEYS)}{' (inside ' + '/'.join(seen) + ')' if seen else ''}"
            )
        seen.append(next(k for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)))
        obj = inner
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


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
        Listing the missing keys, the unexpected keys and the shape mismatches.
    """
    state = {k: v for k, v in state_dict.items() if not any(k.startswith(p) for p in drop_prefixes)}
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
             for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        where = f"{argument}={str(path)!r}" if path is not None else argument
        parts = []
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong)):
            if items:
                shown = ", ".join(items[:10]) + (f", ... ({len(items)} in all)" if len(items) > 10 else "")
                parts.append(f"{title}: {shown}")
        raise ValueError(f"{where}: the checkpoint does not fit the {type(module).__name__} network; " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def require_torch(what: str):
    """``import torch``, or an ImportError that says how to install it (the ``deep`` extra)."""
    try:
        import torch
    except ImportError:
        raise ImportError(f"{what} needs PyTorch, which is not installed: pip install 'inpaint-plugin[deep]' "
                          "(or a torch build for your GPU from pytorch.org)") from None
    return torch


def write_checkpoint(obj, path) -> None:
    """``torch.save`` to a temporary sibling, then rename: a crash never leaves a half-written file."""
    import torch

    path = Path(os.fspath(path))
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, str(tmp))
    os.replace(tmp, path)


def random_state_dict(build: Callable[[], Any], seed: int = 0) -> dict:
    """State_dict of ``build()`` created with a fixed seed (global RNG state left untouched)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build()
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------------------------------
# model description and weights registry
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightsFile:
    """One downloadable file of a checkpoint: its local file name, URL and sha256 (hex)."""

    filename: str
    url: str | None = None
    sha256: str | None = None

    @property
    def downloadable(self) -> bool:
        return bool(self.url) and bool(self.sha256)


@dataclass(frozen=True)
class WeightsEntry:
    """A named set of official weights (e.g. one per training dataset).

    ``files`` are fetched into ``<cache>/<model>/<name>/``. With ``folder=False`` (one file) the
    resolved weights are that file; with ``folder=True`` the folder (e.g. MEDFE's EN/DE/MEDEF.pkl).
    ``instructions`` tells how to get the files by hand when they are not directly downloadable
    (e.g. Google Drive).
    """

    name: str
    files: Sequence[WeightsFile]
    folder: bool = False
    description: str = ""
    instructions: str = ""

    def __post_init__(self):
        object.__setattr__(self, "files", tuple(self.files))
        if not self.files:
            raise ValueError(f"WeightsEntry {self.name!r}: files must not be empty")
        if not self.folder and len(self.files) != 1:
            raise ValueError(f"WeightsEntry {self.name!r}: several files need folder=True")

    @property
    def downloadable(self) -> bool:
        return all(f.downloadable for f in self.files)


@dataclass(frozen=True)
class ModelSpec:
    """Everything :func:`run` needs to know about one network.

    Attributes
    ----------
    name : str
        Method name (registry key of the backend).
    build : callable
        ``build() -> torch.nn.Module`` with randomly initialised weights.
    load : callable
        ``load(module, path)``: load the *official* checkpoint (file or folder) into ``module``; raises
        ``ValueError`` listing missing/unexpected keys (use :func:`load_state_dict_file` and
        :func:`load_checked`).
    predict : callable
        ``predict(module, image, mask, **extra) -> image``; ``image`` float32 ``(B, 3, H, W)`` in [0, 1],
        ``mask`` float32 ``(B, 1, H, W)``, 1 = hole; returns ``(B, 3, H, W)`` in [0, 1]. Does the
        network's own normalisation and conventions. Called under ``torch.inference_mode()``.
    save_state : callable
        ``save_state(state_dict, path)``: write a generator state_dict (CPU tensors) in the official
        format (file or folder, as ``load`` expects). Use :meth:`save` (a module) or
        :meth:`save_random` rather than calling it directly.
    weights_help : str
        Where and how to get the official weights.
    fixed_size : int or None
        Side of the square input of fixed-size networks (e.g. 256), else None.
    size_multiple : int
        Input sides must be multiples of this (networks without fixed size).
    tile_size : int
        Networks without fixed size run on the whole image when its longest side is at most this,
        otherwise on overlapping tiles of this side.
    margin : int
        Context (image pixels) kept around each hole when cropping.
    registry : sequence of WeightsEntry
        Official weights; the first one is the default of ``weights=None``.
    """

    name: str
    build: Callable[[], Any]
    load: Callable[[Any, Path], None]
    predict: Callable[..., Any]
    save_state: Callable[[dict, Path], None]
    weights_help: str
    fixed_size: int | None = None
    size_multiple: int = 8
    tile_size: int = 512
    margin: int = 32
    registry: Sequence[WeightsEntry] = field(default_factory=tuple)

    def save(self, module, path) -> None:
        """Write ``module``'s weights (e.g. after fine-tuning) as an official checkpoint that
        :attr:`load` and ``inpaint(..., weights=path)`` read. Files are written atomically."""
        state = {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}
        self.save_state(state, Path(os.fspath(path)))

    def save_random(self, path, seed: int = 0) -> None:
        """Write a checkpoint with deterministic random weights (seeded) in the official format."""
        self.save_state(random_state_dict(self.build, seed), Path(os.fspath(path)))

    def __post_init__(self):
        object.__setattr__(self, "registry", tuple(self.registry))
        if self.fixed_size is not None and self.fixed_size < 8:
            raise ValueError(f"ModelSpec {self.name!r}: fixed_size must be >= 8")
        if self.size_multiple < 1 or self.tile_size < 8:
            raise ValueError(f"ModelSpec {self.name!r}: size_multiple must be >= 1 and tile_size >= 8")

    @property
    def resolutions(self) -> tuple:
        """Valid values of the ``resolution`` argument of :func:`run` for this network."""
        if self.fixed_size is not None:
            return ("auto", "crop", "tile", "resize")
        return ("auto", "full", "crop", "tile")


def is_offline() -> bool:
    """True when ``INPAINT_PLUGIN_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get("INPAINT_PLUGIN_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """Folder of the weights cache (``INPAINT_PLUGIN_CACHE`` or the OS user cache)."""
    env = os.environ.get("INPAINT_PLUGIN_CACHE")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("inpaint-plugin"))


def _how_to_get(spec: ModelSpec) -> str:
    return (f"{spec.weights_help.rstrip('.')}. Then pass the path with inpaint(..., method={spec.name!r}, "
            f"weights='path/to/checkpoint') (or choose it in the plugin's weights field).")


def _fetch_entry(spec: ModelSpec, entry: WeightsEntry) -> Path:
    import pooch

    target = cache_dir() / spec.name / entry.name
    offline = is_offline()
    for f in entry.files:
        local = target / f.filename
        if offline:
            if not local.is_file() or pooch.file_hash(str(local)).lower() != f.sha256.lower():
                raise ValueError(
                    f"weights=None: method {spec.name!r} would download its default weights {entry.name!r} "
                    f"({f.url}), but INPAINT_PLUGIN_OFFLINE is set and {local} is not in the cache (or has the "
                    f"wrong sha256). Unset INPAINT_PLUGIN_OFFLINE, or put the file there, or: {_how_to_get(spec)}"
                )
            continue
        try:
            pooch.retrieve(f.url, known_hash=f"sha256:{f.sha256}", fname=f.filename, path=str(target), progressbar=False)
        except Exception as e:
            raise ValueError(
                f"weights=None: could not download the default weights {entry.name!r} of method {spec.name!r} "
                f"from {f.url}: {e}. {_how_to_get(spec)}"
            ) from None
    return target if entry.folder else target / entry.files[0].filename


def resolve_weights(spec: ModelSpec, weights) -> Path:
    """The local checkpoint path for the user's ``weights`` argument.

    A path (str or os.PathLike) must exist and is used as is. ``None`` means the first entry of
    ``spec.registry``, downloaded with pooch into :func:`cache_dir` (or only looked up there when
    :func:`is_offline`).

    Raises
    ------
    ValueError
        If the path does not exist, or there is no downloadable default: the message says where to get
        the weights and how to pass ``weights=``.
    """
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise TypeError(f"weights must be a path (str or os.PathLike) or None, got {weights!r}")
        path = Path(os.fspath(weights)).expanduser()
        if not path.exists():
            raise ValueError(f"weights={str(weights)!r}: no such file or folder. {_how_to_get(spec)}")
        return path
    entry = spec.registry[0] if spec.registry else None
    if entry is None or not entry.downloadable:
        extra = f" {entry.instructions}" if entry is not None and entry.instructions else ""
        raise ValueError(
            f"weights=None: method {spec.name!r} needs trained weights and none can be downloaded "
            f"automatically.{extra} {_how_to_get(spec)}"
        )
    return _fetch_entry(spec, entry)


# --------------------------------------------------------------------------------------------------
# model cache
# --------------------------------------------------------------------------------------------------
_MODELS: OrderedDict[tuple, Any] = OrderedDict()


def clear_model_cache() -> None:
    """Forget every cached model instance (frees their memory)."""
    _MODELS.clear()


def _stamp(path: Path) -> tuple:
    """Modification stamp of a checkpoint file or folder (its files rewritten in place included)."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def _get_model(spec: ModelSpec, path: Path, device):
    key = (spec.name, str(path.resolve()), _stamp(path), str(device))
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    module = spec.build()
    spec.load(module, path)
    module = module.eval().requires_grad_(False).to(device)
    _MODELS[key] = module
    while len(_MODELS) > _MODEL_CACHE_SIZE:
        _MODELS.popitem(last=False)
    return module


# --------------------------------------------------------------------------------------------------
# resolution strategies
# --------------------------------------------------------------------------------------------------
def _resize(t, size):
    """Bilinear (antialiased when shrinking) resize of a (B, C, h, w) tensor to ``size``."""
    import torch.nn.functional as F

    if tuple(t.shape[-2:]) == tuple(size):
        return t
    shrink = size[0] < t.shape[-2] or size[1] < t.shape[-1]
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)


class _Predictor:
    """Runs the network on one window of the image (resize / pad as the network needs)."""

    def __init__(self, spec: ModelSpec, module, device, extra: Mapping[str, Any]):
        self.spec, self.module, self.device, self.extra = spec, module, device, dict(extra)

    def __call__(self, image: np.ndarray, mask: np.ndarray, shrink: bool = True) -> np.ndarray:
        """Filled ``image`` (h, w, 3); networks without fixed size see windows larger than ``tile_size``
        shrunk to it unless ``shrink`` is False."""
        import torch

        spec = self.spec
        h, w = mask.shape
        if spec.fixed_size is not None:
            net_size = (spec.fixed_size, spec.fixed_size)
        else:
            scale = min(1.0, spec.tile_size / max(h, w)) if shrink else 1.0
            net_size = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(self.device)
        m = torch.from_numpy(mask.astype(np.float32))[None, None].to(self.device)
        x = _resize(x, net_size).clamp_(0.0, 1.0)
        if net_size != (h, w):
            # any hole contribution makes a hole, grown by one pixel so that resizing the prediction back
            # interpolates hole pixels from predicted pixels only
            m = torch.nn.functional.max_pool2d((_resize(m, net_size) > 0).float(), 3, stride=1, padding=1)
        if spec.fixed_size is None and spec.size_multiple > 1:
            k = spec.size_multiple
            pad_h, pad_w = (-net_size[0]) % k, (-net_size[1]) % k
            if pad_h or pad_w:
                xn = np.pad(x[0].cpu().numpy(), ((0, 0), (0, pad_h), (0, pad_w)), mode="symmetric")
                mn = np.pad(m[0].cpu().numpy(), ((0, 0), (0, pad_h), (0, pad_w)), mode="symmetric")
                x = torch.from_numpy(xn)[None].to(self.device)
                m = torch.from_numpy(mn)[None].to(self.device)
        y = spec.predict(self.module, x, m, **self.extra)
        y = y[..., : net_size[0], : net_size[1]].float()
        y = _resize(y, (h, w)).clamp_(0.0, 1.0)
        return y[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)


def _starts(length: int, tile: int, stride: int) -> list:
    """Tile start offsets covering ``[0, length)`` with the last tile flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride)) + [length - tile]
    return sorted(set(starts))


def _run_tiles(predict: _Predictor, image, mask, tile: int, overlap: int, write=None) -> np.ndarray:
    """Overlapping tiles blended with linear ramps; only tiles holding ``write`` pixels (default: all
    holes) are run, and only those pixels are written."""
    write = mask if write is None else write
    h, w = mask.shape
    th, tw = min(tile, h), min(tile, w)
    stride = max(1, tile - overlap)
    acc = np.zeros(image.shape, np.float64)
    wsum = np.zeros(mask.shape, np.float64)

    def ramp(n):
        i = np.arange(n, dtype=np.float64)
        r = np.minimum(i + 1, n - i) / max(1, overlap)
        return np.clip(r, 1.0 / max(1, overlap), 1.0)

    for r0 in _starts(h, th, stride):
        for c0 in _starts(w, tw, stride):
            win = (slice(r0, r0 + th), slice(c0, c0 + tw))
            if not write[win].any():
                continue
            out = predict(image[win], mask[win])
            wt = np.outer(ramp(th), ramp(tw))
            acc[win] += out * wt[..., None]
            wsum[win] += wt
    result = image.copy()
    result[write] = (acc[write] / wsum[write][:, None]).astype(image.dtype)
    return result


def _crop_windows(mask: np.ndarray, side: int, margin: int) -> tuple:
    """Plan the crops: ``(windows, thin)`` covering every hole with ``margin`` context.

    ``windows`` is a list of ``(r0, r1, c0, c1, write_mask)``; ``write_mask`` marks the hole pixels that
    window is responsible for. Holes whose box plus margin fits in ``side`` are grouped greedily (in
    bands of rows, then left to right) into windows of ``side`` x ``side`` (clipped to the image).
    Larger holes that are thin (twice their largest distance to a known pixel, plus margin, fits in
    ``side``: scratches, stripes) are returned in the boolean mask ``thin``, to be filled by overlapping
    tiles at full resolution. Other large holes get their own window of about 1.5x their size plus
    margin, centred on them (resized to the network). Windows inside another one of at most ``side``
    (or an identical one) are merged into it. An image not larger than ``side`` is a single window.
    """
    from scipy import ndimage

    h, w = mask.shape
    if h <= side and w <= side:  # the whole image is one window at full resolution
        return [(0, h, 0, w, mask.copy())], np.zeros(mask.shape, bool)
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    boxes = ndimage.find_objects(labels)
    small, windows = [], []
    thin = np.zeros(mask.shape, bool)

    def place(center, size, length):
        size = min(size, length)
        start = round(center - size / 2)
        return max(0, min(start, length - size)), size

    for idx, (rs, cs) in enumerate(boxes, start=1):
        bh, bw = rs.stop - rs.start, cs.stop - cs.start
        if max(bh, bw) + 2 * margin <= side:
            small.append((rs.start, cs.start, rs.stop, cs.stop, idx))
            continue
        own = np.pad(labels[rs, cs] == idx, 1)
        if 2 * ndimage.distance_transform_edt(own).max() + 2 * margin <= side:
            thin[rs, cs] |= own[1:-1, 1:-1]
            continue
        size = max(side, math.ceil(max(bh, bw) * 1.5) + 2 * margin)
        r0, sh = place((rs.start + rs.stop) / 2, size, h)
        c0, sw = place((cs.start + cs.stop) / 2, size, w)
        windows.append((r0, r0 + sh, c0, c0 + sw, labels[r0:r0 + sh, c0:c0 + sw] == idx))

    # small holes: bands of rows starting at the topmost remaining hole; in each band, windows placed
    # left to right starting at the leftmost remaining hole of the band; a hole joins a window when its
    # box plus margin (clipped to the image) lies inside
    def inside(lo, hi, start, size, length):
        return max(lo - margin, 0) >= start and min(hi + margin, length) <= start + size

    remaining = sorted(small)
    while remaining:
        r0, sh = place(remaining[0][0] - margin + side / 2, side, h)
        band = sorted((c for c in remaining if inside(c[0], c[2], r0, sh, h)), key=lambda c: c[1])
        taken = set()
        while band:
            c0, sw = place(band[0][1] - margin + side / 2, side, w)
            members = [c[4] for c in band if inside(c[1], c[3], c0, sw, w)]
            taken.update(members)
            band = [c for c in band if c[4] not in taken]
            windows.append((r0, r0 + sh, c0, c0 + sw, np.isin(labels[r0:r0 + sh, c0:c0 + sw], members)))
        remaining = [c for c in remaining if c[4] not in taken]

    # a window inside another one that is run at full resolution (not larger than `side`), or inside an
    # identical one, is merged into it: one network run instead of two
    merged = []
    for r0, r1, c0, c1, write in sorted(windows, key=lambda t: (t[1] - t[0]) * (t[3] - t[2]), reverse=True):
        for target in merged:
            t0, t1, u0, u1, twrite = target
            same = (t0, t1, u0, u1) == (r0, r1, c0, c1)
            native = t1 - t0 <= side and u1 - u0 <= side
            if t0 <= r0 and r1 <= t1 and u0 <= c0 and c1 <= u1 and (same or native):
                twrite[r0 - t0:r1 - t0, c0 - u0:c1 - u0] |= write
                break
        else:
            merged.append((r0, r1, c0, c1, write.copy()))
    return merged, thin


def _run_crops(predict: _Predictor, image, mask, side: int, margin: int) -> np.ndarray:
    windows, thin = _crop_windows(mask, side, margin)
    result = _run_tiles(predict, image, mask, side, max(1, side // 4), write=thin) if thin.any() else image.copy()
    for r0, r1, c0, c1, write in windows:
        out = predict(image[r0:r1, c0:c1], mask[r0:r1, c0:c1])
        result[r0:r1, c0:c1][write] = out[write]
    return result


def run(spec: ModelSpec, image: np.ndarray, mask: np.ndarray, *, weights=None, device: str = "auto",
        resolution: str = "auto", **extra) -> np.ndarray:
    """Fill the holes of one RGB image with the network of ``spec``.

    Parameters
    ----------
    spec : ModelSpec
    image : ndarray, shape (H, W, 3)
        Float image in [0, 1] (values outside are clipped for the network).
    mask : ndarray of bool, shape (H, W)
        True = hole.
    weights : str, os.PathLike or None
        Checkpoint (see :func:`resolve_weights`).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"`` (see :func:`get_device`).
    resolution : str
        How images of any size are fed to the network:

        - ``"crop"``: windows around the holes with ``spec.margin`` context (several small holes share a
          window; a large hole gets a window of about 1.5x its size); fixed-size networks get each window
          resized to ``fixed_size``, others get it padded to ``size_multiple`` (and shrunk to
          ``tile_size`` if larger). Large but thin holes (scratches, stripes) are filled with overlapping
          tiles at full resolution instead.
        - ``"tile"``: overlapping tiles (``fixed_size`` or ``tile_size``, overlap 1/4), only those with
          holes are run, blended with linear ramps.
        - ``"resize"`` (fixed-size networks): the whole image resized to ``fixed_size`` and back.
        - ``"full"`` (other networks): the whole image, padded to ``size_multiple``.
        - ``"auto"``: ``"crop"`` for fixed-size networks; ``"full"`` for the others when the longest side
          is at most ``tile_size``, else ``"tile"``.
    **extra
        Passed to ``spec.predict``.

    Returns
    -------
    ndarray, shape (H, W, 3), float32
        The filled image; known pixels are exactly those of ``image``.
    """
    import torch

    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask must have shape {image.shape[:2]}, got {mask.shape}")
    if resolution not in spec.resolutions:
        raise ValueError(f"resolution must be one of {list(spec.resolutions)} for method {spec.name!r}, got {resolution!r}")
    image = np.ascontiguousarray(image, dtype=np.float32)
    if not mask.any():
        return image.copy()
    dev = get_device(device)
    path = resolve_weights(spec, weights)
    module = _get_model(spec, path, dev)
    predict = _Predictor(spec, module, dev, extra)
    side = spec.fixed_size or spec.tile_size
    h, w = mask.shape
    if resolution == "auto":
        if spec.fixed_size is not None:
            resolution = "crop"
        else:
            resolution = "full" if max(h, w) <= spec.tile_size else "tile"
    with torch.inference_mode():
        if resolution in ("full", "resize"):
            out = predict(image, mask, shrink=False)
            result = image.copy()
            result[mask] = out[mask]
        elif resolution == "tile":
            result = _run_tiles(predict, image, mask, side, max(1, side // 4))
        else:
            result = _run_crops(predict, image, mask, side, spec.margin)
    return result


# --------------------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------------------
def make_backend(spec: ModelSpec, description: str, extra_params: Sequence[Param] = ()) -> Backend:
    """A :class:`Backend` running ``spec`` through :func:`run`.

    The backend is 2-D, RGB (the API maps other channel counts), float32 and normalised to [0, 1], and
    needs weights. Its parameters are ``weights`` (path, default None = registry default), ``device``,
    ``resolution`` and ``extra_params`` (passed on to ``spec.predict``).
    """
    default = spec.registry[0] if spec.registry and spec.registry[0].downloadable else None
    params = (
        Param("weights", "path", None,
              f"checkpoint ({'folder' if any(e.folder for e in spec.registry) else 'file'})"
              + (f"; None downloads the official {default.name!r} weights" if default else "")
              + f". {spec.weights_help}"),
        Param("device", "str", "auto", "torch device: auto (cuda, then mps, then cpu), cpu, cuda or mps", choices=DEVICES),
        Param("resolution", "str", "auto", "how images of any size are fed to the network", choices=spec.resolutions),
        *extra_params,
    )

    def func(image, mask, weights=None, device="auto", resolution="auto", **extra):
        require_torch(f"method {spec.name!r}")
        return run(spec, image, mask, weights=weights, device=device, resolution=resolution, **extra)

    func.__name__ = f"{spec.name}_inpaint"
    func.__doc__ = f"Fill holes with the {spec.name} network (see inpaint_plugin.deep._infra.run)."
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
        normalize=True,
        margin=spec.margin,
        deterministic=True,
    )


def _find_spec(method_name: str) -> ModelSpec:
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
    spec = _find_spec(method_name)
    path = Path(os.fspath(path))
    spec.save_random(path, seed=seed)
    return path
