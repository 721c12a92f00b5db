"""The backend registry: a thin layer over a pluggy PluginManager.

Built-in backends and third-party ones (entry-point group ``inpaint_plugin``) register through
the same ``inpaint_plugin_backends`` hook. The registry is built on first use and cached;
:func:`register` adds a plugin object at run time (e.g. in a script or a test).
"""
from __future__ import annotations

import threading
import warnings
from typing import Any, Dict

import pluggy

from . import hookspecs
from ._backend import Backend

_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None
_backends: Dict[str, Backend] | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The project's PluginManager, with built-ins and entry points loaded."""
    global _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            from . import backends as builtin

            pm.register(builtin, name="inpaint_plugin.builtin")
            try:
                pm.load_setuptools_entrypoints(hookspecs.PROJECT)
            except Exception as exc:  # a broken third-party package must not break the built-ins
                warnings.warn(f"inpaint_plugin: could not load a plugin entry point: {exc!r}", RuntimeWarning,
                              stacklevel=2)
            _pm = pm
        return _pm


def _builtin_module():
    from . import backends as builtin

    return builtin


def _collect() -> Dict[str, Backend]:
    pm = plugin_manager()
    found: Dict[str, Backend] = {}
    for impl in pm.hook.inpaint_plugin_backends.get_hookimpls():  # registration order: built-ins first
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            result: Any = impl.function()
        except Exception as exc:
            if impl.plugin is _builtin_module():  # a bug of ours: never hide it
                raise
            warnings.warn(f"inpaint_plugin: plugin {plugin_name!r} failed to list its backends: {exc!r}",
                          RuntimeWarning, stacklevel=3)
            continue
        for backend in result or []:
            if not isinstance(backend, Backend):
                warnings.warn(f"inpaint_plugin: plugin {plugin_name!r} returned {backend!r}, not a Backend; ignored",
                              RuntimeWarning, stacklevel=3)
                continue
            if backend.name in found:
                warnings.warn(f"inpaint_plugin: plugin {plugin_name!r} redefines method {backend.name!r}; "
                              "the first registration is kept", RuntimeWarning, stacklevel=3)
                continue
            found[backend.name] = backend
    return found


def backends() -> Dict[str, Backend]:
    """All registered backends by name (cached)."""
    global _backends
    with _lock:
        if _backends is None:
            _backends = _collect()
        return dict(_backends)


def methods() -> Dict[str, Backend]:
    """All registered backends sorted by name (``inpaint_plugin.methods()``)."""
    table = backends()
    return {name: table[name] for name in sorted(table)}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; ``ValueError`` naming ``method`` otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"method must be a string, got {type(name).__name__}")
    table = backends()
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; available methods: {', '.join(sorted(table))}") from None


def register(plugin, name: str | None = None) -> None:
    """Register a plugin object (module or instance with ``inpaint_plugin_backends``) at run time."""
    global _backends
    with _lock:
        plugin_manager().register(plugin, name=name)
        _backends = None


def unregister(plugin=None, name: str | None = None) -> None:
    """Remove a plugin registered with :func:`register`."""
    global _backends
    with _lock:
        plugin_manager().unregister(plugin, name=name)
        _backends = None
