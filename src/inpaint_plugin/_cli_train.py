"""``inpaint-plugin train``: the command line of :func:`inpaint_plugin.train`.

The options carry the names of ``train()``'s keyword arguments (``--crop-size`` = ``crop_size``,
``--time-limit`` = ``time_limit`` in seconds, ...); ``--minutes`` is kept as a shorthand for
``--time-limit`` in minutes. :mod:`inpaint_plugin.cli` dispatches ``inpaint-plugin train ...`` here
(:func:`main`); :func:`add_arguments` fills any parser with the options, :func:`run` executes
parsed arguments.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "build_parser", "run", "main"]

PROG = "inpaint-plugin train"
DESCRIPTION = ("Train a deep inpainting network on your own images (self-supervised: random holes are "
               "punched into random crops). Writes OUT in the format that inpaint --param weights=OUT "
               "reads, and OUT.state.pt for --resume.")


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the training options (named as ``train()``'s arguments) to ``p``; returns ``p``."""
    p.add_argument("--method", required=True, help="deepfill_v2 or deepfill_v1")
    p.add_argument("--images", required=True, nargs="+", metavar="PATH",
                   help="image files, directories of TIFF/PNG/JPEG/npy files, or glob patterns")
    p.add_argument("--out", required=True, help="checkpoint file to write (e.g. model.pth)")
    p.add_argument("--weights", help="official checkpoint to start from (default: from scratch)")
    p.add_argument("--resume", action="store_true", help="continue from OUT.state.pt")
    p.add_argument("--crop-size", type=int, default=256, help="side of the training crops (multiple of 8; 256)")
    p.add_argument("--batch-size", type=int, default=4, help="crops per step (4)")
    p.add_argument("--epochs", type=int, default=10, help="number of epochs (10)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="steps per epoch (default: one pass)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (1e-4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of images held out (0.1)")
    p.add_argument("--val-crops", type=int, default=16, help="held-out crops for the validation PSNR (16)")
    p.add_argument("--masks", default=None,
                   help="comma-separated mask families: strokes,scratches,stripes,dead_pixels,boxes (all)")
    p.add_argument("--normalize", default="minmax", choices=["minmax", "percentile"],
                   help="per-image normalisation (minmax)")
    p.add_argument("--channel-axis", type=int, default=None, help="axis of the channels (default: none, RGB files)")
    p.add_argument("--no-augment", action="store_true", help="no random rotations/flips (augment=False)")
    p.add_argument("--adv-weight", type=float, default=None, help="adversarial loss weight (paper's default)")
    p.add_argument("--vgg-weights", default=None, help="torchvision VGG19 state_dict for the feature losses")
    p.add_argument("--perceptual-weight", type=float, default=0.0, help="perceptual loss weight (0)")
    p.add_argument("--idmrf-weight", type=float, default=0.0, help="ID-MRF loss weight (0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                       help="stop after this many seconds of training (time_limit)")
    limit.add_argument("--minutes", type=float, default=None, help="the same limit in minutes")
    p.add_argument("--quiet", action="store_true", help="no progress bar (progress=False)")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The standalone parser of ``inpaint-plugin train``."""
    return add_arguments(argparse.ArgumentParser(prog=PROG, description=DESCRIPTION))


def run(args: argparse.Namespace) -> int:
    """Train with parsed arguments; returns the exit code (0 done, 1 failure, 2 bad arguments)."""
    from ._train import state_path, train

    time_limit = args.time_limit if args.minutes is None else args.minutes * 60
    try:
        result = train(
            args.method, args.images, out=args.out, weights=args.weights, resume=args.resume,
            crop_size=args.crop_size, batch_size=args.batch_size, epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch, lr=args.lr, seed=args.seed, val_fraction=args.val_fraction,
            val_crops=args.val_crops, masks=args.masks, normalize=args.normalize, channel_axis=args.channel_axis,
            augment=not args.no_augment, adv_weight=args.adv_weight, vgg_weights=args.vgg_weights,
            perceptual_weight=args.perceptual_weight, idmrf_weight=args.idmrf_weight, device=args.device,
            time_limit=time_limit, progress=not args.quiet,
        )
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
    last = result.history[-1] if result.history else {}
    psnr = f", val hole PSNR {last['val_psnr']:.2f} dB" if "val_psnr" in last else ""
    print(f"wrote {result.checkpoint} (step {result.step}{psnr}); training state {result.state}")
    return 0


def main(argv=None) -> int:
    """``inpaint-plugin train ...``; returns the exit code (0 done, 1 failure, 2 bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments and 0 on --help
        return int(exc.code or 0)
    return run(args)
