"""Head-to-head: our ``patchmatch`` backend against PyPatchMatch at equal patch size (not run in CI).

PyPatchMatch (``pip install pypatchmatch``: C++ PatchMatch inpainting, uint8 RGB only) takes the
patch *radius* (its patches are ``2 * patch_size + 1`` pixels wide); ours takes the side. So our
``patch_size=7`` is compared with its ``patch_size=3``, and so on for every ``--patch-sizes`` entry.

On every case of ``../shared/bench`` (or ``$INPAINT_PLUGIN_SHARED/bench``; 256 x 256 uint8, grey or
RGB, five mask families) both methods fill the holes; grey images are replicated to RGB for
PyPatchMatch and its output averaged back. Reported per mask family, for grey / RGB images and
overall: hole PSNR (dB, 8-bit peak) and the median over ``--repeats`` runs (after one warm-up run
that also loads the numba kernels) of wall-clock and process CPU seconds. Ours is called through
``inpaint_plugin.inpaint`` with seed 0, so API overhead is included. The machine is shared: compare
numbers from one run, prefer the CPU seconds, and re-run when it is quiet.

    python benchmarks/bench_patchmatch.py
    python benchmarks/bench_patchmatch.py --patch-sizes 5 7 9 --repeats 5 --json benchmarks/results/patchmatch.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INPAINT_PLUGIN_SHARED", REPO.parent / "shared"))


def load_cases(only: str | None):
    files = sorted((SHARED / "bench").glob("*.npz"))
    if not files:
        sys.exit(f"no bench cases in {SHARED / 'bench'} (set INPAINT_PLUGIN_SHARED)")
    cases = []
    for f in files:
        if only and only not in f.stem:
            continue
        d = np.load(f)
        cases.append({"case": f.stem, "family": str(d["family"]) if "family" in d.files else f.stem.split("__")[1],
                      "image": d["image"], "mask": d["mask"].astype(bool)})
    return cases


def hole_psnr(ref: np.ndarray, out: np.ndarray, mask: np.ndarray) -> float:
    err = np.mean((ref[mask].astype(np.float64) - out[mask].astype(np.float64)) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(255.0**2 / err))


def ours(image: np.ndarray, mask: np.ndarray, patch_size: int) -> np.ndarray:
    import inpaint_plugin as ip

    return ip.inpaint(image, mask, method="patchmatch", channel_axis=-1 if image.ndim == 3 else None,
                      patch_size=patch_size, seed=0)


def pypatchmatch(image: np.ndarray, mask: np.ndarray, patch_size: int) -> np.ndarray:
    from patchmatch import patch_match

    rgb = np.ascontiguousarray(image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1))
    patch_match.set_random_seed(0)
    out = patch_match.inpaint(rgb, mask.astype(np.uint8) * 255, patch_size=patch_size // 2)
    if image.ndim == 2:
        out = np.rint(out.astype(np.float64).mean(axis=-1)).astype(np.uint8)
    return out


def pypatchmatch_status():
    """None when PyPatchMatch runs here, else the reason it does not."""
    try:
        from patchmatch import patch_match

        if not patch_match.patchmatch_available:
            return "the PyPatchMatch native library did not load"
        pypatchmatch(np.full((16, 16), 128, np.uint8), np.pad(np.ones((4, 4), bool), 6), 7)
    except Exception as exc:  # noqa: BLE001 - a peer that cannot run is reported, not fatal
        return f"{type(exc).__name__}: {exc}"
    return None


def timed(fn, *args, repeats: int):
    """``(output, median wall seconds, median CPU seconds)`` after one warm-up call."""
    out = fn(*args)
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return out, statistics.median(walls), statistics.median(cpus)


def summarize(records, patch_size: int) -> str:
    rows = [r for r in records if r["patch_size"] == patch_size]
    groups = {}
    for r in rows:
        for key in (r["family"], "grey" if r["channels"] == 1 else "rgb", "all"):
            groups.setdefault(key, []).append(r)
    order = sorted({r["family"] for r in rows}) + ["grey", "rgb", "all"]
    lines = [f"### patch {patch_size} x {patch_size} (PyPatchMatch patch_size={patch_size // 2})", "",
             ("| cases | n | PSNR ours | PSNR PyPatchMatch | ΔPSNR | CPU s ours | CPU s PyPM | CPU speed-up "
              "| wall s ours | wall s PyPM |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key in order:
        g = groups.get(key)
        if not g:
            continue

        def mean(k, g=g):
            vals = [x[k] for x in g if x.get(k) is not None]
            return float(np.mean(vals)) if vals else float("nan")

        speed = mean("cpu_pypatchmatch") / mean("cpu_ours")
        lines.append(f"| {key} | {len(g)} | {mean('psnr_ours'):.2f} | {mean('psnr_pypatchmatch'):.2f} | "
                     f"{mean('psnr_ours') - mean('psnr_pypatchmatch'):+.2f} | {mean('cpu_ours'):.3f} | "
                     f"{mean('cpu_pypatchmatch'):.3f} | {speed:.2f}x | {mean('wall_ours'):.3f} | "
                     f"{mean('wall_pypatchmatch'):.3f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patch-sizes", type=int, nargs="+", default=[7],
                        help="our patch sides (odd); PyPatchMatch gets the radius side // 2")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case and method (median)")
    parser.add_argument("--cases", default=None, help="only cases whose file name contains this")
    parser.add_argument("--json", type=Path, default=None, help="write every measurement here")
    args = parser.parse_args(argv)

    cases = load_cases(args.cases)
    status = pypatchmatch_status()
    if status is not None:
        print(f"PyPatchMatch not available: {status}; timing ours only", file=sys.stderr)
    records = []
    for ps in args.patch_sizes:
        for c in cases:
            img, mask = c["image"], c["mask"]
            rec = {"case": c["case"], "family": c["family"], "channels": 1 if img.ndim == 2 else img.shape[-1],
                   "patch_size": ps}
            out, rec["wall_ours"], rec["cpu_ours"] = timed(ours, img, mask, ps, repeats=args.repeats)
            rec["psnr_ours"] = hole_psnr(img, out, mask)
            if status is None:
                out, rec["wall_pypatchmatch"], rec["cpu_pypatchmatch"] = timed(pypatchmatch, img, mask, ps,
                                                                              repeats=args.repeats)
                rec["psnr_pypatchmatch"] = hole_psnr(img, out, mask)
            records.append(rec)
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()),
                  flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{len(cases)} cases, {os.cpu_count()} CPU(s), load average at the end {load:.1f}\n")
    for ps in args.patch_sizes:
        print(summarize(records, ps) + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"pypatchmatch": status or "ok", "load_average": load,
                                         "records": records}, indent=1))


if __name__ == "__main__":
    main()
