"""Benchmark: does the cost grow linearly with the image? ``detect()`` and a deep network on scattered holes.

Each measurement runs in a fresh process (peak RSS from ``VmHWM``), CPU seconds and wall seconds:

- ``detect`` (default kinds) on a float32 image of noise with a few hot pixels, at each size;
- ``pennet`` (random weights in the official format, CPU, 1 thread) on a uint8 RGB image with scattered
  dead pixels (0.1 % of the pixels), at each size: every 256² crop window holds holes, so the work grows
  with the image; the ratio to the smallest size should follow the pixel count.

Usage::

    python benchmarks/bench_scaling.py [--detect 2048 4096 8192] [--pennet 512 1024 2048]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _rss import peak_rss_mib  # benchmarks/ is on sys.path when a script runs


def child_detect(n: int) -> dict:
    import inpaint_plugin as ip

    rng = np.random.default_rng(0)
    img = rng.normal(100, 5, (n, n)).astype(np.float32)
    img[rng.integers(0, n, 200), rng.integers(0, n, 200)] += 200
    ip.detect(img[:64, :64])  # kernels loaded
    t, c = time.perf_counter(), time.process_time()
    mask = ip.detect(img)
    return {"what": "detect", "size": n, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
            "peak_mib": peak_rss_mib(), "flagged": int(mask.sum())}


def child_pennet(n: int) -> dict:
    import torch

    import inpaint_plugin as ip
    from inpaint_plugin import deep

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:n, :n]
    img = np.stack([128 + 60 * np.sin(xx / (9.0 + k)) * np.cos(yy / 13.0) for k in range(3)], -1).astype(np.uint8)
    mask = rng.random((n, n)) < 0.001
    with tempfile.TemporaryDirectory() as d:
        weights = deep.random_checkpoint("pennet", Path(d) / "gen.pth", seed=0)
        small = np.zeros((256, 256), bool)
        small[100, 100] = True
        ip.inpaint(img[:256, :256], small, method="pennet", channel_axis=-1, weights=str(weights), device="cpu")
        t, c = time.perf_counter(), time.process_time()
        ip.inpaint(img, mask, method="pennet", channel_axis=-1, weights=str(weights), device="cpu")
        return {"what": "pennet", "size": n, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                "peak_mib": peak_rss_mib(), "holes": int(mask.sum())}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detect", type=int, nargs="*", default=[2048, 4096, 8192])
    p.add_argument("--pennet", type=int, nargs="*", default=[512, 1024, 2048])
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        what, n = args.child[0], int(args.child[1])
        print(json.dumps(child_detect(n) if what == "detect" else child_pennet(n)))
        return
    print("| what | size | CPU s | wall s | CPU s / smallest size's, per pixel | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for what, sizes in (("detect", args.detect), ("pennet", args.pennet)):
        base = None
        for n in sizes:
            res = subprocess.run([sys.executable, __file__, "--child", what, str(n)], capture_output=True, text=True)
            if res.returncode != 0:
                print(f"| {what} | {n}² | failed: {res.stderr.strip().splitlines()[-1][:60]} | | | |")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            per_px = r["cpu_s"] / (n * n)
            base = base or per_px
            print(f"| {what} | {n}² | {r['cpu_s']:.1f} | {r['wall_s']:.1f} | {per_px / base:.2f} | {r['peak_mib']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
