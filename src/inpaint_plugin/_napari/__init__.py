"""The napari plugin: dock widget, mask helpers and sample data.

Everything napari/Qt related lives in this sub-package, away from the core. Nothing here is
imported by ``import inpaint_plugin``; napari loads the modules named in ``napari.yaml`` on demand.
"""
