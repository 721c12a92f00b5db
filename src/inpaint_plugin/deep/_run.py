"""Running a network on a numpy image of any size: the model cache, one window through the network
(:class:`Predictor`) and :func:`run`, which picks the resolution strategy.

Known pixels are never changed.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._device import get_device
from ._spec import ModelSpec
from ._weights import resolve_weights
from ._windows import resize, run_crops, run_tiles

__all__ = ["Predictor", "clear_model_cache", "get_model", "run"]

_MODEL_CACHE_SIZE = 2
_MODELS: OrderedDict[tuple, Any] = OrderedDict()


def clear_model_cache() -> None:
    """Forget every cached model instance (frees their memory)."""
    _MODELS.clear()


def _stamp(path: Path) -> tuple:
    """Modification stamp of a checkpoint file or folder (its files rewritten in place included)."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def get_model(spec: ModelSpec, path: Path, device):
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


class Predictor:
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
        x = resize(x, net_size).clamp_(0.0, 1.0)
        if net_size != (h, w):
            # any hole contribution makes a hole, grown by one pixel so that resizing the prediction back
            # interpolates hole pixels from predicted pixels only
            m = torch.nn.functional.max_pool2d((resize(m, net_size) > 0).float(), 3, stride=1, padding=1)
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
        y = resize(y, (h, w)).clamp_(0.0, 1.0)
        return y[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)


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
    module = get_model(spec, path, dev)
    predict = Predictor(spec, module, dev, extra)
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
            result = run_tiles(predict, image, mask, side, max(1, side // 4))
        else:
            result = run_crops(predict, image, mask, side, spec.margin)
    return result
