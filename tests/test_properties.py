"""Property-based tests (hypothesis) of ``inpaint()`` for every registered method.

Random shapes (1-D to 3-D, up to 24x24), dtypes (uint8, uint16, int16, float32, float64), channel
axes and counts, contents (noise, ramps, constants, dtype extremes, tiny and huge floats, NaN in the
holes) and masks (empty, sparse, dense, boxes; bool, label or 0/1 float). For each case:

- known pixels come back bit-for-bit, and the inputs are not modified;
- the output has the input's shape and dtype, no NaN/inf, and filled values within each channel's
  range of known values (``clip=True``);
- an empty mask gives an identical copy;
- the same inputs (and seed) give the same output;
- moving the channel axis moves the result's channel axis and changes nothing else.

The methods are collected from :func:`inpaint_plugin.methods` when the tests are collected, so new
backends join automatically. Deep methods run with a random checkpoint in their official format, on
2-D images only and with few examples, as their tiny-width variant (``_tiny_deep.py``: the same spec
and backend code, a narrow network) where they have one (a full-width network takes seconds per call
on a CPU); the channel-axis property, which the API implements once for all methods, is checked on
the fast methods only.

Environment: ``INPAINT_PLUGIN_PROPERTY_SCALE`` multiplies the number of examples (e.g. 20 for a long
bug hunt); ``INPAINT_PLUGIN_TEST_DEVICE`` is the torch device of the deep methods (default ``cpu``).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import inpaint_plugin as ip
from _tiny_deep import BACKENDS as TINY
from _tiny_deep import contract_methods

METHODS = contract_methods()
pytestmark = pytest.mark.usefixtures("tiny_deep_methods")
DTYPES = [np.uint8, np.uint16, np.int16, np.float32, np.float64]
#: Examples per method; slow methods get fewer (deep methods: see ``_examples``).
SLOW_EXAMPLES = {"patchmatch": 6}
DEFAULT_EXAMPLES = 15
DEEP_EXAMPLES = 2
TINY_DEEP_EXAMPLES = 5
SCALE = float(os.environ.get("INPAINT_PLUGIN_PROPERTY_SCALE", "1"))
DEVICE = os.environ.get("INPAINT_PLUGIN_TEST_DEVICE", "cpu")


def _examples(backend) -> int:
    if backend.needs_weights:
        base = TINY_DEEP_EXAMPLES if backend.name in TINY else DEEP_EXAMPLES
    else:
        base = SLOW_EXAMPLES.get(backend.name, DEFAULT_EXAMPLES)
    return max(1, int(round(base * SCALE)))


@pytest.fixture(scope="module")
def method_params(tmp_path_factory):
    """``method_params(name)``: keyword arguments every call needs (weights and device of deep methods)."""
    folder = tmp_path_factory.mktemp("property-weights")
    cache = {}

    def get(name):
        backend = METHODS[name]
        if not backend.needs_weights:
            return {}
        if name not in cache:
            try:
                from inpaint_plugin.deep._backend import random_checkpoint
            except ImportError as exc:  # only while the deep layer is missing
                pytest.skip(f"{name} needs weights and inpaint_plugin.deep.random_checkpoint is "
                            f"not available: {exc}")
            cache[name] = {"weights": str(random_checkpoint(name, folder / name, seed=0)), "device": DEVICE}
        return cache[name]

    return get


# --- strategies -----------------------------------------------------------------------------------
def _content(rng, shape, dtype, kind, scale):
    """Image values of a given dtype: ``kind`` in noise / ramp / constant / extremes."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = float(info.min), float(info.max)
    else:
        lo, hi = -scale, scale
    if kind == "noise":
        x = rng.uniform(lo, hi, shape)
    elif kind == "ramp":
        x = np.zeros(shape)
        for axis, n in enumerate(shape):
            x = x + np.linspace(0, 1, n).reshape([-1 if a == axis else 1 for a in range(len(shape))]) * rng.uniform(-1, 1)
        x = lo + (hi - lo) * (x - x.min()) / (np.ptp(x) or 1.0)
    elif kind == "constant":
        x = np.full(shape, rng.uniform(lo, hi))
    else:  # extremes: only the two ends of the range (integer limits, or +-scale)
        x = np.where(rng.random(shape) < 0.5, lo, hi)
    if dtype.kind in "iu":
        x = np.clip(np.rint(x), lo, hi)
    return x.astype(dtype)


def _mask(rng, spatial, style, density):
    if style == "empty":
        return np.zeros(spatial, bool)
    m = rng.random(spatial) < density
    if style == "box":
        m = np.zeros(spatial, bool)
        starts = [rng.integers(0, n) for n in spatial]
        stops = [min(n, s + rng.integers(1, max(2, n // 2 + 1))) for s, n in zip(starts, spatial)]
        m[tuple(slice(a, b) for a, b in zip(starts, stops))] = True
    # keep a known pixel in every 2-D slice (last two axes), as the 2-D methods need
    flat = m.reshape(-1, *spatial[-2:]) if len(spatial) >= 2 else m.reshape(1, -1)
    for s in flat:
        if s.all():
            s[tuple(rng.integers(0, n) for n in s.shape)] = False
    return m


@st.composite
def cases(draw, backend):
    """``(image, mask, channel_axis)`` for ``backend``."""
    if backend.needs_weights:  # slow: single 2-D images (the API's slice loop is tested on fast methods)
        ndim_choices = [2]
    else:
        ndim_choices = [2, 2, 3] + ([1] if backend.spatial_ndim is None else [])
    nsp = draw(st.sampled_from(ndim_choices))
    side = st.integers(1, 24) if draw(st.booleans()) else st.integers(5, 24)  # one-pixel-thin images too
    if nsp == 1:
        spatial = (draw(st.integers(2, 24)),)
    elif nsp == 2:
        spatial = (draw(side), draw(side))
    else:
        spatial = (draw(st.integers(1, 3)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    if np.prod(spatial) < 2:  # a single pixel cannot be both known and a hole
        spatial = spatial[:-1] + (2,)
    nchan = draw(st.sampled_from([None, 1, 2, 3, 4]))
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["noise", "ramp", "constant", "extremes"]))
    scale = 10.0 ** draw(st.integers(-20, 12))
    style = draw(st.sampled_from(["empty", "random", "random", "random", "box", "box"]))
    density = draw(st.floats(0.02, 0.7))
    mask_type = draw(st.sampled_from(["bool", "labels", "float01"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    shape = spatial if nchan is None else spatial + (nchan,)
    image = _content(rng, shape, dtype, kind, scale)
    mask = _mask(rng, spatial, style, density)
    channel_axis = None
    if nchan is not None:
        pos = draw(st.integers(0, nsp))  # where the channel axis goes
        image = np.moveaxis(image, -1, pos)
        channel_axis = draw(st.sampled_from([pos, pos - image.ndim]))
    if image.dtype.kind == "f" and mask.any() and draw(st.booleans()):  # NaN/inf in some holes
        holes = np.moveaxis(image, channel_axis, -1) if channel_axis is not None else image[..., None]
        pick = mask & (rng.random(spatial) < 0.5)
        holes[pick] = rng.choice([np.nan, np.inf, -np.inf], size=holes[pick].shape)
    if mask_type == "labels":
        mask = mask.astype(np.uint8) * rng.integers(1, 4, spatial).astype(np.uint8)
    elif mask_type == "float01":
        mask = mask.astype(np.float32)
    return image, mask, channel_axis


# --- the properties -------------------------------------------------------------------------------
def _channels_last(a, channel_axis):
    return a[..., None] if channel_axis is None else np.moveaxis(a, channel_axis, -1)


def _bits(a):
    """The array's raw bits (so that -0.0 != 0.0 and NaN payloads count)."""
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def _check_case(name, case, params):
    backend = METHODS[name]
    image, mask, channel_axis = case
    kw = dict(params)
    if "seed" in backend.param_map:
        kw["seed"] = 1234
    image0, mask0 = image.copy(), mask.copy()

    out = ip.inpaint(image, mask, name, channel_axis=channel_axis, **kw)

    # inputs untouched
    assert np.array_equal(_bits(image), _bits(image0)), "the image was modified"
    assert np.array_equal(mask, mask0), "the mask was modified"
    # shape, dtype, finite
    assert out.shape == image.shape and out.dtype == image.dtype
    assert out is not image
    if out.dtype.kind == "f":
        assert np.isfinite(out).all(), "NaN/inf in the output"
    m = np.asarray(mask) != 0
    img_c, out_c = _channels_last(image, channel_axis), _channels_last(out, channel_axis)
    # known pixels bit-for-bit
    assert np.array_equal(_bits(out_c[~m]), _bits(img_c[~m])), "known pixels changed"
    if not m.any():
        assert np.array_equal(_bits(out), _bits(image)), "empty mask must give an identical copy"
        return
    # filled values within each channel's range of known values
    known = img_c[~m]
    lo, hi = known.min(axis=0), known.max(axis=0)
    filled = out_c[m]
    assert (filled >= lo).all() and (filled <= hi).all(), "filled values outside the known range"
    # deterministic
    if backend.deterministic or "seed" in backend.param_map:
        again = ip.inpaint(image, mask, name, channel_axis=channel_axis, **kw)
        assert np.array_equal(_bits(again), _bits(out)), "two identical calls gave different results"
    return out


@pytest.mark.parametrize("name", list(METHODS))
def test_inpaint_properties(name, method_params):
    backend = METHODS[name]
    params = method_params(name)

    @settings(max_examples=_examples(backend), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=cases(backend))
    def check(case):
        _check_case(name, case, params)

    check()


@pytest.mark.parametrize("name", list(METHODS))
def test_channel_axis_position_does_not_matter(name, method_params):
    backend = METHODS[name]
    params = method_params(name)
    if not (backend.deterministic or "seed" in backend.param_map):
        pytest.skip(f"{name} is not deterministic")
    if backend.needs_weights:
        pytest.skip("channel axes are handled by the API for all methods alike; checked on the fast methods "
                    "(deep methods take seconds per call on a CPU)")
    kw = dict(params, **({"seed": 7} if "seed" in backend.param_map else {}))

    @settings(max_examples=max(2, _examples(backend) // 3), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(h=st.integers(4, 20), w=st.integers(4, 20), c=st.integers(1, 4), dtype=st.sampled_from(DTYPES),
           seed=st.integers(0, 2**32 - 1))
    def check(h, w, c, dtype, seed):
        rng = np.random.default_rng(seed)
        last = _content(rng, (h, w, c), dtype, "noise", 100.0)
        mask = _mask(rng, (h, w), "random", 0.3)
        first = np.ascontiguousarray(np.moveaxis(last, -1, 0))
        a = ip.inpaint(last, mask, name, channel_axis=-1, **kw)
        b = ip.inpaint(first, mask, name, channel_axis=0, **kw)
        assert np.array_equal(_bits(np.moveaxis(b, 0, -1)), _bits(a))

    check()


@pytest.mark.parametrize("name", list(METHODS))
def test_masks_without_known_pixels_are_refused(name, method_params):
    params = method_params(name)
    image = np.arange(2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7)
    full = np.ones(image.shape, bool)
    with pytest.raises(ValueError, match="whole"):
        ip.inpaint(image, full, name, **params)
    if METHODS[name].spatial_ndim == 2:  # a 2-D method cannot fill a slice with no known pixel
        one_slice = np.zeros(image.shape, bool)
        one_slice[1] = True
        with pytest.raises(ValueError, match="slice"):
            ip.inpaint(image, one_slice, name, **params)


CLASSICAL = [n for n, b in METHODS.items() if not b.needs_weights and b.normalize in ("joint", "per_channel", True)]


@pytest.mark.parametrize("name", CLASSICAL)
def test_fills_are_equivariant_to_offset_and_scale(name, method_params):
    """``fill(a * x + b) == a * fill(x) + b`` (float64, to a few ulps of the data's own variation) for the
    methods that work on centred, scaled values (``normalize`` "joint" or per channel), whatever the offset
    and scale."""
    backend = METHODS[name]
    kw = dict(method_params(name), **({"seed": 3} if "seed" in backend.param_map else {}))

    @settings(max_examples=max(2, _examples(backend) // 3), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(h=st.integers(6, 18), w=st.integers(6, 18), seed=st.integers(0, 2**32 - 1),
           offset=st.sampled_from([0.0, 1e5, -3e7, 1e10]), log_scale=st.sampled_from([-150, -3, 0, 4, 150]))
    def check(h, w, seed, offset, log_scale):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[:h, :w]
        x = np.sin(xx / 3.0 + rng.uniform(0, 3)) + np.cos(yy / 4.0) + 0.1 * rng.standard_normal((h, w))
        mask = _mask(rng, (h, w), "random", 0.25)
        if mask.all() or not mask.any():
            return
        scale = 10.0**log_scale
        # x * scale + offset must still resolve the data: where float64 keeps less than about six digits
        # of the data's variation (1e10 + 1e-3 x), the input itself is lost, not the method's equivariance
        assume(abs(offset) * np.finfo(np.float64).eps / scale < 1e-6 * np.ptp(x))
        base = ip.inpaint(x, mask, name, **kw)
        moved = ip.inpaint(x * scale + offset, mask, name, **kw)
        assert np.isfinite(moved).all()
        back = (moved - offset) / scale
        # x * scale + offset rounds to float64: that quantisation bounds the agreement
        tol = 1e-6 * np.ptp(x) + 8 * np.finfo(np.float64).eps * (abs(offset) / scale + np.abs(x).max())
        assert np.abs(back - base)[mask].max() <= tol

    check()


@pytest.mark.parametrize("name", [n for n, b in METHODS.items() if not b.needs_weights])
def test_64_bit_integer_extremes(name, method_params):
    """64-bit integers: values near the dtype's limits come back in range and in the known range,
    constant images stay constant (float64 cannot hold these values: no wrap-around, no 0 or -2**63)."""
    backend = METHODS[name]
    kw = dict(method_params(name), **({"seed": 1} if "seed" in backend.param_map else {}))

    @settings(max_examples=max(2, _examples(backend) // 3), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(dtype=st.sampled_from([np.int64, np.uint64]), at=st.sampled_from(["max", "min", "both"]),
           seed=st.integers(0, 2**32 - 1))
    def check(dtype, at, seed):
        rng = np.random.default_rng(seed)
        info = np.iinfo(dtype)
        h, w = 10, 12
        noise = rng.integers(0, 1000, (h, w)).astype(object)
        if at == "max":
            img = np.array(int(info.max) - noise, dtype=object).astype(dtype)
        elif at == "min":
            img = np.array(int(info.min) + noise, dtype=object).astype(dtype)
        else:
            img = np.where(rng.random((h, w)) < 0.5, info.min, info.max).astype(dtype)
        mask = _mask(rng, (h, w), "random", 0.3)
        if mask.all() or not mask.any():
            return
        out = ip.inpaint(img, mask, name, **kw)
        assert out.dtype == img.dtype
        assert np.array_equal(out[~mask], img[~mask])
        known = img[~mask]
        assert out[mask].min() >= known.min() and out[mask].max() <= known.max()
        const = np.full((h, w), info.max, dtype=dtype)
        assert (ip.inpaint(const, mask, name, **kw) == info.max).all()

    check()
