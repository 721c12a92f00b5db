"""Biharmonic backend: same solution as scikit-image's inpaint_biharmonic, nD, multichannel."""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin
from inpaint_plugin._classical import _bilaplace

skimage_restoration = pytest.importorskip("skimage.restoration")


def rel_diff(ours, ref, image, mask):
    """Largest difference on the hole, relative to the known data range (per channel)."""
    known = image[~mask]
    span = np.maximum(known.max(axis=0) - known.min(axis=0), 1e-12)
    return float((np.abs(ours[mask] - ref[mask]) / span).max())


def test_matches_skimage_on_bench_cases(bench_dir):
    files = sorted(bench_dir.glob("*.npz"))
    assert files, f"no bench cases in {bench_dir}"
    worst = 0.0
    for f in files:
        case = np.load(f)
        image = case["image"].astype(np.float64) / 255.0
        mask = case["mask"]
        axis = -1 if image.ndim == 3 else None
        ours = inpaint_plugin.inpaint(image, mask, method="biharmonic", channel_axis=axis)
        ref = skimage_restoration.inpaint_biharmonic(image, mask, channel_axis=axis)
        img = image if axis is not None else image[..., None]
        d = rel_diff(ours.reshape(img.shape), ref.reshape(img.shape), img, mask)
        worst = max(worst, d)
        assert d <= 1e-4, f"{f.name}: relative difference {d:.2e}"
    assert worst <= 1e-4


def _smooth_volume(shape, seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape], indexing="ij")
    vol = np.zeros(shape)
    for _ in range(4):
        k = rng.uniform(1, 4, len(shape))
        vol += np.sin(sum(ki * g * np.pi for ki, g in zip(k, grids)) + rng.uniform(0, 6))
    return vol + 0.05 * rng.standard_normal(shape)


@pytest.fixture
def small_coarsest(monkeypatch):
    """A coarsest multigrid level small enough that test-sized holes get a real hierarchy."""
    monkeypatch.setattr(_bilaplace, "COARSEST_MAX", 1000)


@pytest.mark.parametrize("big", [False, True], ids=["direct", "multigrid"])
def test_3d_matches_skimage_including_border(big, small_coarsest):
    shape = (26, 24, 22) if big else (14, 12, 10)
    vol = _smooth_volume(shape)
    mask = np.zeros(shape, bool)
    if big:
        mask[3:23, 2:22, 0:20] = True  # 8000 voxels, touches the z=0 border: multigrid path
    else:
        mask[2:8, 0:5, 3:9] = True  # touches the y=0 border
        mask[10, 6, 8] = True
    ours = inpaint_plugin.inpaint(vol, mask, method="biharmonic")
    ref = skimage_restoration.inpaint_biharmonic(vol, mask)
    assert rel_diff(ours[..., None], ref[..., None], vol[..., None], mask) <= 1e-4
    assert not np.array_equal(ours[mask], vol[mask])


def test_multichannel_equals_skimage_and_per_channel():
    rng = np.random.default_rng(1)
    img = np.stack([_smooth_volume((40, 50), seed=s) for s in range(3)], axis=-1)
    mask = np.zeros((40, 50), bool)
    mask[10:30, 5:45] = True
    mask[0:3, 0:4] = True  # corner
    mask[rng.random((40, 50)) < 0.03] = True
    ours = inpaint_plugin.inpaint(img, mask, method="biharmonic", channel_axis=-1)
    ref = skimage_restoration.inpaint_biharmonic(img, mask, channel_axis=-1)
    assert rel_diff(ours, ref, img, mask) <= 1e-4
    single = inpaint_plugin.inpaint(img[..., 1], mask, method="biharmonic")
    np.testing.assert_allclose(ours[..., 1], single, atol=1e-7)


def test_reproduces_linear_ramp_inside(small_coarsest):
    # the discrete bi-Laplacian annihilates linear functions away from the image border
    yy, xx = np.mgrid[0:80, 0:90].astype(float)
    ramp = 0.3 * yy - 0.2 * xx + 5.0
    mask = np.zeros(ramp.shape, bool)
    mask[10:70, 8:80] = True  # large: multigrid path
    mask[3, 3] = True  # small: direct path
    out = inpaint_plugin.inpaint(ramp, mask, method="biharmonic")
    np.testing.assert_allclose(out, ramp, rtol=0, atol=1e-6 * np.ptp(ramp))  # CG stops at RTOL


def test_large_hole_solver_matches_direct_factorisation(small_coarsest):
    from scipy.sparse.linalg import spsolve

    yy, xx = np.mgrid[0:120, 0:100]
    img = np.sin(yy / 9.0) * np.cos(xx / 13.0) + (yy * xx) / 12000.0
    mask = (yy - 60) ** 2 / 40.0**2 + (xx - 45) ** 2 / 35.0**2 < 1  # ~4400 pixels > DIRECT_MAX
    mask |= (np.abs(yy - xx) < 2) & (yy > 100)
    assert mask.sum() > _bilaplace.DIRECT_MAX
    a, b, _ = _bilaplace.assemble(img[..., None], mask)
    exact = spsolve(a.tocsc(), b[:, 0])
    got = _bilaplace.biharmonic_solve(img[..., None], mask)[:, 0]
    assert np.abs(got - exact).max() <= 1e-6 * np.ptp(img)


def test_integer_image_and_clipping_to_known_range():
    img = np.zeros((30, 30), np.uint8)
    img[:, 15:] = 200
    mask = np.zeros(img.shape, bool)
    mask[10:20, 10:20] = True
    out = inpaint_plugin.inpaint(img, mask, method="biharmonic")
    assert out.dtype == np.uint8
    assert out[mask].min() >= 0 and out[mask].max() <= 200
    ref = skimage_restoration.inpaint_biharmonic(img, mask)  # float in [0, 1]
    assert np.abs(out.astype(float) / 255.0 - ref)[mask].max() <= 1.0 / 255.0 + 1e-9


def _strokes(shape, seed):
    """Thick random polylines covering ~12% of a 2-D image (free-form holes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    mask = np.zeros(shape, bool)
    while mask.mean() < 0.12:
        p = rng.uniform(0.15, 0.85, 2) * shape
        width = rng.uniform(3, 8)
        for _ in range(4):
            q = np.clip(p + rng.uniform(-0.3, 0.3, 2) * shape, 0, np.array(shape) - 1)
            d = q - p
            t = np.clip(((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / max(d @ d, 1e-9), 0, 1)
            mask |= (yy - p[0] - t * d[0]) ** 2 + (xx - p[1] - t * d[1]) ** 2 <= width**2
            p = q
    return mask


def test_free_form_strokes_match_skimage_on_multigrid_path(small_coarsest):
    shape = (200, 190)
    img = _smooth_volume(shape, seed=3)
    mask = _strokes(shape, seed=4)
    mask[-4:, 20:60] = True  # a stroke along the border
    sizes = np.bincount(__import__("scipy.ndimage", fromlist=["label"]).label(mask)[0][mask])
    assert sizes.max() > _bilaplace.DIRECT_MAX  # at least one block takes the multigrid path
    ours = inpaint_plugin.inpaint(img, mask, method="biharmonic")
    ref = skimage_restoration.inpaint_biharmonic(img, mask)
    assert rel_diff(ours[..., None], ref[..., None], img[..., None], mask) <= 1e-4


@pytest.mark.parametrize("omega", [1.0, _bilaplace.OMEGA])
def test_w_cycle_pcg_matches_direct_solve_with_and_without_over_correction(omega, small_coarsest):
    from scipy.sparse.linalg import spsolve

    shape = (260, 250)
    img = _smooth_volume(shape, seed=5)
    mask = _strokes(shape, seed=6)
    a, b, pix = _bilaplace.assemble(img[..., None], mask)
    coords = np.stack(np.unravel_index(pix, shape), axis=1)
    mg = _bilaplace.Multigrid(a, coords, omega=omega)
    assert len(mg.levels) >= 3  # at least one level visited twice per cycle (W) between fine and coarsest
    exact = spsolve(a.tocsc(), b[:, 0])
    got = _bilaplace.pcg(mg.matvec, b, mg.cycle)[:, 0]
    assert np.abs(got - exact).max() <= 1e-5 * np.ptp(img)


def test_pcg_refuses_an_indefinite_preconditioner():
    from scipy import sparse

    a = sparse.diags_array(np.arange(1.0, 11.0)).tocsr()
    b = np.ones((10, 1))
    with pytest.raises(_bilaplace.IndefinitePreconditioner):
        _bilaplace.pcg(lambda x: a @ x, b, lambda r: -r)
    x = _bilaplace.pcg(lambda x: a @ x, b, lambda r: r / a.diagonal()[:, None])
    np.testing.assert_allclose(x[:, 0], 1.0 / np.arange(1.0, 11.0))


def test_blocks_solved_on_their_boxes_in_threads_match_skimage(monkeypatch, small_coarsest):
    """Several large blocks (interleaved bounding boxes, one along the border, one in a corner) plus
    small ones: each large block is solved on its own box; the result does not depend on the number
    of threads (bit for bit) and matches scikit-image."""
    monkeypatch.setattr(_bilaplace, "DIRECT_MAX", 400)
    shape = (230, 210)
    img = _smooth_volume(shape, seed=7)
    mask = np.zeros(shape, bool)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask |= (np.abs(yy - xx) < 6) & (yy > 10) & (yy < 200)  # a diagonal stroke
    mask |= (np.abs(yy + xx - 230) < 5) & (yy > 40) & (yy < 100)  # crosses its bounding box, not it
    mask[150:227, 60:66] = True  # ends three pixels from the bottom border
    mask[0:30, 180:210] = True  # in the top-right corner
    mask[200:230, 0:25] = True  # in the bottom-left corner
    mask[5:9, 60:64] = True  # small blocks: direct path
    mask[120, 190] = True
    from scipy import ndimage as ndi

    labels, _ = ndi.label(ndi.binary_dilation(mask, ndi.generate_binary_structure(2, 1)))
    sizes = np.bincount(labels[mask])
    assert (sizes > _bilaplace.DIRECT_MAX).sum() >= 4 and ((sizes > 0) & (sizes <= _bilaplace.DIRECT_MAX)).any()

    boxes = []
    solve_box = _bilaplace._solve_box

    def spy(values, mask, labels, box, lab):
        boxes.append(box)
        return solve_box(values, mask, labels, box, lab)

    monkeypatch.setattr(_bilaplace, "_solve_box", spy)
    one = _bilaplace.biharmonic_solve(img[..., None], mask, threads=1)
    assert len(boxes) >= 4 and all(any(s.stop - s.start < n for s, n in zip(b, shape)) for b in boxes)
    many = _bilaplace.biharmonic_solve(img[..., None], mask, threads=3)
    np.testing.assert_array_equal(one, many)
    ours = img.copy()
    ours[mask] = one[:, 0]
    ref = skimage_restoration.inpaint_biharmonic(img, mask)
    assert rel_diff(ours[..., None], ref[..., None], img[..., None], mask) <= 1e-4


def test_pcg_initial_guess_keeps_the_accuracy_and_an_exact_guess_costs_nothing(small_coarsest):
    shape = (160, 150)
    img = _smooth_volume(shape, seed=8)
    mask = _strokes(shape, seed=9)
    a, b, pix = _bilaplace.assemble(img[..., None], mask)
    coords = np.stack(np.unravel_index(pix, shape), axis=1)
    mg = _bilaplace.Multigrid(a, coords)
    calls = []

    def precond(r):
        calls.append(1)
        return mg.cycle(r)

    cold = _bilaplace.pcg(mg.matvec, b, precond)
    n_cold = len(calls)
    calls.clear()
    warm = _bilaplace.pcg(mg.matvec, b, precond, x0=np.full_like(b, img[~mask].mean()))
    assert np.abs(warm - cold).max() <= 1e-5 * np.ptp(img)
    assert 0 < len(calls) <= n_cold + 1
    calls.clear()
    again = _bilaplace.pcg(mg.matvec, b, precond, x0=cold)
    assert len(calls) <= 1 and np.abs(again - cold).max() <= 1e-6 * np.ptp(img)


def test_num_threads_reads_the_environment(monkeypatch):
    from inpaint_plugin._config import THREADS_ENV, num_threads

    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert num_threads() >= 1
    monkeypatch.setenv(THREADS_ENV, "3")
    assert num_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            num_threads()
