"""Dask tiling: inpaint() on dask arrays equals the in-memory result for small holes, only chunks
with holes are computed, and errors come at call time.

Exactness is checked with small local test methods registered here ("onion" fills holes from the
outside in, so a hole's fill depends only on the hole and a one-pixel ring; "bh-noclip" is the
biharmonic solver without the range clip of the built-in backend), and with the built-in
"biharmonic" method up to solver precision.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import inpaint_plugin as ip  # noqa: E402
from inpaint_plugin import Backend, Param, hookimpl, inpaint  # noqa: E402
from inpaint_plugin._dask import inpaint_dask, inpaint_multiscale  # noqa: E402


def _image(shape, seed=0, dtype=np.uint16):
    """A smooth random image (sum of a few waves plus noise) in the range of ``dtype``."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    f = sum(np.sin(g / rng.uniform(4, 12) + rng.uniform(0, 6)) for g in grids)
    f = 1000 + 300 * f + rng.normal(0, 10, shape)
    return f.astype(dtype)


def _holes(shape, n, max_size, seed=1):
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    for _ in range(n):
        start = [rng.integers(0, s) for s in shape]
        size = [rng.integers(1, max_size + 1) for _ in shape]
        mask[tuple(slice(a, a + b) for a, b in zip(start, size))] = True
    return mask


def _write_zarr(path, array, chunks):
    """``array`` written to a zarr array on disk at ``path`` (real zarr), chunks ``(chunks, chunks)``;
    returns the opened array."""
    zarr = pytest.importorskip("zarr")
    z = zarr.create_array(str(path), shape=array.shape, dtype=array.dtype, chunks=(chunks, chunks))
    z[:] = array
    return z


def _onion_fill(image, mask, bias=0.0):
    """Fill from the outside in: each pass gives the hole pixels touching known ones the mean of their
    known neighbours (3**n box) plus ``bias``. Sums run in a fixed order, so any window holding the
    hole and a one-pixel ring gives bit-identical values."""
    out = np.array(image, dtype=np.float64, copy=True)
    known = ~mask
    nd = mask.ndim
    offsets = [o for o in np.ndindex(*(3,) * nd) if o != (1,) * nd]
    while not known.all():
        pad_v = np.pad(out * known[..., None], [(1, 1)] * nd + [(0, 0)])
        pad_k = np.pad(known, 1).astype(np.float64)
        total, count = np.zeros_like(out), np.zeros(mask.shape)
        for o in offsets:
            sl = tuple(slice(a, a + s) for a, s in zip(o, mask.shape))
            total += pad_v[sl]
            count += pad_k[sl]
        front = ~known & (count > 0)
        out[front] = total[front] / count[front][:, None] + bias
        known |= front
    return out


def _biharmonic_noclip(image, mask):
    from inpaint_plugin._classical._bilaplace import biharmonic_solve

    out = np.array(image, dtype=np.float64, copy=True)
    out.reshape(-1, image.shape[-1])[mask.reshape(-1)] = biharmonic_solve(image, mask)
    return out


class _TestMethods:
    @hookimpl
    def inpaint_plugin_backends(self):
        bias = Param("bias", "float", 0.0)
        return [Backend("onion", _onion_fill, "test: outside-in mean", params=[bias], margin=6),
                Backend("onion-2d", _onion_fill, "test: 2-D outside-in mean", spatial_ndim=2, margin=6),
                Backend("bh-noclip", _biharmonic_noclip, "test: biharmonic without range clip", margin=16)]


@pytest.fixture(scope="module", autouse=True)
def test_methods():
    plugin = _TestMethods()
    ip.register(plugin, name="dask-test-methods")
    yield
    ip.unregister(plugin)


class _Recorder:
    """A run-time plugin: the onion fill under another name, recording the blocks it is called on."""

    def __init__(self, name, spatial_ndim=None):
        self.name, self.spatial_ndim = name, spatial_ndim
        self.shapes = []
        self._lock = threading.Lock()

    def _fill(self, image, mask):
        with self._lock:
            self.shapes.append(image.shape[:-1])
        return _onion_fill(image, mask)

    @hookimpl
    def inpaint_plugin_backends(self):
        return [Backend(self.name, self._fill, "recording onion fill", spatial_ndim=self.spatial_ndim, margin=8)]


@pytest.fixture
def recorder():
    made = []

    def make(name, spatial_ndim=None):
        rec = _Recorder(name, spatial_ndim)
        ip.register(rec, name=f"{name}-plugin")
        made.append(rec)
        return rec

    yield make
    for rec in made:
        ip.unregister(rec)


@pytest.mark.parametrize("method", ["onion", "biharmonic"])
def test_matches_in_memory_uint16_with_holes_across_chunk_borders(method):
    img = _image((100, 120))
    mask = _holes(img.shape, 25, 5)
    mask[30:35, 61:66] = True  # crosses the border between rows of chunks 0 and 1, columns 1 and 2
    mask[62:66, 95:97] = True  # a corner of four chunks
    d = da.from_array(img, chunks=32)
    out = inpaint(d, mask, method)
    assert isinstance(out, da.Array) and out.chunks == d.chunks and out.dtype == img.dtype
    result, ref = out.compute(), inpaint(img, mask, method)
    np.testing.assert_array_equal(result[~mask], img[~mask])
    if method == "onion":
        np.testing.assert_array_equal(result, ref)
    else:  # an iterative solver: equal up to its precision, i.e. rounding of the last unit
        np.testing.assert_allclose(result.astype(int), ref, rtol=0, atol=1)


def test_long_thin_defects_across_many_chunks_match_closely():
    # dead columns and stripes are longer than any window, but the biharmonic fill across a line a
    # few pixels wide depends on nearby pixels only: the tiled result equals the in-memory one closely
    img = _image((160, 160), seed=20, dtype=np.float32)
    yy, xx = np.mgrid[:160, :160]
    mask = (xx == 50) | ((yy >= 70) & (yy < 73)) | ((xx >= 100) & (xx < 103))
    out = inpaint(da.from_array(img, chunks=40), mask, "bh-noclip").compute()
    ref = inpaint(img, mask, "bh-noclip")
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5 * float(np.ptp(img)))


def test_float_nan_fill_and_nodata_match_in_memory():
    img = _image((70, 90), seed=3, dtype=np.float32)
    holes = _holes(img.shape, 15, 4, seed=4)
    nan_img = img.copy()
    nan_img[holes] = np.nan
    out = inpaint(da.from_array(nan_img, chunks=(32, 50)), None, "onion").compute()
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, inpaint(nan_img, None, "onion"))
    np.testing.assert_array_equal(out[~holes], img[~holes])

    nod = _image((70, 90), seed=3)
    nod[holes] = 0
    out = inpaint(da.from_array(nod, chunks=25), None, "onion", nodata=0).compute()
    np.testing.assert_array_equal(out, inpaint(nod, None, "onion", nodata=0))


def test_channels_are_never_split_and_match_in_memory():
    rgb = np.stack([_image((60, 80), seed=s, dtype=np.uint8) for s in range(3)])  # channels first
    mask = _holes((60, 80), 12, 4, seed=5)
    d = da.from_array(rgb, chunks=(2, 20, 30))
    out = inpaint(d, mask, "onion", channel_axis=0)
    assert out.chunks[0] == (3,)
    np.testing.assert_array_equal(out.compute(), inpaint(rgb, mask, "onion", channel_axis=0))


def test_nd_method_on_a_volume_chunked_along_every_axis():
    vol = _image((16, 40, 40), seed=6, dtype=np.float64)
    mask = _holes(vol.shape, 10, 3, seed=7)
    mask[7:10, 18:22, 19:21] = True  # across chunk borders on all three axes
    out = inpaint(da.from_array(vol, chunks=(8, 20, 20)), mask, "onion").compute()
    np.testing.assert_array_equal(out, inpaint(vol, mask, "onion"))


def test_2d_method_on_a_stack_has_no_margin_along_the_stack_axis(recorder):
    rec = recorder("dask-test-2d", spatial_ndim=2)
    stack = _image((4, 50, 60), seed=8)
    mask = np.zeros(stack.shape, bool)
    mask[1, 20:23, 28:33] = True  # across the column border at 30
    mask[3, 40:42, 5:7] = True
    out = inpaint(da.from_array(stack, chunks=(2, 25, 30)), mask, "dask-test-2d").compute()
    np.testing.assert_array_equal(out, inpaint(stack, mask, "dask-test-2d"))
    del rec.shapes[:]
    inpaint(da.from_array(stack, chunks=(2, 25, 30)), mask, "dask-test-2d", margin=3).compute()
    # one 2-D window per chunk and slice with holes: the chunk's part of the hole + 3 pixels each way
    # (slice 1: columns 28-29 in one chunk, 30-32 in the next; slice 3: one chunk)
    assert sorted(rec.shapes) == [(8, 8), (9, 8), (9, 9)]


def test_only_chunks_with_holes_are_computed(recorder):
    rec = recorder("dask-test-count")
    img = _image((64, 64), seed=9)
    mask = np.zeros(img.shape, bool)
    mask[3, 3] = mask[28, 28] = True  # two holes of chunk (0, 0), farther apart than twice the margin (8)
    mask[40:42, 50:53] = True  # inside chunk (1, 1)
    d = da.from_array(img, chunks=32)
    out = inpaint(d, mask, "dask-test-count")
    assert rec.shapes == []  # building the graph computes nothing
    result = out.compute()
    # one window per group of nearby holes: the group's bounding box + the margin, within the image
    assert sorted(rec.shapes) == [(12, 12), (17, 17), (18, 19)]
    np.testing.assert_array_equal(result, inpaint(img, mask, "dask-test-count"))
    # a chunk without holes is the input chunk itself (the very same object: no task, no copy)
    for idx, same in (((1, 0), True), ((0, 0), False)):
        src, res = dask.compute(d.to_delayed(optimize_graph=False)[idx], out.to_delayed(optimize_graph=False)[idx],
                                scheduler="sync")
        assert (src is res) == same


def test_reads_only_the_chunks_it_needs():
    img = _image((64, 64), seed=19)
    mask = np.zeros(img.shape, bool)
    mask[20, 20] = True  # chunk (1, 1) of 16-pixel chunks; its window reaches chunks 0-2 both ways
    reads = []

    def record(block, block_info=None):
        reads.append(block_info[0]["chunk-location"])
        return block

    d = da.from_array(img, chunks=16).map_blocks(record, dtype=img.dtype)
    # an integer image with clip=False: the scan reads the mask only
    out = inpaint(d, mask, "biharmonic", clip=False)
    assert reads == []
    dask.compute(out.blocks[1, 1], scheduler="sync")  # window 4:37 x 4:37 (margin 16)
    assert sorted(set(reads)) == [(i, j) for i in range(3) for j in range(3)]
    del reads[:]
    dask.compute(inpaint(d, mask, "biharmonic", clip=False, margin=3).blocks[1, 1], scheduler="sync")
    assert sorted(set(reads)) == [(1, 1)]
    del reads[:]
    inpaint(d, mask, "biharmonic")  # clip=True needs the range of the whole image
    assert len(reads) == 16


def test_clip_uses_the_range_of_the_whole_image():
    # the onion fill with a bias overshoots the known values of its window; a bright pixel far away
    # (outside every window) sets the range of the whole image, which is what clip=True keeps to
    yy, xx = np.mgrid[:48, :48]
    img = (100 + yy + xx).astype(np.float32)
    img[2, 2] = 1000
    mask = np.hypot(yy - 24, xx - 24) < 3
    window_max = img[18:31, 18:31][~mask[18:31, 18:31]].max()
    d = da.from_array(img, chunks=24)
    out = inpaint(d, mask, "onion", bias=50.0).compute()
    np.testing.assert_array_equal(out, inpaint(img, mask, "onion", bias=50.0))
    assert out[mask].max() > window_max  # not clipped to the window's range
    out = inpaint(d, mask, "onion", bias=5000.0).compute()
    np.testing.assert_array_equal(out, inpaint(img, mask, "onion", bias=5000.0))
    assert (out[mask] == 1000).all()  # clipped to the whole image's range
    unclipped = inpaint(d, mask, "onion", bias=5000.0, clip=False).compute()
    assert (unclipped[mask] > 5000).all()


def test_hole_larger_than_the_window_raises_when_computed():
    img = _image((64, 64), seed=10)
    mask = np.zeros(img.shape, bool)
    mask[:40, :40] = True
    out = inpaint(da.from_array(img, chunks=16), mask, "biharmonic", margin=4)
    with pytest.raises(ValueError, match="larger than the tiling window"):
        out.compute()


def test_no_holes_returns_the_input_and_validation_happens_at_call_time():
    img = _image((40, 40))
    d = da.from_array(img, chunks=20)
    assert inpaint(d, np.zeros(img.shape, bool), "biharmonic") is d
    f = da.from_array(img.astype(np.float32), chunks=20)
    bad = img.astype(np.float32)
    bad[30, 31] = np.nan
    mask = np.zeros(img.shape, bool)
    mask[2, 2] = True
    with pytest.raises(ValueError, match=r"NaN or inf at 1 pixel\(s\) outside the mask \(first at \(30, 31\)"):
        inpaint(da.from_array(bad, chunks=20), mask, "biharmonic")
    with pytest.raises(ValueError, match="whole image"):
        inpaint(d, np.ones(img.shape, bool), "biharmonic")
    with pytest.raises(ValueError, match="mask shape"):
        inpaint(d, np.zeros((40, 41), bool), "biharmonic")
    with pytest.raises(ValueError, match="mask is required"):
        inpaint(d, None, "biharmonic")
    with pytest.raises(ValueError, match="auto"):
        inpaint(d, mask, "auto")
    with pytest.raises(ValueError, match="margin"):
        inpaint(d, mask, "biharmonic", margin=-1)
    with pytest.raises(TypeError, match="margin"):
        inpaint(d, mask, "biharmonic", margin=2.5)
    with pytest.raises(TypeError, match="unexpected parameter"):
        inpaint(d, mask, "biharmonic", strength=2)
    half = da.from_array(np.where(mask, 0.5, 0.0), chunks=20)
    with pytest.raises(ValueError, match="0 and 1"):
        inpaint(f, half, "biharmonic")


def test_dask_and_label_masks():
    img = _image((50, 50), seed=11)
    holes = _holes(img.shape, 8, 3, seed=12)
    labels = (holes * 7).astype(np.int32)  # a napari Labels layer: any label is a hole
    out = inpaint(da.from_array(img, chunks=20), da.from_array(labels, chunks=17), "onion")
    np.testing.assert_array_equal(out.compute(), inpaint(img, holes, "onion"))


def test_zarr_on_disk_with_a_distributed_client(tmp_path):
    zarr = pytest.importorskip("zarr")
    distributed = pytest.importorskip("distributed")
    img = _image((96, 80), seed=13)
    mask = _holes(img.shape, 20, 4, seed=14)
    _write_zarr(tmp_path / "img.zarr", img, 32)
    zmask = _write_zarr(tmp_path / "mask.zarr", mask, 32)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        out = inpaint(da.from_zarr(str(tmp_path / "img.zarr")), zmask, "onion")  # a zarr mask is read lazily
        da.to_zarr(out, str(tmp_path / "out.zarr"))
    result = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[...]
    np.testing.assert_array_equal(result, inpaint(img, mask, "onion"))


@pytest.mark.slow
def test_distributed_worker_processes(tmp_path):
    distributed = pytest.importorskip("distributed")
    img = _image((64, 64), seed=15, dtype=np.float32)
    mask = _holes(img.shape, 10, 3, seed=16)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        out = inpaint(da.from_array(img, chunks=32), mask, "biharmonic").compute()
    np.testing.assert_allclose(out, inpaint(img, mask, "biharmonic"), rtol=1e-6)


def test_multiscale_levels_are_filled_independently():
    img = _image((65, 97), seed=17)
    mask = _holes(img.shape, 12, 3, seed=18)
    levels = [img, img[::2, ::2]]  # (65, 97) and (33, 49)
    out = inpaint_multiscale(levels, [mask, mask[::2, ::2]], "onion")  # a multiscale Labels layer
    assert all(isinstance(o, da.Array) for o in out)
    assert [o.shape for o in out] == [lvl.shape for lvl in levels]
    np.testing.assert_array_equal(out[0].compute(), inpaint(img, mask, "onion"))
    # a low-res pixel covering any full-resolution hole is a hole
    coarse = np.pad(mask, ((0, 1), (0, 1))).reshape(33, 2, 49, 2).any(axis=(1, 3))
    np.testing.assert_array_equal(out[1].compute(), inpaint(levels[1], coarse, "onion"))


def test_inpaint_dask_rejects_non_numeric_images():
    # the same rule, the same message as for numpy images (one set of input rules)
    with pytest.raises(TypeError) as numpy_error:
        inpaint(np.zeros((8, 8), dtype=bool), np.eye(8, dtype=bool))
    with pytest.raises(TypeError, match="image must be numeric") as dask_error:
        inpaint_dask(da.zeros((8, 8), dtype=bool, chunks=4), np.eye(8, dtype=bool))
    assert str(dask_error.value) == str(numpy_error.value)


# --- progress: the scan, then the fill (one count over the call) -----------------------------------

class _Calls:
    """A ``progress(done, total)`` callback recording its calls and the thread of each; raises
    ``_Stop`` at the call whose ``done`` is ``stop_at``."""

    def __init__(self, stop_at=None):
        self.calls, self.threads, self.stop_at = [], [], stop_at
        self._lock = threading.Lock()

    def __call__(self, done, total):
        with self._lock:
            self.calls.append((done, total))
            self.threads.append(threading.get_ident())
        if done == self.stop_at:
            raise _Stop(done)


class _Stop(Exception):
    pass


def _check_contract(calls):
    """``done`` never decreases, ``done <= total``, ``total`` never increases."""
    dones = [d for d, _ in calls]
    totals = [t for _, t in calls]
    assert dones == sorted(dones)
    assert totals == sorted(totals, reverse=True)
    assert all(d <= t for d, t in calls)


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_progress_reports_the_scan_during_the_call_then_the_fill(recorder, scheduler):
    rec = recorder("dask-test-progress")
    img = _image((96, 128), seed=21)
    mask = np.zeros(img.shape, bool)
    mask[5:8, 5:8] = mask[40, 70] = mask[90, 120] = True  # in chunks (0, 0), (1, 2), (2, 3)
    d = da.from_array(img, chunks=32)  # 3 x 4 = 12 chunks
    cb = _Calls()
    with dask.config.set(scheduler=scheduler):
        out = inpaint(d, mask, "dask-test-progress", progress=cb)
        # during the call: the 12 scanned chunks one by one (total: 12 + at most 12 to fill), in this
        # thread, before any fill; then the exact total 12 + 3
        assert rec.shapes == []
        assert cb.calls == [(k, 24) for k in range(1, 13)] + [(12, 15)]
        assert set(cb.threads) == {threading.get_ident()}
        result = out.compute()
    assert len(rec.shapes) == 3
    assert cb.calls[13:] == [(13, 15), (14, 15), (15, 15)]  # one per chunk with holes, the last: done == total
    _check_contract(cb.calls)
    np.testing.assert_array_equal(result, inpaint(img, mask, "dask-test-progress"))
    # computing again reports again, without counting a chunk twice
    n = len(cb.calls)
    out.compute()
    assert cb.calls[n:] == [(15, 15)] * 3


def test_progress_without_holes_ends_with_the_scan_and_stays_monotone_under_threads():
    img = _image((64, 64), seed=22)
    cb = _Calls()
    d = da.from_array(img, chunks=16)
    assert inpaint(d, np.zeros(img.shape, bool), "onion", progress=cb) is d  # nothing to fill
    assert cb.calls == [(k, 32) for k in range(1, 17)] + [(16, 16)]
    # many chunks with holes filled by 4 threads at once: the callback never sees a step back
    mask = _holes(img.shape, 40, 2, seed=23)
    cb = _Calls()
    with dask.config.set(scheduler="threads", num_workers=4):
        out = inpaint(d, mask, "onion", progress=cb)
        n_fill = cb.calls[-1][1] - 16
        assert n_fill >= 10
        out.compute()
    _check_contract(cb.calls)
    assert len(cb.calls) == 16 + 1 + n_fill and cb.calls[-1] == (16 + n_fill, 16 + n_fill)


def test_progress_reports_the_scan_of_a_zarr_array_on_disk(tmp_path):
    pytest.importorskip("zarr")
    img = _image((80, 80), seed=24)
    mask = _holes(img.shape, 6, 3, seed=25)
    _write_zarr(tmp_path / "img.zarr", img, 20)
    _write_zarr(tmp_path / "mask.zarr", mask, 20)
    cb = _Calls()
    out = inpaint(da.from_zarr(str(tmp_path / "img.zarr")), da.from_zarr(str(tmp_path / "mask.zarr")), "onion",
                  progress=cb)
    n_fill = len({(r // 20, c // 20) for r, c in np.argwhere(mask)})
    assert cb.calls == [(k, 32) for k in range(1, 17)] + [(16, 16 + n_fill)]
    np.testing.assert_array_equal(out.compute(), inpaint(img, mask, "onion"))
    assert cb.calls[-1] == (16 + n_fill, 16 + n_fill)
    _check_contract(cb.calls)


def test_a_raising_callback_cancels_the_scan_and_leaves_the_input_untouched(tmp_path):
    zarr = pytest.importorskip("zarr")
    img = _image((128, 128), seed=26, dtype=np.float32)
    mask = _holes(img.shape, 10, 3, seed=27)
    _write_zarr(tmp_path / "img.zarr", img, 16)
    scanned = []

    def record(block, block_info=None):
        scanned.append(block_info[0]["chunk-location"])
        return block

    before = sorted(p.name for p in (tmp_path / "img.zarr").rglob("*"))
    d = da.from_zarr(str(tmp_path / "img.zarr")).map_blocks(record, dtype=img.dtype)  # 64 chunks
    cb = _Calls(stop_at=3)
    with dask.config.set(scheduler="threads", num_workers=2), pytest.raises(_Stop):
        inpaint(d, mask, "onion", progress=cb)
    assert cb.calls == [(1, 128), (2, 128), (3, 128)]  # no call after the one that raised
    # the scan stopped: besides the 3 chunks reported, only the few already handed to the 2 threads
    # (or read ahead of their scan) were read, not the 64
    assert len(scanned) <= 10
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "img.zarr"), mode="r")[...], img)
    assert sorted(p.name for p in (tmp_path / "img.zarr").rglob("*")) == before
    # the same with a numpy-backed dask array and the sync scheduler: the numpy array is not changed
    arr = img.copy()
    cb = _Calls(stop_at=1)
    with dask.config.set(scheduler="sync"), pytest.raises(_Stop):
        inpaint(da.from_array(arr, chunks=16), mask, "onion", progress=cb)
    assert cb.calls == [(1, 128)]
    np.testing.assert_array_equal(arr, img)


def test_progress_with_a_distributed_client_in_this_process():
    distributed = pytest.importorskip("distributed")
    img = _image((64, 64), seed=28)
    mask = np.zeros(img.shape, bool)
    mask[3:5, 3:5] = mask[50, 40] = True  # chunks (0, 0) and (3, 2)
    cb = _Calls()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        out = inpaint(da.from_array(img, chunks=16), mask, "onion", progress=cb)
        assert cb.calls == [(k, 32) for k in range(1, 17)] + [(16, 18)]  # the scan's futures, as they complete
        result = out.compute()  # the graph is pickled, the callback still reached in this process
        with pytest.raises(_Stop):  # a raising callback cancels the scan here too
            inpaint(da.from_array(img, chunks=16), mask, "onion", progress=_Calls(stop_at=2))
    assert cb.calls[17:] == [(17, 18), (18, 18)]
    np.testing.assert_array_equal(result, inpaint(img, mask, "onion"))


def test_cli_chunks_shows_the_scan_before_writing(tmp_path, capsys):
    tifffile = pytest.importorskip("tifffile")
    from inpaint_plugin.cli import main

    img = _image((40, 56), seed=29)
    mask = np.zeros(img.shape, np.uint8)
    mask[10:14, 20:25] = 1
    tifffile.imwrite(tmp_path / "img.tif", img)
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    capsys.readouterr()
    assert main([str(tmp_path / "img.tif"), str(tmp_path / "mask.tif"), "-o", str(tmp_path / "out.tif"),
                 "--chunks", "16", "--method", "onion"]) == 0
    err = capsys.readouterr().err
    # 3 x 4 chunks of 16 pixels: a scan bar to the end, then the writing bar
    scan = err[err.index("scanning img.tif"):err.index("writing out.tif")]
    assert "scanning img.tif: 100%" in scan and "12/12" in scan
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), inpaint(img, mask != 0, "onion"))
    assert main([str(tmp_path / "img.tif"), str(tmp_path / "mask.tif"), "-o", str(tmp_path / "quiet.tif"),
                 "--chunks", "16", "--method", "onion", "--quiet"]) == 0
    assert "scanning" not in capsys.readouterr().err


def test_multiscale_progress_per_level_or_shared():
    img = _image((64, 64), seed=31)
    mask = _holes(img.shape, 6, 3, seed=32)
    levels = [da.from_array(img, chunks=16), da.from_array(img[::2, ::2], chunks=16)]  # 16 and 4 chunks
    first, second = _Calls(), _Calls()
    inpaint_multiscale(levels, mask, "onion", progress=[first, second])
    assert first.calls[0] == (1, 32) and second.calls[0] == (1, 8)  # each level its own scan count
    assert first.calls[-1][0] == 16 and second.calls[-1][0] == 4
    shared = _Calls()
    inpaint_multiscale(levels, mask, "onion", progress=shared)
    assert len(shared.calls) == len(first.calls) + len(second.calls)
    with pytest.raises(ValueError, match="one callable per level"):
        inpaint_multiscale(levels, mask, "onion", progress=[first])
