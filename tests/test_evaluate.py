"""evaluate() / choose_method(): error estimated on the image itself by hiding known pixels."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import inpaint_plugin as ip
from inpaint_plugin import Backend, Param, hookimpl
from inpaint_plugin import _evaluate as ev


# --- test methods (plain, well understood fills to compare biharmonic with) ------------------------
def _fill_mean(image, mask):
    out = image.copy()
    out[mask] = image[~mask].mean(axis=0)
    return out


def _fill_min(image, mask):
    out = image.copy()
    out[mask] = image[~mask].min(axis=0)
    return out


def _fill_fail(image, mask):
    raise RuntimeError("this method always fails")


def _fill_offset(image, mask, offset=0.0):
    out = _fill_mean(image, mask)
    out[mask] += offset
    return out


class _TestMethods:
    @hookimpl
    def inpaint_plugin_backends(self):
        return [
            Backend("t_mean", _fill_mean, "known mean"),
            Backend("t_min", _fill_min, "known minimum"),
            Backend("t_fail", _fill_fail, "always raises"),
            Backend("t_offset", _fill_offset, "mean plus an offset", params=[Param("offset", "float", 0.0)]),
        ]


@pytest.fixture
def test_methods():
    plugin = _TestMethods()
    ip.register(plugin, name="evaluate-test-methods")
    try:
        yield
    finally:
        ip.unregister(plugin)


def _smooth(shape=(64, 64), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape)
    for _ in range(4):
        fy, fx, ph = rng.uniform(0.03, 0.15), rng.uniform(0.03, 0.15), rng.uniform(0, 6)
        img += np.sin(fy * yy + fx * xx + ph)
    return img


def _blobs(shape, n=5, r=3, seed=1):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    for _ in range(n):
        cy, cx = rng.integers(r + 2, shape[0] - r - 2), rng.integers(r + 2, shape[1] - r - 2)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return mask


def _true_rmse(image, mask, method, **kw):
    out = ip.inpaint(image, mask, method, **kw)
    return float(np.sqrt(np.mean((out[mask].astype(float) - image[mask].astype(float)) ** 2)))


# --- trials ---------------------------------------------------------------------------------------
def test_trials_hide_known_pixels_in_shifted_copies_of_the_mask():
    mask = _blobs((60, 50))
    trials = ev._make_trials(mask, 3, np.random.default_rng(0), None)
    assert len(trials) == 3
    assert len({t.shift for t in trials}) == 3
    for t in trials:
        assert t.fill.shape == mask.shape
        assert not (t.scored & mask).any()          # only known pixels are scored
        assert (t.fill >= mask).all()                # the real holes stay unknown
        assert (t.fill >= t.scored).all()            # scored pixels are hidden from the method
        assert (t.scored <= ev._shift(mask, t.shift)).all()  # ... in holes shaped like the real ones
        assert (t.fill == (mask | (ev._shift(mask, t.shift) & ~mask))).all()


def test_trials_are_reproducible_with_the_seed():
    mask = _blobs((40, 40))
    a = ev._make_trials(mask, 3, np.random.default_rng(5), None)
    b = ev._make_trials(mask, 3, np.random.default_rng(5), None)
    assert [t.shift for t in a] == [t.shift for t in b]
    assert all((x.scored == y.scored).all() for x, y in zip(a, b))


def test_shift_moves_without_wrapping():
    m = np.zeros((5, 6), bool)
    m[0, 0] = m[4, 5] = True
    s = ev._shift(m, (1, 2))
    assert s.sum() == 1 and s[1, 2]
    assert not ev._shift(m, (5, 0)).any()
    assert (ev._shift(m, (-4, -5)) == np.pad([[True]], ((0, 4), (0, 5)))).all()


def test_windows_bound_the_trial_size_and_keep_a_margin():
    mask = _blobs((300, 200), n=40)
    trials = ev._make_trials(mask, 3, np.random.default_rng(0), 64)
    assert trials
    for t in trials:
        assert t.fill.shape == (64, 64)
        for axis, (sl, size) in enumerate(zip(t.window, mask.shape)):
            assert sl.stop - sl.start == 64
            idx = np.flatnonzero(t.scored.any(axis=1 - axis))
            lo_margin = 0 if sl.start == 0 else 64 // 8
            hi_margin = 0 if sl.stop == size else 64 // 8
            assert idx.min() >= lo_margin and idx.max() < 64 - hi_margin
        assert (t.scored <= ev._shift(mask, t.shift)[t.window]).all()
        assert not (t.scored & mask[t.window]).any()


def test_no_trial_when_the_mask_covers_almost_everything():
    mask = np.ones((20, 20), bool)
    mask[0, 0] = False
    assert ev._make_trials(mask, 3, np.random.default_rng(0), None) == []
    with pytest.raises(ValueError, match="no trial"):
        ip.evaluate(np.zeros((20, 20)), mask, ["biharmonic"])


# --- evaluate -------------------------------------------------------------------------------------
def test_estimate_ranks_methods_like_the_true_error(test_methods):
    image = _smooth((64, 64))
    mask = _blobs(image.shape)
    names = ["biharmonic", "t_mean", "t_min"]
    result = ip.evaluate(image, mask, names, n_trials=3)
    est = [result[n].rmse for n in names]
    true = [_true_rmse(image, mask, n) for n in names]
    assert np.argsort(est).tolist() == np.argsort(true).tolist() == [0, 1, 2]
    assert result.best == "biharmonic" and result[0].method == "biharmonic"
    # the estimate is of the right size, not just of the right order
    assert 0.25 < result["biharmonic"].rmse / true[0] < 4
    assert 0.5 < result["t_mean"].rmse / true[1] < 2


def test_scores_are_consistent(test_methods):
    image = (_smooth((48, 40)) * 40 + 100).astype(np.uint8)
    mask = _blobs(image.shape, n=3)
    result = ip.evaluate(image, mask, ["t_mean", "biharmonic"], n_trials=2)
    assert len(result) == 2 and len(result.shifts) == 2 and len(result.hidden_pixels) == 2
    known = image[~mask].astype(float)
    for s in result:
        assert s.ok and s.error is None
        assert len(s.trial_rmse) == 2
        assert s.rmse == pytest.approx(np.mean(s.trial_rmse))
        assert s.mae <= s.rmse + 1e-12
        assert s.nrmse == pytest.approx(s.rmse / (known.max() - known.min()))
    assert result[0].rmse <= result[1].rmse
    rows = result.rows()
    assert [r["method"] for r in rows] == [s.method for s in result]
    text = str(result)
    assert "biharmonic" in text and "t_mean" in text and "best: " in text


def test_evaluate_is_deterministic_with_a_seed(test_methods):
    image = _smooth((40, 40), seed=3)
    mask = _blobs(image.shape, seed=4)
    a = ip.evaluate(image, mask, ["biharmonic", "t_mean"], seed=7)
    b = ip.evaluate(image, mask, ["biharmonic", "t_mean"], seed=7)
    c = ip.evaluate(image, mask, ["biharmonic", "t_mean"], seed=8)
    assert a.shifts == b.shifts and a["biharmonic"].trial_rmse == b["biharmonic"].trial_rmse
    assert a.shifts != c.shifts


def test_a_failing_method_is_reported_not_raised(test_methods):
    image = _smooth((32, 32))
    mask = _blobs(image.shape, n=2)
    result = ip.evaluate(image, mask, ["t_fail", "t_mean"])
    assert result.best == "t_mean"
    fail = result["t_fail"]
    assert not fail.ok and "always fails" in fail.error and np.isnan(fail.rmse)
    assert result[-1].method == "t_fail"
    assert "failed" in str(result)


def test_channels_nd_and_nan_images(test_methods):
    rgb = np.stack([_smooth((32, 36), seed=s) for s in range(3)], axis=0).astype(np.float32)  # channels first
    mask = _blobs((32, 36), n=3)
    r = ip.evaluate(rgb, mask, ["biharmonic", "t_min"], channel_axis=0)
    assert r.best == "biharmonic"

    vol = np.stack([_smooth((24, 24), seed=s) for s in range(4)])
    vmask = np.zeros(vol.shape, bool)
    vmask[1:3, 8:12, 8:12] = True
    r = ip.evaluate(vol, vmask, ["biharmonic", "t_min"])
    assert r.best == "biharmonic" and all(s.ok for s in r)

    nan_img = _smooth((40, 40))
    holes = _blobs(nan_img.shape, n=3)
    nan_img[holes] = np.nan
    r = ip.evaluate(nan_img, None, ["biharmonic", "t_mean"])  # mask=None: the NaNs are the holes
    assert r.best == "biharmonic" and np.isfinite(r["biharmonic"].rmse)


def test_parameters_reach_the_right_methods(test_methods):
    image = _smooth((32, 32))
    mask = _blobs(image.shape, n=2)
    base = ip.evaluate(image, mask, ["t_offset", "t_mean"])
    shifted = ip.evaluate(image, mask, ["t_offset", "t_mean"], t_offset={"offset": 0.5})
    same = ip.evaluate(image, mask, ["t_offset", "t_mean"], offset=0.0)
    assert base["t_offset"].rmse == pytest.approx(base["t_mean"].rmse)
    assert shifted["t_offset"].rmse > base["t_offset"].rmse + 0.1
    assert same["t_offset"].rmse == pytest.approx(base["t_offset"].rmse)
    with pytest.raises(TypeError, match="'bogus'"):
        ip.evaluate(image, mask, ["t_mean"], bogus=1)
    with pytest.raises(ValueError, match="'t_offset'"):
        ip.evaluate(image, mask, ["t_mean"], t_offset={"offset": 1.0})
    with pytest.raises(ValueError, match="'offset'"):
        ip.evaluate(image, mask, ["t_offset"], t_offset={"offset": float("nan")})


def test_default_methods_skip_those_needing_weights():
    image = _smooth((24, 24))
    mask = _blobs(image.shape, n=2, r=2)
    result = ip.evaluate(image, mask, n_trials=1)
    names = {s.method for s in result}
    table = ip.methods()
    expected = {n for n, b in table.items() if not b.needs_weights}
    assert names == expected


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(methods=["nope"]), ValueError, "unknown method 'nope'"),
    (dict(methods=[]), ValueError, "methods must not be empty"),
    (dict(methods=[3]), TypeError, "methods"),
    (dict(n_trials=0), ValueError, "n_trials"),
    (dict(n_trials=1.5), TypeError, "n_trials"),
    (dict(seed="x"), TypeError, "seed"),
    (dict(window=4), ValueError, "window"),
])
def test_argument_errors(kwargs, exc, match):
    image = _smooth((16, 16))
    mask = _blobs(image.shape, n=1, r=2)
    kwargs.setdefault("methods", ["biharmonic"])
    with pytest.raises(exc, match=match):
        ip.evaluate(image, mask, **kwargs)


def test_input_errors_come_from_the_api_validation():
    image = _smooth((16, 16))
    with pytest.raises(ValueError, match="mask shape"):
        ip.evaluate(image, np.zeros((15, 16), bool), ["biharmonic"])
    with pytest.raises(ValueError, match="mask is empty"):
        ip.evaluate(image, np.zeros((16, 16), bool), ["biharmonic"])
    with pytest.raises(TypeError, match="bool"):
        ip.evaluate(image > 0, _blobs((16, 16), n=1, r=2), ["biharmonic"])


def test_evaluate_does_not_modify_its_inputs(test_methods):
    image = (_smooth((30, 30)) * 1000).astype(np.int16)
    mask = _blobs(image.shape, n=2)
    image0, mask0 = image.copy(), mask.copy()
    ip.evaluate(image, mask, ["biharmonic", "t_mean"])
    assert (image == image0).all() and (mask == mask0).all()


# --- choose_method / method="auto" ----------------------------------------------------------------
def test_auto_picks_the_best_cheap_method(test_methods):
    image = _smooth((48, 48))
    mask = _blobs(image.shape)
    chosen = ev.choose_method(image, mask)
    table = ip.methods()
    assert chosen in table and not table[chosen].needs_weights
    assert chosen not in ("t_min", "t_fail", "t_mean", "t_offset")  # biharmonic beats them all here
    out = ip.inpaint(image, mask, method="auto")
    assert np.array_equal(out, ip.inpaint(image, mask, method=chosen))


def test_auto_with_an_empty_mask_and_nodata():
    image = _smooth((20, 20))
    assert ev.choose_method(image, np.zeros(image.shape, bool)) == ev.FALLBACK_METHOD
    image[5:8, 5:8] = -9999.0
    chosen = ev.choose_method(image, None, nodata=-9999.0)
    assert chosen in ip.methods()
    out = ip.inpaint(image, None, method="auto", nodata=-9999.0)
    assert (out > -10).all()


def test_auto_respects_the_parameters_given(test_methods):
    image = _smooth((32, 32))
    mask = _blobs(image.shape, n=2)
    assert ev.choose_method(image, mask, accepts=["offset"]) == "t_offset"  # the only one taking it
    assert ev.choose_method(image, mask, accepts=["seed"]) == ev.choose_method(image, mask)
    with pytest.raises(TypeError, match="'no_such_param'"):
        ev.choose_method(image, mask, accepts=["no_such_param"])


def test_auto_candidates_policy(test_methods, monkeypatch):
    table = ip.methods()
    small = ev._auto_candidates(table, 2, 100)
    assert "t_mean" in small and "biharmonic" in small
    assert not any(table[n].needs_weights for n in small)
    assert not table["t_mean"].slow and "t_mean" in ev._auto_candidates(table, 2, ev.LARGE_IMAGE + 1)
    table = dict(table, t_mean=dataclasses.replace(table["t_mean"], slow=True))
    assert "t_mean" in ev._auto_candidates(table, 2, ev.LARGE_IMAGE)
    assert "t_mean" not in ev._auto_candidates(table, 2, ev.LARGE_IMAGE + 1)
    assert ip.methods()["criminisi"].slow  # exemplar search in priority order: minutes at 1024^2
    two_d = [n for n, b in table.items() if b.spatial_ndim == 2]
    assert not set(two_d) & set(ev._auto_candidates(table, 1, 100))


def test_estimate_on_a_benchmark_case(bench_dir, test_methods):
    data = np.load(bench_dir / "camera__free_form.npz")
    image, mask = data["image"][64:192, 64:192], data["mask"][64:192, 64:192]
    names = ["biharmonic", "t_mean"]
    result = ip.evaluate(image, mask, names, n_trials=2)
    true = {n: _true_rmse(image, mask, n) for n in names}
    assert result.best == min(true, key=true.get)


# --- the hole-width shortlist of method="auto" ---------------------------------------------------
def test_hole_width():
    from inpaint_plugin._classical._geometry import hole_width

    mask = np.zeros((40, 40), bool)
    assert hole_width(mask) == 0.0
    mask[5, 5] = mask[20, 3:30] = True
    assert hole_width(mask) == 1.0  # isolated pixels and one-pixel lines
    stripe = np.zeros((40, 40), bool)
    stripe[10:15, :] = True
    assert hole_width(stripe) == 3.0  # five rows: the middle one is 3 pixels from the known ones
    square = np.zeros((80, 80), bool)
    square[10:50, 10:50] = True
    assert 15 < hole_width(square) <= 20
    assert hole_width(np.stack([mask, square[:40, :40]])) == hole_width(np.concatenate([mask, square[:40, :40]]))


@pytest.mark.parametrize("kind", ["thin", "medium", "wide"])
def test_auto_shortlist_by_hole_width(kind, test_methods):
    table = ip.methods()
    names = ev._auto_candidates(table, 2, 64 * 64)
    mask = np.zeros((64, 64), bool)
    if kind == "thin":
        mask[10, 5:60] = mask[30:32, :] = mask[50, 50] = True
    elif kind == "medium":
        mask[20:36, 20:40] = True  # 16 pixels across: 8 from the edge at most
    else:
        mask[8:56, 8:56] = True
    short, window = ev._shortlist(table, names, mask)
    builtin = [n for n in short if ev._builtin(table[n])]
    assert builtin == list(ev.AUTO_SHORTLIST[kind])
    assert {"t_mean", "t_min", "t_offset"} <= set(short)  # other plugins' methods stay candidates
    assert window == (ev.AUTO_THIN_WINDOW if kind == "thin" else ev.AUTO_WINDOW)


def test_auto_without_other_plugins_follows_the_shortlist():
    image = _smooth((64, 64))
    wide = np.zeros(image.shape, bool)
    wide[8:56, 8:56] = True
    assert ev.choose_method(image, wide) == "lsp"  # one candidate left: no trial needed
    medium = np.zeros(image.shape, bool)
    medium[20:36, 20:40] = True
    assert ev.choose_method(image, medium) == "fsr"
    thin = np.zeros(image.shape, bool)
    thin[10, 5:60] = thin[40, 3:50] = True
    assert ev.choose_method(image, thin) in ("lsp", "fsr")


def test_progress_of_evaluate_and_auto_reaches_its_total_and_can_cancel():
    import inpaint_plugin as ip

    yy, xx = np.mgrid[:64, :64]
    img = np.sin(xx / 6.0) + np.cos(yy / 9.0)
    mask = np.zeros(img.shape, bool)
    mask[20:23, 10:40] = True
    seen = []
    ip.evaluate(img, mask, ["biharmonic", "telea"], n_trials=2, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (4, 4) and [d for d, _ in seen] == [0, 1, 2, 3, 4]

    class Stop(Exception):
        pass

    def stop(done, total):
        raise Stop

    with pytest.raises(Stop):
        ip.evaluate(img, mask, ["biharmonic"], progress=stop)
    with pytest.raises(TypeError, match="progress"):
        ip.evaluate(img, mask, ["biharmonic"], progress="yes")
    # method="auto" reports its trials through inpaint(progress=...) when it runs any
    seen.clear()
    ip.inpaint(img, mask, method="auto", progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
