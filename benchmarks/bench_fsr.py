"""Our ``fsr`` against OpenCV's FSR (``cv2.xphoto.inpaint``, ``INPAINT_FSR_FAST``), paired per case.

Every case of ``../shared/bench`` is filled by OpenCV's fast FSR (8-bit input, as it requires), by
``fsr`` with ``quality="fast"`` (the same published parameters) and by ``fsr`` with its default
(``"balanced"``), one right after the other in this process, and timed in CPU seconds
(``time.process_time()``, all threads), which a busy shared machine disturbs much less than wall time.
Reported per mask family: median hole PSNR and mean CPU seconds, and the speed-up (total OpenCV CPU
time / ours). Needs opencv-contrib-python-headless (``cv2.xphoto``).

Usage::

    python benchmarks/bench_fsr.py [--json benchmarks/results/fsr.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_classical import hole_psnr, load_cases, peer_cv2_fsr_fast  # noqa: E402

RUNS = ("cv2_fsr_fast", "fsr_fast", "fsr")


def main(argv=None) -> int:
    import inpaint_plugin as ip

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=HERE / "results" / "fsr.json")
    args = ap.parse_args(argv)
    cases = load_cases(False)
    img = np.random.default_rng(0).random((64, 64, 3))
    hole = np.zeros((64, 64), bool)
    hole[20:40, 20:40] = True
    for quality in ("fast", "balanced"):  # numba compilation is not timed
        ip.inpaint(img, hole, method="fsr", channel_axis=-1, quality=quality)
        ip.inpaint(img[..., 0], hole, method="fsr", quality=quality)
    rows = []
    for c in cases:
        axis = -1 if c["image"].ndim == 3 else None
        fills = {
            "cv2_fsr_fast": lambda: peer_cv2_fsr_fast(c["image"], c["mask"]),
            "fsr_fast": lambda: ip.inpaint(c["image"], c["mask"], method="fsr", channel_axis=axis, quality="fast"),
            "fsr": lambda: ip.inpaint(c["image"], c["mask"], method="fsr", channel_axis=axis),
        }
        row = {"case": c["file"], "family": c["family"]}
        for name in RUNS:
            t0 = time.process_time()
            out = np.asarray(fills[name](), dtype=np.float64).reshape(c["image"].shape)
            row[name] = {"cpu_seconds": time.process_time() - t0, "psnr": hole_psnr(c["image"], out, c["mask"])}
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1))

    fams = defaultdict(list)
    for r in rows:
        fams[r["family"]].append(r)
    lines = ["| family | OpenCV FSR fast dB / CPU s | `fsr` fast dB / CPU s | `fsr` (balanced) dB / CPU s | "
             "speed-up fast / balanced |", "|---|---|---|---|---|"]
    for fam, rs in sorted(fams.items()) + [("all", rows)]:
        cells = []
        for name in RUNS:
            cells.append(f"{np.median([r[name]['psnr'] for r in rs]):.2f} / "
                         f"{np.mean([r[name]['cpu_seconds'] for r in rs]):.2f}")
        total = {n: sum(r[n]["cpu_seconds"] for r in rs) for n in RUNS}
        lines.append(f"| {fam} | " + " | ".join(cells) + f" | {total['cv2_fsr_fast'] / total['fsr_fast']:.1f}× / "
                     f"{total['cv2_fsr_fast'] / total['fsr']:.1f}× |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
