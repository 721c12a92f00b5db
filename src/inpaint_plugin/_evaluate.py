"""Which method fills *this* image best? :func:`evaluate` estimates it, :func:`choose_method` picks one.

The true error of a fill is unknowable (the hidden pixels are gone), but it can be estimated on the
image itself: known pixels are hidden in holes shaped like the real ones (copies of the mask shifted
to where the image is known), every method fills the real holes plus the hidden ones, and the fill of
the hidden pixels is compared with their true values. The mean error over a few such trials ranks the
methods for this image, this kind of content and this kind of hole.

Trials
------
Shifts are drawn at random (seeded) up to half the image size along each axis. A shift is better
when more of the shifted holes land on known pixels away from the real holes (so that the hidden
holes keep their shape instead of merging with the real ones); the best shifts are taken, skipping
ones whose hidden pixels mostly repeat an earlier trial's. During a trial the real holes stay
unknown, so every method works with somewhat more missing data than in the real fill.

Images larger than ``window`` pixels along an axis are cropped, per trial, to a window of that size
around a hidden pixel; only hidden pixels at least ``window // 8`` pixels inside the window (or on
the image border) are scored. This bounds the cost of a trial whatever the image size.

``method="auto"`` policy (:func:`choose_method`)
-----------------------------------------------
Candidates are the registered methods that need no trained weights and can work on the image's
dimensionality; methods marked ``Backend.slow`` are left out when the image has more than
:data:`LARGE_IMAGE` spatial pixels. The built-in ones are then narrowed by the width of the holes
(:func:`~inpaint_plugin._classical._geometry.hole_width`: the 95th percentile of the hole pixels'
distance to the nearest known pixel) to the methods that lead on such holes on the shared benchmark
(``benchmarks/bench_classical.py``):

- thin holes (width at most :data:`THIN_HOLES`: dead pixels, scratches, stripes): ``lsp`` and ``fsr``,
  which one depends on the image (learned local stencils vs. repeating texture), so they are compared
  in :data:`AUTO_TRIALS` trials in windows of :data:`AUTO_THIN_WINDOW` pixels (thin holes need little
  context, and small windows keep the choice under a second on a 256x256 image);
- holes up to :data:`WIDE_HOLES` wide: ``fsr`` (its DFT windows reach across them and continue the
  structure);
- wider holes: ``lsp`` (nothing is left to extrapolate from in the middle: the smoothest fill that
  follows the boundary wins; FSR extrapolates from its own extrapolations there).

Methods from other plugins stay candidates; when more than one candidate is left, each runs
:data:`AUTO_TRIALS` trials in windows of at most :data:`AUTO_WINDOW` pixels (:data:`AUTO_THIN_WINDOW`
for thin holes; seed 0, so the choice is reproducible), and the method with the lowest mean RMSE
wins. Images whose shortlist is empty (e.g. 3-D volumes, where ``lsp`` and ``fsr`` do not apply) use
trials among all candidates. An empty mask, or trials that cannot be made (a mask covering almost
all of the image), give :data:`FALLBACK_METHOD`. Parameters given with ``method="auto"`` restrict
the candidates to the methods that take them (``accepts``), except ``seed``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

__all__ = [
    "AUTO_SHORTLIST",
    "AUTO_THIN_WINDOW",
    "AUTO_TRIALS",
    "AUTO_WINDOW",
    "FALLBACK_METHOD",
    "LARGE_IMAGE",
    "Evaluation",
    "MethodScore",
    "THIN_HOLES",
    "WIDE_HOLES",
    "choose_method",
    "evaluate",
]

#: Method used when nothing can be evaluated (empty mask, no trial possible).
FALLBACK_METHOD = "biharmonic"
#: Number of spatial pixels above which methods marked ``Backend.slow`` are not tried by ``"auto"``.
LARGE_IMAGE = 512 * 512
#: Trials per method for ``"auto"``.
AUTO_TRIALS = 3
#: Largest window (pixels per axis) of an ``"auto"`` trial. Smaller windows crop large holes and
#: their context, which misleads the choice (on the shared bench, 192 doubled the regret of 256).
AUTO_WINDOW = 256
#: Holes at most this wide (pixels, see ``_classical._geometry.hole_width``) are "thin" for ``"auto"``.
THIN_HOLES = 4.0
#: Holes wider than this (pixels) are "wide" for ``"auto"``.
WIDE_HOLES = 16.0
#: Window (pixels per axis) of the ``"auto"`` trials on thin holes.
AUTO_THIN_WINDOW = 80
#: Built-in methods ``"auto"`` keeps for thin, medium and wide holes (see the module documentation).
AUTO_SHORTLIST = {"thin": ("lsp", "fsr"), "medium": ("fsr",), "wide": ("lsp",)}
_CANDIDATE_SHIFTS = 48
_MAX_REPEAT = 0.5  # a trial may share at most this fraction of its hidden pixels with earlier trials


@dataclass(frozen=True)
class MethodScore:
    """The estimated error of one method on one image.

    Attributes
    ----------
    method : str
    rmse : float
        Root-mean-square error on the hidden pixels (image units, all channels), mean over trials;
        NaN when the method failed.
    nrmse : float
        ``rmse`` divided by the mean range of the known values over the channels.
    mae : float
        Mean absolute error on the hidden pixels, mean over trials.
    rmse_std : float
        Standard deviation of the per-trial RMSE.
    trial_rmse : tuple of float
        RMSE of each trial.
    seconds : float
        Time spent filling, all trials together.
    error : str or None
        Why the method failed (its exception), or None.
    """

    method: str
    rmse: float
    nrmse: float
    mae: float
    rmse_std: float
    trial_rmse: tuple
    seconds: float
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        """True when the method ran on every trial."""
        return self.error is None


class Evaluation(Sequence):
    """Results of :func:`evaluate`: one :class:`MethodScore` per method, best (lowest RMSE) first.

    Index it by position or by method name; ``best`` is the name of the best method (None if all
    failed); ``str()`` gives a table; :meth:`rows` plain dicts; :meth:`to_dataframe` a pandas
    DataFrame (pandas must be installed).

    Attributes
    ----------
    best : str or None
    shifts : tuple of tuple of int
        The shift of the mask used by each trial.
    hidden_pixels : tuple of int
        Number of scored hidden pixels in each trial.
    """

    def __init__(self, scores: Sequence[MethodScore], shifts, hidden_pixels):
        order = sorted(range(len(scores)), key=lambda i: (not scores[i].ok, scores[i].rmse, i))
        self._scores = tuple(scores[i] for i in order)
        self.shifts = tuple(shifts)
        self.hidden_pixels = tuple(hidden_pixels)
        self.best = self._scores[0].method if self._scores and self._scores[0].ok else None

    def __len__(self) -> int:
        return len(self._scores)

    def __getitem__(self, key):
        if isinstance(key, str):
            for s in self._scores:
                if s.method == key:
                    return s
            raise KeyError(f"method {key!r} was not evaluated; evaluated: {[s.method for s in self._scores]}")
        return self._scores[key]

    def rows(self) -> list:
        """The scores as a list of plain dicts (one per method, best first)."""
        return [dict(vars(s)) for s in self._scores]

    def to_dataframe(self):
        """The scores as a pandas DataFrame indexed by method (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.rows()).set_index("method")

    def __str__(self) -> str:
        head = f"{'method':<20} {'rmse':>10} {'nrmse':>8} {'mae':>10} {'rmse_std':>10} {'seconds':>8}"
        lines = [head, "-" * len(head)]
        for s in self._scores:
            if s.ok:
                lines.append(f"{s.method:<20} {s.rmse:>10.4g} {s.nrmse:>8.4f} {s.mae:>10.4g} {s.rmse_std:>10.3g} "
                             f"{s.seconds:>8.2f}")
            else:
                lines.append(f"{s.method:<20} failed: {s.error}")
        lines.append(f"({len(self.shifts)} trial(s), {sum(self.hidden_pixels)} hidden pixels in all; "
                     f"best: {self.best})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Evaluation(best={self.best!r}, methods={[s.method for s in self._scores]})"


@dataclass(frozen=True)
class _Trial:
    shift: tuple
    window: tuple  # slices of the spatial axes
    fill: np.ndarray  # mask to fill inside the window (real holes | hidden pixels)
    scored: np.ndarray  # hidden pixels scored inside the window


def _shift(mask: np.ndarray, d) -> np.ndarray:
    """``mask`` moved by ``d`` pixels (no wrap-around; what leaves the image is lost)."""
    out = np.zeros_like(mask)
    src = tuple(slice(max(0, -k), max(0, s - max(0, k))) for k, s in zip(d, mask.shape))
    dst = tuple(slice(max(0, k), max(0, s - max(0, -k))) for k, s in zip(d, mask.shape))
    if all(s.stop > s.start for s in src):
        out[dst] = mask[src]
    return out


def _fillable(fill: np.ndarray) -> bool:
    """Every 2-D slice (last two axes) keeps at least one known pixel, so 2-D methods can run."""
    if fill.ndim <= 2:
        return not fill.all()
    return not fill.reshape(-1, *fill.shape[-2:]).all(axis=(1, 2)).any()


def _window(center, shape, window: Optional[int]):
    """Slices of a window of side ``window`` around ``center`` and the scored (inner) part of it."""
    win, inner = [], []
    for c, s in zip(center, shape):
        if window is None or s <= window:
            win.append(slice(0, s))
            inner.append(slice(0, s))
            continue
        start = int(np.clip(c - window // 2, 0, s - window))
        stop = start + window
        margin = window // 8
        win.append(slice(start, stop))
        inner.append(slice(0 if start == 0 else margin, window if stop == s else window - margin))
    return tuple(win), tuple(inner)


def _make_trials(mask: np.ndarray, n_trials: int, rng: np.random.Generator, window: Optional[int]) -> list:
    """Up to ``n_trials`` trials: shifted copies of ``mask`` over known pixels (see the module docs)."""
    from scipy import ndimage

    shape = mask.shape
    near = ndimage.binary_dilation(mask, structure=np.ones((3,) * mask.ndim, bool))
    n_hole = int(mask.sum())
    candidates = []
    for i in range(_CANDIDATE_SHIFTS):
        d = tuple(int(rng.integers(-(s // 2), s // 2 + 1)) for s in shape)
        if not any(d):
            continue
        clean = int((_shift(mask, d) & ~near).sum())
        if clean:
            candidates.append((-clean / n_hole, i, d))
    candidates.sort()

    trials = []
    used = np.zeros_like(mask)
    for _, _, d in candidates:
        if len(trials) == n_trials:
            break
        hidden = _shift(mask, d) & ~mask
        n_hidden = int(hidden.sum())
        if n_hidden == 0 or (hidden & used).sum() > _MAX_REPEAT * n_hidden:
            continue
        if window is not None and any(s > window for s in shape):
            pts = np.flatnonzero(hidden)
            center = np.unravel_index(pts[rng.integers(len(pts))], shape)
        else:
            center = tuple(s // 2 for s in shape)
        win, inner = _window(center, shape, window)
        fill = (mask | hidden)[win]
        scored = np.zeros_like(fill)
        scored[inner] = hidden[win][inner]
        if not scored.any() or not _fillable(fill):
            continue
        used |= hidden
        trials.append(_Trial(d, win, fill, scored))
    return trials


def _method_params(names: Sequence[str], params: Mapping, table: Mapping, seed: int) -> dict:
    """Split ``**params`` of :func:`evaluate` into validated keyword arguments per method."""

    per = {n: {} for n in names}
    for key, value in params.items():
        if key in table:  # method_name={...}
            if key not in per:
                raise ValueError(f"parameters were given for method {key!r}, which is not evaluated "
                                 f"(methods: {list(names)})")
            if not isinstance(value, Mapping):
                raise TypeError(f"{key}= must be a dict of parameters of method {key!r}, got {value!r}")
            per[key].update(value)
            continue
        takers = [n for n in names if key in table[n].param_map]
        if not takers:
            raise TypeError(f"evaluate() got an unexpected parameter {key!r}: none of the evaluated methods "
                            f"{list(names)} takes it")
        for n in takers:
            per[n].setdefault(key, value)
    for n in names:
        if "seed" in table[n].param_map:
            per[n].setdefault("seed", seed)
        table[n].check_params(per[n])  # raises naming the method and the parameter
    return per


def _score(prep, trials: list, name: str, params: dict, spread: float, step=None) -> MethodScore:
    from ._engine import fill as inpaint

    rmse, mae = [], []
    start = time.perf_counter()
    try:
        for trial in trials:
            if step is not None:
                step()
            img = prep.img[trial.window]
            out = inpaint(img, trial.fill, name, channel_axis=-1, clip=prep.clip, **params)
            diff = out[trial.scored].astype(np.float64) - img[trial.scored].astype(np.float64)
            rmse.append(float(np.sqrt(np.mean(diff ** 2))))
            mae.append(float(np.mean(np.abs(diff))))
    except Exception as exc:  # one failing method must not stop the others; the reason is reported
        return MethodScore(name, float("nan"), float("nan"), float("nan"), float("nan"), tuple(rmse),
                           time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    mean = float(np.mean(rmse))
    return MethodScore(name, mean, mean / spread, float(np.mean(mae)), float(np.std(rmse)), tuple(rmse),
                       time.perf_counter() - start)


def _evaluate_prepared(prep, names: Sequence[str], per_params: Mapping, n_trials: int, seed: int,
                       window: Optional[int], progress=None) -> Evaluation:
    mask = prep.mask
    trials = _make_trials(mask, n_trials, np.random.default_rng(seed), window)
    if not trials:
        raise ValueError("mask: no trial could be made (the mask leaves too few known pixels to hide some "
                         "in holes shaped like it); the methods cannot be compared on this image")
    known = prep.img[~mask]
    spread = float(np.mean(known.max(axis=0).astype(np.float64) - known.min(axis=0)))
    spread = spread if spread > 0 else 1.0
    done, total = [0], len(trials) * len(names)

    def step():  # before each trial fill, so that a raising callback cancels before the work
        if progress is not None:
            progress(done[0], total)
        done[0] += 1

    scores = [_score(prep, trials, n, per_params[n], spread, step) for n in names]
    if progress is not None:
        progress(total, total)
    return Evaluation(scores, [t.shift for t in trials], [int(t.scored.sum()) for t in trials])


def _applicable(backend, n_spatial: int) -> bool:
    return backend.spatial_ndim is None or backend.spatial_ndim <= n_spatial


def _auto_candidates(table: Mapping, n_spatial: int, n_pixels: int) -> list:
    """Names of the methods ``"auto"`` tries (see the module documentation)."""
    large = n_pixels > LARGE_IMAGE
    return [n for n, b in table.items()
            if not b.needs_weights and _applicable(b, n_spatial) and not (large and b.slow)]


def _builtin(backend) -> bool:
    return getattr(backend.func, "__module__", "").startswith(__package__ + ".backends.")


def _shortlist(table: Mapping, names: Sequence[str], mask: np.ndarray) -> tuple:
    """``(names, window)``: the ``"auto"`` candidates narrowed by the hole width, and the trial window."""
    from ._classical._geometry import hole_width

    width = hole_width(mask)
    kind = "thin" if width <= THIN_HOLES else "medium" if width <= WIDE_HOLES else "wide"
    keep = [n for n in AUTO_SHORTLIST[kind] if n in names]
    if not keep:  # e.g. nD images: the shortlisted 2-D methods do not apply
        return list(names), AUTO_WINDOW
    others = [n for n in names if not _builtin(table[n])]
    return keep + others, (AUTO_THIN_WINDOW if kind == "thin" else AUTO_WINDOW)


def evaluate(image, mask=None, methods=None, *, channel_axis=None, nodata=None, n_trials: int = 3,
             seed: int = 0, window: Optional[int] = 384, progress=None, **params) -> Evaluation:
    """Estimate the error each method would make when filling the holes of this image.

    Known pixels are hidden in holes shaped like the real ones (shifted copies of the mask), each
    method fills them together with the real holes, and its fill is compared with the true values.
    See the module documentation for how trials are made.

    Parameters
    ----------
    image, mask
        As for :func:`inpaint_plugin.inpaint` (validated the same way).
    methods : str or sequence of str, optional
        Methods to compare. ``None``: every registered method that can work on this image and needs
        no trained weights (deep methods join when their ``weights`` are given, see ``params``).
    channel_axis, nodata
        As for :func:`inpaint_plugin.inpaint`.
    n_trials : int
        Number of shifted copies of the mask (fewer when the image leaves no room for more).
    seed : int
        Seed of the shifts and windows, also passed to methods that take a ``seed``.
    window : int or None
        Largest side (pixels) of the region filled per trial; ``None``: the whole image.
    progress : callable, optional
        ``progress(done, total)`` over the (method, trial) fills; it may raise to cancel.
    **params
        ``name=value`` is given to every evaluated method that has a parameter ``name`` (e.g.
        ``device="cpu"``); ``method_name={...}`` gives parameters to one method (e.g.
        ``pennet={"weights": "pennet.pt"}``).

    Returns
    -------
    Evaluation
        One :class:`MethodScore` per method, best first; ``.best`` is the best method's name.

    Raises
    ------
    ValueError
        If the mask is empty, or leaves no room for a trial, or an argument is invalid.

    Examples
    --------
    >>> import numpy as np, inpaint_plugin
    >>> yy, xx = np.mgrid[:48, :48]
    >>> image = np.sin(xx / 6.0) + np.cos(yy / 9.0)
    >>> mask = np.zeros(image.shape, bool); mask[20:26, 10:16] = True
    >>> result = inpaint_plugin.evaluate(image, mask, ["biharmonic"], n_trials=2)
    >>> result.best, len(result.shifts), bool(result["biharmonic"].rmse < 0.05)
    ('biharmonic', 2, True)
    """
    import numbers

    from ._engine import prepare_inputs
    from ._registry import methods as registered
    from ._rules import check_progress

    check_progress(progress)

    for name, value in (("n_trials", n_trials), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, numbers.Integral):
            raise TypeError(f"window must be an int or None, got {window!r}")
        if window < 8:
            raise ValueError(f"window must be >= 8 pixels, got {window}")
        window = int(window)
    table = registered()
    if isinstance(methods, str):
        methods = [methods]
    if methods is not None:
        methods = list(methods)
        if not methods:
            raise ValueError("methods must not be empty (None evaluates every applicable method)")
        for m in methods:
            if not isinstance(m, str):
                raise TypeError(f"methods must hold method names (str), got {m!r}")
            if m not in table:
                raise ValueError(f"methods: unknown method {m!r}; available methods: {', '.join(table)}")
        names = list(dict.fromkeys(methods))
    else:
        names = None

    prep = prepare_inputs(image, mask, channel_axis=channel_axis, nodata=nodata)
    n_spatial = len(prep.spatial_shape)
    if names is None:
        given = {k for k, v in params.items() if k in table and isinstance(v, Mapping) and v.get("weights")}
        names = [n for n, b in table.items()
                 if _applicable(b, n_spatial) and (not b.needs_weights or n in given)]
    else:
        for n in names:
            if not _applicable(table[n], n_spatial):
                raise ValueError(f"methods: method {n!r} works on {table[n].spatial_ndim}-D images; the image has "
                                 f"{n_spatial} spatial dimension(s)")
    per_params = _method_params(names, params, table, int(seed))
    if not prep.mask.any():
        raise ValueError("mask is empty: there are no holes whose shape could be imitated")
    return _evaluate_prepared(prep, names, per_params, int(n_trials), int(seed), window, progress)


def choose_method(image, mask=None, *, channel_axis=None, nodata=None, accepts=(), progress=None) -> str:
    """The method ``inpaint(..., method="auto")`` uses: the best of a quick :func:`evaluate`.

    See the module documentation for the policy (cheap candidates only, a few small trials, seed 0).

    Parameters
    ----------
    image, mask, channel_axis, nodata
        As for :func:`inpaint_plugin.inpaint`.
    accepts : iterable of str
        Names of parameters the user gave with ``method="auto"``: only methods that take all of them
        are candidates. ``seed`` does not restrict the choice (deterministic methods simply have none).
    progress : callable, optional
        ``progress(done, total)`` over the trial fills (none when the choice needs no trial); it may
        raise to cancel.

    Returns
    -------
    str
        A registered method name.

    Raises
    ------
    TypeError
        If no candidate method takes all the parameters in ``accepts``.
    """
    from ._engine import prepare_inputs
    from ._registry import methods as registered

    if isinstance(accepts, str):
        accepts = (accepts,)
    wanted = set(accepts) - {"seed"}
    prep = prepare_inputs(image, mask, channel_axis=channel_axis, nodata=nodata)
    table = registered()
    names = _auto_candidates(table, len(prep.spatial_shape), int(np.prod(prep.spatial_shape)))
    if wanted:
        names = [n for n in names if wanted <= set(table[n].param_map)]
        if not names:
            raise TypeError(f"method='auto': no method that needs no weights takes the parameter(s) "
                            f"{', '.join(map(repr, sorted(wanted)))}; choose a method explicitly")
    fallback = FALLBACK_METHOD if FALLBACK_METHOD in names or not names else names[0]
    if not prep.mask.any() or len(names) <= 1:
        return names[0] if len(names) == 1 else fallback
    names, window = _shortlist(table, names, prep.mask)
    if len(names) == 1:
        return names[0]
    fallback = FALLBACK_METHOD if FALLBACK_METHOD in names else names[0]
    per_params = _method_params(names, {}, table, 0)
    try:
        result = _evaluate_prepared(prep, names, per_params, AUTO_TRIALS, 0, window, progress)
    except ValueError:  # no trial possible: nothing to compare
        return fallback
    return result.best or fallback
