"""Fast-marching backends: ``telea`` (own numba kernel) and ``navier_stokes`` (OpenCV)."""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin as ip
from inpaint_plugin.backends.telea import telea_fill

FMM = ["telea", "navier_stokes"]


def ramp(shape=(48, 56), gy=0.7, gx=1.3, offset=10.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    return offset + gy * yy + gx * xx


def smooth(shape=(48, 56), channels=1, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]] / np.array(shape, float).reshape(2, 1, 1)
    chans = []
    for _ in range(channels):
        a, b, ph = rng.uniform(0.3, 1.0, 3)
        chans.append(0.5 + 0.4 * np.sin(2 * np.pi * (a * yy + b * xx) + ph))
    return np.stack(chans, -1)


def psnr(a, b, peak=1.0):
    return 10 * np.log10(peak**2 / np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2))


def test_telea_is_exact_for_dead_pixels_in_a_ramp():
    """First-order extrapolation from known pixels: isolated holes in a linear ramp come back exactly."""
    img = ramp()[..., None]
    mask = np.zeros(img.shape[:2], bool)
    mask[2:46:7, 3] = True
    mask[5:45:8, 20:50:9] = True
    mask[0, 30] = True  # on the border
    out = telea_fill(img, mask)
    np.testing.assert_allclose(out[mask], img[mask], rtol=0, atol=1e-9)


def test_telea_scratches_in_a_ramp():
    img = ramp()[..., None]
    span = img.max() - img.min()
    mask = np.zeros(img.shape[:2], bool)
    mask[20, 5:50] = True
    mask[5:40, 30] = True
    err = np.abs(telea_fill(img, mask)[mask] - img[mask]) / span
    assert err.max() < 0.02 and err.mean() < 0.01, (err.max(), err.mean())


def test_telea_small_error_on_a_ramp_with_a_block_hole():
    img = ramp()[..., None]
    mask = np.zeros(img.shape[:2], bool)
    mask[18:26, 20:30] = True
    out = telea_fill(img, mask)
    span = img.max() - img.min()
    err = np.abs(out[mask] - img[mask]).max() / span
    assert err < 0.02, err
    # a zero-order fill (the mean of the hole's frame) is much worse: the test can fail
    frame = np.zeros_like(mask)
    frame[17:27, 19:31] = True
    frame &= ~mask
    assert np.abs(img[frame].mean() - img[mask]).max() / span > 5 * err


@pytest.mark.parametrize("method", FMM)
def test_smooth_image_restored(method):
    img = smooth()
    mask = np.zeros(img.shape[:2], bool)
    mask[10:14, 8:13] = True
    mask[30:33, 30:45] = True
    mask[np.arange(2, 46, 5), np.arange(3, 56, 6)[:9]] = True  # dead pixels
    out = ip.inpaint(img[..., 0], mask, method=method)
    assert psnr(out[mask], img[mask, 0]) > 35


@pytest.mark.parametrize("method", FMM)
@pytest.mark.parametrize("channels", [2, 5])
def test_multichannel_equals_per_channel(method, channels):
    """Channels are filled independently of each other (the weights depend on geometry only)."""
    img = smooth(channels=channels, seed=channels)
    mask = np.zeros(img.shape[:2], bool)
    mask[12:20, 15:24] = True
    out = ip.inpaint(img, mask, method=method, channel_axis=-1)
    for c in range(channels):
        single = ip.inpaint(img[..., c], mask, method=method)
        np.testing.assert_allclose(out[..., c], single, rtol=0, atol=1e-9)
    assert psnr(out[mask], img[mask]) > 25


@pytest.mark.parametrize("method", FMM)
def test_holes_touching_border_and_corners(method):
    img = smooth(seed=3)
    mask = np.zeros(img.shape[:2], bool)
    mask[:4, :5] = True  # corner
    mask[-3:, 20:30] = True  # bottom edge
    mask[15:25, -2:] = True  # right edge
    mask[:, 40] = True  # a column from edge to edge
    out = ip.inpaint(img[..., 0], mask, method=method)
    assert np.isfinite(out).all()
    assert psnr(out[mask], img[mask, 0]) > 28


@pytest.mark.parametrize("method", FMM)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_dtypes_through_the_api(method, dtype):
    base = smooth(seed=4)[..., 0]
    scale = {np.uint8: 250, np.uint16: 60000, np.int16: 30000, np.float32: 1e6}[dtype]
    img = (base * scale - (scale / 2 if dtype is np.int16 else 0)).astype(dtype)
    mask = np.zeros(img.shape, bool)
    mask[20:26, 20:27] = True
    out = ip.inpaint(img, mask, method=method)
    assert out.dtype == img.dtype
    np.testing.assert_array_equal(out[~mask], img[~mask])
    err = np.abs(out[mask].astype(float) - img[mask].astype(float)).max()
    assert err < 0.05 * scale


@pytest.mark.parametrize("method", FMM)
def test_radius_parameter_changes_the_result(method):
    img = smooth(seed=6)[..., 0]
    mask = np.zeros(img.shape, bool)
    mask[10:25, 10:25] = True
    a = ip.inpaint(img, mask, method=method, radius=2)
    b = ip.inpaint(img, mask, method=method, radius=9)
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="radius"):
        ip.inpaint(img, mask, method=method, radius=0)


def test_telea_single_row_and_column_images():
    img = np.linspace(0.0, 1.0, 30)
    mask = np.zeros(30, bool)
    mask[[0, 10, 20]] = True  # isolated pixels are filled from known pixels only: exact
    for arr, m in ((img[None, :, None], mask[None]), (img[:, None, None], mask[:, None])):
        out = telea_fill(arr, m)
        np.testing.assert_allclose(out[m], arr[m], atol=1e-9)


def test_navier_stokes_keeps_float_precision_for_large_offsets():
    """Rescaling before OpenCV's float32 (the API's normalize="per_channel"): a 1e9 offset must not
    swamp a 0..1 signal."""
    import inpaint_plugin as ip

    img = smooth(seed=7) + 1e9
    mask = np.zeros(img.shape[:2], bool)
    mask[20:24, 20:24] = True
    out = ip.inpaint(img, mask, method="navier_stokes", channel_axis=-1)
    assert np.abs(out[mask] - img[mask]).max() < 0.05


@pytest.mark.parametrize("method", FMM)
@pytest.mark.parametrize("transpose", [False, True])
def test_long_hole_in_a_one_pixel_thin_image(method, transpose):
    """OpenCV's INPAINT_NS reads outside one-pixel-thin images (garbage, sometimes NaN)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        img = rng.random((1, 31))
        mask = np.zeros(img.shape, bool)
        mask[0, 5:] = True
        if transpose:
            img, mask = img.T, mask.T
        out = ip.inpaint(img, mask, method=method)
        assert np.isfinite(out).all()
        # a weighted mean of / extrapolation from the known values, nothing wild
        assert np.abs(out[mask] - img[~mask].mean()).max() < 1.0
        np.testing.assert_array_equal(out, ip.inpaint(img, mask, method=method))
