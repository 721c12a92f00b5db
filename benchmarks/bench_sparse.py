"""Benchmark: a few holes in a very large in-memory image. Memory and time must follow the holes.

For each method, in a fresh process: a ``size x size`` uint8 image (a smooth pattern plus noise) with
a handful of masked pixels (3 by default, as in the reliability report) is filled with
``inpaint_plugin.inpaint``. Reported: the time of the call, the peak resident memory of the process
(``VmHWM``, reset once the inputs are built), the memory the inputs take (image + mask), and the
extra peak over the inputs as a multiple of the image's size (target: the output copy, 1x, plus small windows).

The same script with ``--whole`` disables the windows (``WINDOW_MIN_PIXELS`` raised), which is the
behaviour before the engine cut large images into windows around their holes.

Usage::

    python benchmarks/bench_sparse.py [--size 20000] [--methods biharmonic tv telea patchmatch] [--whole]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from _rss import peak_rss_mib  # benchmarks/ is on sys.path when a script runs


def _reset_peak() -> None:
    """Reset ``VmHWM`` to the current resident size (Linux: ``/proc/self/clear_refs`` = 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def child(size: int, method: str, holes: int, whole: bool) -> dict:
    import inpaint_plugin as ip
    from inpaint_plugin import _engine

    if whole:
        _engine.WINDOW_MIN_PIXELS = 1 << 62
    # warm up kernels on a small image (compilation is not what we measure)
    small = np.zeros((64, 64), np.uint8)
    small_mask = np.zeros(small.shape, bool)
    small_mask[30, 30] = True
    ip.inpaint(small, small_mask, method=method)
    base = peak_rss_mib()
    rng = np.random.default_rng(0)
    image = np.empty((size, size), np.uint8)
    for r0 in range(0, size, 1024):  # no float temporaries of the whole image
        yy = np.arange(r0, min(size, r0 + 1024))[:, None]
        xx = np.arange(size)[None, :]
        block = 128 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + rng.normal(0, 3, (yy.size, size))
        image[r0:r0 + yy.size] = np.clip(block, 0, 255).astype(np.uint8)
    mask = np.zeros(image.shape, bool)
    for r, c in rng.integers(100, size - 100, size=(holes, 2)):
        mask[r, c] = True
    _reset_peak()  # the peak from here on is the call's (the image was built with temporaries of its own)
    inputs = peak_rss_mib()
    t = time.perf_counter()
    out = ip.inpaint(image, mask, method=method)
    seconds = time.perf_counter() - t
    peak = peak_rss_mib()  # before the check below, which makes temporaries of its own
    assert out.dtype == image.dtype and np.array_equal(np.where(mask, 0, out), np.where(mask, 0, image))
    image_mib = image.nbytes / 2**20
    return {"method": method, "size": size, "seconds": seconds, "peak_mib": peak, "baseline_mib": base,
            "inputs_mib": inputs - base, "extra_over_inputs": (peak - inputs) / image_mib,
            "image_mib": image_mib, "whole": whole}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=20000)
    p.add_argument("--holes", type=int, default=3)
    p.add_argument("--methods", nargs="+", default=["biharmonic", "tv", "telea", "patchmatch"])
    p.add_argument("--whole", action="store_true", help="no windows: the whole image (the old behaviour)")
    p.add_argument("--child", nargs=2, metavar=("METHOD", "WHOLE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.size, args.child[0], args.holes, args.child[1] == "1")))
        return
    rows = []
    for method in args.methods:
        cmd = [sys.executable, __file__, "--size", str(args.size), "--holes", str(args.holes),
               "--child", method, "1" if args.whole else "0"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            rows.append(f"| {method} | failed: {res.stderr.strip().splitlines()[-1][:80]} | | | |")
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(f"| {method} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | {r['inputs_mib']:.0f} | "
                    f"{r['extra_over_inputs']:.2f}x |")
    print(f"{args.size}² uint8, {args.holes} masked pixels, {'whole image' if args.whole else 'windows'}:\n")
    print("| method | seconds | peak RSS MiB | inputs MiB | extra peak / image size |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
