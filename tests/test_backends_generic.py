"""Properties every registered backend must have, whatever it is (new backends join automatically).

Known pixels bit-for-bit, dtype kept, inputs untouched, values within the known range, holes
really filled from context, determinism. Methods that need weights get a random checkpoint in
their official format (no weights can be downloaded here), and run as their tiny-width variant
(``_tiny_deep.py``: the same spec and backend code, a narrow network) where they have one.
"""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin as ip
from _tiny_deep import BACKENDS as TINY
from _tiny_deep import TINY_BUILDS, TINY_FIELDS, contract_methods, real

CONTRACT = contract_methods()
METHODS = list(CONTRACT)
pytestmark = pytest.mark.usefixtures("tiny_deep_methods")


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


def method_params(name, weights_dir):
    backend = ip.get_backend(name)
    params = {}
    if backend.needs_weights:
        try:
            from inpaint_plugin.deep._backend import random_checkpoint
        except ImportError as exc:  # pragma: no cover - only while the deep layer is missing
            pytest.skip(f"deep infrastructure not available: {exc}")
        path = weights_dir / name
        if not path.exists():
            random_checkpoint(name, path, seed=0)
        params["weights"] = str(path)
        params["device"] = "cpu"
    return params


def smooth_image(shape=(40, 48), channels=None, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]] / np.array(shape).reshape(2, 1, 1)
    chans = []
    for c in range(channels or 1):
        a, b, ph = rng.uniform(0.5, 2.0, 3)
        chans.append(0.5 + 0.35 * np.sin(2 * np.pi * (a * yy + b * xx) + ph))
    img = np.stack(chans, -1) if channels else chans[0]
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        img = img * min(info.max, 4000) + (info.min if info.min < 0 else 0) * 0.1
    return img.astype(dtype)


def holes(shape=(40, 48)):
    m = np.zeros(shape, bool)
    m[10:16, 12:20] = True
    m[28:31, 30:42] = True
    m[5, 40] = True
    return m


CASES = {
    "uint8-grey": (np.uint8, None, None),
    "uint16-rgb-axis0": (np.uint16, 3, 0),
    "float32-4ch": (np.float32, 4, -1),
    "int16": (np.int16, None, None),
}
# Full-width deep networks (a deep method without a tiny variant: every built-in one has one, a
# plugin's may not) cost seconds per call on a CPU: they get
# the two cases that exercise the grey -> RGB and 4-channel -> two RGB triples mappings; the API
# layer around them is the same.
DEEP_CASES = ("uint8-grey", "float32-4ch")


def contract_cases():
    for method in METHODS:
        full_width_deep = CONTRACT[method].needs_weights and method not in TINY
        for case in CASES:
            if not full_width_deep or case in DEEP_CASES:
                yield pytest.param(method, *CASES[case], id=f"{method}-{case}")


@pytest.mark.parametrize("method, dtype, channels, axis", list(contract_cases()))
def test_backend_contract(method, dtype, channels, axis, weights_dir):
    params = method_params(method, weights_dir)
    img = smooth_image(channels=channels, dtype=dtype)
    if axis == 0:
        img = np.moveaxis(img, -1, 0)
    mask = holes()
    img_before, mask_before = img.copy(), mask.copy()
    out = ip.inpaint(img, mask, method=method, channel_axis=axis, **params)

    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(img, img_before)
    np.testing.assert_array_equal(mask, mask_before)
    chan_last = np.moveaxis(out, axis, -1) if axis is not None else out[..., None]
    src = np.moveaxis(img, axis, -1) if axis is not None else img[..., None]
    np.testing.assert_array_equal(chan_last[~mask], src[~mask])  # bit-for-bit
    assert np.isfinite(chan_last.astype(np.float64)).all()
    lo, hi = src[~mask].min(axis=0), src[~mask].max(axis=0)
    assert (chan_last[mask] >= lo).all() and (chan_last[mask] <= hi).all()


@pytest.mark.parametrize("method", METHODS)
def test_backend_fills_from_context(method, weights_dir):
    """A hole in a constant region of each channel comes back as that constant (up to 2% of the range)."""
    if ip.get_backend(method).needs_weights:
        pytest.skip("random network weights do not inpaint; deep methods are checked against reference outputs")
    params = method_params(method, weights_dir)
    img = np.empty((40, 48, 3), np.float64)
    img[:, :24] = (0.2, 0.5, 0.9)
    img[:, 24:] = np.linspace(0, 1, 24)[None, :, None]  # each channel's known range is [0, 1]
    mask = np.zeros((40, 48), bool)
    mask[15:21, 4:10] = True  # well inside the constant half
    out = ip.inpaint(img, mask, method=method, channel_axis=-1, **params)
    np.testing.assert_allclose(out[mask], np.broadcast_to((0.2, 0.5, 0.9), out[mask].shape), atol=0.02)


@pytest.mark.parametrize("method", METHODS)
def test_backend_is_deterministic(method, weights_dir):
    params = method_params(method, weights_dir)
    if "seed" in ip.get_backend(method).param_map:
        params["seed"] = 3
    img = smooth_image(dtype=np.float32, seed=5)
    mask = holes()
    a = ip.inpaint(img, mask, method=method, **params)
    b = ip.inpaint(img, mask, method=method, **params)
    if ip.get_backend(method).deterministic or "seed" in params:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", METHODS)
def test_backend_stack_and_nan(method, weights_dir):
    """A float z-stack with NaN holes (mask=None): all filled, 2-D methods slice by slice."""
    params = method_params(method, weights_dir)
    stack = np.stack([smooth_image(dtype=np.float32, seed=s) for s in range(3)])
    damaged = stack.copy()
    damaged[0, 10:14, 10:14] = np.nan
    damaged[2, 30:33, 5:9] = np.nan
    out = ip.inpaint(damaged, None, method=method, **params)
    assert np.isfinite(out).all()
    known = ~np.isnan(damaged)
    np.testing.assert_array_equal(out[known], damaged[known])
    np.testing.assert_array_equal(out[1], stack[1])


@pytest.mark.parametrize("method", [m for m in METHODS if CONTRACT[m].needs_weights])
def test_deep_backend_without_weights_says_where_to_get_them(method):
    image = np.zeros((16, 16, 3), np.float32)
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    with pytest.raises(ValueError, match=r"(?s)drive\.google\.com.*weights="):
        ip.inpaint(image, mask, method=method, channel_axis=-1)


@pytest.mark.parametrize("tiny", sorted(TINY))
def test_tiny_variants_are_the_registered_methods_at_a_smaller_width(tiny):
    """The variants these tests run differ from the registered methods only in the network's width
    (and, for fixed-size networks, the input side): same loader, saver, predict, sizes, registry and
    parameters, and the same network class."""
    import dataclasses

    from inpaint_plugin.deep import find_spec

    name = real(tiny)
    spec, small = find_spec(name), find_spec(tiny)
    differ = {f.name for f in dataclasses.fields(spec) if getattr(spec, f.name) != getattr(small, f.name)}
    assert differ == {"name", "build"} | set(TINY_FIELDS.get(name, ()))
    assert small.build is TINY_BUILDS[name]
    assert type(small.build()) is type(spec.build())
    backend, variant = ip.get_backend(name), ip.get_backend(tiny)
    differ = {f.name for f in dataclasses.fields(backend) if getattr(backend, f.name) != getattr(variant, f.name)}
    assert differ == {"name", "func", "description"}
