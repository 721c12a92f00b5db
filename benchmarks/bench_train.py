"""Benchmark of self-supervised training: a small deep model trained for a bounded time on a microscopy
image, against biharmonic, on held-out tiles.

The microscopy data is scikit-image's bundled phase-contrast ``cell`` (660 x 550, uint8; nothing is
downloaded), cut into tiles (``--tile``, default 128). A seeded quarter of the tiles is held out and
never seen in training; the rest is passed to :func:`inpaint_plugin.train` (which itself holds out
some of them for its per-epoch validation). The network is trained from scratch for ``--minutes``.

Then every held-out tile gets one seeded mask of each family (free-form strokes, scratches, stripes,
dead pixels, boxes) and is filled through ``inpaint_plugin.inpaint`` with

- ``biharmonic`` (the classical baseline),
- the method with the trained checkpoint,
- the method with its starting weights (the untrained network, as a floor).

Reported: hole PSNR (dB, data range 255) per mask family and over all cases, as a markdown table,
plus the training summary (steps, time, validation PSNR per epoch).

Usage::

    python benchmarks/bench_train.py                       # deepfill_v2, 5 minutes
    python benchmarks/bench_train.py --minutes 20 --crop 64 --batch 4 --threads 2 --json out.json

On a shared CPU, use ``--threads 1`` (oversubscribed OpenMP threads spin and slow everything down).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FAMILIES = ("strokes", "scratches", "stripes", "dead_pixels", "boxes")


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
    p.add_argument("--method", default="deepfill_v2", help="deepfill_v2 or deepfill_v1")
    p.add_argument("--minutes", type=float, default=5.0, help="training time budget (5)")
    p.add_argument("--tile", type=int, default=128, help="tile side (128)")
    p.add_argument("--crop", type=int, default=64, help="training crop side (64)")
    p.add_argument("--batch", type=int, default=4, help="batch size (4)")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (1e-4, the paper's)")
    p.add_argument("--adv-weight", type=float, default=None, help="adversarial weight (the paper's)")
    p.add_argument("--steps-per-epoch", type=int, default=50, help="steps between validations (50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    import torch
    from skimage import data

    import inpaint_plugin as ip
    from inpaint_plugin._masks import random_mask
    from inpaint_plugin.deep._backend import random_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    tiles = tiles_of(data.cell(), args.tile)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(tiles))
    n_test = max(1, len(tiles) // 4)
    test = [tiles[i] for i in order[:n_test]]
    train_tiles = [tiles[i] for i in order[n_test:]]

    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    ckpt = work / f"{args.method}.pth"
    t0 = time.perf_counter()
    # epochs is only an upper bound: the time limit ends training
    result = ip.train(args.method, train_tiles, out=ckpt, crop_size=args.crop, batch_size=args.batch, epochs=10_000,
                      steps_per_epoch=args.steps_per_epoch, lr=args.lr, seed=args.seed, val_fraction=0.15,
                      val_crops=16, adv_weight=args.adv_weight, device=args.device,
                      time_limit=args.minutes * 60, progress=sys.stderr.isatty())
    train_s = time.perf_counter() - t0
    start = random_checkpoint(args.method, work / "start.pth", seed=args.seed)

    methods = {
        "biharmonic": dict(method="biharmonic"),
        f"{args.method} trained": dict(method=args.method, weights=str(ckpt), device=args.device),
        f"{args.method} untrained": dict(method=args.method, weights=str(start), device=args.device),
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

    names = list(methods)
    lines = [
        f"Training: {args.method} from scratch on {len(train_tiles)} tiles {args.tile}x{args.tile} of skimage "
        f"`cell` (crops {args.crop}, batch {args.batch}, lr {args.lr:g}), {result.step} steps in "
        f"{train_s / 60:.1f} min; held-out test tiles: {len(test)} (x 5 mask families).",
        "",
        "| mask family | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for family in FAMILIES:
        lines.append(f"| {family} | " + " | ".join(f"{np.mean(scores[n][family]):.2f}" for n in names) + " |")
    lines.append("| **all** | " + " | ".join(
        f"**{np.mean([v for f in FAMILIES for v in scores[n][f]]):.2f}**" for n in names) + " |")
    lines += ["", "Hole PSNR in dB (data range 255), mean over the held-out tiles.", "",
              "Validation (held-out crops of the training tiles, [0, 1] units) per epoch:", "",
              "| step | train loss | val hole PSNR (dB) |", "|---:|---:|---:|"]
    if result.initial:
        lines.append(f"| 0 | | {result.initial['val_psnr']:.2f} |")
    for h in result.history:
        lines.append(f"| {h['step']} | {h.get('loss', float('nan')):.4f} | {h['val_psnr']:.2f} |")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "args": vars(args), "steps": result.step, "train_seconds": train_s, "history": result.history,
            "initial": result.initial,
            "hole_psnr": {n: {f: float(np.mean(v)) for f, v in s.items()} for n, s in scores.items()},
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
