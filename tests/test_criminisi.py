"""The ``criminisi`` backend: exemplar-based inpainting in priority order (own numba kernel)."""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin as ip
from inpaint_plugin.backends.criminisi import criminisi_fill


def periodic(size=(72, 72), period=9, channels=1, seed=0):
    tile = np.random.default_rng(seed).random((period, period, channels))
    reps = (size[0] // period + 1, size[1] // period + 1, 1)
    return np.tile(tile, reps)[: size[0], : size[1]]


def psnr(a, b):
    mse = np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(1.0 / mse)


def test_periodic_texture_restored_exactly():
    img = periodic()
    mask = np.zeros(img.shape[:2], bool)
    mask[25:45, 20:44] = True
    out = criminisi_fill(img, mask)
    assert psnr(out[mask], img[mask]) > 60  # every copied patch has an exact match
    smooth = ip.inpaint(img[..., 0], mask, method="telea")
    assert psnr(smooth[mask], img[mask, 0]) < 20  # the test fails for a method that does not copy


def test_straight_edge_is_continued_through_the_hole():
    """The data term fills along the edge first, so the edge crosses the hole where it should."""
    rng = np.random.default_rng(1)
    img = np.where(np.arange(64)[None, :] < 30, 0.2, 0.8) + 0.02 * rng.standard_normal((64, 64))
    mask = np.zeros((64, 64), bool)
    mask[20:44, 18:42] = True
    out = criminisi_fill(img[..., None], mask)[..., 0]
    left = out[20:44, 18:28]
    right = out[20:44, 32:42]
    assert np.abs(left - 0.2).max() < 0.1
    assert np.abs(right - 0.8).max() < 0.1


def test_deterministic_and_known_pixels_kept_through_the_api():
    img = (periodic((60, 70), 7, channels=3, seed=2) * 60000).astype(np.uint16)
    mask = np.zeros(img.shape[:2], bool)
    mask[10:30, 15:35] = True
    a = ip.inpaint(img, mask, method="criminisi", channel_axis=-1)
    b = ip.inpaint(img, mask, method="criminisi", channel_axis=-1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[~mask], img[~mask])
    assert psnr(a[mask] / 60000.0, img[mask] / 60000.0) > 40


@pytest.mark.parametrize("channels", [2, 5])
def test_multichannel_and_border_holes(channels):
    img = periodic((64, 64), 8, channels=channels, seed=channels)
    mask = np.zeros(img.shape[:2], bool)
    mask[:6, :10] = True  # corner
    mask[-5:, 30:45] = True  # bottom edge
    mask[:, 50] = True  # a scratch from edge to edge
    out = criminisi_fill(img, mask, patch_size=7)
    assert psnr(out[mask], img[mask]) > 40


def test_dense_dead_pixels_shrink_the_patch_instead_of_failing():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:48, :48] / 48.0
    img = (0.5 + 0.3 * np.sin(3 * yy + 2 * xx))[..., None]
    mask = rng.random((48, 48)) < 0.25  # hardly any 9 x 9 patch is fully known
    out = criminisi_fill(img, mask)
    assert np.isfinite(out).all()
    assert np.abs(out[mask] - img[mask]).max() < 0.15


def test_search_radius_limits_the_search():
    """Only the left half holds the matching texture: a small radius around a right-side hole misses it."""
    img = periodic((48, 96), 8, seed=4)
    img[:, 48:] = np.linspace(0, 1, 48)[None, :, None]
    img[30:40, 70:80] = periodic((10, 10), 8, seed=4)  # a patch of texture inside the ramp half
    mask = np.zeros(img.shape[:2], bool)
    mask[32:38, 72:78] = True
    everywhere = criminisi_fill(img, mask, patch_size=5)
    nearby = criminisi_fill(img, mask, patch_size=5, search_radius=4)
    assert psnr(everywhere[mask], img[mask]) > psnr(nearby[mask], img[mask]) + 10
    with pytest.raises(ValueError, match="search_radius"):
        ip.inpaint(img[..., 0], mask, method="criminisi", search_radius=0)


def test_tiny_image_falls_back():
    yy, xx = np.mgrid[:2, :6]
    img = 0.02 * yy + 0.01 * xx
    mask = np.zeros((2, 6), bool)
    mask[1, 3] = True
    out = ip.inpaint(img, mask, method="criminisi")
    assert np.isfinite(out).all() and abs(out[1, 3] - img[1, 3]) < 0.03
