"""Benchmark: inpainting a 20000 x 20000 uint16 image on disk that does not need to fit in memory.

The image is a zarr array (1024 x 1024 chunks, 2 MiB each) with a smooth pattern plus noise; the
mask is a zarr array of the same chunks with sparse defects (dead pixels, a dead column segment
and a stripe) in ``K`` randomly chosen chunks. Each run, in a fresh process:

1. ``inpaint(dask.array.from_zarr(image), dask.array.from_zarr(mask), "biharmonic")``: the scan
   (one pass over image and mask, builds the graph);
2. ``write_image(out.zarr, result)``: computes the defect chunks and streams every chunk to disk.

It reports both times, the time to compute the defect chunks alone (no writing; this is the
part that grows with ``K``) and the process's peak resident memory, for several ``K``, plus a
"realistic" mask (full-height dead columns, full-width stripes and dead pixels over the whole
image, which touch every chunk), as a markdown table. Not part of CI; it takes a few minutes
and about 1.5 GB of disk in ``--workdir``.

Usage::

    python benchmarks/bench_large.py [--size 20000] [--chunk 1024] [--k 0 10 50 100 200]
                                     [--workdir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _rss import peak_rss_mib  # benchmarks/ is on sys.path when a script runs


def make_image(path: Path, size: int, chunk: int) -> None:
    """A smooth pattern plus noise, written chunk by chunk."""
    import zarr

    z = zarr.create_array(str(path), shape=(size, size), dtype=np.uint16, chunks=(chunk, chunk), overwrite=True)
    rng = np.random.default_rng(0)
    for r0 in range(0, size, chunk):
        for c0 in range(0, size, chunk):
            yy, xx = np.mgrid[r0:min(r0 + chunk, size), c0:min(c0 + chunk, size)].astype(np.float32)
            v = 20000 + 8000 * np.sin(yy / 700) * np.cos(xx / 900) + 3000 * np.sin((xx + yy) / 150)
            z[r0:r0 + chunk, c0:c0 + chunk] = (v + rng.normal(0, 50, v.shape)).astype(np.uint16)


def make_mask(path: Path, size: int, chunk: int, k, seed: int = 1) -> int:
    """Defects in ``k`` random chunks (or the "realistic" mask when ``k == 'all'``); returns #chunks hit."""
    import zarr

    z = zarr.create_array(str(path), shape=(size, size), dtype=bool, chunks=(chunk, chunk), overwrite=True)
    rng = np.random.default_rng(seed)
    n = -(-size // chunk)
    hit = np.zeros((n, n), bool)
    if k == "all":
        for c in rng.integers(0, size, 2):  # dead columns
            z[:, int(c)] = True
            hit[:, int(c) // chunk] = True
        for r in rng.integers(0, size - 3, 3):  # stripes, 3 rows high
            z[int(r):int(r) + 3, :] = True
            hit[int(r) // chunk:(int(r) + 2) // chunk + 1, :] = True
        pts = rng.integers(0, size, (5000, 2))  # dead pixels
        for r0 in range(0, size, chunk):  # write them chunk row by chunk row
            sel = pts[(pts[:, 0] >= r0) & (pts[:, 0] < r0 + chunk)]
            block = z[r0:r0 + chunk, :]
            block[sel[:, 0] - r0, sel[:, 1]] = True
            z[r0:r0 + chunk, :] = block
            hit[r0 // chunk, np.unique(sel[:, 1] // chunk)] = True
        return int(hit.sum())
    for flat in rng.choice(n * n, size=int(k), replace=False):
        i, j = divmod(int(flat), n)
        r0, c0 = i * chunk, j * chunk
        h, w = min(chunk, size - r0), min(chunk, size - c0)
        block = np.zeros((h, w), bool)
        ys, xs = rng.integers(0, h, 30), rng.integers(0, w, 30)
        block[ys, xs] = True  # dead pixels
        col, top = rng.integers(0, w), rng.integers(0, max(1, h - 400))
        block[top:top + 400, col] = True  # a dead column segment
        row, left = rng.integers(0, h - 2), rng.integers(0, max(1, w - 300))
        block[row:row + 2, left:left + 300] = True  # a stripe
        z[r0:r0 + h, c0:c0 + w] = block
    return int(k)


def run_one(image: Path, mask: Path, out: Path) -> dict:
    """One measured run (called in a fresh process)."""
    import dask.array as da

    from inpaint_plugin import inpaint
    from inpaint_plugin._io import write_image

    # warm-up: the first call of a method in a process may compile kernels (numba); not timed
    t = time.perf_counter()
    warm = np.zeros((64, 64), np.uint16)
    warm_mask = np.zeros(warm.shape, bool)
    warm_mask[20:40, 30] = True
    inpaint(warm, warm_mask, "biharmonic")
    warmup = time.perf_counter() - t
    base = peak_rss_mib()
    t0 = time.perf_counter()
    result = inpaint(da.from_zarr(str(image)), da.from_zarr(str(mask)), "biharmonic")
    t1 = time.perf_counter()
    write_image(out, result)
    t2 = time.perf_counter()
    peak = peak_rss_mib()

    # the fill alone: compute only the chunks that hold defects (a batch at a time), no writing
    import dask

    m = da.from_zarr(str(mask))
    holes = m.map_blocks(lambda b: np.array(b.any()).reshape((1,) * b.ndim), chunks=(1,) * m.ndim, dtype=bool)
    defect = [tuple(i) for i in np.argwhere(holes.compute())]
    t3 = time.perf_counter()
    for i in range(0, len(defect), 16):
        dask.compute(*[result.blocks[idx] for idx in defect[i:i + 16]])
    t4 = time.perf_counter()
    return {"scan_s": t1 - t0, "write_s": t2 - t1, "total_s": t2 - t0, "fill_only_s": t4 - t3,
            "peak_rss_mib": peak, "rss_before_mib": base, "warmup_s": warmup}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--k", nargs="+", default=["0", "10", "50", "100", "200", "all"],
                    help="numbers of defect chunks to try; 'all' = realistic mask touching every chunk")
    ap.add_argument("--repeats", type=int, default=2, help="runs per case; the table shows the fastest")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (image reused next time)")
    ap.add_argument("--run", nargs=3, metavar=("IMAGE", "MASK", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        print(json.dumps(run_one(*map(Path, args.run))))
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="inpaint-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    image = work / f"image-{args.size}-{args.chunk}.zarr"
    if not image.exists():
        t = time.perf_counter()
        make_image(image, args.size, args.chunk)
        print(f"made {image} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    nchunks = (-(-args.size // args.chunk)) ** 2
    rows = []
    try:
        for k in args.k:
            mask, out = work / "mask.zarr", work / "out.zarr"
            hit = make_mask(mask, args.size, args.chunk, k if k == "all" else int(k))
            runs = []
            for _ in range(max(1, args.repeats)):
                res = subprocess.run([sys.executable, __file__, "--run", str(image), str(mask), str(out)],
                                     stdout=subprocess.PIPE, text=True, check=True)
                runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
                print(json.dumps(dict(runs[-1], k=k)), file=sys.stderr)
                shutil.rmtree(out, ignore_errors=True)
            r = {key: min(run[key] for run in runs) for key in runs[0]}  # fastest of the repeats
            r.update(peak_rss_mib=max(run["peak_rss_mib"] for run in runs), k=k, defect_chunks=hit)
            rows.append(r)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\n{args.size} x {args.size} uint16 zarr, {args.chunk} x {args.chunk} chunks ({nchunks} chunks of "
          f"{args.chunk * args.chunk * 2 / 2**20:.1f} MiB), method biharmonic, dask threads, {cpus} CPU(s)\n")
    print("| defect chunks | scan (s) | fill + write all chunks (s) | total (s) | fill of the defect chunks alone (s) "
          "| peak RSS (MiB) | RSS before (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        label = f"{r['defect_chunks']} (realistic)" if r["k"] == "all" else str(r["defect_chunks"])
        print(f"| {label} | {r['scan_s']:.1f} | {r['write_s']:.1f} | {r['total_s']:.1f} | {r['fill_only_s']:.1f} "
              f"| {r['peak_rss_mib']:.0f} | {r['rss_before_mib']:.0f} |")
    if rows:
        base = max(r["rss_before_mib"] for r in rows)
        warm = max(r["warmup_s"] for r in rows)
        print(f"\nPeak RSS of the whole process, including up to {base:.0f} MiB for Python, numpy, dask, zarr and "
              f"the method before the run; each run starts with an untimed {warm:.1f} s warm-up call (kernel "
              f"compilation). Each time column: the fastest of {max(1, args.repeats)} runs.")


if __name__ == "__main__":
    main()
