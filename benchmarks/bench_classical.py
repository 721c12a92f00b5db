"""Benchmark of the classical methods against their peers, on the shared bench cases.

Runs every registered method that needs no weights (``inpaint_plugin.methods()``), ``method="auto"``
and the peers (scikit-image ``inpaint_biharmonic``, OpenCV ``INPAINT_TELEA`` / ``INPAINT_NS``,
PyPatchMatch, OpenCV contrib ``cv2.xphoto.inpaint`` FSR fast and best, GDAL FillNodata through
``rasterio.fill.fillnodata`` with smoothing 0 and 2, astropy ``interpolate_replace_nans``) on every case
of ``../shared/bench`` (``image``, ``mask``, ``family``), in this process, one after the other, and
reports per mask family: hole PSNR (on the hole pixels; mean, and the median with our best method
against the best peer), SSIM (on the bounding box of the hole), seconds and peak traced memory
(``tracemalloc``: numpy and Python allocations; memory allocated inside C libraries such as SuperLU or
OpenCV is not seen). Ratios are against the peers of the same run. Peers are optional imports: one
that cannot run here (package missing, e.g. ``cv2.xphoto`` without opencv-contrib-python-headless) is
skipped and the reason is printed in the results. FSR best takes about a CPU-minute per case, so the
peers can be run on their own (``--peers-only``, several processes with ``--peers``) and their records
reused (``--reuse-peers``).

The scaling part times ``biharmonic`` against ``skimage.restoration.inpaint_biharmonic`` on the camera
image resized to 512 ... 4096 with a seeded free-form stroke mask covering ~10%; each run is a fresh
subprocess so its peak resident memory (``VmHWM``) is comparable, and the two solutions are
compared (largest difference on the hole relative to the data range).

Writes ``benchmarks/results/results.json``, ``benchmarks/results/montage.png`` (one case per family,
each method) and the markdown tables to ``benchmarks/results/RESULTS.md`` and ``benchmarks/RESULTS.md``.

Usage::

    python benchmarks/bench_classical.py            # all 30 cases, scaling 512..4096
    python benchmarks/bench_classical.py --quick    # 2 images x 5 families, scaling 512, 1024
    python benchmarks/bench_classical.py --scaling-only --sizes 512 1024 2048 4096
                                                    # only the scaling table of benchmarks/RESULTS.md
    python benchmarks/bench_classical.py --peers-only --peers cv2_fsr_best --peers-out best.json
    python benchmarks/bench_classical.py --reuse-peers best.json others.json --sizes
                                                    # ours, with peers from earlier runs, no scaling

Timings depend on the machine's load: on a shared machine, compare only ratios from one run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

import numpy as np
from _rss import peak_rss_mib  # benchmarks/ is on sys.path when a script runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"

#: the peer each of our methods is compared with
PEER_OF = {
    "biharmonic": "skimage_biharmonic",
    "telea": "cv2_telea",
    "navier_stokes": "cv2_ns",
    "patchmatch": "pypatchmatch",
    "criminisi": "pypatchmatch",
    "tv": "skimage_biharmonic",
    "cdd": "skimage_biharmonic",
    "fsr": "cv2_fsr_fast",
    "lsp": "skimage_biharmonic",
}


# ------------------------------------------------------------------------------------------ peers
def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def peer_skimage_biharmonic(img, mask):
    from skimage.restoration import inpaint_biharmonic

    return inpaint_biharmonic(img, mask, channel_axis=-1 if img.ndim == 3 else None)


def _cv2(img, mask, flag):
    import cv2

    out = cv2.inpaint(_to_uint8(img), mask.astype(np.uint8) * 255, 5, flag)
    return out.astype(np.float64) / 255.0


def peer_cv2_telea(img, mask):
    import cv2

    return _cv2(img, mask, cv2.INPAINT_TELEA)


def peer_cv2_ns(img, mask):
    import cv2

    return _cv2(img, mask, cv2.INPAINT_NS)


def peer_pypatchmatch(img, mask):
    from patchmatch import patch_match

    if not patch_match.patchmatch_available:
        raise RuntimeError("PyPatchMatch library not available")
    rgb = _to_uint8(img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=-1))
    # PyPatchMatch's patch_size is a radius: 3 means 7x7 patches, our patchmatch default
    out = patch_match.inpaint(rgb, mask.astype(np.uint8) * 255, patch_size=3).astype(np.float64) / 255.0
    return out if img.ndim == 3 else out.mean(axis=-1)


def _cv2_fsr(img, mask, quality):
    """``cv2.xphoto.inpaint`` (frequency-selective reconstruction; opencv-contrib-python-headless).

    FSR takes 8-bit grey or BGR images (our cases are RGB: the channel order is reversed there and
    back, as its YCrCb conversion expects BGR) and a mask that is non-zero on the *valid* pixels.
    """
    import cv2

    xphoto = getattr(cv2, "xphoto", None)
    if xphoto is None:
        raise ImportError("cv2.xphoto missing: install opencv-contrib-python-headless (same version as opencv)")
    src = _to_uint8(img)
    if img.ndim == 3:
        src = np.ascontiguousarray(src[..., ::-1])
    dst = np.zeros_like(src)
    xphoto.inpaint(src, (~mask).astype(np.uint8) * 255, dst, quality)
    out = dst.astype(np.float64) / 255.0
    return out[..., ::-1] if img.ndim == 3 else out


def peer_cv2_fsr_fast(img, mask):
    import cv2

    return _cv2_fsr(img, mask, cv2.xphoto.INPAINT_FSR_FAST if hasattr(cv2, "xphoto") else None)


def peer_cv2_fsr_best(img, mask):
    import cv2

    return _cv2_fsr(img, mask, cv2.xphoto.INPAINT_FSR_BEST if hasattr(cv2, "xphoto") else None)


def _per_channel(fn, img, mask):
    if img.ndim == 2:
        return fn(img, mask)
    return np.stack([fn(np.ascontiguousarray(img[..., c]), mask) for c in range(img.shape[-1])], axis=-1)


def _gdal_fill(img, mask, smoothing):
    """GDAL FillNodata (inverse-distance weighting along search rays) through ``rasterio.fill``.

    ``max_search_distance`` is the image diagonal, so that every hole pixel finds known pixels.
    """
    from rasterio.fill import fillnodata

    dist = float(np.hypot(*mask.shape)) + 1.0

    def one(band, m):
        return fillnodata(band.astype(np.float32), mask=(~m).astype(np.uint8), max_search_distance=dist,
                          smoothing_iterations=smoothing).astype(np.float64)

    return _per_channel(one, img, mask)


def peer_gdal_fill(img, mask):
    return _gdal_fill(img, mask, 0)


def peer_gdal_fill_smooth2(img, mask):
    return _gdal_fill(img, mask, 2)


def peer_astropy_nans(img, mask):
    """``astropy.convolution.interpolate_replace_nans`` with a Gaussian kernel (sigma 1 px, 9x9), repeated
    until no NaN is left; outside the image counts as unknown (``boundary="fill"`` with NaN)."""
    from astropy.convolution import Gaussian2DKernel, interpolate_replace_nans

    kernel = Gaussian2DKernel(x_stddev=1.0)

    def one(band, m):
        import warnings

        a = band.astype(np.float64).copy()
        a[m] = np.nan
        with warnings.catch_warnings():  # "NaN values detected post convolution": why it is iterated
            warnings.simplefilter("ignore")
            for _ in range(10_000):
                if not np.isnan(a).any():
                    break
                a = interpolate_replace_nans(a, kernel, boundary="fill", fill_value=np.nan)
        return a

    return _per_channel(one, img, mask)


PEERS = {
    "skimage_biharmonic": peer_skimage_biharmonic,
    "cv2_telea": peer_cv2_telea,
    "cv2_ns": peer_cv2_ns,
    "pypatchmatch": peer_pypatchmatch,
    "cv2_fsr_fast": peer_cv2_fsr_fast,
    "cv2_fsr_best": peer_cv2_fsr_best,
    "gdal_fill": peer_gdal_fill,
    "gdal_fill_smooth2": peer_gdal_fill_smooth2,
    "astropy_nans": peer_astropy_nans,
}


def peer_status() -> dict:
    """Which peers can run here (name -> None or the reason they cannot)."""
    status = {}
    for name, fn in PEERS.items():
        try:
            fn(np.full((16, 16), 0.5), np.pad(np.ones((4, 4), bool), 6))
            status[name] = None
        except Exception as exc:  # a peer that cannot be installed or built is reported, not fatal
            status[name] = f"{type(exc).__name__}: {exc}"
    return status


# ---------------------------------------------------------------------------------------- metrics
def hole_psnr(ref, out, mask) -> float:
    err = np.mean((ref[mask] - out[mask]) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(1.0 / err))


def bbox_ssim(ref, out, mask) -> float:
    from skimage.metrics import structural_similarity

    idx = np.nonzero(mask)
    box = tuple(slice(max(int(i.min()) - 3, 0), int(i.max()) + 4) for i in idx)
    a, b = ref[box], out[box]
    win = min(7, *a.shape[:2])
    win -= 1 - win % 2
    if win < 3:
        return float("nan")
    return float(structural_similarity(a, b, data_range=1.0, win_size=win,
                                       channel_axis=-1 if a.ndim == 3 else None))


def run_one(fn, img, mask):
    """``(output, seconds, peak traced MiB)`` of ``fn(img, mask)``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(img, mask)
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return np.asarray(out, dtype=np.float64).reshape(img.shape), dt, peak


# ------------------------------------------------------------------------------------------ cases
def bench_dir() -> Path:
    shared = Path(os.environ.get("INPAINT_PLUGIN_SHARED", REPO.parent / "shared"))
    return shared / "bench"


def load_cases(quick: bool):
    files = sorted(bench_dir().glob("*.npz"))
    if not files:
        sys.exit(f"no bench cases in {bench_dir()} (set INPAINT_PLUGIN_SHARED)")
    cases = []
    for f in files:
        d = np.load(f)
        name = str(d["name"]) if "name" in d.files else f.stem.split("__")[0]
        if quick and name not in ("camera", "astronaut"):
            continue
        cases.append({"file": f.stem, "name": name, "family": str(d["family"]),
                      "image": d["image"].astype(np.float64) / 255.0, "mask": d["mask"].astype(bool)})
    return cases


def our_methods() -> dict:
    import inpaint_plugin

    out = {}
    for name, backend in inpaint_plugin.methods().items():
        if backend.needs_weights:
            continue
        out[name] = (lambda n: lambda img, mask: inpaint_plugin.inpaint(
            img, mask, method=n, channel_axis=-1 if img.ndim == 3 else None))(name)
    out["auto"] = auto_fill
    return out


#: what the last ``auto_fill`` chose and how long choosing took (wall and CPU seconds)
LAST_AUTO = {}


def auto_fill(img, mask):
    """``method="auto"``: the choice (timed on its own) and the fill with the chosen method."""
    import inpaint_plugin
    from inpaint_plugin._evaluate import choose_method

    axis = -1 if img.ndim == 3 else None
    t0, c0 = time.perf_counter(), time.process_time()
    chosen = choose_method(img, mask, channel_axis=axis)
    LAST_AUTO.update(choice=chosen, choose_seconds=time.perf_counter() - t0,
                     choose_cpu_seconds=time.process_time() - c0)
    return inpaint_plugin.inpaint(img, mask, method=chosen, channel_axis=axis)


def warm_up(methods: dict):
    """Run every method once on a small case so numba compilation and cache loading are not timed."""
    img = np.random.default_rng(0).random((128, 128, 3))
    mask = np.zeros((128, 128), bool)
    mask[12:116, 12:116] = True
    mask[2, 2] = True
    for name, fn in methods.items():
        try:
            fn(img, mask)
            fn(img[..., 0], mask)
            if name == "biharmonic":
                _warm_biharmonic()
        except Exception:
            pass


def _warm_biharmonic():
    """Load every numba specialisation a large 2-D biharmonic solve uses (not timed).

    The multigrid kernels are compiled per stencil length (12, 16 and 20 neighbours on the first three
    levels in 2-D), so the warm-up hole must have at least three levels above the coarsest: 390^2 =
    152k unknowns -> 38k -> 9.5k -> 2.4k (coarsest, direct). The lone pixel takes the direct path,
    and the grey and three-channel calls load both channel counts.
    """
    import inpaint_plugin

    img = np.random.default_rng(0).random((400, 400, 3))
    mask = np.zeros((400, 400), bool)
    mask[5:395, 5:395] = True
    mask[1, 1] = True
    inpaint_plugin.inpaint(img[..., 0], mask, method="biharmonic")
    inpaint_plugin.inpaint(img, mask, method="biharmonic", channel_axis=-1)


# ---------------------------------------------------------------------------------------- scaling
def free_form_mask(shape, coverage=0.10, seed=0) -> np.ndarray:
    """Seeded free-form strokes (thick polylines with round joints) up to ``coverage``."""
    import cv2

    rng = np.random.default_rng(seed)
    m = np.zeros(shape, np.uint8)
    s = min(shape)
    while m.mean() < coverage:
        width = max(int(rng.uniform(0.03, 0.07) * s), 1)
        p = rng.uniform(0.1, 0.9, 2) * (shape[1], shape[0])
        for _ in range(int(rng.integers(3, 7))):
            ang = rng.uniform(0, 2 * np.pi)
            q = np.clip(p + rng.uniform(0.05, 0.15) * s * np.array([np.cos(ang), np.sin(ang)]),
                        0, (shape[1] - 1, shape[0] - 1))
            cv2.line(m, tuple(int(v) for v in p), tuple(int(v) for v in q), 1, width)
            cv2.circle(m, tuple(int(v) for v in q), width // 2, 1, -1)
            p = q
    return m.astype(bool)


def scaling_case(size: int):
    from skimage import data, transform

    img = transform.resize(data.camera().astype(np.float64) / 255.0, (size, size), order=1)
    return img, free_form_mask((size, size))


def _scaling_child(size: int, which: str, outfile: str):
    """Run one scaling measurement (in a fresh process) and write its result to ``outfile``."""
    img, mask = scaling_case(size)
    if which == "biharmonic":
        import inpaint_plugin

        _warm_biharmonic()  # every numba kernel loaded, not timed
        fn = lambda: inpaint_plugin.inpaint(img, mask, method="biharmonic")  # noqa: E731
    else:
        from skimage.restoration import inpaint_biharmonic

        fn = lambda: inpaint_biharmonic(img, mask)  # noqa: E731
    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    c0 = time.process_time()
    out = fn()
    res = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
           "peak_rss_mib": peak_rss_mib(),
           "rss_before_mib": rss0, "hole_fraction": float(mask.mean())}
    np.save(outfile + ".npy", out[mask])
    Path(outfile).write_text(json.dumps(res))


def run_scaling(sizes, skimage_max: int):
    rows = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        row = {"size": size}
        for which in ("biharmonic", "skimage"):
            if which == "skimage" and size > skimage_max:
                continue
            tmp = str(RESULTS / f"scaling_{size}_{which}.json")
            subprocess.run([sys.executable, __file__, "--_child", str(size), which, tmp], check=True)
            row[which] = json.loads(Path(tmp).read_text())
        if "skimage" in row:
            img, mask = scaling_case(size)
            a = np.load(str(RESULTS / f"scaling_{size}_biharmonic.json.npy"))
            b = np.load(str(RESULTS / f"scaling_{size}_skimage.json.npy"))
            span = np.ptp(img[~mask])
            row["rel_diff"] = float(np.abs(a - b).max() / span)
        rows.append(row)
        print("scaling", json.dumps(row), flush=True)
    return rows


# ----------------------------------------------------------------------------------------- output
def fmt(x, nd=2):
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def write_markdown(records, peers_status, scaling, methods, path_list, note):
    fam = sorted({r["family"] for r in records})
    agg = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.get("error"):
            continue
        for k in ("psnr", "ssim", "seconds", "peak_mib"):
            agg[(r["method"], r["family"])][k].append(r[k])

    def mean(method, family, key):
        v = agg[(method, family)][key]
        return float(np.nanmean(v)) if v else None

    lines = ["# Classical inpainting benchmark", "", note, ""]
    lines.append("Peers: " + ", ".join(f"`{k}`" + ("" if v is None else f" (not available: {v})")
                                      for k, v in peers_status.items()) + ".")
    lines += ["", "## Mean per mask family (hole PSNR dB / bbox SSIM / seconds per case / peak traced MiB)", ""]
    lines.append("| method | " + " | ".join(fam) + " |")
    lines.append("|---|" + "---|" * len(fam))
    for m in methods:
        cells = []
        for f in fam:
            if not agg[(m, f)]["psnr"]:
                cells.append("failed")
                continue
            n = len(agg[(m, f)]["psnr"])
            full = len({r["case"] for r in records if r["family"] == f})
            cells.append(f"{fmt(mean(m, f, 'psnr'))} / {fmt(mean(m, f, 'ssim'), 3)} / "
                         f"{fmt(mean(m, f, 'seconds'), 3)} / {fmt(mean(m, f, 'peak_mib'), 1)}"
                         + (f" ({n} cases)" if n < full else ""))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "## Median hole PSNR per family (dB): our best method against the best peer", ""]
    peer_names = [m for m in methods if m in PEERS]
    our_names = [m for m in methods if m not in PEERS]

    def median(method, family, cases=None):
        v = [r["psnr"] for r in records if r["method"] == method and r["family"] == family and "psnr" in r
             and (cases is None or r["case"] in cases)]
        return float(np.median(v)) if v else None

    def cases_of(method, family):
        return {r["case"] for r in records if r["method"] == method and r["family"] == family and "psnr" in r}

    n_cases = {f: len({r["case"] for r in records if r["family"] == f}) for f in fam}
    lines.append("A number in brackets: the method ran on fewer of the family's cases "
                 "(e.g. a peer run cut short).")
    lines.append("")
    lines.append("| method | " + " | ".join(fam) + " |")
    lines.append("|---|" + "---|" * len(fam))
    for m in methods:
        cells = []
        for f in fam:
            n = len(cases_of(m, f))
            cells.append(fmt(median(m, f)) + (f" ({n})" if 0 < n < n_cases[f] else ""))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lead = []
    for f in fam:
        best_o = max(((median(m, f), m) for m in our_names if median(m, f) is not None), default=None)
        if best_o is None:
            continue
        # every peer against our best method on the same cases (a peer may have run on fewer)
        worst = None
        for p in peer_names:
            cs = cases_of(p, f)
            if not cs:
                continue
            d = median(best_o[1], f, cs) - median(p, f, cs)
            if worst is None or d < worst[0]:
                worst = (d, p, len(cs))
        if worst:
            lead.append(f"{f}: `{best_o[1]}` {best_o[0]:.2f}, closest peer `{worst[1]}` ({worst[0]:+.2f} dB"
                        + (f" on its {worst[2]} cases" if worst[2] < n_cases[f] else "") + ")")
    if lead:
        lines += ["", "Our best method per family and its lead over the closest peer (medians on the same "
                  "cases): " + "; ".join(lead) + "."]
    autos = [r for r in records if r["method"] == "auto" and "choice" in r]
    if autos:
        lines += ["", "`auto` per family: the methods it chose, and the time of the choice alone (mean wall / "
                  "CPU seconds per case; the fill with the chosen method comes on top):", ""]
        for f in fam:
            rs = [r for r in autos if r["family"] == f]
            if rs:
                picks = ", ".join(f"{m} ×{n}" for m, n in sorted(
                    {m: sum(r["choice"] == m for r in rs) for m in {r["choice"] for r in rs}}.items()))
                lines.append(f"- {f}: {picks}; {np.mean([r['choose_seconds'] for r in rs]):.2f} / "
                             f"{np.mean([r['choose_cpu_seconds'] for r in rs]):.2f} s")
    lines += ["", "## Against the peer of the same run (ΔPSNR dB / ΔSSIM / speed-up × / memory ratio)", "",
              "Speed-up = peer seconds / our seconds; memory ratio = our peak / peer peak (traced).", ""]
    lines.append("| method | peer | " + " | ".join(fam) + " |")
    lines.append("|---|---|" + "---|" * len(fam))
    for m in methods:
        peer = PEER_OF.get(m)
        if peer is None or peer not in methods:
            continue
        cells = []
        for f in fam:
            a, b = agg[(m, f)], agg[(peer, f)]
            if not a["psnr"] or not b["psnr"]:
                cells.append("n/a")
                continue
            dp = mean(m, f, "psnr") - mean(peer, f, "psnr")
            ds = mean(m, f, "ssim") - mean(peer, f, "ssim")
            sp = mean(peer, f, "seconds") / max(mean(m, f, "seconds"), 1e-9)
            mr = mean(m, f, "peak_mib") / max(mean(peer, f, "peak_mib"), 1e-9)
            cells.append(f"{dp:+.2f} / {ds:+.3f} / {sp:.1f}× / {mr:.2f}")
        lines.append(f"| {m} | {peer} | " + " | ".join(cells) + " |")
    lines += scaling_markdown(scaling)
    text = "\n".join(lines) + "\n"
    if not scaling:  # keep the scaling section of an earlier run (``--sizes`` with no size)
        old = (HERE / "RESULTS.md").read_text() if (HERE / "RESULTS.md").exists() else ""
        if "\n" + SCALING_TITLE in old:
            text += "\n" + SCALING_TITLE + old.split("\n" + SCALING_TITLE, 1)[1]
    for p in path_list:
        Path(p).write_text(text)
    return text


SCALING_TITLE = "## Scaling: biharmonic vs skimage.restoration.inpaint_biharmonic"


def scaling_markdown(scaling) -> list:
    """Markdown lines of the scaling table (empty without scaling results)."""
    lines = []
    if scaling:
        lines += ["", SCALING_TITLE + " "
                      "(camera, free-form strokes ~10%, fresh process each)", "",
                  "| size | hole % | ours s (cpu s) | skimage s (cpu s) | speed-up × (cpu) | ours peak RSS MiB | "
                  "skimage peak RSS MiB | max diff / range |", "|---|---|---|---|---|---|---|---|"]
        for r in scaling:
            o = r["biharmonic"]
            s = r.get("skimage")
            lines.append(
                f"| {r['size']}² | {100 * o['hole_fraction']:.1f} | {o['seconds']:.2f} ({o['cpu_seconds']:.2f}) | "
                + (f"{s['seconds']:.2f} ({s['cpu_seconds']:.2f}) | {s['seconds'] / o['seconds']:.1f} "
                   f"({s['cpu_seconds'] / o['cpu_seconds']:.1f}) | " if s else "not run | n/a | ")
                + f"{o['peak_rss_mib']:.0f} | " + (f"{s['peak_rss_mib']:.0f} | {r['rel_diff']:.1e} |" if s else
                                                   "n/a | n/a |"))
    return lines


def replace_scaling_section(path: Path, scaling, note: str):
    """Rewrite only the scaling section (to the end of the file) of an existing results file."""
    text = path.read_text() if path.exists() else "# Classical inpainting benchmark\n"
    head = text.split("\n" + SCALING_TITLE)[0].rstrip("\n")
    path.write_text(head + "\n" + "\n".join(scaling_markdown(scaling)) + "\n\n" + note + "\n")


def write_montage(records_out, cases, methods, path):
    """One case per family (first image name in order): damaged input, then every method."""
    from PIL import Image, ImageDraw

    thumb = 128
    fams = {}
    for c in cases:
        fams.setdefault(c["family"], c)
    cols = ["input"] + list(methods)
    canvas = Image.new("RGB", (thumb * len(cols), (thumb + 14) * len(fams) + 14), "white")
    draw = ImageDraw.Draw(canvas)
    for j, col in enumerate(cols):
        draw.text((j * thumb + 2, 1), col[:20], fill="black")
    for i, (fam, c) in enumerate(sorted(fams.items())):
        y = 14 + i * (thumb + 14)
        draw.text((2, y), fam, fill="black")
        for j, col in enumerate(cols):
            if col == "input":
                img = c["image"].copy()
                img[c["mask"]] = 1.0 if img.ndim == 2 else (1.0, 0.0, 1.0)
            else:
                img = records_out.get((c["file"], col))
                if img is None:
                    continue
            rgb = _to_uint8(img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=-1))
            canvas.paste(Image.fromarray(rgb).resize((thumb, thumb)), (j * thumb, y + 12))
    canvas.save(path)


def report_again(results: Path, peer_files: list):
    """Write the tables again from ``results`` (a ``results.json``) with the peers' records re-read from
    ``peer_files`` (a ``--peers-only`` run that went on after the run of ours)."""
    saved = json.loads(results.read_text())
    status = dict(saved["peers"])
    records = [r for r in saved["records"] if r["method"] not in PEERS]
    cases = {r["case"] for r in records}
    if peer_files:
        for f in peer_files:
            more = json.loads(Path(f).read_text())
            status.update(more["peers"])
            fresh = {r["method"] for r in more["records"]}
            records = [r for r in records if r["method"] not in fresh]
            records += [r for r in saved["records"] if r["method"] in PEERS and r["method"] not in fresh]
            records += [r for r in more["records"] if r["case"] in cases]
    else:
        records = saved["records"]
    seen = set()
    records = [r for r in records if not ((r["case"], r["method"]) in seen or seen.add((r["case"], r["method"])))]
    methods = list(dict.fromkeys(r["method"] for r in records if r["method"] not in PEERS))
    methods += [m for m in PEERS if any(r["method"] == m for r in records)]
    note = saved.get("note", f"From `{results.name}`.") + (
        f" Peers re-read with `--report` at {time.strftime('%H:%M UTC', time.gmtime())}." if peer_files else "")
    (RESULTS / "results.json").write_text(json.dumps(dict(saved, records=records, peers=status, note=note),
                                                     indent=1))
    print(write_markdown(records, status, [], methods, [RESULTS / "RESULTS.md", HERE / "RESULTS.md"], note))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 images per family, scaling 512 and 1024 only")
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="scaling sizes (default 512 1024 2048 4096)")
    ap.add_argument("--skimage-max", type=int, default=4096, help="largest scaling size skimage is run at")
    ap.add_argument("--methods", nargs="*", default=None, help="only these of our methods")
    ap.add_argument("--scaling-only", action="store_true",
                    help="run only the scaling part and replace the scaling table of benchmarks/RESULTS.md")
    ap.add_argument("--peers", nargs="*", default=None, help="only these peers")
    ap.add_argument("--peers-only", action="store_true",
                    help="run only the peers and write their records to benchmarks/results/peers.json")
    ap.add_argument("--peers-out", default=None, metavar="FILE",
                    help="where --peers-only writes (default benchmarks/results/peers.json)")
    ap.add_argument("--reuse-peers", nargs="+", default=None, metavar="FILE",
                    help="take the peers' records from these files (written by --peers-only on the same cases) "
                         "instead of running them (FSR best alone takes ~1 CPU-minute per case)")
    ap.add_argument("--report", default=None, metavar="RESULTS_JSON",
                    help="only write the tables again from a results.json, with the peers re-read from "
                         "--reuse-peers")
    ap.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        _scaling_child(int(args._child[0]), args._child[1], args._child[2])
        return
    if args.scaling_only:
        sizes = args.sizes if args.sizes is not None else [512, 1024, 2048, 4096]
        scaling = run_scaling(sizes, args.skimage_max)
        load = os.getloadavg()
        note = (f"Scaling table from `python benchmarks/bench_classical.py --scaling-only --sizes "
                f"{' '.join(map(str, sizes))}`, {os.cpu_count()} CPU(s) shared with other jobs, load average at the "
                f"end {load[0]:.1f}. Ours solves the hole's independent blocks in parallel threads "
                "(`$INPAINT_PLUGIN_NUM_THREADS`, default: all CPUs), scikit-image runs on one core: the wall "
                "ratio is what a user waits, the CPU ratio (`time.process_time()`, all threads) the work done. "
                "Each run is the first call in a fresh process after a warm-up that loads the numba kernels "
                "(a 400x400 hole, grey and RGB); the warm-up also sets the RSS floor of ~385 MiB. "
                "The tables above it come from the last full run.")
        replace_scaling_section(HERE / "RESULTS.md", scaling, note)
        print("\n".join(scaling_markdown(scaling)))
        return
    sys.path.insert(0, str(REPO / "src"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.report:
        report_again(Path(args.report), args.reuse_peers or [])
        return
    cases = load_cases(args.quick)
    ours = our_methods()
    if args.methods:
        ours = {k: v for k, v in ours.items() if k in args.methods}
    reused = []
    if args.reuse_peers:
        status = {}
        files = {c["file"] for c in cases}
        for f in args.reuse_peers:
            saved = json.loads(Path(f).read_text())
            status.update(saved["peers"])
            reused += [r for r in saved["records"] if r["case"] in files]
        peers = {k: PEERS[k] for k in status if status[k] is None}
    else:
        status = peer_status()
        peers = {k: v for k, v in PEERS.items() if status[k] is None and (not args.peers or k in args.peers)}
        status = {k: v for k, v in status.items() if not args.peers or k in args.peers}
    if args.peers_only:
        ours = {}
    methods = {**ours, **peers}
    to_run = {k: v for k, v in methods.items() if not (args.reuse_peers and k in peers)}
    warm_up({k: v for k, v in to_run.items() if k not in PEERS})  # numba compilation; peers need none
    records, outputs = list(reused), {}
    for c in cases:
        for name, fn in to_run.items():
            rec = {"case": c["file"], "family": c["family"], "method": name}
            try:
                out, dt, peak = run_one(fn, c["image"], c["mask"])
                rec.update(psnr=hole_psnr(c["image"], out, c["mask"]), ssim=bbox_ssim(c["image"], out, c["mask"]),
                           seconds=dt, peak_mib=peak)
                if name == "auto":
                    rec.update(LAST_AUTO)
                outputs[(c["file"], name)] = out
            except Exception as exc:
                rec["error"] = f"{type(exc).__name__}: {exc}"
            records.append(rec)
            print(json.dumps(rec), flush=True)
        if args.peers_only:  # written after every case, so a long run can be used while it goes on
            out_file = Path(args.peers_out or RESULTS / "peers.json")
            out_file.parent.mkdir(parents=True, exist_ok=True)
            out_file.write_text(json.dumps({"records": records, "peers": status}, indent=1))
    if args.peers_only:
        return
    if args.reuse_peers:  # read again: a --peers-only run may have gone on while ours ran
        files = {c["file"] for c in cases}
        records = [r for r in records if r["method"] not in peers]
        for f in args.reuse_peers:
            records += [r for r in json.loads(Path(f).read_text())["records"] if r["case"] in files]
    sizes = args.sizes if args.sizes is not None else ([512, 1024] if args.quick else [512, 1024, 2048, 4096])
    scaling = run_scaling(sizes, args.skimage_max) if sizes else []
    load = os.getloadavg()
    note = (f"Run: `python benchmarks/bench_classical.py{' --quick' if args.quick else ''}`, {len(cases)} cases, "
            f"{os.cpu_count()} CPU(s), load average at the end {load[0]:.1f}. Seconds are wall-clock on a "
            "shared machine: compare ratios from one run only."
            + (" The peers' rows come from `--peers-only` runs ("
               + ", ".join(f"`{Path(f).name}`" for f in args.reuse_peers)
               + ") on the same cases and machine, started before ours." if args.reuse_peers else ""))
    (RESULTS / "results.json").write_text(json.dumps({"records": records, "scaling": scaling,
                                                      "peers": status, "note": note}, indent=1))
    write_montage(outputs, cases, list(methods), RESULTS / "montage.png")
    text = write_markdown(records, status, scaling, list(methods),
                          [RESULTS / "RESULTS.md", HERE / "RESULTS.md"], note)
    print(text)


if __name__ == "__main__":
    main()
