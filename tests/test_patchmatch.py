"""The ``patchmatch`` backend: multi-scale PatchMatch EM (own numba kernels)."""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin as ip
from inpaint_plugin._classical._patchmatch import auto_levels
from inpaint_plugin.backends.patchmatch import patchmatch_fill


def periodic(size=(96, 96), period=12, channels=3, seed=0):
    """A random tile repeated: every hole has an exact copy of its content elsewhere."""
    tile = np.random.default_rng(seed).random((period, period, channels))
    reps = (size[0] // period + 1, size[1] // period + 1, 1)
    return np.tile(tile, reps)[: size[0], : size[1]]


def psnr(a, b, peak=1.0):
    mse = np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(peak**2 / mse)


def box(shape, y, x, h, w):
    m = np.zeros(shape, bool)
    m[y:y + h, x:x + w] = True
    return m


@pytest.mark.parametrize("period, size, hole", [(12, 96, 24), (16, 128, 40)])
def test_periodic_texture_restored(period, size, hole):
    img = periodic((size, size), period)
    mask = box(img.shape[:2], size // 2 - hole // 2, size // 2 - hole // 2 + 3, hole, hole)
    out = patchmatch_fill(img, mask, seed=1)
    assert psnr(out[mask], img[mask]) > 40
    # a smooth method cannot do this: the test fails for a fill that does not copy texture
    smooth = ip.inpaint(img, mask, method="telea", channel_axis=-1)
    assert psnr(smooth[mask], img[mask]) < 20


def test_same_seed_same_result_through_the_api():
    img = (periodic((64, 64), 10, seed=2) * 255).astype(np.uint8)
    mask = box(img.shape[:2], 20, 20, 16, 16)
    a = ip.inpaint(img, mask, method="patchmatch", channel_axis=-1, seed=5)
    b = ip.inpaint(img, mask, method="patchmatch", channel_axis=-1, seed=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[~mask], img[~mask])


def natural_like(shape=(80, 96), seed=0):
    """Smooth structure plus texture, so that no fill is exact."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]] / 20.0
    base = 0.5 + 0.3 * np.sin(yy + 0.5 * xx) + 0.1 * np.cos(3 * xx)
    return base + 0.05 * rng.standard_normal(shape)


def test_seed_drives_the_random_search():
    img = natural_like()[..., None]
    mask = box(img.shape[:2], 20, 30, 30, 30)
    a = patchmatch_fill(img, mask, seed=0)
    b = patchmatch_fill(img, mask, seed=0)
    c = patchmatch_fill(img, mask, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("density", [0.02, 0.3])
def test_scattered_dead_pixels(density):
    """Dead pixels everywhere (a known crash of patchmatch-cython); at 30 % no patch is fully known."""
    img = natural_like(seed=1)[..., None]
    mask = np.random.default_rng(3).random(img.shape[:2]) < density
    out = patchmatch_fill(img, mask)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[~mask], img[~mask])
    # within the noise level of the image: the fill uses the neighbourhood, not a global guess
    rmse = np.sqrt(np.mean((out[mask] - img[mask]) ** 2))
    assert rmse < 0.12, rmse
    assert rmse < 0.5 * np.std(img)


def test_thin_scratches_and_border_holes():
    img = periodic((80, 80), 8, channels=1, seed=4)
    mask = np.zeros(img.shape[:2], bool)
    mask[:, 37] = True  # edge to edge
    mask[50, :] = True
    mask[:6, :9] = True  # top-left corner
    mask[-4:, 60:75] = True  # bottom edge
    mask[20:30, -3:] = True  # right edge
    out = patchmatch_fill(img, mask)
    assert psnr(out[mask], img[mask]) > 35


@pytest.mark.parametrize("channels", [2, 5])
def test_multichannel(channels):
    """All channels share the patch distance: a texture that only one channel reveals guides all."""
    img = periodic((72, 72), 12, channels=channels, seed=channels)
    img[..., 1:] *= 0.01  # the other channels carry almost nothing
    mask = box(img.shape[:2], 28, 26, 18, 18)
    out = ip.inpaint(img, mask, method="patchmatch", channel_axis=-1, seed=2)
    assert out.shape == img.shape
    assert psnr(out[mask], img[mask]) > 40


def test_scale_and_offset_invariance():
    img = natural_like(seed=2)[..., None]
    mask = box(img.shape[:2], 30, 40, 20, 20)
    a = patchmatch_fill(img, mask, seed=3)
    b = patchmatch_fill(img * 1000.0 - 7e5, mask, seed=3)
    np.testing.assert_allclose((b - (-7e5)) / 1000.0, a, atol=1e-4)


@pytest.mark.parametrize("levels", [1, 3])
def test_explicit_levels_and_patch_sizes(levels):
    img = periodic((64, 64), 8, channels=1, seed=5)
    mask = box(img.shape[:2], 24, 24, 12, 12)
    for patch_size in (5, 8):
        out = patchmatch_fill(img, mask, patch_size=patch_size, levels=levels, iterations=6)
        assert psnr(out[mask], img[mask]) > 30


def test_auto_levels_follow_hole_size():
    shape = (256, 256)
    assert auto_levels(box(shape, 100, 100, 1, 1), 7) == 1
    assert auto_levels(box(shape, 64, 64, 128, 128), 7) == 4  # coarsest 32 x 32: about 4 patches wide
    assert auto_levels(box((48, 48), 4, 4, 40, 40), 7) == 1  # too small to halve


@pytest.mark.parametrize("shape", [(2, 40), (40, 1), (5, 5)])
def test_images_smaller_than_a_patch(shape):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 0.02 * yy + 0.01 * xx
    mask = np.zeros(shape, bool)
    mask[shape[0] // 2, shape[1] // 2] = True
    out = ip.inpaint(img, mask, method="patchmatch")
    assert np.isfinite(out).all()
    assert abs(out[mask][0] - img[mask][0]) < 0.03


def test_mask_covering_everything_is_rejected():
    with pytest.raises(ValueError, match="mask"):
        patchmatch_fill(np.zeros((8, 8, 1)), np.ones((8, 8), bool))


def test_bad_parameters_name_themselves():
    img = np.zeros((16, 16))
    mask = box(img.shape, 4, 4, 3, 3)
    with pytest.raises(ValueError, match="patch_size"):
        ip.inpaint(img, mask, method="patchmatch", patch_size=1)
    with pytest.raises(ValueError, match="iterations"):
        ip.inpaint(img, mask, method="patchmatch", iterations=0)
    with pytest.raises(TypeError, match="levels"):
        ip.inpaint(img, mask, method="patchmatch", levels=1.5)
