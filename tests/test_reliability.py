"""Regression tests for silent wrong results (issue: reliability) and the stack options.

64-bit integers, offsets and scales, partly missing multi-band pixels, nodata in the image's dtype,
extreme floats, unclear errors, sparse holes in large images, 2-D masks on stacks, per-slice fills.
"""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin as ip

CLASSICAL = ["biharmonic", "tv", "cdd", "telea", "navier_stokes", "patchmatch"]


def smooth(shape=(40, 48), seed=0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    rng = np.random.default_rng(seed)
    return np.sin(xx / 7.0) + np.cos(yy / 5.0) + 0.05 * rng.standard_normal(shape)


def holes(shape=(40, 48)):
    m = np.zeros(shape, bool)
    m[10:16, 12:20] = True
    m[30, 5:40] = True
    m[25:28, 30:33] = True
    return m


# --- 64-bit integers -----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["biharmonic", "telea", "tv"])
@pytest.mark.parametrize("dtype", [np.uint64, np.int64])
def test_64bit_constant_at_the_dtype_maximum(method, dtype):
    info = np.iinfo(dtype)
    img = np.full((24, 24), info.max, dtype=dtype)
    mask = np.zeros(img.shape, bool)
    mask[8:12, 8:12] = True
    out = ip.inpaint(img, mask, method=method)
    assert out.dtype == dtype
    assert (out == info.max).all()  # not 0, not -2**63


@pytest.mark.parametrize("dtype", [np.uint64, np.int64])
def test_64bit_values_near_the_top_are_exact_and_in_range(dtype):
    info = np.iinfo(dtype)
    base = int(info.max) - 1000
    yy, xx = np.mgrid[:24, :24]
    img = (np.asarray(base, dtype=object) - (yy + 2 * xx).astype(object) * 7).astype(dtype)
    mask = np.zeros(img.shape, bool)
    mask[8:12, 8:12] = True
    out = ip.inpaint(img, mask, method="biharmonic")
    np.testing.assert_array_equal(out[~mask], img[~mask])
    known = img[~mask]
    assert out[mask].min() >= known.min() and out[mask].max() <= known.max()
    # the ramp is reproduced to the integer (float64 alone would be off by up to 1024)
    err = np.abs(out[mask].astype(object) - img[mask].astype(object))
    assert max(err) <= 1


def test_int64_negative_range_wider_than_int64():
    img = np.zeros((16, 16), np.int64)
    img[:, :8] = np.iinfo(np.int64).min + 5
    img[:, 8:] = np.iinfo(np.int64).max - 5
    mask = np.zeros(img.shape, bool)
    mask[6:10, 6:10] = True
    out = ip.inpaint(img, mask, method="biharmonic")
    assert out[mask].min() >= img.min() and out[mask].max() <= img.max()
    np.testing.assert_array_equal(out[~mask], img[~mask])


# --- offset and scale equivariance -----------------------------------------------------------------

@pytest.mark.parametrize("method", CLASSICAL)
@pytest.mark.parametrize("offset", [1e5, 1e10])
def test_fill_is_equivariant_to_an_offset(method, offset):
    img = smooth()
    mask = holes()
    kw = {"seed": 0} if "seed" in ip.methods()[method].param_map else {}
    base = ip.inpaint(img, mask, method=method, **kw)
    shifted = ip.inpaint(img + offset, mask, method=method, **kw)
    span = np.ptp(img[~mask])
    err = np.abs((shifted - offset) - base)[mask].max() / span
    # float64 holds x + 1e10 to about 2e-6: that quantisation, not the method, bounds the error
    assert err <= max(1e-6, 4 * offset * np.finfo(np.float64).eps / span)


@pytest.mark.parametrize("method", CLASSICAL)
@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_fill_is_equivariant_to_a_scale(method, scale):
    img = smooth()
    mask = holes()
    kw = {"seed": 0} if "seed" in ip.methods()[method].param_map else {}
    base = ip.inpaint(img, mask, method=method, **kw)
    scaled = ip.inpaint(img * scale, mask, method=method, **kw)
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(scaled[mask] / scale, base[mask], rtol=1e-6, atol=1e-9 * np.ptp(img))


@pytest.mark.parametrize("method", ["biharmonic", "telea", "tv"])
@pytest.mark.parametrize("value", [1e308, -1e308, np.finfo(np.float64).max])
def test_extreme_finite_floats_work(method, value):
    img = smooth() / 3 * value if abs(value) < np.finfo(np.float64).max else np.full((40, 48), value)
    mask = holes()
    out = ip.inpaint(img, mask, method=method)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[~mask], img[~mask])


def test_range_up_to_the_float64_maximum():
    img = np.where(np.arange(48) < 24, -1.7e308, 1.7e308)[np.newaxis].repeat(40, axis=0)
    mask = holes()
    out = ip.inpaint(img, mask, method="biharmonic")
    assert np.isfinite(out).all() and out.min() >= -1.7e308 and out.max() <= 1.7e308


# --- multi-band NaN and nodata ----------------------------------------------------------------------

def test_nan_in_one_band_keeps_the_other_bands():
    img = np.stack([smooth(seed=s) for s in range(3)], axis=-1)
    bad = img.copy()
    bad[5, 5, 1] = np.nan  # one band only
    bad[20:23, 20:23, :] = np.nan  # all bands
    out = ip.inpaint(bad, None, channel_axis=-1)
    assert np.isfinite(out).all()
    assert out[5, 5, 0] == img[5, 5, 0] and out[5, 5, 2] == img[5, 5, 2]  # valid bands kept bit-exact
    assert out[5, 5, 1] != 0 and abs(out[5, 5, 1] - img[5, 5, 1]) < 0.5


def test_nodata_in_one_band_keeps_the_other_bands():
    img = (np.stack([smooth(seed=s) for s in range(2)], axis=-1) * 100 + 500).astype(np.int16)
    bad = img.copy()
    bad[7, 9, 0] = -9999
    out = ip.inpaint(bad, nodata=-9999, channel_axis=-1)
    assert out[7, 9, 1] == img[7, 9, 1]
    assert out[7, 9, 0] != -9999


def test_explicit_mask_fills_every_band():
    img = np.stack([smooth(seed=s) for s in range(2)], axis=-1)
    mask = np.zeros(img.shape[:2], bool)
    mask[5, 5] = True
    garbage = img.copy()
    garbage[5, 5] = 1e3
    out = ip.inpaint(garbage, mask, channel_axis=-1)
    assert (np.abs(out[5, 5]) < 10).all()


def test_nodata_is_compared_in_the_image_dtype():
    img = smooth().astype(np.float32)
    img[3:5, 3:5] = np.float32(0.1)
    out = ip.inpaint(img, nodata=0.1)  # a Python float that float32 cannot hold exactly
    assert not np.isclose(out[3:5, 3:5], np.float32(0.1)).all()
    np.testing.assert_allclose(out[3:5, 3:5], smooth()[3:5, 3:5], atol=0.3)


@pytest.mark.parametrize("nodata, exc, match", [
    (2**70, ValueError, "nodata.*outside the range"),
    (0.5, ValueError, "nodata.*not an integer"),
    ("0", TypeError, "nodata must be a number"),
])
def test_nodata_the_dtype_cannot_hold_is_refused(nodata, exc, match):
    img = (smooth() * 10 + 50).astype(np.uint8)
    with pytest.raises(exc, match=match):
        ip.inpaint(img, nodata=nodata)


# --- unclear errors -------------------------------------------------------------------------------------

def test_unclear_errors_name_the_argument():
    img, mask = smooth(), holes()
    with pytest.raises(TypeError, match="progress must be a callable"):
        ip.inpaint(img, mask, progress=5)
    with pytest.raises(ValueError, match="image must be a rectangular array"):
        ip.inpaint([[1.0, 2.0], [3.0]], [[True, False], [False]])
    with pytest.raises(ValueError, match="'seed'.*too large"):
        ip.inpaint(img, mask, method="patchmatch", seed=10**30)
    with pytest.raises(TypeError, match="'seed'.*must be an int"):
        ip.inpaint(img, mask, method="patchmatch", seed="abc")


def test_param_names_that_clash_with_inpaint_keywords_are_rejected():
    with pytest.raises(ValueError, match="clash"):
        ip.Backend("bad", lambda i, m, **k: i, "x", params=[ip.Param("clip", "bool", True)])


# --- stacks: 2-D masks, per-slice fills ---------------------------------------------------------------

def test_a_2d_mask_applies_to_every_frame_of_a_stack():
    frames = np.stack([smooth(seed=s) + s for s in range(4)])
    mask2d = holes()
    out = ip.inpaint(frames, mask2d, per_slice=True)
    for t in range(4):  # the same fill as frame by frame (up to the float rounding of the scaling)
        np.testing.assert_allclose(out[t], ip.inpaint(frames[t], mask2d), rtol=1e-12, atol=1e-12)
    # and with a channel axis, and for a 2-D method
    rgb = np.stack([frames] * 3, axis=-1)
    out = ip.inpaint(rgb, mask2d, method="telea", channel_axis=-1)
    assert out.shape == rgb.shape
    np.testing.assert_array_equal(out[:, ~mask2d], rgb[:, ~mask2d])
    with pytest.raises(ValueError, match="trailing axes"):
        ip.inpaint(frames, mask2d[:, :-1])


def test_per_slice_fills_unrelated_frames_better():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:40, :48]
    # four unrelated frames (different patterns): a joint 3-D fill mixes them
    frames = np.stack([np.sin(xx / (3 + 2 * t) + rng.uniform(0, 6)) * np.cos(yy / (4 + t)) for t in range(4)])
    mask = np.zeros(frames.shape, bool)
    mask[:, :, 20:23] = True  # a dead column in every frame
    joint = ip.inpaint(frames, mask, per_slice=False, clip=False)
    sliced = ip.inpaint(frames, mask, per_slice=True, clip=False)
    rmse = lambda out: np.sqrt(np.mean((out - frames)[mask] ** 2))  # noqa: E731
    assert rmse(sliced) < rmse(joint)
    for t in range(4):
        np.testing.assert_allclose(sliced[t], ip.inpaint(frames[t], mask[t], clip=False), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="per_slice=False"):
        ip.inpaint(frames, mask, method="telea", per_slice=False)


def test_auto_reports_its_choice(caplog):
    img, mask = smooth(), holes()
    with caplog.at_level("INFO", logger="inpaint_plugin"):
        out, method = ip.inpaint(img, mask, method="auto", return_method=True)
    assert method in ip.methods() and method in caplog.text
    np.testing.assert_array_equal(out[~mask], img[~mask])


# --- sparse holes in large images: windows around the holes ----------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("method", ["biharmonic", "telea", "tv"])
def test_sparse_holes_in_a_large_image_match_the_whole_image_fill(method, monkeypatch):
    from inpaint_plugin import _engine

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:700, :650]
    img = (np.sin(xx / 17) * np.cos(yy / 23) * 1000 + 2000 + rng.normal(0, 5, xx.shape)).astype(np.uint16)
    mask = np.zeros(img.shape, bool)
    for r, c in rng.integers(20, 620, size=(12, 2)):
        mask[r:r + 3, c:c + 4] = True
    mask[300, 100:300] = True  # a scratch crossing several cells
    monkeypatch.setattr(_engine, "WINDOW_MIN_PIXELS", 1 << 30)
    whole = ip.inpaint(img, mask, method=method)
    monkeypatch.setattr(_engine, "WINDOW_MIN_PIXELS", 1 << 16)
    monkeypatch.setattr(_engine, "WINDOW_CELL", 32)
    monkeypatch.setattr(_engine, "WINDOW_FRACTION", 0.6)
    calls = []
    backend = ip.methods()[method]
    original = backend.func

    def spy(image, m, **kw):
        calls.append(image.shape)
        return original(image, m, **kw)

    object.__setattr__(backend, "func", spy)  # Backend is frozen: swap the function for this test only
    try:
        windowed = ip.inpaint(img, mask, method=method)
    finally:
        object.__setattr__(backend, "func", original)
    assert len(calls) > 1 and all(s[0] * s[1] < img.size / 4 for s in calls)  # windows, not the image
    diff = np.abs(windowed.astype(int) - whole.astype(int))
    assert diff.max() <= 1  # the methods are local: the same fill up to rounding
    np.testing.assert_array_equal(windowed[~mask], img[~mask])
