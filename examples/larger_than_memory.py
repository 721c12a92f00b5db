"""Inpaint an image that need not fit in memory: a chunked zarr array in, a zarr array out.

    pip install ".[dask]"
    python examples/larger_than_memory.py                 # builds a 8192x8192 uint16 zarr first
    python examples/larger_than_memory.py --size 20000    # 800 MB on disk, same memory use

The input is a uint16 mosaic stored as 1024x1024 zarr chunks with the defects of a line scanner: a
few dead columns and scattered dead pixels. ``inpaint_plugin.inpaint`` on a dask array returns a
dask array: one bounded scan finds the holes, and only the chunks whose neighbourhood holds a hole
are filled (each with enough context around it); the other chunks are passed through untouched.
Writing the result streams it chunk by chunk, so the memory use does not grow with the image.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

import inpaint_plugin as ip


def make_mosaic(path: Path, size: int, chunk: int = 1024, seed: int = 0):
    """Write a ``size``-square uint16 zarr mosaic with dead columns and pixels, one chunk at a time
    (never the whole image in memory); returns the dead columns."""
    import dask.array as da

    rng = np.random.default_rng(seed)
    columns = rng.choice(size, 3, replace=False)
    dead = rng.integers(0, size, (2000, 2))

    def block(block_info=None):
        (y0, y1), (x0, x1) = block_info[None]["array-location"]
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        tile = (2000 + 800 * np.sin(yy / 97.0) * np.cos(xx / 131.0) + 0.01 * xx).astype(np.uint16)
        tile[:, [c - x0 for c in columns if x0 <= c < x1]] = 0
        inside = (dead[:, 0] >= y0) & (dead[:, 0] < y1) & (dead[:, 1] >= x0) & (dead[:, 1] < x1)
        tile[dead[inside, 0] - y0, dead[inside, 1] - x0] = 0
        return tile

    sides = (chunk,) * (size // chunk) + ((size % chunk,) if size % chunk else ())
    mosaic = da.map_blocks(block, dtype=np.uint16, chunks=(sides, sides))
    da.to_zarr(mosaic, str(path), overwrite=True)
    return columns


def main(argv=None) -> dict:
    import dask.array as da

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=8192, help="side of the mosaic (pixels)")
    ap.add_argument("--workdir", default=".", help="where the zarr arrays are written")
    args = ap.parse_args(argv)

    work = Path(args.workdir)
    src, dst = work / "mosaic.zarr", work / "mosaic_repaired.zarr"
    columns = make_mosaic(src, args.size)

    start = time.perf_counter()
    image = da.from_zarr(str(src))
    mask = image == 0  # the dead pixels read 0; lazy, like the image
    repaired = ip.inpaint(image, mask, method="biharmonic")  # a dask array, nothing computed yet
    ip.write_image(dst, repaired, progress=True)  # computed and written chunk by chunk
    seconds = time.perf_counter() - start

    out = da.from_zarr(str(dst))
    report = {"size": args.size, "chunks": list(image.numblocks), "seconds": round(seconds, 1),
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "image_mib": round(image.nbytes / 2**20),
              "dead_pixels_left": int((out == 0).sum().compute()),
              "column_filled": bool((out[:, int(columns[0])] > 0).all().compute())}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
