"""The backend description that every inpainting method registers.

A backend is a plain function plus metadata. The API layer (`inpaint_plugin._api`) does all
validation, dtype conversion, channel handling and slice-wise looping, so a backend function
only ever sees:

- ``image``: a C-contiguous floating array of shape ``(*spatial, C)`` (channels last, ``C >= 1``),
  dtype ``Backend.dtype``, with no NaN/inf anywhere; masked pixels hold an arbitrary finite value
  (the API sets them to the mean of the known pixels), and the backend must not rely on them.
  When ``Backend.normalize`` is true, every channel is scaled so that its known pixels span ``[0, 1]``.
  The array is the API's private copy for this call: the backend may overwrite it (and return it).
- ``mask``: a boolean array of shape ``spatial`` (True = fill), never empty and never full.
- keyword parameters, already validated against ``Backend.params``, plus ``seed`` when the
  backend declares a ``seed`` parameter.

It returns an array of the same shape (any floating dtype); only its masked pixels are used. The API
puts the known pixels back bit-for-bit, converts to the input dtype and clips.

``spatial_ndim`` is 2 for 2-D only backends (the API loops over leading axes of nD data) and ``None``
for backends that work in any dimension.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

__all__ = ["Backend", "Param"]

_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "path": str}


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a backend (enough to build a GUI from).

    ``kind`` is one of ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"path"``
    (a file path, may be None). ``choices`` restricts str parameters.
    ``min``/``max`` bound numbers (inclusive). ``default=None`` means optional.
    """

    name: str
    kind: str
    default: Any
    description: str = ""
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[Sequence[Any]] = None

    def __post_init__(self):
        if self.kind not in _TYPES:
            raise ValueError(f"Param {self.name!r}: unknown kind {self.kind!r}, use one of {sorted(_TYPES)}")

    @property
    def type(self) -> type:
        return _TYPES[self.kind]

    def validate(self, value: Any, method: str) -> Any:
        """Return ``value`` converted to this parameter's type, or raise naming the parameter."""
        where = f"parameter {self.name!r} of method {method!r}"
        if value is None:
            if self.default is None:
                return None
            raise TypeError(f"{where} must not be None")
        if self.kind == "bool":
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
                return value.lower() in ("true", "1", "yes", "on")
            if not isinstance(value, (bool, int)) or (isinstance(value, int) and value not in (0, 1)):
                raise TypeError(f"{where} must be a bool, got {value!r}")
            return bool(value)
        if self.kind == "int":
            if isinstance(value, bool):
                raise TypeError(f"{where} must be an int, got {value!r}")
            try:
                conv = int(value) if not isinstance(value, float) else None
            except (TypeError, ValueError):
                conv = None
            if isinstance(value, float) and value.is_integer():
                conv = int(value)
            if conv is None:
                raise TypeError(f"{where} must be an int, got {value!r}")
            value = conv
        elif self.kind == "float":
            if isinstance(value, bool):
                raise TypeError(f"{where} must be a number, got {value!r}")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"{where} must be a number, got {value!r}") from None
            if value != value:
                raise ValueError(f"{where} must not be NaN")
        else:  # str / path
            import os

            if self.kind == "path" and isinstance(value, os.PathLike):
                value = os.fspath(value)
            if not isinstance(value, str):
                raise TypeError(f"{where} must be a string, got {value!r}")
        if self.min is not None and value < self.min:
            raise ValueError(f"{where} must be >= {self.min}, got {value!r}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{where} must be <= {self.max}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{where} must be one of {list(self.choices)}, got {value!r}")
        return value

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["choices"] is not None:
            d["choices"] = list(d["choices"])
        return d


@dataclass(frozen=True)
class Backend:
    """An inpainting method.

    Attributes
    ----------
    name : registry key used as ``inpaint(..., method=name)``.
    func : ``func(image, mask, **params) -> array``; see the module docstring for the contract.
    description : one line.
    spatial_ndim : 2 for 2-D only methods (looped over leading axes by the API), None for nD.
    channels : "any" (all channels filled jointly), "per_channel" (the API calls func once per
        channel with C == 1), or "rgb" (the network needs 3 channels; the API maps grey and
        other channel counts to RGB and back).
    params : the tunable parameters.
    needs_weights : True when the method needs a trained checkpoint (deep methods).
    dtype : working floating dtype, "float64" or "float32".
    normalize : scale each channel's known pixels to [0, 1] before calling func.
    margin : context (pixels) the method needs around a hole; used for tiling large images.
    deterministic : same inputs (and seed) give the same output.
    slow : the run time grows quickly with the image size (e.g. exemplar search in priority order);
        ``method="auto"`` leaves such methods out on large images.
    """

    name: str
    func: Callable[..., Any]
    description: str
    spatial_ndim: Optional[int] = None
    channels: str = "any"
    params: Sequence[Param] = field(default_factory=tuple)
    needs_weights: bool = False
    dtype: str = "float64"
    normalize: bool = False
    margin: int = 16
    deterministic: bool = True
    slow: bool = False

    def __post_init__(self):
        if self.channels not in ("any", "per_channel", "rgb"):
            raise ValueError(f"Backend {self.name!r}: channels must be 'any', 'per_channel' or 'rgb'")
        if self.spatial_ndim not in (None, 2, 3):
            raise ValueError(f"Backend {self.name!r}: spatial_ndim must be None, 2 or 3")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"Backend {self.name!r}: dtype must be 'float32' or 'float64'")
        object.__setattr__(self, "params", tuple(self.params))

    @property
    def param_map(self) -> dict:
        return {p.name: p for p in self.params}

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "spatial_ndim": self.spatial_ndim,
            "channels": self.channels,
            "params": [p.to_dict() for p in self.params],
            "needs_weights": self.needs_weights,
            "dtype": self.dtype,
            "normalize": self.normalize,
            "margin": self.margin,
            "deterministic": self.deterministic,
            "slow": self.slow,
        }
