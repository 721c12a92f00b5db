"""Deep runs at real image sizes: progress per batch of crops/tiles, cancel between them, batched
windows equal to one-by-one runs, and a model cache that threads can share."""
from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _helpers import toy_spec  # noqa: E402

from inpaint_plugin import deep  # noqa: E402
from inpaint_plugin.deep import _run  # noqa: E402


def _make_spec(fixed_size=None, tile_size=64, margin=8, calls=None, builds=None, load_delay=0.0):
    """A spec of a 5x5 convolution whose output depends on the window's content and position."""

    def predict(module, image, mask):
        if calls is not None:
            calls.append(tuple(image.shape))
        return torch.sigmoid(module.conv(torch.cat([image * (1 - mask), mask], 1)))

    return toy_spec(predict, name="toy_run", kernel=5, weights_help="random", fixed_size=fixed_size,
                    tile_size=tile_size, margin=margin, builds=builds, load_delay=load_delay)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "toy_run.pth"
    _make_spec().save_random(path, seed=3)
    return path


pytestmark = pytest.mark.usefixtures("fresh_model_cache")


def _case(size=200, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((size, size, 3)).astype(np.float32)
    mask = np.zeros((size, size), bool)
    mask[20:30, 10:190] = True  # a thin stripe: tiles
    mask[rng.integers(0, size, 40), rng.integers(0, size, 40)] = True  # dead pixels: crops
    mask[120:170, 60:110] = True  # a block
    return image, mask


@pytest.mark.parametrize("fixed_size", [None, 64])
@pytest.mark.parametrize("resolution", ["crop", "tile"])
def test_progress_counts_every_window(weights, fixed_size, resolution, monkeypatch):
    monkeypatch.setitem(_run._BATCH_PIXELS, "cpu", 3 * 64 * 64)  # several batches of up to 3 windows
    calls, seen = [], []
    spec = _make_spec(fixed_size=fixed_size, calls=calls)
    image, mask = _case()
    out = deep.run(spec, image, mask, weights=weights, device="cpu", resolution=resolution,
                   progress=lambda done, total: seen.append((done, total)))
    assert np.array_equal(out[~mask], image[~mask])
    windows = sum(shape[0] for shape in calls)  # items over all forwards
    assert len(seen) == len(calls) >= 3  # one call per batch
    assert max(shape[0] for shape in calls) == 3
    assert all(total == windows for _, total in seen)
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and dones[-1] == windows and dones[0] > 0


def test_progress_of_one_window(weights):
    seen = []
    image, mask = _case(48)
    deep.run(_make_spec(), image, mask, weights=weights, device="cpu", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 1)]  # a small image is one full-resolution run


def test_cancel_stops_between_batches(weights, monkeypatch):
    monkeypatch.setitem(_run._BATCH_PIXELS, "cpu", 3 * 64 * 64)
    calls = []
    spec = _make_spec(fixed_size=64, calls=calls)
    image, mask = _case()
    before = image.copy()

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        assert done < total  # cancelled before the last batch
        raise Cancelled

    with pytest.raises(Cancelled):
        deep.run(spec, image, mask, weights=weights, device="cpu", resolution="tile", progress=cancel)
    assert len(calls) == 1  # no forward after the raising callback
    assert np.array_equal(image, before)
    with pytest.raises(TypeError, match="progress"):
        deep.run(spec, image, mask, weights=weights, device="cpu", progress=5)


@pytest.mark.parametrize("fixed_size", [None, 64])
@pytest.mark.parametrize("resolution", ["crop", "tile"])
def test_batched_windows_equal_one_by_one(weights, fixed_size, resolution, monkeypatch):
    calls = []
    spec = _make_spec(fixed_size=fixed_size, calls=calls)
    image, mask = _case()
    monkeypatch.setitem(_run._BATCH_PIXELS, "cpu", 16 * 64 * 64)  # as on a GPU
    batched = deep.run(spec, image, mask, weights=weights, device="cpu", resolution=resolution)
    assert max(shape[0] for shape in calls) > 1  # windows were batched
    calls.clear()
    monkeypatch.setitem(_run._BATCH_PIXELS, "cpu", 1)  # one window per forward
    single = deep.run(spec, image, mask, weights=weights, device="cpu", resolution=resolution)
    assert max(shape[0] for shape in calls) == 1
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-6)
    assert np.array_equal(batched[~mask], image[~mask])


def test_concurrent_first_calls_share_one_load(weights):
    builds = []
    spec = _make_spec(builds=builds, load_delay=0.3)
    image, mask = _case(48)
    results, errors = [None] * 6, []
    barrier = threading.Barrier(6)

    def work(i):
        try:
            barrier.wait()
            results[i] = deep.run(spec, image, mask, weights=weights, device="cpu")
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(builds) == 1  # one load, shared
    for r in results[1:]:
        assert np.array_equal(r, results[0])
    assert len(_run._MODELS) == 1 and not _run._LOADING


def test_failed_load_is_retried_not_cached(tmp_path, weights):
    spec = _make_spec()
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    image, mask = _case(48)
    with pytest.raises(ValueError):
        deep.run(spec, image, mask, weights=bad, device="cpu")
    assert not _run._LOADING and not _run._MODELS
    deep.run(spec, image, mask, weights=weights, device="cpu")
    assert len(_run._MODELS) == 1


def test_cache_evicts_least_recently_used(tmp_path):
    spec = _make_spec()
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"w{i}.pth")
        spec.save_random(paths[-1], seed=i)
    models = [_run.get_model(spec, p, torch.device("cpu")) for p in paths]
    assert len(_run._MODELS) == _run._MODEL_CACHE_SIZE
    assert _run.get_model(spec, paths[2], torch.device("cpu")) is models[2]
    assert _run.get_model(spec, paths[0], torch.device("cpu")) is not models[0]  # evicted, loaded again


class _Attention(torch.nn.Module):
    global_attention = True


def test_auto_full_resolution_unless_global_attention(weights, monkeypatch):
    calls = []
    spec = _make_spec(tile_size=64, calls=calls)
    image, mask = _case(100)  # 100**2 pixels: more than tile_size**2, at most 4 tile_size**2
    deep.run(spec, image, mask, weights=weights, device="cpu")
    assert calls == [(1, 3, 104, 104)]  # one run at full resolution (padded to a multiple of 8)
    calls.clear()
    model = _run.get_model(spec, weights, torch.device("cpu"))
    monkeypatch.setattr(model, "attention", _Attention(), raising=False)
    deep.run(spec, image, mask, weights=weights, device="cpu")
    assert len(calls) > 1 and all(max(shape[2:]) <= 64 for shape in calls)  # tiles


def test_cached_deepfill_attends_with_each_items_mask(tmp_path):
    """Models from the cache take batches of windows with different holes (per-item attention
    masks), so that a backend may run them as one batch."""
    from inpaint_plugin.deep._backend import find_spec

    spec = find_spec("deepfill_v2")
    path = deep.random_checkpoint("deepfill_v2", tmp_path / "dfv2.pth")
    model = _run.get_model(spec, path, torch.device("cpu"))
    assert model.contextual_attention.per_item_mask is True
    assert spec.build().contextual_attention.per_item_mask is False  # the reference behaviour stays the default


def test_auto_windows_around_the_holes_for_global_attention(weights, monkeypatch):
    """Above full resolution, a network with global attention gets windows planned around the holes,
    none larger than tile_size (the attention's cost grows with the square of a window's pixels)."""
    calls = []
    spec = _make_spec(tile_size=128, margin=16, calls=calls)  # tiles of 128 or 64 (at least 4 margins)
    rng = np.random.default_rng(5)
    image = rng.random((300, 300, 3)).astype(np.float32)
    mask = np.zeros((300, 300), bool)
    mask[::25, :] = True  # thin stripes everywhere
    model = _run.get_model(spec, weights, torch.device("cpu"))
    monkeypatch.setattr(model, "attention", _Attention(), raising=False)
    out = deep.run(spec, image, mask, weights=weights, device="cpu")
    assert np.array_equal(out[~mask], image[~mask])
    assert calls and all(max(shape[2:]) <= 128 for shape in calls)  # windows around the holes
    # explicit resolution="tile" keeps tile_size
    calls.clear()
    deep.run(spec, image, mask, weights=weights, device="cpu", resolution="tile")
    assert all(shape[2:] == (128, 128) for shape in calls)


def test_weights_trained_worse_than_biharmonic_warn_when_used(tmp_path):
    """inpaint() with weights whose training report says they lost to biharmonic is not silently
    'better': the first load warns with the report's verdict (issue 19)."""
    import json
    import warnings

    import inpaint_plugin as ip
    from inpaint_plugin import deep
    from inpaint_plugin.deep._weights import training_report_path

    weights = deep.random_checkpoint("pennet", tmp_path / "gen.pth", seed=1)
    image = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    mask = np.zeros((64, 64), bool)
    mask[20:30, 20:30] = True
    deep.clear_model_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no report: no warning
        ip.inpaint(image, mask, method="pennet", channel_axis=-1, weights=str(weights), device="cpu")
    training_report_path(weights).write_text(json.dumps(
        {"beats_biharmonic": False, "verdict": "model 12.1 dB vs biharmonic 30.4 dB"}))
    import os
    os.utime(weights)  # a new stamp: the cached model is loaded again
    deep.clear_model_cache()
    with pytest.warns(UserWarning, match="worse than biharmonic.*12.1 dB"):
        ip.inpaint(image, mask, method="pennet", channel_axis=-1, weights=str(weights), device="cpu")


@pytest.mark.parametrize("fixed_size", [None, 128])
def test_auto_runs_an_image_that_fits_the_network_whole(weights, fixed_size):
    """An image no larger than the network's input is run whole, as the authors' test scripts do, even
    when a small window around its one hole would be cheaper: inpaint() computes the reference's function."""
    calls = []
    spec = _make_spec(fixed_size=fixed_size, tile_size=128, margin=8, calls=calls)
    rng = np.random.default_rng(2)
    image = rng.random((128, 128, 3)).astype(np.float32)
    mask = np.zeros((128, 128), bool)
    mask[3:7, 3:7] = True  # one small hole in a corner
    out = deep.run(spec, image, mask, weights=weights, device="cpu")
    assert calls == [(1, 3, 128, 128)]
    whole = deep.run(spec, image, mask, weights=weights, device="cpu",
                     resolution="full" if fixed_size is None else "crop")
    assert np.array_equal(out, whole)
    # a larger image with the same hole gets a window around it, not the whole image
    calls.clear()
    big = rng.random((400, 400, 3)).astype(np.float32)
    bmask = np.zeros((400, 400), bool)
    bmask[3:7, 3:7] = True
    deep.run(spec, big, bmask, weights=weights, device="cpu")
    assert calls and all(max(shape[2:]) <= 128 for shape in calls)


@pytest.mark.parametrize(("fixed_size", "resolution"), [(None, "auto"), (None, "full"), (None, "crop"),
                                                        (None, "tile"), (64, "auto"), (64, "crop"), (64, "tile")])
def test_predict_holes_is_used_and_only_its_hole_pixels_count(weights, fixed_size, resolution):
    """A spec's ``predict_holes`` (exact at the holes, anything elsewhere) replaces ``predict`` in
    inference, and every resolution strategy reads only its hole pixels: the result is the one of
    ``predict``, bit for bit."""
    import dataclasses

    calls = []
    spec = _make_spec(fixed_size=fixed_size)

    def predict_holes(module, image, mask):
        calls.append(tuple(image.shape))
        out = spec.predict(module, image, mask)
        return torch.where(mask > 0, out, torch.rand_like(out))  # garbage at the known pixels

    image, mask = _case()
    expected = deep.run(spec, image, mask, weights=weights, device="cpu", resolution=resolution)
    holes_spec = dataclasses.replace(spec, predict_holes=predict_holes)
    out = deep.run(holes_spec, image, mask, weights=weights, device="cpu", resolution=resolution)
    assert calls  # predict_holes ran
    assert np.array_equal(out, expected)


def test_a_network_that_reports_steps_drives_the_progress_of_one_forward(weights):
    """``reports_steps``: a whole-image run reports the network's own steps (not one unit), and a
    raising callback stops it inside the forward; windows keep their per-batch progress."""
    import dataclasses

    spec = _make_spec()

    def predict_holes(module, image, mask, step=None):
        for k in (1, 2):  # "halfway", then the end
            if step is not None:
                step(k, 3)
        out = spec.predict(module, image, mask)
        if step is not None:
            step(3, 3)
        return out

    stepped = dataclasses.replace(spec, predict_holes=predict_holes, reports_steps=True)
    image, mask = _case(48)
    seen = []
    out = deep.run(stepped, image, mask, weights=weights, device="cpu", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    np.testing.assert_array_equal(out, deep.run(spec, image, mask, weights=weights, device="cpu"))

    def cancel(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        deep.run(stepped, image, mask, weights=weights, device="cpu", progress=cancel)
    seen.clear()
    image, mask = _case()
    deep.run(stepped, image, mask, weights=weights, device="cpu", resolution="tile",
             progress=lambda d, t: seen.append((d, t)))
    assert seen and all(t == seen[-1][1] for _, t in seen) and seen[-1][0] == seen[-1][1]  # per batch
