"""The backend description that every inpainting method registers.

A backend is a plain function plus metadata. The API layer (`inpaint_plugin._api`) does all
validation, dtype conversion, channel handling and slice-wise looping, so a backend function
only ever sees:

- ``image``: a C-contiguous floating array of shape ``(*spatial, C)`` (channels last, ``C >= 1``),
  dtype ``Backend.dtype``, with no NaN/inf anywhere; masked pixels hold an arbitrary finite value
  (the API sets them to the mean of the known pixels), and the backend must not rely on them.
  ``Backend.normalize`` says which values the backend works on:

  - ``False``: the data's own values (float64 holds them; 64-bit integers are shifted by their
    smallest known value, exactly);
  - ``"joint"``: each channel minus its offset, all channels divided by one common scale (the span
    of the widest channel's known values), so fills are equivariant to offset and scale and solver
    tolerances are relative to the data's variation (the built-in classical methods);
  - ``True`` or ``"per_channel"``: every channel scaled so that its known pixels span ``[0, 1]``;
  - ``"range"``: a fixed value range mapped onto ``[0, 1]`` and clipped there (deep networks): uint8
    data are divided by 255 as the networks were trained; other data use the 0.1 and 99.9 percentiles
    of the known values, one range per group of channels the backend sees together (colour is
    kept), or the user's ``value_range=(lo, hi)``.
  The array is the API's private copy for this call: the backend may overwrite it (and return it).
- ``mask``: a boolean array of shape ``spatial`` (True = fill), never empty and never full.
- keyword parameters, already validated against ``Backend.params``, plus ``seed`` when the
  backend declares a ``seed`` parameter.
- ``progress=callback`` when the backend declares ``reports_progress=True``: the backend calls
  ``callback(done, total)`` after each unit of its own work (a crop, a tile, a batch) so that long runs
  show progress. The callback may raise (e.g. the napari widget's Cancel): the backend must let the
  exception propagate and must not catch it.

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
#: Values of ``Backend.normalize``.
NORMALIZE = (False, True, "joint", "per_channel", "range")
#: Keywords of ``inpaint()`` itself: a backend parameter may not take these names.
RESERVED = frozenset({"image", "mask", "method", "channel_axis", "nodata", "clip", "progress", "per_slice",
                      "value_range", "return_method"})


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a backend (enough to build a GUI from).

    Parameters
    ----------
    name : str
        The keyword the backend's function takes.
    kind : str
        One of ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"path"`` (a file path, may be None).
    default : object
        The default value; ``None`` means the parameter is optional.
    description : str, optional
        One line for help texts and tooltips (default ``""``).
    min, max : float, optional
        Inclusive bounds of numbers (default None: unbounded).
    choices : sequence, optional
        The allowed values of a str parameter (default None: any).

    Attributes
    ----------
    type : type
        The Python type of ``kind`` (``int``, ``float``, ``bool`` or ``str``).

    Raises
    ------
    ValueError
        When ``kind`` is not one of the kinds above.
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
            if not -(2**63) <= conv < 2**63:
                raise ValueError(f"{where} is too large: {value!r} (it must fit in 64 bits)")
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
            if value in (float("inf"), float("-inf")) and (self.min is None or self.max is None):
                raise ValueError(f"{where} must be finite, got {value!r}")
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
    normalize : which values func works on: False, "joint", True / "per_channel" or "range" (see the
        module docstring).
    margin : context (pixels) the method needs around a hole; used for tiling large images.
    deterministic : same inputs (and seed) give the same output.
    slow : the run time grows quickly with the image size (e.g. exemplar search in priority order);
        ``method="auto"`` leaves such methods out on large images.
    reports_progress : func accepts ``progress=callback(done, total)`` and calls it after each unit of
        its work; the callback may raise to cancel (see the module docstring).
    """

    name: str
    func: Callable[..., Any]
    description: str
    spatial_ndim: Optional[int] = None
    channels: str = "any"
    params: Sequence[Param] = field(default_factory=tuple)
    needs_weights: bool = False
    dtype: str = "float64"
    normalize: Any = False
    margin: int = 16
    deterministic: bool = True
    slow: bool = False
    reports_progress: bool = False

    def __post_init__(self):
        if self.channels not in ("any", "per_channel", "rgb"):
            raise ValueError(f"Backend {self.name!r}: channels must be 'any', 'per_channel' or 'rgb'")
        if self.spatial_ndim not in (None, 2, 3):
            raise ValueError(f"Backend {self.name!r}: spatial_ndim must be None, 2 or 3")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"Backend {self.name!r}: dtype must be 'float32' or 'float64'")
        if self.normalize not in NORMALIZE:
            raise ValueError(f"Backend {self.name!r}: normalize must be one of {NORMALIZE}, got {self.normalize!r}")
        object.__setattr__(self, "params", tuple(self.params))
        names = [p.name for p in self.params]
        clash = sorted(set(names) & RESERVED)
        if clash:
            raise ValueError(f"Backend {self.name!r}: parameter name(s) {clash} clash with inpaint()'s own keywords "
                             f"{sorted(RESERVED)}")
        if len(set(names)) != len(names):
            raise ValueError(f"Backend {self.name!r}: parameter names must be unique, got {names}")

    def check_params(self, params: dict) -> dict:
        """``params`` validated and completed with defaults; raises naming the method and parameter."""
        pmap = self.param_map
        unknown = sorted(set(params) - set(pmap))
        if unknown:
            names = ", ".join(pmap) or "none"
            raise TypeError(f"method {self.name!r} got unexpected parameter(s) {', '.join(map(repr, unknown))}; "
                            f"its parameters are: {names}")
        return {name: p.validate(params[name], self.name) if name in params else p.default
                for name, p in pmap.items()}

    def channel_groups(self, n: int) -> list:
        """Lists of input-channel indices, one list per call of ``func`` for ``n`` channels.

        ``"per_channel"``: one channel per call; ``"rgb"``: groups of three consecutive channels, a
        shorter last group repeating its channels (grey -> RGB); ``"any"``: all channels at once.
        """
        if self.channels == "per_channel":
            return [[c] for c in range(n)]
        if self.channels == "rgb":
            groups = []
            for start in range(0, n, 3):
                chans = list(range(start, min(start + 3, n)))
                groups.append([chans[i % len(chans)] for i in range(3)])
            return groups
        return [list(range(n))]

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
            "reports_progress": self.reports_progress,
        }
