"""Windows planned around the holes (``resolution="auto"``): every hole pixel is written with
``margin`` context, the weights of overlapping windows sum to one (blended, no seams), known pixels
stay exact, localised holes get small windows, and progress / cancel count the windows."""
from __future__ import annotations

import numpy as np
import pytest

from inpaint_plugin.deep._windows import plan_holes, plan_windows, run_plan, run_windows, window_weights


def _lines(size, width, seed=0, fraction=0.12):
    """Straight strokes between random points across the image (holes everywhere)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), bool)
    while mask.mean() < fraction:
        r0, c0, r1, c1 = rng.integers(0, size, 4)
        n = max(abs(r1 - r0), abs(c1 - c0)) + 1
        rr = np.linspace(r0, r1, n).round().astype(int)
        cc = np.linspace(c0, c1, n).round().astype(int)
        for d in range(-(width // 2), width // 2 + 1):
            mask[np.clip(rr + d, 0, size - 1), cc] = True
    return mask


def _strokes(size, seed=1):
    """A few localised blobs of strokes, a dead pixel and a hole touching the border."""
    mask = np.zeros((size, size), bool)
    local = _lines(size // 4, max(2, size // 64), seed=seed, fraction=0.2)
    mask[size // 8 : size // 8 + size // 4, size // 2 : size // 2 + size // 4] = local
    mask[size - 20 : size - 12, 0:30] = True
    mask[size // 2, size // 5] = True
    return mask


def _pixel_cost(height, width):
    return 1000 + height * width


def _attention_cost(height, width):
    return 1000 + height * width * (1 + height * width / 128**2)


CONFIGS = {
    "fixed": dict(margin=8, cost=lambda h, w: 1.0, max_side=64, fixed=True),
    "pixels": dict(margin=8, cost=_pixel_cost, max_side=128, multiple=8),
    "attention": dict(margin=12, cost=_attention_cost, max_side=128, multiple=8),
}
MASKS = {
    "lines": lambda: _lines(300, 5),
    "strokes": lambda: _strokes(256),
    "dead_pixels": lambda: np.random.default_rng(4).random((200, 170)) > 0.997,
    "one_corner_pixel": lambda: np.pad(np.ones((1, 1), bool), ((0, 99), (0, 79))),
}


def _check_plan(write, plan, margin, max_side, multiple=1, fixed=False):
    windows, regions, blend, _ = plan
    h, w = write.shape
    assert np.array_equal(regions > 0, write)
    total = np.zeros(write.shape)
    for window in windows:
        r0, r1, c0, c1, _, region = window
        assert 0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w
        if fixed:
            assert (r1 - r0, c1 - c0) == (min(max_side, h), min(max_side, w))
        else:
            assert r1 - r0 <= max_side and c1 - c0 <= max_side
            assert (r1 - r0) % multiple == 0 or r1 - r0 == h
            assert (c1 - c0) % multiple == 0 or c1 - c0 == w
        wt = window_weights(window, blend) * (regions[r0:r1, c0:c1] == region)
        assert wt.min() >= 0 and wt.max() <= 1
        assert wt.any()  # only windows that write holes are run
        rows, cols = np.nonzero(wt)
        # every pixel the window writes has `margin` context in it on each side, or the image border
        assert r0 <= max(rows.min() + r0 - margin, 0) and r1 >= min(rows.max() + r0 + 1 + margin, h)
        assert c0 <= max(cols.min() + c0 - margin, 0) and c1 >= min(cols.max() + c0 + 1 + margin, w)
        total[r0:r1, c0:c1] += wt
    np.testing.assert_allclose(total[write], 1.0, atol=1e-12)  # blended fills are weighted means
    assert not total[~write].any()


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("mask_name", sorted(MASKS))
def test_plan_covers_every_hole_with_margin_context(config, mask_name):
    kw = CONFIGS[config]
    write = MASKS[mask_name]()
    plan = plan_windows(write, **kw)
    assert plan[3] < np.inf
    _check_plan(write, plan, kw["margin"], kw["max_side"], kw.get("multiple", 1), kw.get("fixed", False))


def test_plan_without_holes_is_empty():
    windows, regions, _, cost = plan_windows(np.zeros((50, 60), bool), 8, _pixel_cost, max_side=64)
    assert windows == [] and cost == 0 and not regions.any()


def test_localised_holes_get_small_windows():
    """Holes in one corner of a large image: the windows hold them and their context, not the image."""
    write = np.zeros((1024, 1024), bool)
    write[100:140, 700:760] = True
    write[120, 900] = True
    windows, _, _, cost = plan_windows(write, 32, _pixel_cost, max_side=512, multiple=8)
    fed = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1, _, _ in windows)
    assert fed <= (40 + 64 + 8) * (200 + 64 + 8)  # one window around both holes (or two smaller ones)
    assert cost < _pixel_cost(1024, 1024) / 10


def test_dense_holes_cut_where_attention_makes_large_windows_dear():
    """With a cost per pixel that grows with the window, dense holes are cut into several windows
    (fewer pixels would be fed by one window, but it costs more)."""
    write = _lines(256, 4, fraction=0.15)
    windows, _, _, cost = plan_windows(write, 8, _attention_cost, max_side=256, multiple=8)
    assert len(windows) > 1 and cost < _attention_cost(256, 256)
    windows, _, _, _ = plan_windows(write, 8, _pixel_cost, max_side=256, multiple=8)
    assert len(windows) == 1  # a cost linear in pixels: one window beats repeated context


def test_fixed_windows_fewer_than_a_grid_of_tiles():
    """Fixed-size windows of 64 with margin 8 over localised strokes: fewer windows than the 64 tiles
    of stride 48 holding holes (the windows follow the holes)."""
    from inpaint_plugin.deep._windows import tile_boxes

    write = _strokes(256)
    windows = plan_windows(write, **CONFIGS["fixed"])[0]
    assert len(windows) < len(tile_boxes(write, 64, 16))


class _ConstantPerWindow:
    """Fills each window with one value per call (0.1, 0.2, ...): the worst case for seams."""

    def __init__(self):
        self.calls = []

    def __call__(self, image, mask):
        self.calls.append(mask.shape)
        return np.full(image.shape, 0.1 * (len(self.calls) % 9 + 1), np.float32)


def test_run_windows_blends_across_cuts_and_keeps_known_pixels():
    rng = np.random.default_rng(0)
    image = rng.random((300, 300, 3)).astype(np.float32)
    mask = _lines(300, 5)
    predict = _ConstantPerWindow()
    plan = plan_windows(mask, **CONFIGS["attention"])
    assert len(plan[0]) > 1
    out = run_windows(predict, image, mask, plan)
    assert len(predict.calls) == len(plan[0])
    assert np.array_equal(out[~mask], image[~mask])
    assert out.dtype == np.float32 and out[mask].min() >= 0.1 - 1e-6 and out[mask].max() <= 0.9 + 1e-6
    # no seam: between neighbouring hole pixels the fill changes by at most one ramp step of the
    # largest difference between two windows (0.8 / blend), never by a jump
    blend = plan[2]
    for axis in (0, 1):
        both = mask & np.roll(mask, 1, axis)
        both[(0,) if axis == 0 else (slice(None), 0)] = False
        step = np.abs(out - np.roll(out, 1, axis))[both]
        assert step.max() <= 0.8 / blend + 1e-5


def test_plan_holes_large_thick_hole_gets_its_own_window():
    mask = np.zeros((300, 300), bool)
    mask[60:200, 80:230] = True  # thicker than a 64 window can give context to
    mask[250:254, 10:290] = True  # a thin stripe: planned windows
    plan, large, cost = plan_holes(mask, 64, 8, lambda h, w: 1.0, fixed=True)
    assert len(large) == 1 and large[0][4].sum() == 140 * 150
    rest = mask.copy()
    rest[60:200, 80:230] = False
    assert np.array_equal(plan[1] > 0, rest)
    assert cost == len(plan[0]) + 1
    predict = _ConstantPerWindow()
    image = np.random.default_rng(1).random((300, 300, 3)).astype(np.float32)
    seen = []
    out = run_plan(predict, image, mask, plan, large, progress=lambda d, t: seen.append((d, t)))
    assert np.array_equal(out[~mask], image[~mask]) and (out[mask] > 0).all()
    assert [t for _, t in seen] == [len(plan[0]) + 1] * len(seen) and seen[-1][0] == len(plan[0]) + 1


# ------------------------------------------------------------------------------ through deep.run
torch = pytest.importorskip("torch")

from inpaint_plugin import deep  # noqa: E402
from inpaint_plugin.deep import _run  # noqa: E402


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 3, 3, padding=1)


class _Attention(torch.nn.Module):
    global_attention = True


def _spec(calls, fixed_size=None, tile_size=128, margin=8):
    def predict(module, image, mask):
        calls.append(tuple(image.shape))
        return torch.sigmoid(module.conv(torch.cat([image * (1 - mask), mask], 1)))

    def load(module, path):
        deep.load_checked(module, deep.load_state_dict_file(path), path=path)

    return deep.ModelSpec(name="toy_windows", build=_Net, load=load, predict=predict,
                          save_state=lambda state, path: torch.save(state, path), weights_help="random",
                          fixed_size=fixed_size, size_multiple=8, tile_size=tile_size, margin=margin)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "toy_windows.pth"
    _spec([]).save_random(path, seed=2)
    deep.clear_model_cache()
    yield path
    deep.clear_model_cache()


@pytest.mark.parametrize("fixed_size", [None, 64])
def test_auto_feeds_localised_holes_only(weights, fixed_size):
    calls = []
    spec = _spec(calls, fixed_size=fixed_size, tile_size=128)
    image = np.random.default_rng(3).random((400, 400, 3)).astype(np.float32)
    mask = np.zeros((400, 400), bool)
    mask[50:70, 300:340] = True
    mask[330:336, 20:60] = True
    out = deep.run(spec, image, mask, weights=weights, device="cpu")
    assert np.array_equal(out[~mask], image[~mask]) and not np.array_equal(out[mask], image[mask])
    assert len(calls) == 2  # one window per group of holes
    if fixed_size is None:
        assert sum(h * w for _, _, h, w in calls) < 2 * 64 * 64  # the holes plus margin, not the image


def test_auto_full_when_cheaper_without_attention_windows_with_it(weights, monkeypatch):
    calls = []
    spec = _spec(calls, tile_size=64, margin=8)
    image = np.random.default_rng(4).random((120, 120, 3)).astype(np.float32)
    mask = _lines(120, 3, fraction=0.15)  # holes everywhere
    deep.run(spec, image, mask, weights=weights, device="cpu")
    assert calls == [(1, 3, 120, 120)]  # one run at full resolution
    calls.clear()
    model = _run.get_model(spec, weights, torch.device("cpu"))
    monkeypatch.setattr(model, "attention", _Attention(), raising=False)
    out = deep.run(spec, image, mask, weights=weights, device="cpu")
    assert len(calls) > 1 and all(max(shape[2:]) <= 64 for shape in calls)
    assert np.array_equal(out[~mask], image[~mask])


def test_auto_progress_and_cancel_per_window(weights):
    calls, seen = [], []
    spec = _spec(calls, fixed_size=64)
    image = np.random.default_rng(5).random((300, 300, 3)).astype(np.float32)
    mask = _lines(300, 4)
    deep.run(spec, image, mask, weights=weights, device="cpu", progress=lambda d, t: seen.append((d, t)))
    assert len(calls) > 3 and seen == [(i + 1, len(calls)) for i in range(len(calls))]

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        raise Cancelled

    calls.clear()
    before = image.copy()
    with pytest.raises(Cancelled):
        deep.run(spec, image, mask, weights=weights, device="cpu", progress=cancel)
    assert len(calls) == 1 and np.array_equal(image, before)
