"""Command line tool.

::

    inpaint-plugin IMAGE [MASK] -o OUT [--method M] [--param k=v ...] [--channel-axis N] [--nodata V]
    inpaint-plugin --list [--json]
    inpaint-plugin --demo [-o demo.png]
    inpaint-plugin train --method M --images DIR --out CKPT [...]   (see ``inpaint-plugin train -h``)

IMAGE and MASK may be TIFF, PNG/JPEG, .npy or zarr; OUT is written in the format of its suffix
(to a temporary file first, then renamed, so a failure never leaves a partial output).
Without MASK, the NaNs of a float image (and ``--nodata`` pixels) are filled.
Exit codes: 0 success, 1 runtime failure, 2 bad arguments or unreadable input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


class CLIError(Exception):
    """A problem with the user's arguments or files (exit code 2)."""


def _parse_params(items):
    params = {}
    for item in items or ():
        if "=" not in item:
            raise CLIError(f"--param expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key:
            raise CLIError(f"--param expects key=value, got {item!r}")
        params[key] = value
    return params


def _coerce_params(method: str, raw: dict) -> dict:
    """Convert ``--param`` strings with the method's metadata (errors name the parameter)."""
    from ._registry import get_backend

    backend = get_backend(method)
    out = {}
    for key, value in raw.items():
        p = backend.param_map.get(key)
        if key == "seed" and p is None:
            out[key] = int(value)
        elif p is None:
            out[key] = value  # inpaint() reports the unknown parameter with the list of valid ones
        elif value.lower() == "none" and p.default is None:
            out[key] = None
        else:
            out[key] = p.validate(value, method)
    return out


def _list_methods(as_json: bool) -> int:
    from . import methods

    table = methods()
    if as_json:
        print(json.dumps({name: b.to_dict() for name, b in table.items()}, indent=2, default=str))
        return 0
    width = max(map(len, table), default=0)
    for name, b in table.items():
        dims = "2-D" if b.spatial_ndim == 2 else ("3-D" if b.spatial_ndim == 3 else "nD")
        extra = ", needs weights" if b.needs_weights else ""
        print(f"{name:<{width}}  [{dims}{extra}]  {b.description}")
        for p in b.params:
            rng = ""
            if p.choices is not None:
                rng = " {" + ", ".join(map(str, p.choices)) + "}"
            elif p.min is not None or p.max is not None:
                rng = f" [{'' if p.min is None else p.min}, {'' if p.max is None else p.max}]"
            print(f"{'':<{width}}    --param {p.name}=<{p.kind}> (default {p.default!r}){rng}  {p.description}")
    return 0


def _demo(out: Path, method: str, params: dict) -> int:
    """Repair the bundled damaged microscopy image and write a before / mask / after PNG."""
    import numpy as np
    from skimage import data as skdata
    from skimage.metrics import peak_signal_noise_ratio

    from . import inpaint
    from ._io import write_image
    from .data import damaged_cell

    image, mask = damaged_cell()
    repaired = inpaint(image, mask, method=method, **params)
    clean = skdata.cell()
    psnr_before = peak_signal_noise_ratio(clean[mask], image[mask], data_range=255)
    psnr_after = peak_signal_noise_ratio(clean[mask], repaired[mask], data_range=255)
    gap = np.full((image.shape[0], 8), 255, np.uint8)
    montage = np.concatenate([image, gap, np.where(mask, 255, 0).astype(np.uint8), gap, repaired], axis=1)
    write_image(out, montage)
    print(f"demo: {int(mask.sum())} damaged pixels in a {image.shape[0]}x{image.shape[1]} microscopy image, "
          f"method {method!r}")
    print(f"hole PSNR against the undamaged image: {psnr_before:.1f} dB before, {psnr_after:.1f} dB after")
    print(f"wrote {out} (damaged | mask | repaired)")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inpaint-plugin",
        description="Fill missing or damaged pixels of an image (mask True/non-zero = fill).",
        epilog="Training: inpaint-plugin train -h",
    )
    p.add_argument("image", nargs="?", help="input image (.tif, .png, .jpg, .npy, .zarr)")
    p.add_argument("mask", nargs="?", help="mask image, non-zero = fill (default: NaNs / --nodata of IMAGE)")
    p.add_argument("-o", "--output", help="output file (.tif, .png, .npy, .zarr)")
    p.add_argument("-m", "--method", default="biharmonic", help="method name (see --list); default biharmonic")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="method parameter (repeatable)")
    p.add_argument("--channel-axis", type=int, default=None,
                   help="axis of the channels (default: last axis of RGB(A) PNG/JPEG, otherwise none)")
    p.add_argument("--nodata", type=float, default=None, help="also fill pixels equal to this value")
    p.add_argument("--no-clip", action="store_true", help="let float results leave the known value range")
    p.add_argument("--list", action="store_true", help="list the methods and their parameters")
    p.add_argument("--json", action="store_true", help="with --list: machine-readable output")
    p.add_argument("--demo", action="store_true",
                   help="repair the bundled damaged microscopy image; writes -o (default inpaint-demo.png)")
    p.add_argument("--detect", nargs="?", const="default", metavar="KINDS",
                   help="find the defects with inpaint_plugin.detect and fill them (together with MASK if "
                        "given); KINDS: comma-separated (nan,saturated,hot,dead,clusters,lines,zeros), "
                        "'all', or nothing for the default kinds")
    p.add_argument("--mask-out", metavar="PATH", help="also write the mask that was filled (uint8, 1 = filled)")
    p.add_argument("--chunks", type=int, default=None,
                   help="process in chunks of this size (streaming, for images larger than memory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _default_channel_axis(path: str, ndim: int, shape) -> int | None:
    if Path(path).suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif") and ndim == 3 and shape[-1] in (3, 4):
        return -1
    return None


def _run(args) -> int:
    import numpy as np

    from . import inpaint
    from ._io import read_image, write_image

    if not args.image:
        raise CLIError("IMAGE is required (or use --list / --demo)")
    if not args.output:
        raise CLIError("-o/--output is required")
    params = _coerce_params(args.method, _parse_params(args.param))
    def is_zarr(path) -> bool:  # the reader's and writer's own rule (name, or zarr metadata in a folder)
        from ._io import _format

        try:
            return bool(path) and _format(Path(path)) == "zarr"
        except ValueError:  # other formats: refused by the reader or writer with their own message
            return False

    needs_dask = ("--chunks (streaming)" if args.chunks
                  else ".zarr output" if is_zarr(args.output) or is_zarr(args.mask_out)
                  else ".zarr input" if is_zarr(args.image) or is_zarr(args.mask) else None)
    if needs_dask:
        try:
            import dask.array  # noqa: F401
        except ImportError:
            raise CLIError(f"{needs_dask} needs the dask extra: pip install 'inpaint-plugin[dask]'") from None
    if args.chunks and (args.detect is not None or args.mask_out):
        raise CLIError("--detect and --mask-out need the whole image in memory; they cannot be combined with --chunks")
    if args.mask_out:
        from ._io import _format

        _format(Path(args.mask_out))  # an unknown format is refused before any work
    if args.chunks:
        from ._dask import stream_inpaint

        stream_inpaint(args.image, args.mask, args.output, args.method, params, chunks=args.chunks,
                       channel_axis=args.channel_axis, nodata=args.nodata, clip=not args.no_clip,
                       progress=not args.quiet)
        return 0
    image = read_image(args.image)
    mask = None
    if args.mask:
        mask = read_image(args.mask)
        if mask.ndim == 3 and mask.shape[-1] in (3, 4) and image.ndim in (2, 3) and mask.shape[:2] == image.shape[:2]:
            mask = mask[..., :3].any(axis=-1)  # an RGB(A) mask image: any non-zero colour is a hole
        mask = np.asarray(mask) != 0
    channel_axis = args.channel_axis
    if channel_axis is None:
        channel_axis = _default_channel_axis(args.image, image.ndim, image.shape)
    if args.detect is not None:
        from ._detect import detect

        kinds = {"default": None, "all": "all"}.get(args.detect.strip())
        if kinds is None and args.detect.strip() != "default":
            kinds = [k.strip() for k in args.detect.split(",") if k.strip()]
        found = detect(image, kinds, channel_axis=channel_axis)
        if mask is not None and mask.shape != found.shape:
            raise CLIError(f"mask {args.mask}: shape {mask.shape} does not match the image's {found.shape}")
        mask = found if mask is None else mask | found
        if not args.quiet:
            print(f"detected {int(found.sum())} defective pixels", file=sys.stderr)

    bar = None
    progress = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=None, desc=args.method, unit="slice", leave=False)

        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        result = inpaint(image, mask, method=args.method, channel_axis=channel_axis, nodata=args.nodata,
                         clip=not args.no_clip, progress=progress, **params)
    finally:
        if bar is not None:
            bar.close()
    write_image(args.output, result)
    if args.mask_out:
        from ._api import prepare

        filled = prepare(image, mask, args.method, channel_axis=channel_axis, nodata=args.nodata, **params).mask
        write_image(args.mask_out, filled.astype(np.uint8))
    n = int(np.count_nonzero(result != image)) if result.shape == image.shape else 0
    if not args.quiet:
        print(f"wrote {args.output} ({n} values changed)")
    return 0


def main(argv=None) -> int:
    """Entry point of ``inpaint-plugin``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from ._cli_train import main as train_main

        return train_main(argv[1:])
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.list:
            return _list_methods(args.json)
        if args.demo:
            return _demo(Path(args.output or "inpaint-demo.png"), args.method,
                         _coerce_params(args.method, _parse_params(args.param)))
        return _run(args)
    except (CLIError, ValueError, TypeError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"inpaint-plugin: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("inpaint-plugin: interrupted; no output written", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure inside a method: report it without a traceback wall
        print(f"inpaint-plugin: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
