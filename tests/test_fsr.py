"""Frequency-selective reconstruction: the DFT-domain iteration checked by hand, fills checked against
what FSR must do (constants, periodic textures) and against OpenCV's FSR where both should agree."""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin as ip
from inpaint_plugin._classical import _fsr


def _one_block(n=16, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:n, :n]
    f = np.cos(2 * np.pi * 3 * x / n) + 0.5 * np.sin(2 * np.pi * (2 * y + x) / n) + 0.1 * rng.standard_normal((n, n))
    known = rng.random((n, n)) > 0.3
    w = known * 0.8 ** np.hypot(y - n / 2, x - n / 2)
    return f, w


def test_first_iteration_is_the_weighted_projection_worked_out_directly():
    """One iteration adds gamma * <r, phi_k>_w / <phi_k, phi_k>_w for the best k (and its conjugate)."""
    n, gamma = 16, 0.5
    f, w = _one_block(n)
    fw2 = _fsr._spectral_prior(n)
    rw = np.fft.rfft2(w * f)[None, :, :, None].copy()
    wspec = np.fft.fft2(w)[None]
    model = np.zeros_like(rw)
    _fsr._extrapolate(rw, wspec, fw2, np.array([2]), gamma, model)

    # by hand: weighted projection of f on every exp(2 pi i k.x / N), selection with the spectral prior
    yy, xx = np.mgrid[:n, :n]
    energy = np.zeros((n, n // 2 + 1))
    proj = np.zeros((n, n // 2 + 1), complex)
    for u in range(n):
        for v in range(n // 2 + 1):
            phi = np.exp(2j * np.pi * (u * yy + v * xx) / n)
            proj[u, v] = (w * f * phi.conj()).sum() / w.sum()
            energy[u, v] = abs(proj[u, v]) ** 2 * fw2[u, v]
    u, v = np.unravel_index(np.argmax(energy), energy.shape)
    assert (u, v) == (0, 3)  # the strongest component, cos(2 pi 3 x / N)
    expected = np.zeros_like(model[0, :, :, 0])
    expected[u, v] = gamma * proj[u, v]
    np.testing.assert_allclose(model[0, :, :, 0], expected, atol=1e-12)
    # the residual spectrum is that of w * (f - g) with the model g (a real cosine pair)
    g = np.fft.irfft2(model[0, :, :, 0] * n * n, s=(n, n))
    np.testing.assert_allclose(g, 2 * (gamma * proj[u, v] * np.exp(2j * np.pi * (u * yy + v * xx) / n)).real,
                               atol=1e-12)
    np.testing.assert_allclose(rw[0, :, :, 0], np.fft.rfft2(w * (f - g)), atol=1e-9)


def test_many_iterations_keep_the_residual_equal_to_the_weighted_error():
    n = 16
    f, w = _one_block(n, seed=1)
    f3 = np.stack([f, 0.5 * f + 0.2, -f], -1)
    rw = np.fft.rfft2(w[..., None] * f3, axes=(0, 1))[None].copy()
    wspec = np.fft.fft2(w)[None]
    model = np.zeros_like(rw)
    _fsr._extrapolate(rw, wspec, _fsr._spectral_prior(n), np.array([40]), 0.5, model)
    g = np.fft.irfft2(model[0] * n * n, s=(n, n), axes=(0, 1))
    np.testing.assert_allclose(rw[0], np.fft.rfft2(w[..., None] * (f3 - g), axes=(0, 1)), atol=1e-8)
    # the weighted error has dropped a lot: the model explains the known samples
    assert (w[..., None] * (f3 - g) ** 2).sum() < 0.05 * (w[..., None] * f3 ** 2).sum()


def test_constant_image_is_filled_with_the_constant():
    img = np.full((40, 52), 0.3)
    mask = np.zeros(img.shape, bool)
    mask[10:30, 5:40] = True
    mask[0:3, 0:5] = True
    out = _fsr.fsr_fill(img[..., None], mask, _fsr.PROFILES["fast"])[..., 0]
    # sigma = 0: min_iter DC steps, each removing half the residual: 0.5 ** 20 of the value is left
    assert np.abs(out - 0.3).max() < 1e-5


def test_periodic_texture_is_continued_where_biharmonic_blurs():
    y, x = np.mgrid[:96, :96]
    # periods that divide the 32- and 48-pixel DFT windows: the texture is sparse in them
    img = 0.5 + 0.2 * np.sin(2 * np.pi * x / 8) + 0.2 * np.cos(2 * np.pi * (x + y) / 16)
    mask = np.zeros(img.shape, bool)
    mask[40:52, 30:60] = True
    out = ip.inpaint(img, mask, method="fsr")
    bih = ip.inpaint(img, mask, method="biharmonic")
    err = np.sqrt(np.mean((out - img)[mask] ** 2))
    assert err < 1e-3
    assert np.sqrt(np.mean((bih - img)[mask] ** 2)) > 0.1


def test_channels_share_the_model_and_any_channel_count_works():
    rng = np.random.default_rng(2)
    y, x = np.mgrid[:48, :40]
    base = 0.5 + 0.3 * np.sin(x / 5.0) * np.cos(y / 7.0)
    mask = rng.random(base.shape) < 0.1
    mask[20:26, 10:30] = True
    grey = ip.inpaint(base, mask, method="fsr")
    for nchan in (2, 5):
        stack = np.stack([base] * nchan, -1)
        out = ip.inpaint(stack, mask, method="fsr", channel_axis=-1)
        for c in range(nchan):  # identical channels: each is the grey fill
            np.testing.assert_allclose(out[..., c], grey, atol=1e-10)


def test_deterministic_small_images_and_dtypes():
    rng = np.random.default_rng(3)
    img = (rng.random((7, 9, 3)) * 255).astype(np.uint8)
    mask = np.zeros((7, 9), bool)
    mask[2:5, 3:6] = True
    a = ip.inpaint(img, mask, method="fsr", channel_axis=-1)
    b = ip.inpaint(img, mask, method="fsr", channel_axis=-1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[~mask], img[~mask])
    f32 = ip.inpaint(img[..., 0].astype(np.float32) * 3.0, mask, method="fsr", quality="best")
    assert f32.dtype == np.float32 and np.isfinite(f32).all()


def test_quality_parameter_is_validated():
    img = np.zeros((16, 16))
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    with pytest.raises(ValueError, match="quality"):
        ip.inpaint(img, mask, method="fsr", quality="medium")


def _smooth_uint8(seed=0, shape=(96, 112)):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    a, b, c, d = rng.uniform(0.5, 1.5, 4)
    img = 0.5 + 0.25 * np.sin(2 * np.pi * (a * x / shape[1] + b * y / shape[0])) \
        + 0.15 * np.cos(2 * np.pi * (c * y / shape[0] - d * x / shape[1]))
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_opencv_fsr_on_smooth_images(seed):
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "xphoto"):
        pytest.skip("cv2.xphoto needs opencv-contrib-python-headless")
    img = _smooth_uint8(seed)
    rng = np.random.default_rng(10 + seed)
    mask = np.zeros(img.shape, bool)
    for _ in range(6):  # strokes and blobs
        y0, x0 = rng.integers(8, 80, 2)
        mask[y0:y0 + rng.integers(3, 12), x0:x0 + rng.integers(3, 25)] = True
    mask |= rng.random(img.shape) < 0.02
    ref = np.zeros_like(img)
    cv2.xphoto.inpaint(img, (~mask).astype(np.uint8) * 255, ref, cv2.xphoto.INPAINT_FSR_FAST)
    ours = ip.inpaint(img, mask, method="fsr", quality="fast")  # the same profile
    diff = np.abs(ours.astype(float) - ref.astype(float))[mask]
    truth_ours = np.abs(ours.astype(float) - img)[mask].mean()
    truth_ref = np.abs(ref.astype(float) - img)[mask].mean()
    assert diff.mean() < 1.5 and np.percentile(diff, 99) < 8  # grey levels of 255
    assert truth_ours <= truth_ref + 0.5
