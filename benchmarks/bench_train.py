"""Benchmark of fine-tuning: a deep network fine-tuned for a bounded time on microscopy tiles, against
biharmonic and the other classical methods, on held-out tiles.

The microscopy data is scikit-image's bundled phase-contrast ``cell`` (660 x 550, uint8; nothing is
downloaded), cut into tiles (``--tile``, default 128). A seeded quarter of the tiles is held out and
never seen in training; the rest is passed to :func:`inpaint_plugin.train` (which itself holds out
some of them for its own per-validation comparison with biharmonic).

Fine-tuning starts from ``--weights`` (official weights, any file the method's loader reads: the
documented path). Where no official weights are at hand (this benchmark runs offline), a stand-in
"official" model is first trained from scratch for ``--pretrain-minutes`` on other bundled grey
images (camera, coins, moon, text, brick, grass, gravel: no cells), then fine-tuned on the cell tiles
for ``--minutes`` (at ``--pretrain-lr`` 1e-3, ten times the paper's rate, to get somewhere in minutes). The
numbers of such a stand-in are far below what published weights give.

Then every held-out tile gets one seeded mask of each family (free-form strokes, scratches, stripes,
dead pixels, boxes) and is filled through ``inpaint_plugin.inpaint`` with biharmonic, telea, the
fine-tuned checkpoint and the starting checkpoint. Reported: hole PSNR (dB, data range 255) per mask
family and over all cases (markdown), the training summary of ``train()`` (its own held-out
comparison, time, peak memory).

Usage::

    python benchmarks/bench_train.py --threads 1                          # deepfill_v2, 3 + 3 minutes
    python benchmarks/bench_train.py --weights states_tf_places2.pth --minutes 10 --json out.json

On a shared CPU, use ``--threads 1`` (oversubscribed OpenMP threads spin and slow everything down).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

FAMILIES = ("strokes", "scratches", "stripes", "dead_pixels", "boxes")
PRETRAIN_IMAGES = ("camera", "coins", "moon", "text", "brick", "grass", "gravel")


def tiles_of(image: np.ndarray, tile: int) -> list:
    """Non-overlapping ``tile`` x ``tile`` tiles of ``image`` (row-major)."""
    h, w = image.shape[:2]
    return [image[r : r + tile, c : c + tile] for r in range(0, h - tile + 1, tile) for c in range(0, w - tile + 1, tile)]


def hole_psnr(truth: np.ndarray, filled: np.ndarray, mask: np.ndarray, data_range: float = 255.0) -> float:
    err = truth[mask].astype(np.float64) - filled[mask].astype(np.float64)
    mse = float(np.mean(err**2))
    return float("inf") if mse == 0 else 10 * np.log10(data_range**2 / mse)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="deepfill_v2", help="a deep method (deepfill_v2)")
    p.add_argument("--weights", default=None, help="official checkpoint to fine-tune from")
    p.add_argument("--pretrain-minutes", type=float, default=3.0,
                   help="without --weights: minutes of from-scratch training of the stand-in starting model (3)")
    p.add_argument("--pretrain-lr", type=float, default=1e-3,
                   help="learning rate of the stand-in's from-scratch training (1e-3: faster than the paper's)")
    p.add_argument("--minutes", type=float, default=3.0, help="fine-tuning time limit (3)")
    p.add_argument("--tile", type=int, default=128, help="tile side (128)")
    p.add_argument("--crop", type=int, default=None, help="training crop side (the recipe's default)")
    p.add_argument("--batch", type=int, default=None, help="batch size (the recipe's default)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (the paper's)")
    p.add_argument("--adv-weight", type=float, default=None, help="adversarial weight (the paper's)")
    p.add_argument("--steps-per-epoch", type=int, default=50, help="steps between validations (50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    import warnings

    import torch
    from skimage import data

    import inpaint_plugin as ip
    from inpaint_plugin._masks import random_mask
    from inpaint_plugin.deep._backend import random_checkpoint

    warnings.filterwarnings("ignore", message="trained .* is WORSE than biharmonic")  # printed in the tables
    if args.threads:
        torch.set_num_threads(args.threads)
    tiles = tiles_of(data.cell(), args.tile)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(tiles))
    n_test = max(1, len(tiles) // 4)
    test = [tiles[i] for i in order[:n_test]]
    train_tiles = [tiles[i] for i in order[n_test:]]
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    common = dict(crop_size=args.crop, batch_size=args.batch, epochs=100_000, steps_per_epoch=args.steps_per_epoch,
                  lr=args.lr, seed=args.seed, val_crops=16, adv_weight=args.adv_weight, device=args.device,
                  progress=sys.stderr.isatty())

    pretrain = None
    start = args.weights
    if start is None:  # a stand-in for official weights: from scratch on other images
        others = [getattr(data, name)() for name in PRETRAIN_IMAGES]
        others = [o if o.ndim == 2 else o[..., 0] for o in others]
        start = work / f"{args.method}_pretrained.pth"
        pretrain = ip.train(args.method, others, out=start, val_fraction=0.15, time_limit=args.pretrain_minutes * 60,
                            **{**common, "lr": args.pretrain_lr})
    result = ip.train(args.method, train_tiles, out=work / f"{args.method}_finetuned.pth", weights=start,
                      val_fraction=0.15, time_limit=args.minutes * 60, **common)
    untrained = random_checkpoint(args.method, work / "untrained.pth", seed=args.seed)

    methods = {
        "biharmonic": dict(method="biharmonic"),
        "telea": dict(method="telea"),
        f"{args.method} fine-tuned": dict(method=args.method, weights=str(result.checkpoint), device=args.device),
        f"{args.method} start": dict(method=args.method, weights=str(start), device=args.device),
        f"{args.method} untrained": dict(method=args.method, weights=str(untrained), device=args.device),
    }
    scores = {name: {f: [] for f in FAMILIES} for name in methods}
    mask_rng = np.random.default_rng([args.seed, 12345])
    for tile in test:
        for family in FAMILIES:
            mask = random_mask(tile.shape, mask_rng, [family])
            damaged = tile.copy()
            damaged[mask] = 0
            for name, kw in methods.items():
                filled = ip.inpaint(damaged, mask, **kw)
                scores[name][family].append(hole_psnr(tile, filled, mask))

    def run_line(label, r):
        mem = f", peak RSS {r.peak_rss_mb:.0f} MiB" if r.peak_rss_mb else ""
        return (f"- {label}: {r.step} steps in {r.elapsed:.0f} s (limit {r.time_limit:.0f} s), crops {r.crop_size}, "
                f"batch {r.batch_size}{mem}; its held-out check: {r.verdict}")

    names = list(methods)
    threads = torch.get_num_threads()
    lines = [f"{args.method} on skimage `cell` tiles {args.tile}x{args.tile} ({len(train_tiles)} for training, "
             f"{len(test)} held out x 5 mask families), {result.device}, {threads} torch thread(s):", ""]
    if pretrain is not None:
        lines.append(run_line(f"stand-in starting model, from scratch on {', '.join(PRETRAIN_IMAGES)}", pretrain))
    else:
        lines.append(f"- starting weights: {args.weights}")
    lines += [run_line("fine-tuning on the cell tiles", result), "",
              "| mask family | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for family in FAMILIES:
        lines.append(f"| {family} | " + " | ".join(f"{np.mean(scores[n][family]):.2f}" for n in names) + " |")
    lines.append("| **all** | " + " | ".join(
        f"**{np.mean([v for f in FAMILIES for v in scores[n][f]]):.2f}**" for n in names) + " |")
    lines += ["", "Hole PSNR in dB (data range 255), mean over the held-out tiles."]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "args": vars(args), "steps": result.step, "seconds": result.elapsed, "history": result.history,
            "baseline": result.baseline, "val_psnr": result.val_psnr, "verdict": result.verdict,
            "pretrain": None if pretrain is None else {"steps": pretrain.step, "verdict": pretrain.verdict},
            "hole_psnr": {n: {f: float(np.mean(v)) for f, v in s.items()} for n, s in scores.items()},
        }, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
