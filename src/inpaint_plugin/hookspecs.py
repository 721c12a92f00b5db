"""pluggy hook specifications for inpaint-plugin backends.

A third-party package adds methods by exposing a module with a hook implementation
under the ``inpaint_plugin`` entry-point group::

    # pyproject.toml of the other package
    [project.entry-points.inpaint_plugin]
    my_methods = "my_package.inpaint_backends"

    # my_package/inpaint_backends.py
    from inpaint_plugin import Backend, Param, hookimpl

    def _fill(image, mask, *, strength=1.0):
        ...

    @hookimpl
    def inpaint_plugin_backends():
        return [Backend("my_method", _fill, "What it does", params=[Param("strength", "float", 1.0)])]

The built-in methods register through this very hook (``inpaint_plugin.backends``).
"""
from __future__ import annotations

import pluggy

PROJECT = "inpaint_plugin"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def inpaint_plugin_backends():
    """Return a list of :class:`inpaint_plugin.Backend` objects this plugin provides."""
