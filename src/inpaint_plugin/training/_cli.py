"""``inpaint-plugin train``: the command line of :func:`inpaint_plugin.train`.

Every option carries the name of a ``train()`` keyword argument (``--crop-size`` = ``crop_size``,
``--time-limit`` = ``time_limit`` in seconds, ``--no-augment`` = ``augment=False``, ``--quiet`` =
``progress=False``); options left out take ``train()``'s defaults (the network recipe's crop and
batch sizes for the device, the paper's learning rate and loss weights). At the end the held-out
hole PSNR of the trained network is printed next to biharmonic's and the best classical method's,
with a plain warning when the network is worse.

:mod:`inpaint_plugin.cli` registers the ``train`` subcommand with :func:`add_arguments` and runs it
with :func:`run`; :func:`config_from_args` turns the parsed options into a
:class:`~inpaint_plugin.training.TrainConfig`, whose checks are the command line's (a bad option
exits with code 2 and the config's message).
"""
from __future__ import annotations

import argparse
import sys

from ._config import TrainConfig

__all__ = ["DESCRIPTION", "PROG", "add_arguments", "config_from_args", "run", "summary"]

PROG = "inpaint-plugin train"
DESCRIPTION = ("Train or fine-tune a deep inpainting network on your own images (self-supervised: random holes "
               "are punched into random crops). Writes OUT in the format that inpaint --param weights=OUT "
               "reads, and OUT.state.pt for --resume. Fine-tuning from official weights (--weights) is the "
               "recommended path. Held-out crops compare the network with biharmonic.")

_METHODS = "deepfill_v2, deepfill_v1, pennet, gmcnn, spl, medfe or lama"


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the training options (named as ``train()``'s arguments) to ``p``; returns ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser (the ``train`` subcommand's, or a standalone one).

    Returns
    -------
    argparse.ArgumentParser
        ``p``.
    """
    p.add_argument("--method", required=True, help=_METHODS)
    p.add_argument("--images", required=True, nargs="+", metavar="PATH",
                   help="image files, directories of TIFF/PNG/JPEG/npy files, or glob patterns")
    p.add_argument("--out", required=True, help="checkpoint to write (e.g. model.pth; a folder for medfe)")
    p.add_argument("--weights", help="official checkpoint to start from (fine-tuning; default: from scratch)")
    p.add_argument("--resume", action="store_true", help="continue from OUT.state.pt")
    p.add_argument("--crop-size", type=int, default=None, help="side of the training crops (multiple of 8; "
                   "default: the recipe's for the device)")
    p.add_argument("--batch-size", type=int, default=None, help="crops per step (default: the recipe's)")
    p.add_argument("--input-size", type=int, default=None,
                   help="network input side (default: the network's fixed size, else the crop size)")
    p.add_argument("--epochs", type=int, default=10, help="number of epochs (10)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="steps per epoch (default: one pass)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the paper's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of images held out (0.1)")
    p.add_argument("--val-crops", type=int, default=16, help="held-out crops for the validation PSNR (16)")
    p.add_argument("--masks", default=None,
                   help="comma-separated mask families: strokes,scratches,stripes,dead_pixels,boxes (all)")
    p.add_argument("--normalize", default="range", choices=["range", "minmax", "percentile"],
                   help="mapping to [0, 1] (range: as inpaint() maps data for the networks)")
    p.add_argument("--channel-axis", type=int, default=None, help="axis of the channels (default: none, RGB files)")
    p.add_argument("--no-augment", action="store_true", help="no random rotations/flips (augment=False)")
    p.add_argument("--adv-weight", type=float, default=None, help="adversarial loss weight (default: the paper's)")
    p.add_argument("--vgg-weights", default=None, help="torchvision VGG19 state_dict for the VGG losses")
    p.add_argument("--perceptual-weight", type=float, default=None,
                   help="VGG19 perceptual loss weight (default: the paper's with --vgg-weights, else 0)")
    p.add_argument("--idmrf-weight", type=float, default=None,
                   help="ID-MRF loss weight (default: the paper's with --vgg-weights, else 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="the whole run (validation and saving included) ends within this many seconds")
    p.add_argument("--quiet", action="store_true", help="no progress bars (progress=False)")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`~inpaint_plugin.training.TrainConfig` of parsed ``inpaint-plugin train`` options.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser built with :func:`add_arguments`.

    Returns
    -------
    TrainConfig

    Raises
    ------
    ValueError, TypeError
        For an option that breaks a rule of ``TrainConfig`` (the message names the option).
    """
    return TrainConfig(
        args.method, args.images, out=args.out, weights=args.weights, resume=args.resume,
        crop_size=args.crop_size, batch_size=args.batch_size, input_size=args.input_size, epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch, lr=args.lr, seed=args.seed, val_fraction=args.val_fraction,
        val_crops=args.val_crops, masks=args.masks, normalize=args.normalize, channel_axis=args.channel_axis,
        augment=not args.no_augment, adv_weight=args.adv_weight, vgg_weights=args.vgg_weights,
        perceptual_weight=args.perceptual_weight, idmrf_weight=args.idmrf_weight, device=args.device,
        time_limit=args.time_limit,
    )


def summary(result) -> str:
    """The lines printed after training: what was written, time and memory, and the held-out comparison.

    Parameters
    ----------
    result : TrainResult
        What :func:`inpaint_plugin.train` returned.

    Returns
    -------
    str
    """
    memory = []
    if result.peak_rss_mb is not None:
        memory.append(f"peak RSS {result.peak_rss_mb:.0f} MiB")
    if result.cuda_max_allocated_mb is not None:
        memory.append(f"CUDA max allocated {result.cuda_max_allocated_mb:.0f} MiB")
    why = {"time_limit": ", stopped by the time limit", "callback": ", stopped"}.get(result.stop_reason, "")
    lines = [f"wrote {result.checkpoint} (step {result.step}{why}) and {result.state}",
             f"took {result.elapsed:.1f} s" + (f" of {result.time_limit:g} s" if result.time_limit else "")
             + f"; crops {result.crop_size}, batch {result.batch_size}, network input {result.input_size}, "
             + f"{result.device}" + (f"; {', '.join(memory)}" if memory else "")]
    if result.baseline:
        classical = ", ".join(f"{k} {v:.2f} dB" for k, v in sorted(result.baseline.items(), key=lambda kv: -kv[1]))
        start = f" (starting weights {result.initial['val_psnr']:.2f} dB)" if result.initial else ""
        crops = f"{result.val_crops} crop" + ("s" if result.val_crops != 1 else "")
        lines.append(f"held-out hole PSNR on {crops}: trained {result.val_psnr:.2f} dB{start}; "
                     f"{classical}")
    prefix = "WARNING: " if result.beats_biharmonic is False else ""
    lines.append(prefix + result.verdict)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Train with parsed arguments; returns the exit code (0 done, 1 failure, 2 bad arguments).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser built with :func:`add_arguments`.

    Returns
    -------
    int
        The exit code.
    """
    import warnings

    from ._files import state_path
    from ._loop import train

    try:
        config = config_from_args(args)
        with warnings.catch_warnings():
            # the verdict is printed below; the Python warning would say it a second time
            warnings.filterwarnings("ignore", message="trained .* is WORSE than biharmonic")
            result = train(config=config, progress=not args.quiet)
    except (ValueError, TypeError, FileNotFoundError, PermissionError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the last state is in {args.out} and "
              f"{state_path(args.out)} (continue with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure during training: report it without a traceback wall
        print(f"{PROG}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0
