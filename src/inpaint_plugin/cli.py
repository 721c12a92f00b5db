"""Command line tool.

::

    inpaint-plugin [inpaint] IMAGE [MASK] -o OUT [--method M|auto] [--param k=v ...] [--channel-axis N]
                   [--nodata V] [--detect [KINDS]] [--mask-out PATH] [--overwrite] [--allow-lossy] [--chunks N]
                   [--series N]
    inpaint-plugin --list [--json]
    inpaint-plugin --demo [-o demo.png]
    inpaint-plugin weights {list,import,path,remove,fetch} ...   (see ``inpaint-plugin weights -h``)
    inpaint-plugin train --method M --images DIR --out CKPT [...] (see ``inpaint-plugin train -h``)

The commands are subcommands of one parser (:func:`build_parser`; ``inpaint-plugin -h`` lists them,
``inpaint-plugin COMMAND -h`` describes one; the ``train`` options live in
:mod:`inpaint_plugin.training._cli`). ``inpaint`` is the default command: ``inpaint-plugin in.tif
mask.tif -o out.tif`` and ``inpaint-plugin inpaint in.tif mask.tif -o out.tif`` are the same (name it
explicitly when an input file is called ``weights`` or ``train``).

IMAGE and MASK may be TIFF, PNG/JPEG, .npy or zarr; OUT is written in the format of its suffix (to a
temporary file first, then renamed, so a failure never leaves a partial output). An output that
cannot hold the result (a float image into PNG, a lossy JPEG without ``--allow-lossy``) is refused
before any work, as is an output that would replace an input, the other output, or an existing
folder (a zarr store only with ``--overwrite``). Without MASK, the NaNs of a float image (and
``--nodata`` pixels) are filled.

Exit codes: 0 success, 1 runtime failure, 2 bad arguments or unreadable input, 130 interrupted,
143 / 129 terminated by SIGTERM / SIGHUP (no output written, no temporary file left).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from pathlib import Path

__all__ = ["build_parser", "main"]

PROG = "inpaint-plugin"
COMMANDS = ("inpaint", "weights", "train")
_INT64_MAX = 2**63 - 1


class CLIError(Exception):
    """A problem with the user's arguments or files (exit code 2)."""


class _Terminated(BaseException):
    """SIGTERM / SIGHUP, raised in the main thread so that partial outputs are cleaned up."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _clean(message: object) -> str:
    """An error message fit for the command line: never torch's advice to unpickle with weights_only=False."""
    text = str(message)
    cut = text.find("Weights only load failed")
    if cut >= 0:  # torch's explanation goes on to suggest unpickling anyway: not passed on
        end = text.find("\n", cut)
        text = (text[:cut].rstrip(" :") + ("" if end < 0 else text[end:])).strip()
    text = re.sub(r"\bweights=(['\"])(.*?)\1", r"-p weights=\2", text)  # Python's spelling of the parameter
    if "weights_only" in text:
        parts = re.split(r"(?<=[.!?])\s+", text)
        text = " ".join(p for p in parts if "weights_only" not in p) or "the checkpoint could not be read safely"
    return text


# --------------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------------
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


def _int_value(key: str, value: str, what: str = "an integer") -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise CLIError(f"--param {key}={value}: expected {what}, got {value!r}") from None
    if abs(number) > _INT64_MAX:
        raise CLIError(f"--param {key}={value}: the value is too large (at most {_INT64_MAX} in magnitude)")
    return number


def _coerce_params(method: str, raw: dict) -> dict:
    """Convert ``--param`` strings with the method's metadata; every error names the parameter and its type."""
    from ._registry import get_backend

    backend = get_backend(method)
    out: dict = {}
    for key, value in raw.items():
        p = backend.param_map.get(key)
        if key == "seed" and p is None:
            out[key] = _int_value(key, value, "an integer (the random seed)")
        elif p is None:
            out[key] = value  # inpaint() reports the unknown parameter with the list of valid ones
        elif value.strip().lower() == "none" and p.default is None:
            out[key] = None
        else:
            if p.kind == "int":
                _int_value(key, value, f"an integer (parameter {key!r} of method {method!r})")
            try:
                converted = p.validate(value, method)
            except (TypeError, ValueError, OverflowError) as exc:
                raise CLIError(f"--param {key}={value}: {exc}") from None
            if p.kind == "float" and converted in (float("inf"), float("-inf")):
                raise CLIError(f"--param {key}={value}: parameter {key!r} of method {method!r} must be a finite "
                               f"number")
            out[key] = converted
    return out


# --------------------------------------------------------------------------------------------------
# --list and --demo
# --------------------------------------------------------------------------------------------------
def _list_methods(as_json: bool) -> int:
    from . import methods

    table = methods()
    if as_json:
        print(json.dumps({name: b.to_dict() for name, b in table.items()}, indent=2, default=str))
        return 0
    width = max(map(len, table), default=0)
    for name, b in table.items():
        dims = "2-D" if b.spatial_ndim == 2 else ("3-D" if b.spatial_ndim == 3 else "nD")
        extra = ", needs weights (inpaint-plugin weights list)" if b.needs_weights else ""
        print(f"{name:<{width}}  [{dims}{extra}]  {b.description}")
        for p in b.params:
            rng = ""
            if p.choices is not None:
                rng = " {" + ", ".join(map(str, p.choices)) + "}"
            elif p.min is not None or p.max is not None:
                rng = f" [{'' if p.min is None else p.min}, {'' if p.max is None else p.max}]"
            print(f"{'':<{width}}    --param {p.name}=<{p.kind}> (default {p.default!r}){rng}  {p.description}")
    print(f"{'auto':<{width}}  [any]  a quick evaluate() on the image's own known pixels picks the method")
    return 0


def _demo(out: Path, method: str, params: dict, quiet: bool = False) -> int:
    """Repair the bundled damaged microscopy image and write a before / mask / after PNG."""
    import numpy as np
    from skimage import data as skdata
    from skimage.metrics import peak_signal_noise_ratio

    from . import inpaint
    from ._io import write_image
    from .data import damaged_cell

    image, mask = damaged_cell()
    if method == "auto":
        method = _choose(image, mask, None, None, params, quiet)
        params = _coerce_params(method, params)
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


# --------------------------------------------------------------------------------------------------
# inpaint (the default command)
# --------------------------------------------------------------------------------------------------
_USAGE = (f"{PROG} [inpaint] IMAGE [MASK] -o OUT [options]\n"
          f"       {PROG} --list [--json] | --demo [-o OUT]\n"
          f"       {PROG} weights {{list,import,path,remove,fetch}} ...\n"
          f"       {PROG} train --method M --images PATH... --out CKPT [...]")
_INPAINT_DESCRIPTION = "Fill missing or damaged pixels of an image (mask True/non-zero = fill)."
_WEIGHTS_DESCRIPTION = ("Manage the trained weights of the deep methods. Imported weights are checked against the "
                        "network, stored as safetensors in the cache (INPAINT_PLUGIN_CACHE, default the user cache "
                        "folder) with their sha256, and used when no -p weights=PATH is given.")


def _add_inpaint_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", nargs="?", help="input image (.tif, .png, .jpg, .npy, .zarr)")
    p.add_argument("mask", nargs="?", help="mask image, non-zero = fill (default: NaNs / --nodata of IMAGE)")
    p.add_argument("-o", "--output", help="output file (.tif, .png, .npy, .zarr)")
    p.add_argument("-m", "--method", default="biharmonic",
                   help="method name (see --list), or 'auto' (the best of a quick evaluation on the image); "
                        "default biharmonic")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                   help="method parameter (repeatable), e.g. -p seed=1 or -p weights=PATH for a deep method")
    p.add_argument("--channel-axis", type=int, default=None,
                   help="axis of the channels (default: from the file: TIFF/OME axes, last axis of RGB(A) "
                        "pictures, otherwise none)")
    p.add_argument("--nodata", type=float, default=None, help="also fill pixels equal to this value")
    p.add_argument("--no-clip", action="store_true", help="let float results leave the known value range")
    p.add_argument("--per-slice", action="store_true", default=None,
                   help="fill each 2-D plane of a stack on its own (time series, independent frames, coarse "
                        "z steps); default: on when the file's axes have a time axis (T), else nD methods fill "
                        "the whole volume jointly")
    p.add_argument("--joint", dest="per_slice", action="store_false",
                   help="fill a stack jointly with the nD methods even when the file has a time axis")
    p.add_argument("--value-range", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="deep networks: the data values mapped onto the network's [0, 1] (default: the uint8 "
                        "range, else the 0.1 and 99.9 percentiles of the known values)")
    p.add_argument("--list", action="store_true", help="list the methods and their parameters")
    p.add_argument("--json", action="store_true", help="with --list: machine-readable output")
    p.add_argument("--demo", action="store_true",
                   help="repair the bundled damaged microscopy image; writes -o (default inpaint-demo.png)")
    p.add_argument("--detect", nargs="?", const="default", metavar="KINDS",
                   help="find the defects with inpaint_plugin.detect and fill them (together with MASK if "
                        "given); KINDS: comma-separated (nan,saturated,hot,dead,clusters,lines,zeros), "
                        "'all', or nothing for the default kinds")
    p.add_argument("--mask-out", metavar="PATH", help="also write the mask that was filled (uint8, 1 = filled)")
    p.add_argument("--overwrite", action="store_true",
                   help="allow OUT to replace an existing zarr store, or an input file")
    p.add_argument("--allow-lossy", action="store_true",
                   help="allow a lossy output format (JPEG), which changes the known pixels too")
    p.add_argument("--chunks", type=int, default=None,
                   help="process in chunks of this size (streaming, for images larger than memory)")
    p.add_argument("--series", type=int, default=None, metavar="N",
                   help="which image series of a TIFF / OME-TIFF IMAGE holding several (e.g. the positions of "
                        "a multi-position acquisition) to fill, from 0; MASK uses the same series when it holds "
                        "several too. Default: the first, with a warning when there are others")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages")


def _same_file(a, b) -> bool:
    """Whether two paths name the same file (symlinks and relative paths resolved; need not exist)."""
    if not a or not b:
        return False
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _check_target(path: str, argument: str, overwrite: bool) -> None:
    """Refuse an output path that is an existing folder (unless a zarr store and --overwrite)."""
    p = Path(path)
    if p.is_dir():
        from ._formats import is_zarr_store

        if is_zarr_store(p):
            if not overwrite:
                raise CLIError(f"{argument} {path}: a zarr store exists there; pass --overwrite to replace it")
        else:
            raise CLIError(f"{argument} {path}: an existing folder (not a zarr store); refusing to replace it "
                           f"and its files. Choose another name")


def _check_writable(path, dtype, shape, channel_axis, allow_lossy: bool, argument: str) -> None:
    """The format table's check (before any work), with the CLI's names in the message."""
    from ._formats import check_writable

    try:
        check_writable(path, dtype, shape, channel_axis=channel_axis, allow_lossy=allow_lossy, argument=argument)
    except ValueError as exc:
        raise CLIError(str(exc).replace("(allow_lossy=True, --allow-lossy)", "(--allow-lossy)")
                       .replace(f"{argument}=", f"{argument} ")) from None


def _write_kwargs(overwrite: bool, allow_lossy: bool) -> dict:
    """Keyword arguments of ``_io.write_image`` for the CLI's flags."""
    return {"overwrite": overwrite, "allow_lossy": allow_lossy}


def _default_channel_axis(path: str, ndim: int, shape) -> int | None:
    """The format table's channel convention for a file whose metadata names no channel axis."""
    from ._formats import default_channel_axis

    try:
        return default_channel_axis(path, shape)
    except ValueError:
        return None


def _call_with_progress(func, desc: str, quiet: bool, *args, **kwargs):
    """Call ``func``, with a tqdm bar when it reports progress: a ``progress(done, total)`` callback
    (default None) or ``progress=True`` (a bool default); without such a parameter, a plain call."""
    import inspect

    try:
        param = inspect.signature(func).parameters.get("progress")
    except (TypeError, ValueError):
        param = None
    if quiet or param is None:
        return func(*args, **kwargs)
    if isinstance(param.default, bool):
        return func(*args, progress=True, **kwargs)
    from tqdm.auto import tqdm

    bar = tqdm(total=None, desc=desc, leave=False)

    def progress(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        return func(*args, progress=progress, **kwargs)
    finally:
        bar.close()


def _info(args, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


#: The numba kernel module of each classical method (and of detect), to announce a first compilation.
_KERNELS = {"biharmonic": "_bilaplace", "cdd": "_cdd", "criminisi": "_criminisi", "fsr": "_fsr", "lsp": "_lsp",
            "patchmatch": "_patchmatch", "telea": "_fmm", "tv": "_tv", "detect": "_detect"}


def _announce_compile(args, what: str) -> None:
    """Say so when the kernels of ``what`` are compiled now (first use after an installation)."""
    from ._classical import kernels_cached

    module = _KERNELS.get(what)
    if module is not None and not kernels_cached(module):
        _info(args, f"compiling {what} kernels (first use only) ...")


def _choose(image, mask, channel_axis, nodata, raw_params: dict, quiet: bool) -> str:
    """``--method auto``: the method inpaint(method="auto") would use; reported on stderr."""
    from ._evaluate import choose_method

    if not quiet:
        print("method auto: comparing the candidate methods on the image's known pixels ...", file=sys.stderr)
    chosen = _call_with_progress(choose_method, "auto: trials", quiet, image, mask, channel_axis=channel_axis,
                                 nodata=nodata, accepts=tuple(k for k in raw_params if k != "seed"))
    print(f"method auto: chose {chosen!r}", file=sys.stderr)
    return chosen


def _prepare_mask(image, mask, method, channel_axis, nodata, params, extra=None):
    """The mask inpaint() fills (the given mask, NaNs / nodata, detected defects), in the image's spatial shape."""
    import numpy as np

    from ._engine import prepare
    kw = {"per_slice": extra["per_slice"]} if extra and "per_slice" in extra else {}
    return np.ascontiguousarray(prepare(image, mask, method, channel_axis=channel_axis, nodata=nodata,
                                        **kw, **params).mask)


def _mask_series(mask: str | None, series: int | None) -> int | None:
    """The series of MASK for ``--series``: the same index when MASK holds several series too (one
    mask per position), else ``None`` (a single mask serves every series)."""
    from ._io import count_series

    if mask is None or series is None:
        return None
    return series if count_series(mask) > 1 else None


def _stream(args, output, params, channel_axis, write_kw) -> None:
    """``--chunks``: :func:`inpaint_plugin._dask.stream_inpaint`, reading the series of ``--series``."""
    import warnings

    from ._dask import stream_inpaint

    with warnings.catch_warnings():
        # the multi-series warning about IMAGE was shown when _run read it; not a second time
        warnings.filterwarnings("ignore", message=re.escape(str(Path(args.image))) + " holds .* image series")
        stream_inpaint(args.image, args.mask, output, args.method, params, chunks=args.chunks,
                       channel_axis=channel_axis, nodata=args.nodata, clip=not args.no_clip,
                       progress=not args.quiet, series=args.series,
                       mask_series=_mask_series(args.mask, args.series), **write_kw)


def _run(args) -> int:
    import numpy as np

    from . import inpaint
    from ._io import read_image, write_image

    if not args.image:
        raise CLIError("IMAGE is required (or use --list / --demo)")
    if not args.output:
        raise CLIError("-o/--output is required")
    auto = args.method == "auto"
    raw = _parse_params(args.param)
    params = {k: v for k, v in raw.items()}
    if auto:
        if args.chunks:
            raise CLIError("--method auto needs the whole image in memory; with --chunks choose a method "
                           "(--method auto on a part of the image tells which)")
        if "seed" in raw:
            params["seed"] = _int_value("seed", raw["seed"], "an integer (the random seed)")
    else:
        params = _coerce_params(args.method, raw)

    def is_zarr(path) -> bool:  # the format table's rule (name, or zarr metadata in a folder)
        from ._formats import format_for

        try:
            return bool(path) and format_for(path).kind == "zarr"
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
    # outputs: checked before any work
    for a, b, what in ((args.output, args.mask_out, "-o/--output and --mask-out name the same file"),):
        if _same_file(a, b):
            raise CLIError(f"{what} ({a}); the mask would replace the result")
    for out_arg, out in (("-o/--output", args.output), ("--mask-out", args.mask_out)):
        if not out:
            continue
        for in_arg, src in (("IMAGE", args.image), ("MASK", args.mask)):
            if _same_file(out, src) and not args.overwrite:
                raise CLIError(f"{out_arg} {out} is the input {in_arg}; refusing to replace an input "
                               f"(pass --overwrite to do so)")
        _check_target(out, out_arg, args.overwrite)
    _check_writable(args.output, "uint8", None, None, args.allow_lossy, "-o/--output")  # format, lossy, extras
    if args.mask_out:
        _check_writable(args.mask_out, "uint8", None, None, args.allow_lossy, "--mask-out")
    output, mask_out = args.output, args.mask_out  # a symlink is written through by write_image

    write_kw = _write_kwargs(True if not Path(output).is_dir() else args.overwrite, args.allow_lossy)
    extra: dict = {}
    if args.per_slice is not None:
        extra["per_slice"] = args.per_slice
    if args.value_range is not None:
        extra["value_range"] = tuple(args.value_range)
    if args.chunks:
        if extra.get("per_slice") or "value_range" in extra:
            raise CLIError("--per-slice and --value-range are not supported with --chunks yet")
        try:
            lazy = read_image(args.image, lazy=True, series=args.series)
        except ValueError as exc:
            raise _series_option(exc, args.series) from None
        channel_axis = args.channel_axis
        if channel_axis is None:
            channel_axis = _default_channel_axis(args.image, lazy.ndim, lazy.shape)
        _check_writable(args.output, lazy.dtype, lazy.shape, channel_axis, args.allow_lossy, "-o/--output")
        _stream(args, output, params, channel_axis, write_kw)
        _info(args, f"wrote {args.output}")
        return 0

    _info(args, f"reading {args.image}" + (f" (series {args.series})" if args.series is not None else ""))
    image, meta = _read_with_metadata(args.image, args.quiet, series=args.series)
    channel_axis = args.channel_axis
    if channel_axis is None:  # where the file says the channels are (TIFF/OME axes, RGB pictures)
        channel_axis = meta.channel_axis if meta is not None and meta.axes else None
        if channel_axis is None:
            channel_axis = _default_channel_axis(args.image, image.ndim, image.shape)
        if channel_axis is not None and not args.quiet:
            print(f"channels on axis {channel_axis} (from {Path(args.image).name}"
                  f"{'; axes ' + meta.axes if meta is not None and meta.axes else ''})", file=sys.stderr)
    mask = None
    if args.mask:
        from ._rules import collapse_rgb_mask

        mask, _ = _read_with_metadata(args.mask, args.quiet, series=_mask_series(args.mask, args.series))
        spatial = [n for i, n in enumerate(image.shape)
                   if channel_axis is None or i != channel_axis % max(image.ndim, 1)]
        mask = np.asarray(collapse_rgb_mask(mask, spatial)) != 0  # an RGB(A) mask picture: any colour is a hole
    _check_writable(args.output, image.dtype, image.shape, channel_axis, args.allow_lossy, "-o/--output")
    if args.detect is not None:
        from ._detect import detect

        kinds: str | list | None = {"default": None, "all": "all"}.get(args.detect.strip())
        if kinds is None and args.detect.strip() != "default":
            kinds = [k.strip() for k in args.detect.split(",") if k.strip()]
        _info(args, "detecting defects ...")
        _announce_compile(args, "detect")
        found = _call_with_progress(detect, "detect", args.quiet, image, kinds, channel_axis=channel_axis)
        if mask is not None and mask.shape != found.shape[found.ndim - mask.ndim:]:
            raise CLIError(f"mask {args.mask}: shape {mask.shape} does not match the image's {found.shape}")
        mask = found if mask is None else mask | found
        _info(args, f"detected {int(found.sum())} defective pixels")

    method = args.method
    if auto:
        method = _choose(image, mask, channel_axis, args.nodata, raw, args.quiet)
        params = _coerce_params(method, raw)
        if "seed" in params and "seed" not in _param_names(method):
            params.pop("seed")  # the chosen method is deterministic: the seed has nothing to steer
    if "per_slice" not in extra and meta is not None and meta.time_axes and image.ndim - (channel_axis is not None) > 2:
        # frames of a time series are independent: the default follows the file's axes
        from ._registry import get_backend

        if get_backend(method).spatial_ndim is None:
            extra["per_slice"] = True
            _info(args, f"filling frame by frame (the file's axes {meta.axes} have a time axis; --joint to fill "
                        "the stack as a volume)")

    _announce_compile(args, method)
    result = _call_with_progress(inpaint, method, args.quiet, image, mask, method=method, channel_axis=channel_axis,
                                 nodata=args.nodata, clip=not args.no_clip, **extra, **params)
    filled = None
    if mask_out:
        filled = _prepare_mask(image, mask, method, channel_axis, args.nodata, params, extra).astype(np.uint8)
        _check_writable(args.mask_out, filled.dtype, filled.shape, None, args.allow_lossy, "--mask-out")
    if meta is not None:
        write_kw["metadata"] = meta  # axes, calibration, ImageJ / OME metadata of the input, kept
    write_image(output, result, progress=not args.quiet, **write_kw)
    if mask_out:
        write_image(mask_out, filled, progress=not args.quiet,
                    **_write_kwargs(True if not Path(mask_out).is_dir() else args.overwrite, args.allow_lossy))
    n = int(np.count_nonzero(result != image)) if result.shape == image.shape else 0
    if not args.quiet:
        print(f"wrote {args.output} ({n} values changed{', method ' + repr(method) if auto else ''})")
    return 0


def _read_with_metadata(path, quiet: bool = True, series: int | None = None):
    """``(array, ImageMetadata)`` of a file (of its image series ``series``; with the reader's progress
    bar when it has one)."""
    from ._io import read_image

    try:
        return _call_with_progress(read_image, f"reading {Path(path).name}", quiet, path, with_metadata=True,
                                   series=series)
    except ValueError as exc:
        raise _series_option(exc, series) from None


def _series_option(exc: ValueError, series: int | None) -> CLIError:
    """A reader's error with the command line's name of the option (``--series N`` for ``series=N``)."""
    return CLIError(str(exc).replace(f"series={series}", f"--series {series}"))


def _param_names(method: str) -> set:
    from ._registry import get_backend

    return set(get_backend(method).param_map)


# --------------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------------
def _add_weights_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="{list,import,path,remove,fetch}", required=True)
    q = sub.add_parser("list", help="per deep method: the official weights, where to get them, their licence, "
                                    "and what is in the cache")
    q.add_argument("methods", nargs="*", metavar="METHOD", help="only these methods")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q = sub.add_parser("import", help="check a checkpoint (file or folder) against a method's network and store "
                                      "it in the cache")
    q.add_argument("path", metavar="PATH", help="checkpoint file or folder, in any format the method loads")
    q.add_argument("--method", "-m", required=True, help="the deep method the checkpoint is for")
    q.add_argument("--quiet", action="store_true", help="no messages")
    q = sub.add_parser("path", help="print the weights file a method uses without -p weights")
    q.add_argument("method", metavar="METHOD")
    q = sub.add_parser("remove", help="delete a method's cached weights (imported and downloaded)")
    q.add_argument("method", metavar="METHOD")
    q.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    q = sub.add_parser("fetch", help="download a method's official weights (where downloadable) and import them")
    q.add_argument("method", metavar="METHOD")
    q.add_argument("--entry", default=None, help="which official weights (default: the first listed)")
    q.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the network (10)")
    q.add_argument("--quiet", action="store_true", help="no progress")


def _deep_methods() -> dict:
    """{method name: ModelSpec} of the registered deep methods, in registry order."""
    from . import methods
    from .deep._spec import ModelSpec

    out = {}
    for name, b in methods().items():
        spec = getattr(getattr(b, "func", None), "spec", None)
        if isinstance(spec, ModelSpec):
            out[name] = spec
    return out


def _spec_for(method: str):
    table = _deep_methods()
    if method not in table:
        raise CLIError(f"METHOD {method!r} is not a deep method; the deep methods are: {', '.join(table)}")
    return table[method]


def _entry_state(spec, entry) -> str:
    from .deep._weights import cache_dir

    folder = cache_dir() / spec.name / entry.name
    present = [f.filename for f in entry.files if (folder / f.filename).is_file()]
    return "downloaded" if len(present) == len(entry.files) else ""


def _how_to_fetch(spec, entry) -> str:
    urls = [f.url for f in entry.files if f.url]
    by_hand = f"download by hand, then {PROG} weights import PATH --method {spec.name}"
    if not urls or len(urls) != len(entry.files) or any("/folders/" in u for u in urls):
        return by_hand
    fetch = f"{PROG} weights fetch {spec.name} --entry {entry.name}"
    if any("drive.google.com" in u for u in urls):
        return f"{fetch} (Google Drive: needs pip install 'inpaint-plugin[fetch]'), or {by_hand}"
    return fetch


def _weights_list(names, as_json: bool) -> int:
    from .deep._weights import cache_dir, imported_info

    table = _deep_methods()
    for n in names:
        _spec_for(n)
    chosen = {n: s for n, s in table.items() if not names or n in names}
    rows = {}
    for name, spec in chosen.items():
        info = imported_info(name)
        rows[name] = {
            "cache": str(cache_dir() / name),
            "imported": None if info is None else {k: info[k] for k in ("path", "sha256", "source", "imported_at",
                                                                        "entry", "licence") if k in info},
            "help": spec.weights_help,
            "weights": [{
                "name": e.name,
                "description": e.description,
                "files": [f.filename for f in e.files],
                "urls": [f.url for f in e.files if f.url],
                "licence": e.licence or "not stated",
                "downloaded": bool(_entry_state(spec, e)),
                "get": _how_to_fetch(spec, e),
                "instructions": e.instructions,
            } for e in spec.registry],
        }
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"weights cache: {cache_dir()} (set INPAINT_PLUGIN_CACHE to move it)")
    for name, row in rows.items():
        imp = row["imported"]
        state = (f"imported ({imp['sha256'][:12]}..., from {imp['source']}, {imp.get('imported_at', '?')})"
                 if imp else "none imported")
        print(f"\n{name}: {state}")
        for e in row["weights"]:
            print(f"  {e['name']}: {e['description']}" + (" [downloaded]" if e["downloaded"] else ""))
            print(f"    files:   {', '.join(e['files'])}")
            if e["urls"]:
                print(f"    from:    {', '.join(dict.fromkeys(e['urls']))}")
            elif e["instructions"]:
                print(f"    how:     {e['instructions']}")
            print(f"    licence: {e['licence']}")
            print(f"    get:     {e['get']}")
        if not row["weights"]:
            print(f"  {row['help']}")
    return 0


def _weights_import(path: str, method: str, quiet: bool) -> int:
    from .deep._manage import import_weights

    spec = _spec_for(method)
    if not Path(path).exists():
        raise CLIError(f"PATH {path}: no such file or folder")
    if not quiet:
        print(f"checking {path} against the {method} network ...", file=sys.stderr)
    try:
        info = import_weights(spec.name, path)
    except ValueError as exc:
        detail = re.sub(r"^(weights|path)='[^']*':\s*", "", str(exc))
        raise CLIError(f"cannot import {path} for method {method!r}: {detail}") from None
    print(f"imported {path} for {method}: {info['path']} (sha256 {info['sha256']})")
    licences = list(dict.fromkeys(e.licence for e in spec.registry if e.licence))
    if licences:
        print(f"licence of {method}'s official weights: {'; '.join(licences)}")
    print(f"{PROG} IMAGE MASK -o OUT --method {method} now uses it (no -p weights needed)")
    return 0


def _weights_path(method: str) -> int:
    from .deep._weights import _check_imported, imported_info

    spec = _spec_for(method)
    info = imported_info(spec.name)
    if info is None:
        print(f"{PROG} weights: no weights imported for {method}; import a checkpoint with "
              f"'{PROG} weights import PATH --method {method}' (see '{PROG} weights list {method}')",
              file=sys.stderr)
        return 1
    try:
        _check_imported(spec.name, Path(info["path"]), info)
    except ValueError as exc:
        print(f"{PROG} weights: {_clean(exc)}", file=sys.stderr)
        return 1
    print(info["path"])
    return 0


def _weights_remove(method: str, yes: bool) -> int:
    from .deep._manage import remove_weights
    from .deep._weights import cache_dir

    spec = _spec_for(method)
    folder = cache_dir() / spec.name
    if not folder.exists():
        print(f"nothing cached for {method} ({folder})")
        return 0
    if not yes:
        if not sys.stdin or not sys.stdin.isatty():
            raise CLIError(f"remove the cached weights of {method} ({folder})? pass --yes to confirm")
        answer = input(f"remove the cached weights of {method} ({folder})? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing removed")
            return 1
    removed = remove_weights(spec.name)
    print(f"removed {len(removed)} file(s) of {method} from {folder}")
    return 0


def _weights_fetch(method: str, entry, timeout: float, quiet: bool) -> int:
    from .deep._manage import fetch_weights

    spec = _spec_for(method)
    if timeout <= 0:
        raise CLIError(f"--timeout must be > 0, got {timeout}")
    try:
        info = fetch_weights(spec.name, entry, timeout=timeout, progress=not quiet)
    except ValueError as exc:
        print(f"{PROG} weights fetch: {_clean(exc)}", file=sys.stderr)
        return 1
    lic = f"; licence: {info['licence']}" if info.get("licence") else ""
    print(f"fetched and imported the weights {info.get('entry', '')!s} of {method}: {info['path']} "
          f"(sha256 {info['sha256']}){lic}")
    return 0


def _weights_main(args) -> int:
    try:
        if args.action == "list":
            return _weights_list(args.methods, args.json)
        if args.action == "import":
            return _weights_import(args.path, args.method, args.quiet)
        if args.action == "path":
            return _weights_path(args.method)
        if args.action == "remove":
            return _weights_remove(args.method, args.yes)
        return _weights_fetch(args.method, args.entry, args.timeout, args.quiet)
    except (CLIError, ValueError, TypeError, FileNotFoundError, PermissionError) as exc:
        print(f"{PROG} weights: error: {_clean(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} weights: interrupted; the cache is as it was", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `inpaint-plugin weights list | head`
        return _closed_stdout()
    except _Terminated as exc:
        print(f"{PROG} weights: terminated ({signal.Signals(exc.signum).name}); the cache is as it was",
              file=sys.stderr)
        return 128 + exc.signum
    except Exception as exc:
        print(f"{PROG} weights: failed: {type(exc).__name__}: {_clean(exc)}", file=sys.stderr)
        return 1


# --------------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------------
class _HelpWithDefault(argparse.Action):
    """``inpaint-plugin -h``: the commands, then the options of the default command (inpaint)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None,
                 default_parser=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)
        self.default_parser = default_parser

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        if self.default_parser is not None:
            print(f"\nThe default command, inpaint ({PROG} [inpaint] ...):\n")
            self.default_parser.print_help()
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``inpaint-plugin``: one subcommand per command of :data:`COMMANDS`.

    ``inpaint`` fills an image file (the default command: :func:`main` inserts it when the first
    argument is not a command), ``weights`` manages the deep networks' weights and ``train`` trains
    one (its options come from :mod:`inpaint_plugin.training._cli`). The parsed arguments name the
    command in ``command``.

    Returns
    -------
    argparse.ArgumentParser
    """
    from .training import _cli as training_cli

    top = argparse.ArgumentParser(
        prog=PROG, usage=_USAGE, add_help=False,
        description="Image inpainting for scientists: fill missing or damaged pixels of image files, manage the "
                    "deep networks' weights, train a network on your own images.",
        epilog=f"{PROG} COMMAND -h describes a command. Without a command, {PROG} runs inpaint "
               f"({PROG} in.tif mask.tif -o out.tif); name it when an input file is called "
               f"{' or '.join(COMMANDS[1:])}.",
    )
    sub = top.add_subparsers(dest="command", title="commands", metavar="{" + ",".join(COMMANDS) + "}")
    sub.required = True
    inpaint = sub.add_parser(
        "inpaint", prog=PROG, usage=_USAGE, description=_INPAINT_DESCRIPTION,
        help="fill missing or damaged pixels of an image file (the default command)",
        epilog="Commands: inpaint (the default; this help), weights (manage the deep networks' weights: "
               f"{PROG} weights -h), train (train a deep network on your images: {PROG} train -h).",
    )
    _add_inpaint_arguments(inpaint)
    _add_weights_arguments(sub.add_parser(
        "weights", prog=f"{PROG} weights", description=_WEIGHTS_DESCRIPTION,
        help="manage the deep networks' weights: list, import, path, remove, fetch"))
    training_cli.add_arguments(sub.add_parser(
        "train", prog=training_cli.PROG, description=training_cli.DESCRIPTION,
        help="train or fine-tune a deep network on your own images"))
    top.add_argument("-h", "--help", action=_HelpWithDefault, default_parser=inpaint,
                     help="show this help and the options of inpaint, then exit")
    return top


def _inpaint_main(args) -> int:
    try:
        if args.list:
            return _list_methods(args.json)
        if args.demo:
            raw = _parse_params(args.param)
            params = raw if args.method == "auto" else _coerce_params(args.method, raw)
            return _demo(Path(args.output or "inpaint-demo.png"), args.method, params, args.quiet)
        return _run(args)
    except (CLIError, ValueError, TypeError, FileNotFoundError, FileExistsError, IsADirectoryError,
            PermissionError) as exc:
        print(f"{PROG}: error: {_clean(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `inpaint-plugin --list | head`
        return _closed_stdout()
    except _Terminated as exc:
        print(f"{PROG}: terminated ({signal.Signals(exc.signum).name}); no output written", file=sys.stderr)
        return 128 + exc.signum
    except Exception as exc:  # a failure inside a method: report it without a traceback wall
        print(f"{PROG}: failed: {type(exc).__name__}: {_clean(exc)}", file=sys.stderr)
        return 1


def _closed_stdout() -> int:
    """The reader of stdout went away: stop quietly (and keep Python from complaining at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 0


def _raise_terminated(signum, frame):
    raise _Terminated(signum)


def main(argv=None) -> int:
    """Entry point of ``inpaint-plugin``.

    ``inpaint-plugin [inpaint] ...`` fills an image file, ``inpaint-plugin weights ...`` manages the
    weights cache and ``inpaint-plugin train ...`` trains a network; ``--help`` describes each.

    Parameters
    ----------
    argv : list of str, optional
        The arguments without the program name (default None: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 on success, 1 on a failure of the run, 2 on bad arguments or files, 130
        when interrupted, 128 + the signal number when terminated by SIGTERM or SIGHUP.
    """
    import warnings

    from .deep._weights import INTERFACE

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv = ["inpaint", *argv]  # the default command
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments and 0 on --help
        return int(exc.code or 0)
    # torch's loader warns about pickle protocols and suggests weights_only=False: not for a command line user
    warnings.filterwarnings("ignore", message=".*weights_only.*")
    token = INTERFACE.set("cli")
    try:
        if args.command == "train":  # training handles its own interruptions (state saved for --resume)
            from .training._cli import run as train_run

            return train_run(args)
        with _signals_unwind():
            if args.command == "weights":
                return _weights_main(args)
            return _inpaint_main(args)
    finally:
        INTERFACE.reset(token)


class _signals_unwind:
    """SIGTERM / SIGHUP raise :class:`_Terminated` in the main thread, so that ``finally`` blocks and the
    writers remove their temporary files (as for Ctrl-C); a signal that was ignored (``nohup``) stays ignored."""

    def __enter__(self):
        self.previous = {}
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue
                self.previous[sig] = signal.signal(sig, _raise_terminated)
            except ValueError:  # not the main thread: signals stay as they are
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
