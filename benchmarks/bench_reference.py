"""Our deep networks' CPU forward against the reference implementations' forward, side by side (not run in CI).

For each network, our module (built by its backend's ``SPEC``) gets the conformance weights of
``shared/conformance/<model>/`` (``fill.py`` with the ``fill`` seed/gain of its ``spec.json``; the
backend's random initialisation when those files are absent) and is timed on the conformance input
``case0.npz`` (256 x 256; a synthetic image and mask when absent) through ``SPEC.predict``: the bare
network forward plus its few elementwise pre/post-processing ops. Timings are process CPU seconds
(``time.process_time``) of one forward under ``torch.inference_mode()`` with ``--threads`` torch
threads (default 1), the best of ``--repeats`` runs after one warm-up run.

With ``--reference-dir <model>=<path>`` the authors' module is imported at run time from ``<path>``,
a checkout of the authors' repository (nothing of theirs is in this repository), built with the
constructor arguments recorded in ``spec.json``, loaded with the *same* state_dict (strictly: our key
names are the reference's), checked to give the same output (max abs difference printed), and timed
in the same process, alternating with ours run by run (so that both see the same machine load).
Without it, our time is compared with the reference figure recorded in ``spec.json``
(``cpu_forward_seconds*``, measured by the conformance authors with the authors' code, torch CPU, 1
thread, best of 3): that figure comes from another moment and machine load, so only the in-process
comparison is a like-for-like one.

Checkouts of the authors' code (the commit recorded in ``spec.json["reference"]``)::

    git clone https://github.com/WendongZh/SPL && git -C SPL checkout 35d5329           # spl
    git clone https://github.com/nipponjo/deepfillv2-pytorch                            # deepfill_v2 (4899fd3)
    git clone -b pytorch https://github.com/researchmm/PEN-Net-for-Inpainting           # pennet (8721a55)
    git clone https://github.com/shepnerd/inpainting_gmcnn                              # gmcnn (08eb38f)
    git clone https://github.com/daa233/generative-inpainting-pytorch                   # deepfill_v1 (c6cdaea)

    python benchmarks/bench_reference.py --reference-dir spl=SPL --reference-dir pennet=PEN-Net-for-Inpainting
    python benchmarks/bench_reference.py                        # all deep networks vs the spec.json figures
    python benchmarks/bench_reference.py --models spl,gmcnn --repeats 5 --json benchmarks/results/reference.json

The authors' modules import a few packages that their generators do not use (torchvision for
transforms/VGG, cv2 in GMCNN's utilities); when one is not installed an empty stand-in module is
registered so that the import succeeds. Only the generators listed in :data:`ADAPTERS` have a
side-by-side adapter (the others are compared with their spec.json figure only).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INPAINT_PLUGIN_SHARED", REPO.parent / "shared"))
CONFORMANCE = SHARED / "conformance"

#: modules imported by the authors' files but not used by their generators
_OPTIONAL_IMPORTS = ("torchvision", "torchvision.transforms", "torchvision.models", "torchvision.utils", "cv2")
#: top-level module names of the authors' repositories, dropped from sys.modules between models
#: (several repositories have a package called ``model``)
_THEIR_TOP_LEVEL = ("model", "models", "core", "util", "utils", "networks", "rn", "models_inpaint")


# --------------------------------------------------------------------------- inputs and weights

def _spec_json(model: str) -> dict:
    path = CONFORMANCE / model / "spec.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def reference_seconds(model: str):
    """``(seconds, key)``: the reference's CPU forward time recorded in ``spec.json`` (the 256x256
    entry of a per-size table), or ``(None, None)``."""
    for key, value in _spec_json(model).items():
        if key.startswith("cpu_forward_seconds"):
            if isinstance(value, dict):
                size = next((k for k in value if k.startswith("256")), next(iter(value)))
                return float(value[size]), f"{key}[{size}]"
            return float(value), key
    return None, None


def case_inputs(model: str, size: int = 256):
    """``(image (1, 3, H, W) in [0, 1], mask (1, 1, H, W) 0/1, source)``: the conformance case0
    input of ``model``, or the astronaut with line strokes (~12 % holes) when it is absent."""
    import torch

    path = CONFORMANCE / model / "case0.npz"
    if path.is_file():
        case = np.load(path)
        if "image_uint8" in case and "mask_uint8" in case:
            image = torch.from_numpy(case["image_uint8"]).permute(2, 0, 1)[None].float() / 255
            mask = torch.from_numpy(case["mask_uint8"] > 0)[None, None].float()
            return image, mask, str(path)
    from skimage import data, draw, transform

    rgb = transform.resize(data.astronaut(), (size, size), order=1, anti_aliasing=True, preserve_range=True)
    rng = np.random.default_rng(0)
    hole = np.zeros((size, size), bool)
    while hole.mean() < 0.12:
        r0, c0, r1, c1 = rng.integers(size // 16, size - size // 16, 4)
        rr, cc = draw.line(r0, c0, r1, c1)
        for dr in range(-3, 4):
            hole[np.clip(rr + dr, 0, size - 1), cc] = True
    image = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return image, torch.from_numpy(hole)[None, None].float(), "synthetic (astronaut, line strokes)"


def conformance_state(module, model: str):
    """The conformance weights for ``module`` (``fill.py`` + the spec's seed/gain), or None."""
    fill_py = CONFORMANCE / "fill.py"
    spec = _spec_json(model)
    if not fill_py.is_file() or "fill" not in spec:
        return None
    sys.path.insert(0, str(CONFORMANCE))
    try:
        from fill import fill_state_dict
    finally:
        sys.path.remove(str(CONFORMANCE))
    kwargs = {k: v for k, v in spec["fill"].items() if k in ("seed", "gain")}
    return fill_state_dict(module.state_dict(), **kwargs)


# --------------------------------------------------------------------------- the authors' generators

def _stand_ins():
    """Register empty modules for the optional imports that are not installed."""
    for name in _OPTIONAL_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            stub = types.ModuleType(name)
            stub.__all__ = []
            sys.modules[name] = stub
            parent, _, child = name.rpartition(".")
            if parent in sys.modules:
                setattr(sys.modules[parent], child, stub)


def _import_from(root: Path, sub: str, module: str):
    """Import ``module`` with ``root / sub`` first on sys.path (and the authors' top-level names
    forgotten first, so that another repository's ``model`` package is not reused)."""
    for name in list(sys.modules):
        if name.split(".")[0] in _THEIR_TOP_LEVEL:
            del sys.modules[name]
    path = str((root / sub).resolve())
    sys.path.insert(0, path)
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(path)


def _ref_spl(root: Path):
    import torch.nn.functional as F

    net = _import_from(root, ".", "networks").G_Net(input_channels=3, residual_blocks=8, threshold=0.8)

    def inputs(image, mask):
        # eval_final.py: x = the whole image (G_Net masks it), masked_512 / mask_512 nearest x2
        masked = image * (1 - mask) + mask
        big = (2 * image.shape[2], 2 * image.shape[3])
        return (image, mask, F.interpolate(masked, size=big, mode="nearest"), F.interpolate(mask, size=big))

    return net, inputs, lambda out: out[0]


def _ref_deepfill_v2(root: Path):
    import torch

    net = _import_from(root, "model", "networks_tf").Generator(cnum_in=5, cnum=48, return_flow=False)

    def inputs(image, mask):
        # Generator.infer: image in [-1, 1], holes 0, cat(image, ones, ones * mask)
        x = (image * 2 - 1) * (1 - mask)
        return torch.cat([x, torch.ones_like(mask), mask], dim=1), mask

    return net, inputs, lambda out: (out[1] + 1) / 2


def _ref_pennet(root: Path):
    import torch

    net = _import_from(root, ".", "model.pennet").InpaintGenerator()

    def inputs(image, mask):
        # test.py: image in [-1, 1], holes set to 1, cat(image, mask)
        x = (image * 2 - 1) * (1 - mask) + mask
        return torch.cat([x, mask], dim=1), mask

    return net, inputs, lambda out: (out[1] + 1) / 2


def _ref_gmcnn(root: Path):
    import torch
    import torch.nn.functional as F

    net = _import_from(root, "pytorch", "model.net").GMCNN(4, 3, cnum=32, act=F.elu, norm=None)

    def inputs(image, mask):
        # test.py / evaluate: image in [-1, 1], holes 0, cat(image, mask)
        return (torch.cat([(image * 2 - 1) * (1 - mask), mask], dim=1),)

    return net, inputs, lambda out: (out + 1) / 2


def _ref_deepfill_v1(root: Path):

    gen = _import_from(root, ".", "model.networks").Generator({"input_dim": 3, "ngf": 32}, False, None)

    def inputs(image, mask):
        # test_tf_model.py: image in [-1, 1], holes 0
        return (image * 2 - 1) * (1 - mask), mask

    return gen, inputs, lambda out: (out[1] + 1) / 2


#: ``model -> builder(checkout root) -> (module, inputs(image, mask) -> args, output(out) -> image in [0, 1])``
ADAPTERS = {
    "spl": _ref_spl,
    "deepfill_v2": _ref_deepfill_v2,
    "pennet": _ref_pennet,
    "gmcnn": _ref_gmcnn,
    "deepfill_v1": _ref_deepfill_v1,
}


#: why the outputs of a pair may differ by more than float rounding
NOTES = {
    "deepfill_v1": "our backend builds DeepFillV1(patch_norm='max') (the TF normalisation the released weights "
                   "were made with); the reference at c6cdaea divides by sqrt(sum(w**2 + 1e-4)): the outputs "
                   "differ by about 1e-3 (the conformance 'variant_tfnorm' case)",
}


# --------------------------------------------------------------------------- timing

def _cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def reference_forward(model: str, spec, ours, image, mask, reference_dir) -> tuple:
    """``(forward, max_abs_diff)``: the authors' forward on ``image``/``mask`` (a no-argument callable),
    built from the checkout ``reference_dir`` by :data:`ADAPTERS` with the weights of our module
    ``ours`` (strictly), and the largest difference of its output to ours (``spec.predict``)."""
    _stand_ins()
    ref, make_inputs, to_image = ADAPTERS[model](Path(reference_dir))
    ref = ref.eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    args = make_inputs(image, mask)

    def forward():
        return ref(*args)

    diff = float((spec.predict(ours, image, mask) - to_image(forward()).clamp(0, 1)).abs().max())
    return forward, diff


def run_model(model: str, spec, reference_dir, repeats: int) -> dict:
    """Time our forward (and the reference's, when ``reference_dir``) for one network."""
    import torch

    ours = spec.build().eval()
    state = conformance_state(ours, model)
    if state is not None:
        ours.load_state_dict(state, strict=True)
    image, mask, source = case_inputs(model)
    row = {"model": model, "input": source, "weights": "conformance fill" if state is not None else "random init"}
    row["spec_s"], row["spec_key"] = reference_seconds(model)

    def ours_forward():
        return spec.predict(ours, image, mask)

    with torch.inference_mode():
        ours_forward()  # warm-up
        if reference_dir is None:
            row["ours_s"] = min(_cpu_seconds(ours_forward) for _ in range(repeats))
            return row
        ref_forward, row["max_abs_diff"] = reference_forward(model, spec, ours, image, mask, reference_dir)
        ours_t, ref_t = [], []
        for _ in range(repeats):  # alternate, so that both see the same load
            ours_t.append(_cpu_seconds(ours_forward))
            ref_t.append(_cpu_seconds(ref_forward))
        row["ours_s"], row["reference_s"] = min(ours_t), min(ref_t)
    return row


def _fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def print_table(rows) -> None:
    head = ["model", "ours s", "reference s (same process)", "ours / reference", "spec.json s", "ours / spec",
            "max |diff|"]
    lines = [head]
    for r in rows:
        ref = r.get("reference_s")
        lines.append([
            r["model"], _fmt(r["ours_s"]), _fmt(ref), _fmt(r["ours_s"] / ref if ref else None),
            _fmt(r["spec_s"]), _fmt(r["ours_s"] / r["spec_s"] if r["spec_s"] else None),
            "-" if "max_abs_diff" not in r else f"{r['max_abs_diff']:.1e}",
        ])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    for i, line in enumerate(lines):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="", help="comma-separated networks (default: all registered deep ones)")
    parser.add_argument("--reference-dir", action="append", default=[], metavar="MODEL=PATH",
                        help="a checkout of the authors' repository for MODEL (repeatable)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per network (best is reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")

    refs = {}
    for item in args.reference_dir:
        model, sep, path = item.partition("=")
        if not sep or not path:
            parser.error(f"--reference-dir wants MODEL=PATH, got {item!r}")
        if model not in ADAPTERS:
            parser.error(f"no reference adapter for {model!r}; known: {sorted(ADAPTERS)}")
        if not Path(path).is_dir():
            parser.error(f"--reference-dir {model}: {path!r} is not a folder")
        refs[model] = path

    import torch

    import inpaint_plugin as ip
    from inpaint_plugin.deep._spec import ModelSpec

    torch.set_num_threads(args.threads)
    specs = {name: backend.func.spec for name, backend in ip.methods().items()
             if isinstance(getattr(backend.func, "spec", None), ModelSpec)}
    names = [m for m in args.models.split(",") if m] or sorted(specs)
    unknown = sorted(set(names) - set(specs))
    if unknown:
        parser.error(f"not registered deep networks: {unknown}; known: {sorted(specs)}")
    rows = []
    for name in names:
        row = run_model(name, specs[name], refs.get(name), args.repeats)
        rows.append(row)
        extra = f", reference {row['reference_s']:.3f} s" if "reference_s" in row else ""
        print(f"{name}: ours {row['ours_s']:.3f} s{extra} ({row['input']}, {row['weights']})", file=sys.stderr)
    print(f"\nCPU seconds per forward at 256x256, {args.threads} thread(s), best of {args.repeats}, "
          f"torch {torch.__version__}\n")
    print_table(rows)
    for r in rows:
        if "max_abs_diff" in r and r["model"] in NOTES:
            print(f"\n{r['model']}: {NOTES[r['model']]}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "repeats": args.repeats,
                                         "torch": torch.__version__, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
