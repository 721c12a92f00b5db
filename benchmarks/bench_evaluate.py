"""How well does ``inpaint_plugin.evaluate`` rank the methods? (and how good is ``method="auto"``?)

For every case of ``../shared/bench`` (``image``, ``mask``, ``family``) and every registered method that
needs no weights, the *true* error is the RMSE of ``inpaint()`` on the hole pixels against the
undamaged image. The *estimated* error comes from :func:`inpaint_plugin.evaluate`, which never sees
the hole pixels (it hides known pixels in shifted copies of the mask). Two configurations are run:

- ``evaluate``: the defaults of :func:`~inpaint_plugin.evaluate` (3 trials, windows of 384 pixels,
  i.e. the whole 256x256 image);
- ``auto``: the configuration of ``method="auto"`` (:func:`~inpaint_plugin._evaluate.choose_method`:
  its candidates narrowed by the hole width, :data:`AUTO_TRIALS` trials in windows of
  :data:`AUTO_THIN_WINDOW` pixels on thin holes, none where one method is left).

Reported per configuration, overall and per mask family:

- Spearman rank correlation between estimated and true errors over the methods of a case (mean and
  median over cases), and Kendall's tau;
- top-1: how often the estimated best method is the truly best one;
- regret: true RMSE of the chosen method / true RMSE of the best method, minus 1 (mean; 0 is perfect),
  next to the regret of always using each single method;
- pooled Pearson correlation of log(estimated) and log(true) RMSE over all (case, method) pairs (does
  the estimate also get the size of the error right?);
- seconds spent estimating per case.

Usage::

    python benchmarks/bench_evaluate.py                          # all cases, 2 worker processes
    python benchmarks/bench_evaluate.py --cases 'camera__*' --jobs 1 --json evaluate.json

Timings depend on the machine's load (this machine is shared); the rankings do not.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_BENCH = Path(os.environ.get("INPAINT_PLUGIN_SHARED", REPO.parent / "shared")) / "bench"


def _rmse(a, b, mask) -> float:
    d = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    return float(np.sqrt(np.mean(d ** 2)))


def run_case(path: str, methods: list) -> dict:
    """True and estimated errors of every method on one bench case."""
    import inpaint_plugin as ip
    from inpaint_plugin import _evaluate as ev

    data = np.load(path)
    image, mask, family = data["image"], data["mask"], str(data["family"])
    channel_axis = -1 if image.ndim == 3 else None
    true, fill_seconds = {}, {}
    for m in methods:
        t0 = time.perf_counter()
        out = ip.inpaint(image, mask, m, channel_axis=channel_axis)
        fill_seconds[m] = time.perf_counter() - t0
        true[m] = _rmse(out, image, mask)

    t0 = time.perf_counter()
    result = ip.evaluate(image, mask, methods, channel_axis=channel_axis)
    est_seconds = time.perf_counter() - t0
    estimate = {s.method: s.rmse for s in result}

    prep = ip._api.prepare(image, mask, ev.FALLBACK_METHOD, channel_axis=channel_axis)
    candidates = ev._auto_candidates(ip.methods(), len(prep.spatial_shape), int(np.prod(prep.spatial_shape)))
    candidates = [m for m in candidates if m in methods]
    t0, c0 = time.perf_counter(), time.process_time()
    short, window = ev._shortlist(ip.methods(), candidates, prep.mask)
    if len(short) > 1:
        auto = ev._evaluate_prepared(prep, short, ev._method_params(short, {}, ip.methods(), 0),
                                     ev.AUTO_TRIALS, 0, window)
        auto_est, auto_best, auto_hidden = {s.method: s.rmse for s in auto}, auto.best, list(auto.hidden_pixels)
    else:  # the hole width leaves one method: no trial
        auto_est, auto_best, auto_hidden = {short[0]: float("nan")}, short[0], []
    auto_seconds, auto_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "case": Path(path).stem, "family": family, "true": true, "fill_seconds": fill_seconds,
        "evaluate": {"estimate": estimate, "best": result.best, "seconds": est_seconds,
                     "hidden_pixels": list(result.hidden_pixels)},
        "auto": {"estimate": auto_est, "best": auto_best, "seconds": auto_seconds, "cpu_seconds": auto_cpu,
                 "hidden_pixels": auto_hidden},
    }


def _rank_stats(rows: list, config: str) -> dict:
    from scipy.stats import kendalltau, pearsonr, spearmanr

    rho, tau, top1, regret = [], [], [], []
    pooled_est, pooled_true = [], []
    for r in rows:
        est = r[config]["estimate"]
        names = [m for m in est if np.isfinite(est[m])]
        e = np.array([est[m] for m in names])
        t = np.array([r["true"][m] for m in names])
        if len(names) >= 3:
            rho.append(spearmanr(e, t).statistic)
            tau.append(kendalltau(e, t).statistic)
        best_true = min(r["true"].values())
        chosen = r[config]["best"]
        top1.append(r["true"][chosen] == best_true)
        regret.append(r["true"][chosen] / best_true - 1 if best_true > 0 else 0.0)
        pooled_est += list(np.log(np.maximum(e, 1e-12)))
        pooled_true += list(np.log(np.maximum(t, 1e-12)))
    return {
        "cases": len(rows),
        "spearman_mean": float(np.nanmean(rho)) if rho else float("nan"),
        "spearman_median": float(np.nanmedian(rho)) if rho else float("nan"),
        "kendall_mean": float(np.nanmean(tau)) if tau else float("nan"),
        "top1": float(np.mean(top1)),
        "regret_mean": float(np.mean(regret)),
        "pooled_log_pearson": float(pearsonr(pooled_est, pooled_true).statistic) if len(pooled_est) > 2 else float("nan"),
        "seconds_mean": float(np.mean([r[config]["seconds"] for r in rows])),
    }


def _fixed_regret(rows: list, method: str) -> float:
    return float(np.mean([r["true"][method] / min(r["true"].values()) - 1 for r in rows]))


def report(rows: list, methods: list) -> str:
    by_family = defaultdict(list)
    for r in rows:
        by_family[r["family"]].append(r)
    groups = [("all", rows)] + sorted(by_family.items())
    lines = ["| config | group | cases | Spearman mean | Spearman median | Kendall mean | top-1 | mean regret | "
             "log-RMSE Pearson | est. s/case |", "|" + "---|" * 10]
    for config in ("evaluate", "auto"):
        for name, group in groups:
            s = _rank_stats(group, config)
            lines.append(f"| {config} | {name} | {s['cases']} | {s['spearman_mean']:.3f} | {s['spearman_median']:.3f} | "
                         f"{s['kendall_mean']:.3f} | {s['top1']:.2f} | {s['regret_mean']:.3f} | "
                         f"{s['pooled_log_pearson']:.3f} | {s['seconds_mean']:.1f} |")
    lines += ["", "Mean regret of always using one method (same cases):", "",
              "| method | " + " | ".join(name for name, _ in groups) + " |", "|" + "---|" * (len(groups) + 1)]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{_fixed_regret(g, m):.3f}" for _, g in groups) + " |")
    fill = {m: np.mean([r["fill_seconds"][m] for r in rows]) for m in methods}
    lines += ["", "Mean seconds of one real fill per case: " + ", ".join(f"{m} {fill[m]:.2f}" for m in methods)]
    return "\n".join(lines)


def main(argv=None) -> int:
    import inpaint_plugin as ip

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH, help="folder of the bench cases (*.npz)")
    parser.add_argument("--cases", default="*", help="glob of case names (default: all)")
    parser.add_argument("--methods", nargs="*", default=None,
                        help="methods to compare (default: every registered method that needs no weights)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one case each)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results to this file")
    args = parser.parse_args(argv)

    methods = args.methods or [n for n, b in ip.methods().items() if not b.needs_weights]
    paths = sorted(str(p) for p in args.bench.glob(f"{args.cases}.npz"))
    if not paths:
        print(f"no bench cases matching {args.cases!r} in {args.bench}", file=sys.stderr)
        return 2
    print(f"{len(paths)} cases, methods: {', '.join(methods)}", file=sys.stderr)
    t0 = time.perf_counter()
    rows = []
    with Pool(args.jobs) as pool:
        for i, row in enumerate(pool.starmap(run_case, [(p, methods) for p in paths], chunksize=1), 1):
            rows.append(row)
    print(f"done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"methods": methods, "rows": rows}, indent=1))
    print(report(rows, methods))
    return 0


if __name__ == "__main__":
    sys.exit(main())
