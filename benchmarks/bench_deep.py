"""Inference time per image of every registered deep backend, on CPU (not run in CI).

For each deep method (a backend built with ``inpaint_plugin.deep.deep.make_backend``), a checkpoint
with random weights is written in its official format (timings do not depend on the weight values),
then ``inpaint_plugin.inpaint`` is timed on an RGB image with free-form holes at 256x256 and 1024x1024
(median of ``--repeats`` runs after one warm-up run that also loads the model; wall and process CPU
seconds). The bare network
forward at its native input size is timed too, and compared with the reference figure stored in
``shared/conformance/<method>/spec.json`` (``cpu_forward_seconds*``; measured on this machine class
with the reference implementation) where there is one.

    python benchmarks/bench_deep.py                      # all deep methods, 2 threads
    python benchmarks/bench_deep.py --methods medfe --threads 1 --json benchmarks/results/deep.json
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


def make_case(size: int):
    """An RGB uint8 image and a free-form mask (~15% holes) of ``size`` x ``size``, deterministic."""
    from skimage import data, draw, transform

    image = transform.resize(data.astronaut(), (size, size), order=1, anti_aliasing=True, preserve_range=True)
    image = image.astype(np.uint8)
    rng = np.random.default_rng(0)
    mask = np.zeros((size, size), bool)
    width = max(3, size // 40)
    while mask.mean() < 0.15:
        r0, c0, r1, c1 = rng.integers(size // 16, size - size // 16, 4)
        rr, cc = draw.line(r0, c0, r1, c1)
        for dr in range(-width // 2, width // 2 + 1):
            mask[np.clip(rr + dr, 0, size - 1), cc] = True
    return image, mask


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


def bench_method(name, spec, sizes, repeats, workdir: Path, resolution: str = "auto") -> dict:
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
    row["forward_size"] = side
    for size in sizes:
        image, mask = make_case(size)

        def call():
            return ip.inpaint(image, mask, method=name, channel_axis=-1, weights=str(weights), device="cpu",
                              resolution=resolution)

        call()  # warm-up (and model load)
        row[f"inpaint_{size}_s"], row[f"inpaint_{size}_cpu_s"] = _timed(call, repeats)
    row["reference_s"], row["reference_key"] = reference_seconds(name)
    deep.clear_model_cache()
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="*", help="deep methods to time (default: all registered)")
    parser.add_argument("--sizes", nargs="*", type=int, default=[256, 1024], help="image sides (default 256 1024)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (reference figures: see spec.json)")
    parser.add_argument("--resolution", default="auto", help="resolution strategy passed to inpaint (default auto)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    specs = deep_specs(args.methods)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_deep_") as tmp:
        for name, spec in specs.items():
            print(f"timing {name} ...", file=sys.stderr, flush=True)
            rows.append(bench_method(name, spec, args.sizes, args.repeats, Path(tmp), args.resolution))

    head = ["method", "forward (native)"] + [f"inpaint {s}x{s}" for s in args.sizes] + ["reference forward"]
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), median of {args.repeats}, "
          f"resolution={args.resolution!r}, free-form holes ~15%; wall seconds (process CPU seconds)")
    print(" | ".join(head))
    for r in rows:
        ref = f"{r['reference_s']:.2f} s ({r['reference_key']})" if r["reference_s"] is not None else "n/a"
        cells = [r["method"], f"{r['forward_s']:.2f} s ({r['forward_cpu_s']:.2f} cpu) @{r['forward_size']}"]
        cells += [f"{r[f'inpaint_{s}_s']:.2f} s ({r[f'inpaint_{s}_cpu_s']:.2f} cpu)" for s in args.sizes] + [ref]
        print(" | ".join(cells))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "torch": torch.__version__,
                                         "resolution": args.resolution, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
