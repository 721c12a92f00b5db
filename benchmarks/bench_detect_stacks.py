"""Benchmark: finding a camera's static hot pixels in a stack (recall and false alarms of ``detect``).

Synthetic 60-frame uint16 stacks (128 x 128): a moving smooth scene around 1000 counts with Poisson
shot noise (sigma about 32) and 40 hot pixels at the same place in every frame, added with a fixed
amplitude. For three amplitudes and three seeds, the recall over all frames of the hot pixels and the
false-alarm rate over the other pixels, for:

- 3-D neighbourhoods (``in_plane=False``), hot/dead only: the detector before stacks were searched per frame;
- per frame (``in_plane=True``), hot/dead/clusters;
- per frame plus the ``static`` map (the default kinds).

Usage::

    python benchmarks/bench_detect_stacks.py
"""
from __future__ import annotations

import collections

import numpy as np

import inpaint_plugin as ip


def camera_stack(frames: int, shape: tuple, seed: int, amplitude: int):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    scene = np.stack([1000 + 300 * np.sin((xx + 2 * t) / 9.0) * np.cos((yy - t) / 13.0) for t in range(frames)])
    stack = rng.poisson(scene).astype(np.uint16)
    hot = np.zeros(shape, bool)
    hot[tuple(rng.integers(3, shape[0] - 3, size=(2, 40)))] = True
    stack[:, hot] += np.uint16(amplitude)
    return stack, hot


def main() -> None:
    variants = [("3-D neighbourhoods (in_plane=False, hot/dead)", dict(kinds=("hot", "dead"), in_plane=False)),
                ("per frame (hot/dead/clusters)", dict(kinds=("hot", "dead", "clusters"))),
                ("per frame + static (default)", dict())]
    print("| amplitude | variant | recall | false alarms |")
    print("|---|---|---|---|")
    for amplitude in (2000, 300, 200):
        scores = collections.defaultdict(list)
        for seed in range(3):
            stack, hot = camera_stack(60, (128, 128), seed, amplitude)
            for label, kw in variants:
                found = ip.detect(stack, **kw)
                scores[label].append((found[:, hot].mean(), found[:, ~hot].mean()))
        for label, v in scores.items():
            print(f"| +{amplitude} | {label} | {np.mean([r for r, _ in v]):.3f} | "
                  f"{100 * np.mean([f for _, f in v]):.4f} % |")


if __name__ == "__main__":
    main()
