"""magicgui widgets built from a backend's :class:`~inpaint_plugin.Param` metadata.

No method has a hand-written form: every control of the "parameters" box comes from
``Backend.params`` (kind, default, bounds, choices, description), so methods that colleagues or
third-party plugins register appear in the GUI with their own parameters.
"""
from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, LineEdit, SpinBox

from .._backend import Backend, Param

__all__ = ["param_widget", "params_container", "read_params", "read_values"]

# Qt spin boxes hold 32-bit ints; unbounded float parameters get a wide but finite range.
_INT_LIMIT = 2**31 - 1
_FLOAT_LIMIT = 1e12
_MAX_DECIMALS = 10


def _decimals(value: float) -> int:
    """Number of decimals needed to show ``value`` exactly (at most ``_MAX_DECIMALS``)."""
    exponent = Decimal(repr(float(value))).as_tuple().exponent
    return min(max(0, -int(exponent)), _MAX_DECIMALS)


def _float_step(param: Param) -> float:
    """A step of about 1 % of the parameter's range, or 0.1 when it is unbounded."""
    if param.min is not None and param.max is not None and param.max > param.min:
        return 10.0 ** math.floor(math.log10((param.max - param.min) / 100))
    return 0.1


def _float_widget(param: Param, **common) -> FloatSpinBox:
    lo = -_FLOAT_LIMIT if param.min is None else float(param.min)
    hi = _FLOAT_LIMIT if param.max is None else float(param.max)
    step = _float_step(param)
    widget = FloatSpinBox(min=lo, max=hi, step=step, value=float(param.default), **common)
    # Qt rounds to the spin box's decimals; make them enough for the default, bounds and step,
    # then set the bounds and value again so nothing was rounded away.
    decimals = max(_decimals(v) for v in (step, lo, hi, param.default))
    widget.native.setDecimals(max(decimals, 2))
    widget.min, widget.max, widget.value = lo, hi, float(param.default)
    return widget


def param_widget(param: Param):
    """The magicgui widget that edits one parameter.

    ``bool`` -> check box; ``int``/``float`` -> spin boxes honouring ``min``/``max``; a string with
    ``choices`` -> drop-down; other strings -> line edit; ``path`` -> file chooser. A number whose
    default is ``None`` (optional, e.g. a seed) is a line edit that may stay empty.

    Parameters
    ----------
    param : Param
        The backend parameter (its name, kind, default, bounds and description as tooltip).

    Returns
    -------
    magicgui.widgets.ValueWidget
        The widget, named ``param.name``, showing the default.
    """
    common = dict(name=param.name, label=param.name.replace("_", " "), tooltip=param.description or None)
    if param.choices is not None:
        choices = list(param.choices)
        value = param.default if param.default in choices else choices[0]
        return ComboBox(choices=choices, value=value, **common)
    if param.kind == "bool":
        return CheckBox(value=bool(param.default), **common)
    if param.kind == "path":
        return FileEdit(mode="r", nullable=True, value=param.default, **common)
    if param.default is None or param.kind == "str":
        widget = LineEdit(value="" if param.default is None else str(param.default), **common)
        if param.default is None:
            widget.native.setPlaceholderText("optional")
        return widget
    if param.kind == "int":
        lo = -_INT_LIMIT if param.min is None else max(int(math.ceil(param.min)), -_INT_LIMIT)
        hi = _INT_LIMIT if param.max is None else min(int(math.floor(param.max)), _INT_LIMIT)
        return SpinBox(min=lo, max=hi, value=int(param.default), **common)
    return _float_widget(param, **common)


def params_container(backend: Backend) -> Container:
    """A container with one widget per parameter of ``backend`` (empty for parameter-less methods).

    Parameters
    ----------
    backend : Backend
        The method whose ``params`` get widgets (see :func:`param_widget`).

    Returns
    -------
    magicgui.widgets.Container
        The container, named ``"params"``, with labels.
    """
    return Container(name="params", widgets=[param_widget(p) for p in backend.params], labels=True)


def read_params(container: Container, backend: Backend) -> dict:
    """The parameter values shown in ``container``, validated and converted by ``Param.validate``.

    Empty optional fields (line edits, file choosers) are left out, so the method uses its default.

    Parameters
    ----------
    container : magicgui.widgets.Container
        The container built by :func:`params_container` for ``backend``.
    backend : Backend
        The method the values are for.

    Returns
    -------
    dict
        ``{parameter name: value}`` ready to pass to :func:`inpaint_plugin.inpaint`.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter when a value is invalid.
    """
    return read_values(container, backend.params, backend.name)


def read_values(container: Container, params, owner: str) -> dict:
    """:func:`read_params` for any sequence of :class:`~inpaint_plugin.Param`, e.g. the thresholds of ``detect``.

    Parameters
    ----------
    container : magicgui.widgets.Container
        A container with one widget named after each parameter.
    params : sequence of Param
        The parameters to read.
    owner : str
        What the parameters belong to, named in error messages.

    Returns
    -------
    dict
        ``{parameter name: validated value}``; empty optional fields are left out.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter when a value is invalid.
    """
    values: dict[str, Any] = {}
    for param in params:
        value = container[param.name].value
        if value is None or (isinstance(value, str) and value.strip() == ""):
            continue
        if isinstance(value, str) and param.kind in ("int", "float"):
            value = value.strip()
        values[param.name] = param.validate(value, owner)
    return values
