"""Inference time and peak memory per image of every registered deep backend, on CPU (not run in CI).

For each deep method (a backend built with ``inpaint_plugin.deep.make_backend``), in a fresh process
of its own (so that its peak resident memory, VmHWM, is its own), a checkpoint with random weights is
written in its official format (the timings depend little on the weight values since the subnormal
softmax weights and Gaussian tails are flushed to zero; see ``bench_reference.py``), then
``inpaint_plugin.inpaint`` is timed on an RGB image with holes at 256x256 and 1024x1024 (``--mask``:
``free_form``, the shared ``astronaut__free_form`` mask, ~11% holes in localised strokes, scaled by
nearest neighbour so that both sizes have the same geometry; or ``lines``, strokes of width side/40
from edge to edge covering ~12%, the worst case for windows around the holes) (median of ``--repeats`` runs, after one warm-up run at the first size that also loads the model; wall and
process CPU seconds). Our own bare network forward at its native input size (256x256) is timed too,
and both are compared with the reference implementation's forward: timed in the same process, with
the same weights and input, when ``--reference-dir MODEL=PATH`` gives a checkout of the authors'
repository (the adapters of ``bench_reference.py``; marked ``*`` in the table), else the figure stored
in ``shared/conformance/<method>/spec.json`` (``cpu_forward_seconds*``, 1 thread, measured once by the
conformance authors) where there is one. Ratios: ``inpaint 256 / reference``, ``inpaint 256 / own forward`` and
``inpaint 1024 / inpaint 256`` (CPU seconds; wall seconds on a busy shared machine are noisy).

    python benchmarks/bench_deep.py                      # all deep methods, 2 threads
    python benchmarks/bench_deep.py --methods medfe --threads 1 --json benchmarks/results/deep.json
    python benchmarks/bench_deep.py --methods pennet --threads 1 --repeats 1 --mask lines
    python benchmarks/bench_deep.py --threads 1 --reference-dir spl=SPL --reference-dir pennet=PEN-Net-for-Inpainting
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INPAINT_PLUGIN_SHARED", REPO.parent / "shared"))


def deep_specs(names=None) -> dict:
    """``{method: ModelSpec}`` of the registered deep backends (optionally only ``names``)."""
    import inpaint_plugin as ip
    from inpaint_plugin.deep._spec import ModelSpec

    out = {}
    for name, backend in ip.methods().items():
        spec = getattr(backend.func, "spec", None)
        if isinstance(spec, ModelSpec) and (not names or name in names):
            out[name] = spec
    missing = set(names or ()) - set(out)
    if missing:
        raise SystemExit(f"not registered deep methods: {sorted(missing)}; known: {sorted(deep_specs())}")
    return out


def reference_seconds(name: str):
    """``(seconds, key)`` of the reference CPU forward time in the conformance spec, or ``(None, None)``."""
    path = SHARED / "conformance" / name / "spec.json"
    if not path.is_file():
        return None, None
    spec = json.loads(path.read_text())
    for key, value in spec.items():
        if key.startswith("cpu_forward_seconds"):
            if isinstance(value, dict):  # per size (lama: {"256x256": ..., "512x512": ...}): the 256 one
                size = next((k for k in value if k.startswith("256")), next(iter(value)))
                return float(value[size]), f"{key}[{size}]"
            return float(value), key
    return None, None


def _lines_mask(size: int) -> np.ndarray:
    """Straight strokes of width size/40 between random points across the whole image until 12% is
    covered (every 256**2 region holds holes: the worst case for windows around the holes)."""
    from skimage import draw

    rng = np.random.default_rng(0)
    mask = np.zeros((size, size), bool)
    width = max(3, size // 40)
    while mask.mean() < 0.12:
        r0, c0, r1, c1 = rng.integers(size // 16, size - size // 16, 4)
        rr, cc = draw.line(r0, c0, r1, c1)
        for dr in range(-width // 2, width // 2 + 1):
            mask[np.clip(rr + dr, 0, size - 1), cc] = True
    return mask


def _random_walk_strokes(size: int = 256, seed: int = 0) -> np.ndarray:
    """A stand-in for the shared free-form mask: a few random-walk strokes (width 8-12 pixels) in
    three localised groups, ~12% holes at 256**2."""
    from skimage import draw

    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), bool)
    centres = rng.integers(size // 8, size - size // 8, (3, 2))
    while mask.mean() < 0.12:
        r, c = centres[rng.integers(3)] + rng.integers(-size // 10, size // 10 + 1, 2)
        width = int(rng.integers(4, 7))
        for _ in range(int(rng.integers(2, 5))):
            angle = rng.uniform(0, 2 * np.pi)
            length = rng.integers(size // 16, size // 6)
            r1 = int(np.clip(r + length * np.sin(angle), 0, size - 1))
            c1 = int(np.clip(c + length * np.cos(angle), 0, size - 1))
            rr, cc = draw.line(int(r), int(c), r1, c1)
            for dr in range(-width, width + 1):
                for dc in range(-width, width + 1):
                    if dr * dr + dc * dc <= width * width:
                        mask[np.clip(rr + dr, 0, size - 1), np.clip(cc + dc, 0, size - 1)] = True
            r, c = r1, c1
    return mask


def free_form_mask(size: int) -> tuple:
    """``(mask, source)``: the shared ``astronaut__free_form`` mask (256**2, ~11% holes in localised
    random-walk strokes) at ``size`` x ``size``, scaled by nearest neighbour (the same geometry at any
    size); a generator of similar strokes when the shared cases are absent (``source`` says which)."""
    path = SHARED / "bench" / "astronaut__free_form.npz"
    if path.is_file():
        base, source = np.load(path)["mask"].astype(bool), str(path)
    else:
        base, source = _random_walk_strokes(256), "generated random-walk strokes (shared bench cases absent)"
    rows = np.arange(size) * base.shape[0] // size
    cols = np.arange(size) * base.shape[1] // size
    return base[np.ix_(rows, cols)], source


def make_case(size: int, mask_kind: str = "lines"):
    """An RGB uint8 image (the astronaut) and a mask of ``size`` x ``size``, deterministic:
    ``mask_kind`` ``"lines"`` (strokes of width size/40 between random points across the image, ~12%)
    or ``"free_form"`` (:func:`free_form_mask`)."""
    from skimage import data, transform

    image = transform.resize(data.astronaut(), (size, size), order=1, anti_aliasing=True, preserve_range=True)
    image = image.astype(np.uint8)
    if mask_kind == "free_form":
        return image, free_form_mask(size)[0]
    if mask_kind != "lines":
        raise ValueError(f"mask_kind must be 'lines' or 'free_form', got {mask_kind!r}")
    return image, _lines_mask(size)


def _timed(fn, repeats: int) -> tuple:
    """Medians of ``(wall seconds, process CPU seconds)``; on a shared, busy machine the CPU time (with
    one thread) is the better estimate of the wall time on an idle one."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def _reference_forward(name, spec, module, x, m, reference_dir, repeats: int) -> dict:
    """Wall and CPU seconds (medians of ``repeats``) of the authors' forward, built from the checkout
    ``reference_dir`` with ``module``'s weights (:func:`bench_reference.reference_forward`), and the
    largest difference of its output to ours."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_reference

    forward, diff = bench_reference.reference_forward(name, spec, module, x, m, reference_dir)
    wall, cpu = _timed(forward, repeats)
    return {"reference_inproc_s": wall, "reference_inproc_cpu_s": cpu, "reference_max_abs_diff": diff}


def bench_method(name, spec, sizes, repeats, workdir: Path, resolution: str = "auto", mask_kind: str = "lines",
                 reference_dir=None) -> dict:
    import torch

    import inpaint_plugin as ip
    from inpaint_plugin import deep

    weights = workdir / f"{name}_weights"
    deep.random_checkpoint(name, weights, seed=0)
    row = {"method": name}
    # bare network forward at the native size (what the reference figure measures)
    side = spec.fixed_size or 256
    image, mask = make_case(side)
    module = deep._run.get_model(spec, weights, torch.device("cpu"))
    x = torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
    m = torch.from_numpy(mask[None, None].astype(np.float32))
    with torch.inference_mode():
        spec.predict(module, x, m)  # warm-up
        row["forward_s"], row["forward_cpu_s"] = _timed(lambda: spec.predict(module, x, m), repeats)
        if reference_dir is not None:  # the authors' module, same weights, same input, same process
            row.update(_reference_forward(name, spec, module, x, m, reference_dir, repeats))
    row["forward_size"] = side
    for size in sizes:
        image, mask = make_case(size, mask_kind)
        row[f"holes_{size}"] = float(mask.mean())

        def call():
            return ip.inpaint(image, mask, method=name, channel_axis=-1, weights=str(weights), device="cpu",
                              resolution=resolution)

        if size == sizes[0]:
            call()  # warm-up (and model load; the model stays cached for the larger sizes)
        row[f"inpaint_{size}_s"], row[f"inpaint_{size}_cpu_s"] = _timed(call, repeats)
    row["reference_s"], row["reference_key"] = reference_seconds(name)
    deep.clear_model_cache()
    return row


def _child(args) -> int:
    """Time one method in this process and print its row as JSON (with the peak RSS)."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _rss import peak_rss_mib

    torch.set_num_threads(args.threads)
    (name, spec), = deep_specs([args.child]).items()
    with tempfile.TemporaryDirectory(prefix="bench_deep_") as tmp:
        row = bench_method(name, spec, args.sizes, args.repeats, Path(tmp), args.resolution, args.mask,
                           args.reference_dir_path)
    row["peak_rss_mib"] = peak_rss_mib()
    print("ROW " + json.dumps(row))
    return 0


def _ratio(a, b):
    return None if a is None or b is None or not b else a / b


def fmt(v) -> str:
    """A ratio with two decimals, or n/a."""
    return "n/a" if v is None else f"{v:.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="*", help="deep methods to time (default: all registered)")
    parser.add_argument("--sizes", nargs="*", type=int, default=[256, 1024], help="image sides (default 256 1024)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (reference figures: 1 thread)")
    parser.add_argument("--resolution", default="auto", help="resolution strategy passed to inpaint (default auto)")
    parser.add_argument("--mask", default="free_form", choices=["free_form", "lines"],
                        help="free_form (default): the shared astronaut__free_form mask, scaled by nearest "
                             "neighbour to each size; lines: strokes from edge to edge (the worst case)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--reference-dir", action="append", default=[], metavar="MODEL=PATH",
                        help="a checkout of the authors' repository for MODEL (see bench_reference.py): its forward "
                             "is timed in the same process, with the same weights and input, and used as the "
                             "reference instead of the spec.json figure (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--reference-dir-path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    refs = dict(item.split("=", 1) for item in args.reference_dir)
    if args.child:
        return _child(args)

    import subprocess

    import torch

    rows = []
    for name in deep_specs(args.methods):
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--child", name, "--sizes", *map(str, args.sizes), "--repeats",
               str(args.repeats), "--threads", str(args.threads), "--resolution", args.resolution, "--mask", args.mask]
        if name in refs:
            cmd += ["--reference-dir-path", refs[name]]
        res = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("ROW ")]
        if res.returncode or not line:
            print(f"{name} failed:\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(line[-1][4:]))

    small, large = args.sizes[0], args.sizes[-1]
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), median of {args.repeats}, "
          f"resolution={args.resolution!r}; CPU seconds (wall seconds)")
    if args.mask == "free_form":
        print(f"mask: free_form from {free_form_mask(small)[1]}, scaled by nearest neighbour")
    else:
        print("mask: lines (strokes of width side/40 from edge to edge, ~12%)")
    if rows:
        print("holes: " + ", ".join(f"{s}²: {100 * rows[0][f'holes_{s}']:.1f}%" for s in args.sizes))
    head = ["method", f"own forward {small}²", f"reference forward {small}²"]
    head += [f"inpaint {s}²" for s in args.sizes]
    head += [f"{small}²: inpaint / reference", f"{small}²: inpaint / own forward", f"{large}² / {small}²",
             "peak RSS MiB"]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for r in rows:
        if r.get("reference_inproc_cpu_s") is not None:  # the authors' code, timed in this run
            r["reference_s"], r["reference_key"] = r["reference_inproc_cpu_s"], "authors' code, this run"
            ref = f"{r['reference_s']:.2f}*"
        else:
            ref = f"{r['reference_s']:.2f}" if r["reference_s"] is not None else "n/a"
        cells = [r["method"], f"{r['forward_cpu_s']:.2f} ({r['forward_s']:.2f})", ref]
        cells += [f"{r[f'inpaint_{s}_cpu_s']:.2f} ({r[f'inpaint_{s}_s']:.2f})" for s in args.sizes]
        r["ratio_reference"] = _ratio(r[f"inpaint_{small}_cpu_s"], r["reference_s"])
        r["ratio_forward"] = _ratio(r[f"inpaint_{small}_cpu_s"], r["forward_cpu_s"])
        r["ratio_size"] = _ratio(r[f"inpaint_{large}_cpu_s"], r[f"inpaint_{small}_cpu_s"])
        cells += [fmt(r["ratio_reference"]), fmt(r["ratio_forward"]), fmt(r["ratio_size"]),
                  f"{r['peak_rss_mib']:.0f}"]
        print("| " + " | ".join(cells) + " |")
    if any(r.get("reference_inproc_cpu_s") is not None for r in rows):
        print("* the authors' forward timed in this run (same process, weights and input; largest output difference: "
              + ", ".join(f"{r['method']} {r['reference_max_abs_diff']:.1e}" for r in rows
                          if r.get("reference_inproc_cpu_s") is not None)
              + "); the others: the spec.json figure")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "torch": torch.__version__,
                                         "resolution": args.resolution, "mask": args.mask,
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
