"""Random training masks (inpaint_plugin._masks): shapes, determinism, coverage, families."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from inpaint_plugin import _masks

FAMILIES = sorted(_masks.FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_is_deterministic_boolean_and_neither_empty_nor_full(family):
    f = _masks.FAMILIES[family]
    for seed in range(20):
        a = f((48, 80), np.random.default_rng(seed))
        b = f((48, 80), np.random.default_rng(seed))
        assert a.dtype == bool and a.shape == (48, 80)
        np.testing.assert_array_equal(a, b)
        assert 0 < a.sum() < a.size
    draws = {f((48, 80), np.random.default_rng(seed)).tobytes() for seed in range(20)}
    assert len(draws) > 15  # the seed matters


def test_strokes_are_thick_connected_polylines():
    for seed in range(10):
        m = _masks.stroke_mask((256, 256), np.random.default_rng(seed))
        assert ndimage.label(m)[1] <= 3  # at most three strokes
        # widths 12-40 px at 256 x 256: a stroke survives an erosion by 2 px
        assert ndimage.binary_erosion(m, iterations=2).any()


def test_strokes_scale_with_the_image():
    small = np.mean([_masks.stroke_mask((64, 64), np.random.default_rng(s)).mean() for s in range(30)])
    large = np.mean([_masks.stroke_mask((256, 256), np.random.default_rng(s)).mean() for s in range(30)])
    assert 0.3 < small / large < 3  # similar hole fraction at any size


def test_scratches_are_thin_and_come_in_both_orientations():
    spans = set()
    for seed in range(20):
        m = _masks.scratch_mask((64, 64), np.random.default_rng(seed))
        # at most 3 px wide (only crossings of two scratches survive a 4 x 4 erosion)
        assert ndimage.binary_erosion(m, np.ones((4, 4))).sum() < 0.25 * m.sum()
        rows, cols = np.nonzero(m)
        spans.add("h" if cols.min() == 0 and cols.max() == 63 else "v")
        assert (cols.min() == 0 and cols.max() == 63) or (rows.min() == 0 and rows.max() == 63)
    assert spans == {"h", "v"}


def test_stripes_span_the_image():
    for seed in range(20):
        m = _masks.stripe_mask((64, 64), np.random.default_rng(seed))
        rows_hit, cols_hit = m.any(axis=1), m.any(axis=0)
        assert rows_hit.all() or cols_hit.all()  # every stripe crosses the whole image


def test_dead_pixels_are_sparse():
    fractions = [_masks.dead_pixel_mask((128, 128), np.random.default_rng(s)).mean() for s in range(30)]
    assert max(fractions) < 0.15 and min(fractions) > 0


def test_boxes_are_rectangles_within_bounds():
    for seed in range(20):
        m = _masks.box_mask((64, 96), np.random.default_rng(seed))
        labels, n = ndimage.label(m)
        assert 1 <= n <= 3
        for sl in ndimage.find_objects(labels):
            h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            assert h <= 64 and w <= 96


def test_random_mask_respects_families_and_coverage():
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = _masks.random_mask((64, 64), rng, ["boxes"], max_coverage=0.2)
        assert 0 < m.mean() <= 0.2
    # a single family gives exactly that generator's masks
    a = _masks.random_mask((32, 32), np.random.default_rng(3), "dead_pixels")
    rng = np.random.default_rng(3)
    rng.integers(0, 1)  # the family choice
    np.testing.assert_array_equal(a, _masks.dead_pixel_mask((32, 32), rng))


def test_random_mask_uses_every_family():
    rng = np.random.default_rng(1)
    masks = [_masks.random_mask((64, 64), rng) for _ in range(60)]
    thin = sum(not ndimage.binary_erosion(m).any() for m in masks)  # scratches, stripes, dead pixels
    thick = sum(ndimage.binary_erosion(m, iterations=2).any() for m in masks)  # strokes, boxes
    assert thin > 10 and thick > 10


@pytest.mark.parametrize("bad, match", [
    (dict(families=["blobs"]), "unknown mask families"),
    (dict(families=[]), "non-empty"),
    (dict(max_coverage=1.0), "max_coverage"),
    (dict(shape=(4, 64)), "at least 8"),
    (dict(shape=(64,)), "two integers"),
])
def test_bad_arguments(bad, match):
    kwargs = dict(shape=(64, 64), families=None, max_coverage=0.5) | bad
    shape = kwargs.pop("shape")
    with pytest.raises(ValueError, match=match):
        _masks.random_mask(shape, np.random.default_rng(0), **kwargs)


def test_rng_must_be_a_generator():
    with pytest.raises(TypeError, match="rng"):
        _masks.box_mask((64, 64), 0)
