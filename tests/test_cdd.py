"""Curvature-driven diffusion: keeps straight level lines, connects a bar better than harmonic."""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin
from inpaint_plugin._classical._pde import harmonic_fill


def test_linear_ramp_is_a_steady_state():
    yy, xx = np.mgrid[0:30, 0:40].astype(float)
    ramp = 0.5 * yy + 0.25 * xx
    mask = np.zeros(ramp.shape, bool)
    mask[8:20, 10:30] = True
    out = inpaint_plugin.inpaint(ramp, mask, method="cdd", iterations=200, tol=0.0)
    np.testing.assert_allclose(out[mask], ramp[mask], atol=1e-6)


def test_bar_is_reconnected_better_than_harmonic_fill():
    img = np.zeros((48, 64))
    img[20:28, :] = 1.0
    mask = np.zeros(img.shape, bool)
    mask[10:38, 20:44] = True
    harm = harmonic_fill(img[..., None], mask)[..., 0]
    out = inpaint_plugin.inpaint(img, mask, method="cdd", iterations=400, tol=0.0)
    err_cdd = np.abs(out - img)[mask].mean()
    err_harm = np.abs(harm - img)[mask].mean()
    assert err_cdd < 0.95 * err_harm


def test_rgb_and_3d_run_and_stay_in_range():
    rng = np.random.default_rng(0)
    rgb = rng.random((20, 24, 3))
    mask = np.zeros((20, 24), bool)
    mask[6:12, 4:18] = True
    out = inpaint_plugin.inpaint(rgb, mask, method="cdd", channel_axis=-1, iterations=50)
    assert out.shape == rgb.shape
    np.testing.assert_array_equal(out[~mask], rgb[~mask])
    assert np.isfinite(out).all()

    vol = np.zeros((10, 12, 14))
    vol[:, 6:, :] = 1.0
    vmask = np.zeros(vol.shape, bool)
    vmask[3:7, 4:9, 4:10] = True
    vout = inpaint_plugin.inpaint(vol, vmask, method="cdd", iterations=100)
    assert 0.0 <= vout.min() and vout.max() <= 1.0
    assert np.abs(vout - vol)[vmask].mean() < np.abs(0.5 - vol)[vmask].mean()


@pytest.mark.parametrize("shape", [(40, 50), (12, 10, 9), (60,), (1, 30)])
@pytest.mark.parametrize("p", [1.0, 1.5])
def test_pixel_kernel_equals_the_array_steps(shape, p):
    """The numba kernel makes exactly the steps of ``cdd_step`` on the whole box (same stop)."""
    from inpaint_plugin._classical._cdd import KAPPA_MAX, cdd_run, cdd_step

    rng = np.random.default_rng(0)
    u0 = rng.random(shape)
    mask = rng.random(shape) < 0.15
    mask.flat[0] = mask.flat[-1] = True  # holes on the box edges: one-sided differences
    probe = u0.copy()
    for _ in range(10):
        du, rate = cdd_step(probe, mask, p, 0.05)
        probe += du
    for iterations, tol in ((25, 0.0), (400, rate)):  # the second run stops early, within 10 steps
        ref = u0.copy()
        steps = 0
        for steps in range(1, iterations + 1):
            du, rate = cdd_step(ref, mask, p, 0.05)
            ref += du
            if rate <= tol:
                break
        got = np.ascontiguousarray(u0.copy())
        made, _ = cdd_run(got, mask, p, 0.05, iterations, tol, KAPPA_MAX)
        assert made == steps and (tol == 0 or steps < iterations)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)
        np.testing.assert_array_equal(got[~mask], u0[~mask])


def test_kernel_is_used_for_scattered_holes_and_arrays_for_a_solid_block(monkeypatch):
    from inpaint_plugin._classical import _cdd
    from inpaint_plugin.backends import cdd

    calls = []
    monkeypatch.setattr(_cdd, "cdd_run", lambda *a, **k: calls.append(1) or (0, 0.0))
    image = np.random.default_rng(1).random((64, 64, 1))
    dots = np.zeros((64, 64), bool)
    dots[5::9, 7::11] = True
    cdd.cdd_fill(image, dots, iterations=3)
    assert calls
    calls.clear()
    block = np.zeros((64, 64), bool)
    block[20:40, 20:44] = True
    cdd.cdd_fill(image, block, iterations=3)
    assert not calls
