"""Total-variation inpainting: edges kept sharp, TV decreases, nD and multichannel."""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin
from inpaint_plugin._classical._pde import div, grad, harmonic_fill
from inpaint_plugin.backends.tv import tv_fill


def total_variation(u):
    g = grad(u[..., None] if u.ndim == 2 else u, 2)
    return float(np.sqrt((g ** 2).sum(axis=(0, -1))).sum())


def test_grad_div_are_adjoint():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((5, 6, 7, 2))
    p = rng.standard_normal((3, 5, 6, 7, 2))
    assert np.isclose((div(p) * u).sum(), -(p * grad(u, 3)).sum())


def test_step_edge_is_kept_sharp_where_harmonic_blurs():
    img = np.zeros((40, 40))
    img[:, 20:] = 1.0
    mask = np.zeros(img.shape, bool)
    mask[10:30, 12:28] = True
    out = inpaint_plugin.inpaint(img, mask, method="tv")
    harm = harmonic_fill(img[..., None], mask)[..., 0]
    assert np.abs(out - img)[mask].max() < 0.05
    assert np.abs(harm - img)[mask].max() > 0.3
    assert total_variation(out) < total_variation(harm)


def test_known_pixels_are_hard_constraints_and_iterations_matter():
    rng = np.random.default_rng(3)
    img = rng.random((24, 30, 3))
    mask = np.zeros((24, 30), bool)
    mask[5:15, 8:20] = True
    img[mask] = 0.5  # what the API passes in (arbitrary values on the hole)
    one = tv_fill(img, mask, iterations=1, tol=0.0)
    many = tv_fill(img, mask, iterations=300, tol=0.0)
    np.testing.assert_array_equal(one[~mask], img[~mask])
    np.testing.assert_array_equal(many[~mask], img[~mask])
    assert np.abs(one - many)[mask].max() > 1e-3
    # colour TV couples the channels but every channel stays inside the known range
    assert many[mask].min() >= img[~mask].min() - 1e-9 and many[mask].max() <= img[~mask].max() + 1e-9


def test_3d_volume_with_a_plane_edge():
    vol = np.zeros((16, 18, 20))
    vol[:, :, 10:] = 2.0
    mask = np.zeros(vol.shape, bool)
    mask[4:12, 5:13, 4:16] = True
    out = inpaint_plugin.inpaint(vol, mask, method="tv")
    assert np.abs(out - vol)[mask].max() < 0.1


def test_constant_image_stays_constant():
    img = np.full((20, 20), 7, np.uint8)
    mask = np.zeros(img.shape, bool)
    mask[5:9, 3:17] = True
    out = inpaint_plugin.inpaint(img, mask, method="tv")
    assert (out == 7).all()


def _dense_chambolle_pock(u, mask, iterations, goal, check_every=10):
    """The textbook array form of the iteration on the whole box (what the numba kernel must equal)."""
    from inpaint_plugin._classical._pde import div, grad

    nd = mask.ndim
    f, u, u_bar = u.copy(), u.copy(), u.copy()
    p = np.zeros((nd,) + u.shape)
    hole = mask[..., None]
    for it in range(1, iterations + 1):
        p += 0.5 * grad(u_bar, nd)
        p /= np.maximum(np.sqrt(np.einsum("a...c,a...c->...", p, p)), 1.0)[None, ..., None]
        u_new = np.where(hole, u + div(p) / (2 * nd), f)
        u_bar = 2.0 * u_new - u
        change = float(np.abs(u_new - u).max())
        u = u_new
        if (it % check_every == 0 or it == iterations) and change <= goal:
            return u, it
    return u, iterations


@pytest.mark.parametrize("shape,nchan", [((37, 41), 3), ((9, 12, 10), 1), ((50,), 2)])
def test_hole_pixel_kernel_equals_the_array_iteration(shape, nchan):
    from inpaint_plugin._classical._tv import tv_iterate

    rng = np.random.default_rng(0)
    u = rng.random(shape + (nchan,))
    mask = rng.random(shape) < 0.15
    mask[(slice(0, 3),) * len(shape)] = True  # a block touching the first and (below) the last edges
    mask[(slice(-2, None),) * len(shape)] = True
    for iterations, goal in ((60, 0.0), (5000, 1e-4)):
        ref, steps = _dense_chambolle_pock(u, mask, iterations, goal)
        got = np.ascontiguousarray(u.copy())
        made = tv_iterate(got, mask, iterations, goal, sigma=0.5, tau=1.0 / (2 * len(shape)), check_every=10)
        assert made == steps and (goal == 0 or steps < iterations)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(got[~mask], u[~mask])
