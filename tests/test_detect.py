"""detect(): masks of NaN/nodata, saturated, hot/dead pixels and clusters, dead lines and zero stripes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import inpaint_plugin as ip
from inpaint_plugin import _detect


def _scene(shape=(96, 96), seed=0, noise=2.0, dtype=np.uint16):
    """Smooth structure plus Gaussian noise, values around 1000 (a typical camera image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 1000 + 200 * np.sin(yy / 11.0) * np.cos(xx / 7.0) + 100 * (xx > shape[1] // 2)
    img = img + rng.normal(0, noise, shape)
    return np.round(img).astype(dtype) if np.dtype(dtype).kind in "iu" else img.astype(dtype)


def _sprinkle(shape, n, seed):
    """``n`` distinct pixels at least 3 apart from each other and away from the border."""
    rng = np.random.default_rng(seed)
    pts = []
    while len(pts) < n:
        p = rng.integers(2, np.array(shape) - 2)
        if all(np.abs(p - q).max() >= 3 for q in pts):
            pts.append(p)
    return tuple(np.array(pts).T)


def test_hot_and_dead_pixels_are_found_without_false_alarms():
    image = _scene()
    assert not ip.detect(image, ["hot", "dead"]).any()  # a clean noisy image: no false alarm
    hot, dead = _sprinkle(image.shape, 20, 1), _sprinkle(image.shape, 20, 2)
    damaged = image.copy()
    damaged[hot] = 4000
    damaged[dead] = 0
    truth_hot = np.zeros(image.shape, bool)
    truth_hot[hot] = True
    truth_dead = np.zeros(image.shape, bool)
    truth_dead[dead] = True
    truth_dead &= ~truth_hot
    m_hot = ip.detect(damaged, "hot")
    m_dead = ip.detect(damaged, "dead")
    assert (m_hot == truth_hot).all()
    assert (m_dead == truth_dead).all()
    assert (ip.detect(damaged, ["hot", "dead"]) == (truth_hot | truth_dead)).all()


def test_pairs_of_hot_pixels_are_found_but_filaments_and_edges_are_not():
    image = np.full((40, 40), 100.0)
    image[:, 20:] = 500.0                # a vertical step edge
    image[10, 5:15] = 900.0              # a thin bright filament
    image[30, 8] = image[30, 9] = 900.0  # a pair of hot pixels
    image[5, 30] = 50.0                  # a dead pixel on the bright side
    mask = ip.detect(image, ["hot", "dead"])
    expected = np.zeros(image.shape, bool)
    expected[30, 8] = expected[30, 9] = expected[5, 30] = True
    assert (mask == expected).all()


def test_dead_lines_are_found_and_edges_are_not():
    image = _scene((80, 90), seed=3).astype(np.float32)
    image[40:, :] += 300  # a horizontal step edge across the whole image
    assert not ip.detect(image, "lines").any()
    damaged = image.copy()
    damaged[:, 17] = 0              # dead column
    damaged[60, :] = 4000           # hot row
    damaged[:, 50:52] = 0           # a band of two dead columns
    damaged[5:35, 70] = 0           # a partly dead column (30 of 80 rows: below line_fraction)
    mask = ip.detect(damaged, "lines")
    expected = np.zeros(image.shape, bool)
    expected[:, 17] = expected[60, :] = True
    expected[:, 50:52] = True
    assert (mask == expected).all()
    partly = ip.detect(damaged, "lines", line_fraction=0.3)
    assert partly[:, 70].all() and (partly == (expected | (np.arange(90) == 70))).all()


def test_lines_in_each_slice_of_a_stack():
    stack = np.stack([_scene((40, 40), seed=s) for s in range(3)])
    stack[1, :, 12] = 0
    mask = ip.detect(stack, "lines")
    assert mask.shape == stack.shape
    assert mask[1, :, 12].all() and mask.sum() == 40


def test_nan_inf_and_nodata():
    image = _scene((30, 30), dtype=np.float32)
    image[3, 4] = np.nan
    image[10:12, :] = np.inf
    image[20, 20] = -np.inf
    image[25, 5] = -9999.0
    mask = ip.detect(image, "nan")
    expected = ~np.isfinite(image)
    assert (mask == expected).all()
    expected[25, 5] = True
    assert (ip.detect(image, "nan", nodata=-9999) == expected).all()
    ints = _scene((20, 20))
    ints[4, 4] = 0
    assert np.flatnonzero(ip.detect(ints, "nan", nodata=0)).tolist() == [4 * 20 + 4]
    assert not ip.detect(ints, "nan").any()


def test_nan_pixels_do_not_disturb_the_other_detectors():
    image = _scene((60, 60), dtype=np.float64)
    image[10:20, 10:50] = np.nan  # a large nodata block
    image[40, 40] = 5000.0         # one hot pixel
    mask = ip.detect(image, ["hot", "dead", "lines", "zeros"])
    assert np.flatnonzero(mask).tolist() == [40 * 60 + 40]


def test_saturated_pixels():
    image = _scene((40, 40)).astype(np.uint8, casting="unsafe") // 2
    assert not ip.detect(image, "saturated").any()
    image[5:9, 5:9] = 255
    mask = ip.detect(image, "saturated")
    assert mask.sum() == 16 and mask[5:9, 5:9].all()
    assert ip.detect(image, "saturated", saturation=120).sum() == (image >= 120).sum()

    f = _scene((40, 40), dtype=np.float64) / 2000
    assert not ip.detect(f, "saturated").any()  # a natural float image has no plateau at its maximum
    clipped = np.minimum(f, np.percentile(f, 95))  # clipped at its 95th percentile
    assert (ip.detect(clipped, "saturated") == (clipped == clipped.max())).all()


def test_saturation_is_opt_in():
    image = np.full((20, 20), 255, np.uint8)
    image[:, :10] = 30
    assert not ip.detect(image).any()
    assert ip.detect(image, "all")[:, 10:].all()


def test_zero_stripes_are_found_but_wide_zero_areas_and_dark_noise_are_not():
    image = _scene((120, 120), seed=4)
    rows, cols = np.mgrid[:120, :120]
    stripes = ((rows + 0.12 * cols + 6) % 30) < 3  # slanted SLC-off style gaps (no stub at the border)
    damaged = image.copy()
    damaged[stripes] = 0
    damaged[70:100, 40:80] = 0  # a lost block (wide), crossed by a stripe
    mask = ip.detect(damaged, "zeros")
    block = np.zeros(image.shape, bool)
    block[70:100, 40:80] = True
    assert (mask[stripes & ~block]).all()
    assert not mask[block & ~stripes].any()
    assert not (mask & ~stripes).any()

    rng = np.random.default_rng(0)
    dark = np.clip(rng.normal(0, 3, (80, 80)), 0, None).astype(np.uint16)  # half zeros: noise floor
    dark[20:60, 20:60] += 500
    assert not ip.detect(dark, "zeros").any()


def test_channels_and_shapes():
    rgb = np.stack([_scene((32, 32), seed=s) for s in range(3)], axis=0)  # channels first
    rgb[2, 10, 10] = 6000  # hot in one channel only
    mask = ip.detect(rgb, ["hot"], channel_axis=0)
    assert mask.shape == (32, 32) and mask.dtype == bool
    assert np.flatnonzero(mask).tolist() == [10 * 32 + 10]
    rgb_last = np.moveaxis(rgb, 0, -1)
    assert (ip.detect(rgb_last, ["hot"], channel_axis=-1) == mask).all()

    vol = np.stack([_scene((20, 20), seed=s) for s in range(5)])
    vol[2, 7, 7] = 6000
    m3 = ip.detect(vol, "hot")
    assert m3.shape == vol.shape and np.argwhere(m3).tolist() == [[2, 7, 7]]

    line = np.linspace(0, 100, 50)
    line[20] = 900
    assert np.flatnonzero(ip.detect(line, ["hot", "dead"])).tolist() == [20]


def test_input_is_not_modified_and_result_is_a_new_array():
    image = _scene((30, 30), dtype=np.float32)
    image[3, 3] = np.nan
    before = image.copy()
    mask = ip.detect(image, "all")
    assert np.array_equal(image, before, equal_nan=True)
    assert mask.dtype == bool and mask.shape == image.shape


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(kinds="bogus"), ValueError, "kinds: unknown kind 'bogus'"),
    (dict(kinds=[]), ValueError, "kinds must not be empty"),
    (dict(kinds=[1]), TypeError, "kinds"),
    (dict(sigma=-1), ValueError, "'sigma'"),
    (dict(line_fraction=2), ValueError, "'line_fraction'"),
    (dict(stripe_width="wide"), TypeError, "'stripe_width'"),
    (dict(threshold=3), TypeError, "'threshold'"),
    (dict(channel_axis=5), ValueError, "channel_axis"),
])
def test_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ip.detect(np.zeros((8, 8)), **kwargs)


def test_image_errors_come_from_the_api_validation():
    with pytest.raises(TypeError, match="bool"):
        ip.detect(np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="non-empty"):
        ip.detect(np.zeros((0, 8)))
    with pytest.raises(ValueError, match="spatial"):
        ip.detect(np.zeros(3), channel_axis=0)


def test_gui_metadata_matches_the_function():
    assert set(_detect.DEFAULT_KINDS) <= set(_detect.KINDS)
    image = np.zeros((8, 8))
    for p in _detect.PARAMS:  # every documented threshold is accepted with its default
        ip.detect(image, **{p.name: p.default})


def test_detect_then_inpaint_repairs_the_sample_cell_image():
    from skimage import data as skdata

    from inpaint_plugin.data import damaged_cell, dead_pixels_mask

    image, truth = damaged_cell()  # dead pixels and a dead column of random 0/255 values, and scratches
    clean = skdata.cell()
    isolated = dead_pixels_mask(clean.shape, 0.004, seed=1)  # the same dead pixels as damaged_cell()
    isolated[:, 299:304] = False
    isolated &= ~ndimage.binary_dilation(truth & ~isolated, iterations=1)  # away from the other damage
    isolated &= np.abs(image.astype(int) - clean) > 40  # ... and visibly wrong
    mask = ip.detect(image)
    assert (mask & isolated).sum() > 0.95 * isolated.sum()
    assert mask[:, 301].all()                # the dead column
    assert (mask & ~truth).sum() <= 5        # (almost) no false alarm
    repaired = ip.inpaint(image, mask)
    err_before = np.abs(image.astype(float) - clean)[mask].mean()
    err_after = np.abs(repaired.astype(float) - clean)[mask].mean()
    assert err_after < 0.25 * err_before


def test_few_false_alarms_on_clean_benchmark_images(bench_dir):
    for path in sorted(bench_dir.glob("*__box.npz")):
        image = np.load(path)["image"]
        mask = ip.detect(image, ["hot", "dead", "zeros"], channel_axis=-1 if image.ndim == 3 else None)
        assert mask.mean() < 0.002, path.name
        clusters = ip.detect(image, "clusters", channel_axis=-1 if image.ndim == 3 else None)
        assert clusters.mean() < 0.0005, path.name  # measured: at most 0.015% (10 pixels of 65536)


@settings(max_examples=30, deadline=None, database=None)
@given(shape=st.lists(st.integers(1, 12), min_size=1, max_size=3).map(tuple),
       nchan=st.sampled_from([None, 1, 3]),
       dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64]),
       constant=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_any_image_gives_a_mask_of_its_spatial_shape(shape, nchan, dtype, constant, seed):
    rng = np.random.default_rng(seed)
    full = shape if nchan is None else shape + (nchan,)
    if constant:
        image = np.full(full, 7, dtype)
    elif np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        image = rng.integers(info.min, info.max, full, dtype=dtype, endpoint=True)
    else:
        image = (rng.normal(0, 1000, full)).astype(dtype)
        image[rng.random(full) < 0.1] = np.nan
    mask = ip.detect(image, "all", channel_axis=None if nchan is None else -1)
    assert mask.shape == shape and mask.dtype == bool
    if constant:
        assert not mask.any()  # nothing stands out in a constant image (7 is not saturated)
    if image.dtype.kind == "f":
        bad = ~np.isfinite(image)
        bad = bad if nchan is None else bad.any(axis=-1)
        assert mask[bad].all()


def _clusters_scene():
    """A smooth noisy uint16 image with sharp clusters of 1-9 pixels (left half, bright and dark) and
    blurred spots of the same height (right half), plus a 1-pixel line of 10 pixels."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:256, :256]
    img = 1000 + 300 * np.sin(xx / 20) * np.cos(yy / 30) + rng.normal(0, 10, (256, 256))
    truth = np.zeros((256, 256), bool)
    shapes = [np.ones((1, 3)), np.ones((2, 2)), np.ones((3, 3)), np.array([[1, 1, 0], [0, 1, 1]]),
              np.ones((1, 5)), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]]), np.ones((1, 1))]
    k = 0
    for cy in range(16, 240, 32):
        for cx in range(16, 112, 32):
            shape = shapes[k % len(shapes)].astype(bool)
            sign = 1 if k % 2 else -1
            k += 1
            sl = (slice(cy, cy + shape.shape[0]), slice(cx, cx + shape.shape[1]))
            img[sl][shape] += sign * rng.uniform(300, 600, shape.sum())
            truth[sl] |= shape
    spots = np.zeros((256, 256))
    spots[16:240:32, 144:240:32] = 1.0
    peak = ndimage.gaussian_filter(np.pad([[1.0]], 5), 1.5).max()
    img += ndimage.gaussian_filter(spots, 1.5) * 500 / peak  # sub-resolution objects: not defects
    img[200:210, 140] += 500  # a 10-pixel line: more than cluster_size
    return img.astype(np.uint16), truth


def test_clusters_are_found_but_blurred_spots_and_longer_lines_are_not():
    image, truth = _clusters_scene()
    mask = ip.detect(image, "clusters")
    assert (mask & truth).sum() == truth.sum()
    assert not (mask & ~truth).any()  # spots on the right, the line, the smooth noisy background
    assert not ip.detect(image, ["hot", "dead"])[truth].all()  # groups of 3+ need this detector
    assert ip.detect(image)[truth].all()  # it is one of the default kinds
    line = np.zeros(image.shape, bool)
    line[200:210, 140] = True
    assert ip.detect(image, "clusters", cluster_size=10)[line].all()


def test_clusters_in_a_colour_stack_and_in_3d():
    image, truth = _clusters_scene()
    rgb = np.stack([image, image // 2, np.full_like(image, 500)], axis=-1)
    rgb[..., 0][truth] = 1000  # the clusters are only in the second channel now
    mask = ip.detect(rgb, "clusters", channel_axis=-1)
    assert mask[truth].all() and not mask[~truth].any()
    vol = np.repeat(_scene((24, 40), seed=3)[None], 12, axis=0).astype(np.float64)
    vol[5:7, 10:12, 30:32] += 300  # a 2x2x2 cluster
    vol[:, 3:5, 6:9] += 400  # stuck sensor pixels: the same 2x3 group in every frame of the stack
    found = ip.detect(vol, "clusters")
    assert found[5:7, 10:12, 30:32].all() and found[:, 3:5, 6:9].all() and found.sum() == 8 + 12 * 6


# --- stacks: static sensor defects, in-plane search ---------------------------------------------

def _camera_stack(frames=60, shape=(96, 96), seed=0):
    """A uint16 camera stack: a moving smooth scene plus noise, with static hot pixels in every frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    stack = np.stack([1000 + 300 * np.sin((xx + 2 * t) / 9.0) * np.cos((yy - t) / 13.0) for t in range(frames)])
    stack = rng.poisson(stack).astype(np.uint16)
    hot = np.zeros(shape, bool)
    hot[tuple(rng.integers(3, shape[0] - 3, size=(2, 25)))] = True
    stack[:, hot] += np.uint16(2000)
    return stack, hot


def test_static_hot_pixels_of_a_camera_stack_are_found():
    stack, hot = _camera_stack()
    found = ip.detect(stack)
    recall = found[:, hot].mean()
    false_alarms = found[:, ~hot].mean()
    assert recall == 1.0  # every hot pixel, in every frame (a 3-D neighbourhood found none)
    assert false_alarms < 1e-3
    # the old 3-D neighbourhoods see a line along the stack, not a pixel
    assert ip.detect(stack, kinds=("hot",), in_plane=False)[:, hot].mean() < 0.5


def test_static_map_flags_a_defect_in_every_frame():
    stack, hot = _camera_stack(frames=20, seed=1)
    where = np.argwhere(hot)[0]
    # in a few frames the scene is as bright as the hot pixel: there it is no outlier on its own
    stack[:4, where[0] - 2:where[0] + 3, where[1] - 2:where[1] + 3] = stack[:4, where[0], where[1]][:, None, None]
    per_frame = ip.detect(stack, kinds=("hot",))
    assert not per_frame[:4, where[0], where[1]].any()
    static = ip.detect(stack, kinds=("hot", "static"))
    assert static[:, where[0], where[1]].all()
    static_only = ip.detect(stack, kinds=("static",))
    np.testing.assert_array_equal(static_only.all(axis=0), static_only.any(axis=0))  # the same map in each frame
    assert static_only[0][hot].mean() == 1.0
    # a pixel hot in one frame only (a cosmic ray) is not static
    stack[7, 50, 50] += 3000
    assert not ip.detect(stack, kinds=("static",))[:, 50, 50].any()


def test_compiled_kernels_equal_the_scipy_filters():
    from scipy import ndimage

    from inpaint_plugin._classical import _detect as k

    rng = np.random.default_rng(4)
    for shape in [(1, 1), (2, 7), (5, 3), (37, 23)]:
        x = rng.integers(0, 5, shape).astype(float)  # ties on purpose
        fp = np.ones((3, 3), bool)
        fp[1, 1] = False
        top, top2, bot, bot2 = k.neighbour_stats(x)
        np.testing.assert_array_equal(top, ndimage.maximum_filter(x, footprint=fp, mode="reflect"))
        np.testing.assert_array_equal(top2, ndimage.rank_filter(x, -2, footprint=fp, mode="reflect"))
        np.testing.assert_array_equal(bot, ndimage.minimum_filter(x, footprint=fp, mode="reflect"))
        np.testing.assert_array_equal(bot2, ndimage.rank_filter(x, 1, footprint=fp, mode="reflect"))
        med = ndimage.median_filter(x, 7, mode="reflect")
        np.testing.assert_array_equal(k.median7(x), med)
        r, c = np.nonzero(np.ones(shape, bool))
        np.testing.assert_array_equal(k.median7_at(x, r.astype(np.int64), c.astype(np.int64)), med[r, c])
        for sign in (1.0, -1.0):  # the pruned search gives the exact answer
            from inpaint_plugin._detect import _beyond_median7

            np.testing.assert_array_equal(_beyond_median7(x, sign, 0.5), sign * (x - med) > 0.5)


def test_progress_reaches_its_total_and_can_cancel():
    img = np.random.default_rng(0).normal(100, 5, (64, 64))
    seen = []
    ip.detect(img, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == list(range(1, len(seen) + 1))

    class Stop(Exception):
        pass

    def cancel(done, total):
        raise Stop

    with pytest.raises(Stop):
        ip.detect(img, progress=cancel)
    with pytest.raises(TypeError, match="progress"):
        ip.detect(img, progress=3)
