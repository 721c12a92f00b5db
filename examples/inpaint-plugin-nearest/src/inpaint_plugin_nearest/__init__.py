"""An example third-party backend: every hole pixel takes the value of its nearest known pixel.

Install it (``pip install examples/inpaint-plugin-nearest``) and it appears in
``inpaint_plugin.methods()``, the CLI (``--method nearest``) and the napari widget.
"""
from scipy import ndimage

from inpaint_plugin import Backend, Param, hookimpl


def nearest_fill(image, mask, *, sampling=1.0):
    """Copy the nearest known pixel into each hole pixel (nD, all channels at once)."""
    _, indices = ndimage.distance_transform_edt(mask, sampling=sampling, return_indices=True)
    return image[tuple(indices)]


@hookimpl
def inpaint_plugin_backends():
    return [
        Backend(
            name="nearest",
            func=nearest_fill,
            description="Nearest known pixel (example third-party plugin)",
            spatial_ndim=None,
            params=[Param("sampling", "float", 1.0, "pixel spacing (isotropic)", min=1e-6)],
            margin=4,
        )
    ]
