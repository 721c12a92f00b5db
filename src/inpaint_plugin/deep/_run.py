"""Running a network on a numpy image of any size: the model cache, windows through the network
(:class:`Predictor`, in batches) and :func:`run`, which picks the resolution strategy.

Known pixels are never changed.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _rules
from ._device import get_device
from ._spec import ModelSpec
from ._weights import resolve_weights
from ._windows import plan_holes, resize, run_crops, run_plan, run_tiles

__all__ = ["Predictor", "clear_model_cache", "get_model", "run"]

_MODEL_CACHE_SIZE = 2
_MODELS: OrderedDict[tuple, Any] = OrderedDict()
#: guards _MODELS and _LOADING; never held while a model loads
_CACHE_LOCK = threading.Lock()
#: key -> lock held by the one thread loading that model (the others wait on it, then share the result)
_LOADING: dict[tuple, threading.Lock] = {}
#: one network forward at a time per device: a forward already uses every core (CPU) or the whole
#: device, so concurrent runs (a napari worker and a script, dask threads) would only oversubscribe
#: the cores and multiply the peak memory
_FORWARD_LOCKS: dict[str, threading.Lock] = {}
#: most pixels (after resizing to the network) fed to one forward when windows are batched. On the CPU
#: a batch of 4 windows of 256**2 costs 4x one window (PEN-Net, MEDFE: no gain, measured) and needs
#: 4x the memory, so windows run one by one there; a GPU is only busy with large batches
_BATCH_PIXELS = {"cpu": 1, "cuda": 16 * 512 * 512, "mps": 4 * 512 * 512}


def clear_model_cache() -> None:
    """Forget every cached model instance (frees their memory)."""
    with _CACHE_LOCK:
        _MODELS.clear()


def _stamp(path: Path) -> tuple:
    """Modification stamp of a checkpoint file or folder (its files rewritten in place included); a
    TensorFlow checkpoint named by its prefix (``folder/snap-0``) is stamped by the files of that prefix."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    elif path.exists():
        files = [path]
    else:
        import glob

        files = sorted(path.parent.glob(glob.escape(path.name) + ".*"))
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def _warn_if_trained_worse(spec: ModelSpec, path: Path) -> None:
    """Weights trained with ``inpaint_plugin.train`` carry a held-out comparison with biharmonic
    (``<weights>.train.json``): say so when they were worse, so that their fills are not silently taken
    for better ones."""
    import warnings

    from ._weights import read_training_report

    report = read_training_report(path)
    if report and report.get("beats_biharmonic") is False:
        warnings.warn(f"weights={str(path)!r} ({spec.name}): when trained, these weights filled held-out holes worse "
                      f"than biharmonic: {report.get('verdict', '')}".rstrip(": "), UserWarning, stacklevel=4)


def get_model(spec: ModelSpec, path: Path, device):
    """The network of ``spec`` with the weights of ``path`` on ``device``, in eval mode, cached.

    Thread-safe: when several threads ask for the same model at once, one loads it and the others
    wait and share that instance (a failed load raises in the loading thread; a waiting thread then
    tries itself). The :data:`_MODEL_CACHE_SIZE` most recently used models are kept.

    Parameters
    ----------
    spec : ModelSpec
        The network's description.
    path : Path
        The checkpoint (file, folder or TensorFlow prefix; weights imported into the cache included).
    device : torch.device
        Where the network runs.

    Returns
    -------
    torch.nn.Module
        The network, shared with other callers: do not modify it.
    """
    key = (spec.name, str(Path(path).resolve()), _stamp(Path(path)), str(device))
    with _CACHE_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
        loading = _LOADING.setdefault(key, threading.Lock())
    with loading:
        with _CACHE_LOCK:  # loaded by another thread while this one waited
            if key in _MODELS:
                _MODELS.move_to_end(key)
                return _MODELS[key]
        try:
            from ._weights import is_imported, load_imported

            module = spec.build()
            # weights imported into the cache are the network's own state_dict, whatever the official format
            (load_imported if is_imported(Path(path)) else spec.load)(module, Path(path))
            _warn_if_trained_worse(spec, Path(path))
            module = module.eval().requires_grad_(False).to(device)
            for layer in module.modules():  # a batch of windows with different holes (see Predictor.many)
                if hasattr(layer, "per_item_mask"):
                    layer.per_item_mask = True
            with _CACHE_LOCK:
                _MODELS[key] = module
                while len(_MODELS) > _MODEL_CACHE_SIZE:
                    _MODELS.popitem(last=False)
        finally:
            with _CACHE_LOCK:
                if _LOADING.get(key) is loading:
                    del _LOADING[key]
    return module


#: "auto" may run networks without global attention at full resolution up to this many pixels (and 4
#: tile_size**2) even when a side exceeds tile_size (GMCNN at 1024**2: 4.2 GB peak on CPU)
_FULL_PIXELS = 1024 * 1024

#: the cost of one network run beyond its pixels, in pixels, for the plans of "auto": measured on the
#: CPU (1 thread), a window of 64**2 costs DeepFill v1 0.057 s against 0.037 s for 1/16 of a 256**2
#: run (+0.020 s, ~2000 pixels), LaMa 0.22 against 0.11 s (+0.11 s, ~4000 pixels)
_WINDOW_OVERHEAD = 64 * 64


#: "auto" prefers windows to one full-resolution run only when they are estimated this much cheaper
#: (the cost model is rough, and windows add their own work: cropping, blending)
_WINDOWS_GAIN = 1.1


def _global_attention(module) -> bool:
    """Whether a layer of ``module`` attends over the whole map (cost quadratic in the pixel count)."""
    return any(getattr(m, "global_attention", False) for m in module.modules())


def _window_cost(spec: ModelSpec, module) -> Callable[[int, int], float]:
    """``cost(height, width)``: the estimated work of one network run on a window, in pixels.

    A fixed-size network costs its input size whatever the window. Another costs the pixels it is fed
    (sides rounded up to ``size_multiple``, and at least the network's ``min_size`` attribute where it
    has one: GMCNN extends smaller windows to 196), times ``1 + pixels / tile_size**2`` when it has a
    global attention layer (the attention's scores grow with the square of the pixel count; DeepFill
    v2 on the CPU: 0.66 s per 256**2 at 256**2, 0.86 s at 384**2 and 448**2, v1 1.16 s at 512**2),
    plus :data:`_WINDOW_OVERHEAD` per run.
    """
    if spec.fixed_size is not None:
        value = float(spec.fixed_size**2 + _WINDOW_OVERHEAD)
        return lambda height, width: value
    k, low = spec.size_multiple, int(getattr(module, "min_size", 1) or 1)
    quadratic = _global_attention(module)
    per = float(spec.tile_size**2)

    def cost(height: int, width: int) -> float:
        pixels = max(low, -(-height // k) * k) * max(low, -(-width // k) * k)
        return _WINDOW_OVERHEAD + pixels * ((1.0 + pixels / per) if quadratic else 1.0)

    return cost


def _forward_lock(device) -> threading.Lock:
    with _CACHE_LOCK:
        return _FORWARD_LOCKS.setdefault(str(device), threading.Lock())


def _symmetric_extend(t, height: int, width: int):
    """Extend ``t`` (B, C, h, w) to (B, C, height, width) at the bottom/right by mirror symmetry (edge
    pixel repeated, as ``numpy.pad(mode="symmetric")``), for any length, on ``t``'s device."""
    import torch

    def index(n, size):
        i = torch.arange(size, device=t.device) % (2 * n)
        return torch.where(i < n, i, 2 * n - 1 - i)

    h, w = t.shape[2:]
    return t.index_select(2, index(h, height)).index_select(3, index(w, width))


class Predictor:
    """Runs the network on windows of the image (resize / pad as the network needs).

    ``predictor(image, mask)`` fills one window; :meth:`many` fills several, as few forwards as
    possible (windows of the same network input size are batched, up to a number of pixels per
    forward). Networks without fixed size see windows larger than ``tile_size`` shrunk to it unless
    ``shrink`` is False.

    Parameters
    ----------
    spec : ModelSpec
        The network's description.
    module : torch.nn.Module
        The network, with its weights, in eval mode on ``device``.
    device : torch.device
        Where it runs.
    extra : mapping
        Keyword arguments passed on to ``spec.predict`` (``spec.predict_holes`` where the spec has one:
        the windows' known pixels are composited back, so only the hole pixels of a prediction are used).
    """

    def __init__(self, spec: ModelSpec, module, device, extra: Mapping[str, Any]):
        self.spec, self.module, self.device, self.extra = spec, module, device, dict(extra)
        self.batch_pixels = _BATCH_PIXELS.get(getattr(device, "type", str(device)), 4 * 256 * 256)

    def _net_size(self, shape, shrink: bool = True) -> tuple:
        spec = self.spec
        h, w = shape
        if spec.fixed_size is not None:
            return (spec.fixed_size, spec.fixed_size)
        scale = min(1.0, spec.tile_size / max(h, w)) if shrink else 1.0
        return (max(1, round(h * scale)), max(1, round(w * scale)))

    def per_batch(self, shape) -> int:
        """How many windows of ``shape`` (h, w) one forward takes."""
        size = self._net_size(shape)
        return max(1, self.batch_pixels // (size[0] * size[1]))

    def _to_device(self, array: np.ndarray):
        import torch

        t = torch.from_numpy(array)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def _prepare(self, image: np.ndarray, mask: np.ndarray, shrink: bool) -> tuple:
        """The network input of one window: ``(x (1, 3, H, W), m (1, 1, H, W), net_size)``."""
        import torch

        spec = self.spec
        h, w = mask.shape
        net_size = self._net_size((h, w), shrink)
        x = self._to_device(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]
        m = self._to_device(mask.astype(np.float32))[None, None]
        x = resize(x, net_size).clamp_(0.0, 1.0)
        if net_size != (h, w):
            # any hole contribution makes a hole, grown by one pixel so that resizing the prediction back
            # interpolates hole pixels from predicted pixels only
            m = torch.nn.functional.max_pool2d((resize(m, net_size) > 0).float(), 3, stride=1, padding=1)
        if spec.fixed_size is None and spec.size_multiple > 1:
            k = spec.size_multiple
            padded = (net_size[0] + (-net_size[0]) % k, net_size[1] + (-net_size[1]) % k)
            if padded != net_size:
                x, m = _symmetric_extend(x, *padded), _symmetric_extend(m, *padded)
        return x, m, net_size

    def _finish(self, y, net_size, hw) -> np.ndarray:
        y = y[None, :, : net_size[0], : net_size[1]].float()
        y = resize(y, hw).clamp_(0.0, 1.0)
        return y[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)

    def many(self, windows: Sequence[tuple], shrink: bool = True, step=None) -> list:
        """Filled images (h, w, 3) float32 of ``windows`` = ``[(image, mask), ...]``, in order; ``step``
        (only for a spec with ``reports_steps``) is passed to ``predict_holes``."""
        extra = self.extra if step is None else {**self.extra, "step": step}
        import torch

        prepared = [self._prepare(image, mask, shrink) for image, mask in windows]
        out: list = [None] * len(windows)
        groups: dict = {}
        for i, (x, _, _) in enumerate(prepared):
            groups.setdefault(tuple(x.shape[2:]), []).append(i)
        for shape, members in groups.items():
            per = max(1, self.batch_pixels // (shape[0] * shape[1]))
            for s in range(0, len(members), per):
                idx = members[s : s + per]
                x = torch.cat([prepared[i][0] for i in idx])
                m = torch.cat([prepared[i][1] for i in idx])
                with _forward_lock(self.device):
                    y = (self.spec.predict_holes or self.spec.predict)(self.module, x, m, **extra)
                for j, i in enumerate(idx):
                    out[i] = self._finish(y[j], prepared[i][2], windows[i][1].shape)
        return out

    def __call__(self, image: np.ndarray, mask: np.ndarray, shrink: bool = True, step=None) -> np.ndarray:
        """Filled ``image`` (h, w, 3) float32 of one window."""
        return self.many([(image, mask)], shrink=shrink, step=step)[0]


def run(spec: ModelSpec, image: np.ndarray, mask: np.ndarray, *, weights=None, device: str = "auto",
        resolution: str = "auto", progress: Callable[[int, int], Any] | None = None, **extra) -> np.ndarray:
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
        - ``"auto"``: an image that fits one network input (longest side at most ``fixed_size`` or
          ``tile_size``) is run whole, as the authors' test scripts run it (``"crop"``'s single window
          for fixed-size networks, ``"full"`` for the others). A larger one gets windows planned around the holes (:func:`~._windows.plan_holes`): every hole pixel
          is written by windows that hold it with ``spec.margin`` context on each side (or up to the
          image border), neighbouring windows are blended across their cuts with linear ramps, large
          thick holes get a window of their own as with ``"crop"``; among grids of windows over groups
          of holes and cuts of the image in two, the plan of least estimated work (pixels fed, the
          attention's growth, a cost per run: :func:`_window_cost`) is kept. Networks without fixed
          size run at ``"full"`` resolution instead, unless the windows are estimated 10% cheaper,
          where that is allowed: the image has at most 1024**2 and 4 ``tile_size**2`` pixels and the network has no global attention layer (a
          layer with ``global_attention = True``, such as DeepFill's contextual attention).

        Windows of the same network input size run as one batch (up to a number of pixels per forward).
    progress : callable or None
        ``progress(done, total)`` is called after each batch of windows (crops or tiles; ``total`` =
        number of windows). It may raise to cancel the run: the exception propagates and no further
        window is run.
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
    progress = _rules.check_progress(progress)
    image = np.ascontiguousarray(image, dtype=np.float32)
    if not mask.any():
        return image.copy()
    dev = get_device(device)
    path = resolve_weights(spec, weights)
    module = get_model(spec, path, dev)
    predict = Predictor(spec, module, dev, extra)
    side = spec.fixed_size or spec.tile_size
    h, w = mask.shape
    plan = None
    if resolution == "auto" and max(h, w) <= side:
        # the image fits one network input: one run on the whole image, as the authors' test scripts
        # do (inpaint() then computes the reference's function, whatever the holes)
        resolution = "crop" if spec.fixed_size is not None else "full"
    if resolution == "auto":
        # the cheaper, by estimated work, of the planned windows and (where allowed) one run at full
        # resolution; windows only cost what they are fed, so localised holes get small windows
        cost = _window_cost(spec, module)
        plan = plan_holes(mask, side, spec.margin, cost, multiple=spec.size_multiple,
                          fixed=spec.fixed_size is not None)
        resolution = "windows"
        if spec.fixed_size is None and (max(h, w) <= spec.tile_size or (
                h * w <= min(_FULL_PIXELS, 4 * spec.tile_size**2) and not _global_attention(module))):
            if cost(h, w) <= plan[2] * _WINDOWS_GAIN:
                resolution = "full"
    with torch.inference_mode():
        if resolution in ("full", "resize"):
            # one forward: a network that reports its own steps drives progress (and a raising callback
            # cancels) inside it; otherwise the forward is one unit
            step = progress if spec.reports_steps and spec.predict_holes is not None else None
            out = predict(image, mask, shrink=False, step=step)
            result = image.copy()
            result[mask] = out[mask]
            if progress is not None and step is None:
                progress(1, 1)
        elif resolution == "windows":
            if plan is None:  # "windows" is only chosen above, once the plan is made
                raise RuntimeError("internal error: windows chosen without a plan")
            result = run_plan(predict, image, mask, plan[0], plan[1], progress=progress)
        elif resolution == "tile":
            result = run_tiles(predict, image, mask, side, max(1, side // 4), progress=progress)
        else:
            result = run_crops(predict, image, mask, side, spec.margin, progress=progress)
    return result
