"""The options of a training run, checked in one place: :class:`TrainConfig`.

``train(method, images, out=..., ...)`` builds a :class:`TrainConfig` from its keyword arguments,
``train(config=...)`` takes one, and ``inpaint-plugin train`` builds one from its command line
(:func:`inpaint_plugin.training._cli.config_from_args`): every rule on the options (types, ranges,
allowed values, files that must exist, options that need or exclude each other) is checked here, in
``__post_init__``, before any image is read or torch is imported. The errors name the option.

What depends on the data or on the machine is checked when training starts: whether
``channel_axis`` exists in each image, whether the crop fits the images, whether the device is
available (``device="cuda"`` on a machine without CUDA).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._files import state_path

__all__ = ["TrainConfig"]


# --------------------------------------------------------------------------------------------------
# the rules of single values
# --------------------------------------------------------------------------------------------------
def _int(name: str, value, lo: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return int(value)


def _float(name: str, value, lo: float, hi: float = math.inf, *, open_lo: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if (value <= lo if open_lo else value < lo) or value > hi:
        bound = f"({lo}, {hi}]" if open_lo else f"[{lo}, {hi}]"
        raise ValueError(f"{name} must be in {bound}, got {value}")
    return value


def _path(name: str, value, must_exist: bool = False):
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {value!r}")
    path = Path(os.fspath(value)).expanduser()
    if must_exist and not path.exists():
        raise ValueError(f"{name}={str(value)!r}: no such file")
    return path


def _device(value) -> str:
    """The device name's spelling (whether it is available is known only to torch, when training starts)."""
    from ..deep._device import check_device_name

    check_device_name(value)
    return value


def _check_input_size(method: str, size: int) -> None:
    """The network input side ``size`` must suit the network of ``method``."""
    from ..deep._backend import find_spec

    if method == "medfe" and size != 256:
        raise ValueError(f"input_size must be 256 for medfe (its feature equalisation works on 32x32 maps of a "
                         f"256x256 input), got {size}")
    multiple = max(8, find_spec(method).size_multiple)
    if size % multiple:
        raise ValueError(f"input_size must be a multiple of {multiple} for {method}, got {size}")


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run (:func:`inpaint_plugin.train`), checked when it is made.

    The fields are the keyword arguments of ``train()`` (see there for what each one does), with the
    same defaults; ``None`` where ``train()`` takes the network recipe's default (the crop and batch
    sizes for the device, the paper's learning rate and loss weights). :meth:`resolved` gives those
    defaults. A config is immutable: ``dataclasses.replace(config, epochs=20)`` makes a changed copy
    (checked again).

    Values are stored normalised: paths as :class:`pathlib.Path` (``~`` expanded), integers as
    ``int``, numbers as ``float``, ``images`` as a tuple when a list is given (paths as ``str``),
    ``masks`` as the tuple of mask families, ``resume=None`` as False.

    Attributes
    ----------
    method : str
        A trainable deep method (``deepfill_v2``, ``deepfill_v1``, ``pennet``, ``gmcnn``, ``spl``,
        ``medfe``, ``lama``).
    images : array, path, or sequence of arrays and paths
        Training images: arrays, image files, directories of them or glob patterns; each path must
        name an existing file, a directory holding image files, or a pattern that matches files.
    out : Path
        The checkpoint to write (required; a folder for medfe; not ``.safetensors``).
    weights : Path or None
        An existing checkpoint to start from (fine-tuning); excludes ``resume``.
    resume : bool or Path
        Continue from ``<out>.state.pt`` (True) or from that training-state file, which must exist.
    crop_size : int or None
        Side of the training crops: a multiple of 8, at least 32.
    batch_size : int or None
        Crops per step, at least 1.
    input_size : int or None
        Network input side, at least 32, a multiple of the network's size multiple (at least 8);
        256 for medfe.
    epochs : int
        At least 0.
    steps_per_epoch : int or None
        At least 1.
    lr : float or None
        In (0, 1].
    seed : int
        At least 0.
    val_fraction : float
        In [0, 0.9].
    val_crops : int
        At least 1.
    masks : tuple of str
        Mask families (``strokes``, ``scratches``, ``stripes``, ``dead_pixels``, ``boxes``; a
        comma-separated string or a sequence may be given; None = all).
    normalize : {"range", "minmax", "percentile"}
    channel_axis : int or None
    augment : bool
    adv_weight : float or None
        At least 0 (0: no discriminator).
    vgg_weights : Path or None
        An existing torchvision VGG19 state_dict file; needed by ``perceptual_weight`` or
        ``idmrf_weight`` > 0, and only allowed when one of them (given or the paper's) is > 0.
    perceptual_weight, idmrf_weight : float or None
        At least 0.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (any case).
    time_limit : float or None
        Seconds, > 0.
    """

    method: str
    images: Any
    out: Any = None
    weights: Any = None
    resume: Any = False
    crop_size: int | None = None
    batch_size: int | None = None
    input_size: int | None = None
    epochs: int = 10
    steps_per_epoch: int | None = None
    lr: float | None = None
    seed: int = 0
    val_fraction: float = 0.1
    val_crops: int = 16
    masks: Any = None
    normalize: str = "range"
    channel_axis: int | None = None
    augment: bool = True
    adv_weight: float | None = None
    vgg_weights: Any = None
    perceptual_weight: float | None = None
    idmrf_weight: float | None = None
    device: str = "auto"
    time_limit: float | None = None

    def __post_init__(self):
        from .._masks import check_families
        from ._data import check_images, check_layout
        from ._recipes import get_recipe

        def put(name, value):
            object.__setattr__(self, name, value)

        recipe = get_recipe(self.method)
        method = self.method
        out = _path("out", self.out)
        if out is None:
            raise ValueError("out is required: the checkpoint file to write")
        if out.is_dir() and method != "medfe":
            raise ValueError(f"out={str(self.out)!r} is a directory; give a checkpoint file name (e.g. model.pth)")
        if out.suffix.lower() == ".safetensors":
            raise ValueError(f"out={str(self.out)!r}: checkpoints are written with torch.save in the official "
                             f"format; use a .pth or .pt name")
        put("out", out)
        put("weights", _path("weights", self.weights, must_exist=True))
        resume = self.resume
        if resume is None:
            resume = False
        elif not isinstance(resume, bool):
            if not isinstance(resume, (str, os.PathLike)):
                raise TypeError(f"resume must be True, False or the path of a training state, got {resume!r}")
            resume = _path("resume", resume)
        put("resume", resume)
        if self.resume is not False and self.weights is not None:
            raise ValueError("give either weights (start from a checkpoint) or resume (continue a training run), "
                             "not both")
        if self.resume_path is not None and not self.resume_path.is_file():
            raise ValueError(f"resume: no training state at {str(self.resume_path)!r} (it is written beside the "
                             f"checkpoint as <out>.state.pt); train without resume first")
        images = check_images(self.images)
        if isinstance(self.images, (list, tuple)):
            put("images", tuple(images))
        elif isinstance(self.images, os.PathLike):
            put("images", images[0])
        crop_size = _int("crop_size", self.crop_size, 32, allow_none=True)
        if crop_size is not None and crop_size % 8:
            raise ValueError(f"crop_size must be a multiple of 8, got {crop_size}")
        put("crop_size", crop_size)
        put("batch_size", _int("batch_size", self.batch_size, 1, allow_none=True))
        put("input_size", _int("input_size", self.input_size, 32, allow_none=True))
        net_size = self.input_size or recipe.input_size or crop_size
        if net_size is not None:  # else the recipe's crop size for the device (checked by resolved())
            _check_input_size(method, net_size)
        put("epochs", _int("epochs", self.epochs, 0))
        put("steps_per_epoch", _int("steps_per_epoch", self.steps_per_epoch, 1, allow_none=True))
        put("lr", _float("lr", self.lr, 0.0, 1.0, open_lo=True, allow_none=True))
        put("seed", _int("seed", self.seed, 0))
        put("val_fraction", _float("val_fraction", self.val_fraction, 0.0, 0.9))
        put("val_crops", _int("val_crops", self.val_crops, 1))
        put("masks", check_families(self.masks))
        check_layout(self.normalize, self.channel_axis)
        if self.channel_axis is not None:
            put("channel_axis", int(self.channel_axis))
        if not isinstance(self.augment, bool):
            raise TypeError(f"augment must be True or False, got {self.augment!r}")
        put("adv_weight", _float("adv_weight", self.adv_weight, 0.0, allow_none=True))
        put("perceptual_weight", _float("perceptual_weight", self.perceptual_weight, 0.0, allow_none=True))
        put("idmrf_weight", _float("idmrf_weight", self.idmrf_weight, 0.0, allow_none=True))
        put("vgg_weights", _path("vgg_weights", self.vgg_weights, must_exist=True))
        if self.vgg_weights is None:
            if (self.perceptual_weight or 0) > 0 or (self.idmrf_weight or 0) > 0:
                raise ValueError("perceptual_weight and idmrf_weight need vgg_weights: a torchvision VGG19 "
                                 "state_dict file (e.g. vgg19-dcbb9e9d.pth); it cannot be downloaded here")
        else:
            perceptual = recipe.perceptual_weight if self.perceptual_weight is None else self.perceptual_weight
            idmrf = recipe.idmrf_weight if self.idmrf_weight is None else self.idmrf_weight
            if perceptual == 0 and idmrf == 0:
                raise ValueError(f"vgg_weights is only used with perceptual_weight > 0 or idmrf_weight > 0 (the "
                                 f"paper of {method} uses neither; set one)")
        put("device", _device(self.device))
        put("time_limit", _float("time_limit", self.time_limit, 0.0, open_lo=True, allow_none=True))

    @property
    def resume_path(self) -> Path | None:
        """The training state to continue from: ``<out>.state.pt`` for ``resume=True``, None without resume."""
        if self.resume is True:
            return state_path(self.out)
        return None if self.resume is False else self.resume

    def resolved(self, device_type: str = "cpu") -> dict:
        """The options that default to the network recipe's values, with those defaults filled in.

        Parameters
        ----------
        device_type : str
            ``"cuda"`` for the recipe's GPU crop and batch sizes; anything else for its CPU sizes.

        Returns
        -------
        dict
            ``crop_size``, ``batch_size``, ``input_size`` (the network input side: ``input_size``,
            else the network's fixed training size, else the crop size), ``lr``, ``d_lr`` (the
            discriminator's, scaled as the recipe's), ``adv_weight``, ``perceptual_weight`` and
            ``idmrf_weight`` (0 without ``vgg_weights``).

        Raises
        ------
        ValueError
            If the default crop size does not suit the network (a recipe error).
        """
        from ._recipes import get_recipe

        recipe = get_recipe(self.method)
        defaults = recipe.gpu if device_type == "cuda" else recipe.cpu
        crop_size = defaults[0] if self.crop_size is None else self.crop_size
        net_size = self.input_size or recipe.input_size or crop_size
        _check_input_size(self.method, net_size)
        lr = recipe.lr if self.lr is None else self.lr
        vgg = self.vgg_weights is not None
        return {
            "crop_size": crop_size,
            "batch_size": defaults[1] if self.batch_size is None else self.batch_size,
            "input_size": net_size,
            "lr": lr,
            "d_lr": lr * recipe.d_lr / recipe.lr,
            "adv_weight": recipe.adv_weight if self.adv_weight is None else self.adv_weight,
            "perceptual_weight": (recipe.perceptual_weight if self.perceptual_weight is None
                                  else self.perceptual_weight) if vgg else 0.0,
            "idmrf_weight": (recipe.idmrf_weight if self.idmrf_weight is None else self.idmrf_weight) if vgg else 0.0,
        }
