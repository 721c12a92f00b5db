"""The description of one network (:class:`ModelSpec`): how to build it, load and save its official
checkpoints, run it, and where its weights come from."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._checkpoint import random_state_dict
from ._weights import WeightsEntry

__all__ = ["ModelSpec"]


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
    predict_holes : callable or None
        Optional: ``predict_holes(module, image, mask, **extra)``, :attr:`predict` for filling, where only
        the result's hole pixels are used (inference composites them with the known pixels): it equals
        ``predict`` wherever ``mask > 0``, and may skip the work that reaches only known pixels (its
        values there are then any in [0, 1]). Inference uses it when given; training and evaluation of
        the whole output use ``predict``.
    reports_steps : bool
        ``predict_holes`` takes a keyword ``step``: a callable ``step(done, total)`` it calls as it
        goes through one forward (e.g. after each block), ending with ``done == total``. A run of the
        whole image at once then reports its progress through it, and a callback that raises stops
        the forward between two steps (napari's Cancel). Default False.
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
    predict_holes: Callable[..., Any] | None = None
    reports_steps: bool = False

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
