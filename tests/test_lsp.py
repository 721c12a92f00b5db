"""Least-squares prediction fill: biharmonic with the fixed stencil, exact where a learned stencil is."""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin as ip
from inpaint_plugin._classical import _lsp


def _texture(shape=(64, 72), seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    return 0.5 + 0.3 * np.sin(0.4 * x + 0.25 * y) + 0.01 * rng.standard_normal(shape)


def test_stencil_offsets():
    off = _lsp.stencil_offsets(1)
    assert off.shape == (8, 2) and not (off == 0).all(axis=1).any()
    assert len(_lsp.stencil_offsets(2)) == 24


def test_fixed_four_neighbour_stencil_gives_the_biharmonic_fill():
    """With the stencil pinned to the 4-neighbour mean, minimising the prediction error over every
    prediction that involves a hole pixel is the biharmonic equation (away from the image border)."""
    img = _texture()
    mask = np.zeros(img.shape, bool)
    mask[20:30, 15:40] = True
    mask[45, 10:60] = True
    mask[8, 50] = True
    ours = _lsp.lsp_fill(img[..., None], mask, radius=1, lam=1e12, beta=0.0)[..., 0]
    ref = ip.inpaint(img, mask, method="biharmonic", clip=False)
    assert np.abs(ours - ref)[mask].max() < 1e-6


def test_learned_stencil_predicts_exactly_what_it_can():
    """A plane wave obeys a linear recurrence on the 3x3 neighbourhood: the learned stencil predicts it
    exactly, so holes are filled exactly (biharmonic is not: it assumes smoothness, not the wave)."""
    y, x = np.mgrid[:64, :64]
    img = 0.5 + 0.4 * np.sin(1.1 * x - 0.7 * y)  # about 5 pixels per period
    mask = np.zeros(img.shape, bool)
    mask[30, 5:60] = True  # a scratch
    mask[10:13, 20:23] = True
    rng = np.random.default_rng(1)
    mask[2:-2, 2:-2] |= rng.random((60, 60)) < 0.02  # at the border the stencil is cut (not exact)
    out = ip.inpaint(img, mask, method="lsp", ridge=1e-8, beta=0.0, radius=1)
    bih = ip.inpaint(img, mask, method="biharmonic")
    assert np.abs(out - img)[mask].max() < 1e-4
    assert np.abs(bih - img)[mask].max() > 0.05


def test_beats_biharmonic_on_a_textured_image_with_defects():
    y, x = np.mgrid[:80, :80]
    img = 0.5 + 0.25 * np.sin(0.5 * x + 0.3 * y) + 0.15 * np.cos(0.2 * x - 0.6 * y) + 0.1 * (x > 50)
    rng = np.random.default_rng(3)
    mask = rng.random(img.shape) < 0.03
    mask[40, :] = True
    err = {m: np.sqrt(np.mean((ip.inpaint(img, mask, method=m) - img)[mask] ** 2)) for m in ("lsp", "biharmonic")}
    assert err["lsp"] < 0.8 * err["biharmonic"]


def test_constant_and_channels():
    mask = np.zeros((30, 40), bool)
    mask[5:9, 3:30] = True
    mask[0, 0] = mask[29, 39] = True
    const = np.full((30, 40, 3), [0.2, 0.5, 0.9])
    out = ip.inpaint(const, mask, method="lsp", channel_axis=-1)
    np.testing.assert_allclose(out, const, atol=1e-9)
    # channels share the stencil: identical channels give identical fills, any channel count
    img = _texture((30, 40))
    grey = ip.inpaint(img, mask, method="lsp")
    for n in (2, 4):
        out = ip.inpaint(np.stack([img] * n, -1), mask, method="lsp", channel_axis=-1)
        for c in range(n):
            np.testing.assert_allclose(out[..., c], grey, atol=1e-9)


def test_deterministic_dtypes_and_borders():
    rng = np.random.default_rng(4)
    img = (rng.random((9, 11, 3)) * 60000).astype(np.uint16)
    mask = np.zeros((9, 11), bool)
    mask[0, :] = True  # a whole border row
    mask[4, 4] = True
    a = ip.inpaint(img, mask, method="lsp", channel_axis=-1)
    b = ip.inpaint(img, mask, method="lsp", channel_axis=-1)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint16
    np.testing.assert_array_equal(a[~mask], img[~mask])


@pytest.mark.parametrize("kw, match", [({"radius": 0}, "radius"), ({"ridge": -1.0}, "ridge"),
                                       ({"tile": 2}, "tile")])
def test_parameters_are_validated(kw, match):
    with pytest.raises(ValueError, match=match):
        ip.inpaint(np.zeros((16, 16)), np.eye(16, dtype=bool), method="lsp", **kw)
