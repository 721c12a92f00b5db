"""Self-supervised training of the deep backends on the user's own images.

The user's images have no ground truth for holes, so holes are made: every step draws random crops
of the images, punches a random mask into them (free-form strokes, scratches, stripes, dead
pixels, boxes; :mod:`inpaint_plugin._masks`) and trains the network to restore the crops. A part of
the images is held out; after every epoch the hole PSNR on fixed held-out crops is reported.

::

    >>> import inpaint_plugin
    >>> result = inpaint_plugin.train("deepfill_v2", "my_tiles/", out="tiles.pth", crop_size=128,
    ...                               epochs=20)                                     # doctest: +SKIP
    >>> inpaint_plugin.inpaint(image, mask, method="deepfill_v2", weights="tiles.pth")  # doctest: +SKIP

or ``inpaint-plugin train --method deepfill_v2 --images my_tiles/ --out tiles.pth``.

The checkpoint ``out`` is written in the official format that ``inpaint()`` loads (see
:mod:`inpaint_plugin.deep._train_recipes`); the full training state (generator, discriminator,
optimisers, step, history) goes to ``<out>.state.pt`` beside it, for ``resume``. Both are written
after every epoch, when ``time_limit`` is reached and on Ctrl-C (a step cut short by Ctrl-C is done
again when resuming, so only an interrupted run can differ from an uninterrupted one).

Determinism: every step draws its crops, augmentation and mask from its own generator
``numpy.random.default_rng([seed, 0, step])``, the validation crops from ``[seed, 1]`` and the split
from ``[seed, 2]``; the networks are initialised from ``seed``; torch's deterministic algorithms are
switched on during training. The same seed on the same device therefore gives the same weights, and
a resumed run continues exactly as if it had not stopped (on the CPU; CUDA convolutions may differ
in the last bits).

torch is imported only when training starts.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["TrainResult", "main", "state_path", "train"]

_STATE_FORMAT = "inpaint-plugin-train-state"
_STATE_VERSION = 1
#: Adam betas of the official DeepFill training
_BETAS = (0.5, 0.999)
#: loss names in the progress bar
_SHORT = {"reconstruction": "rec", "adversarial": "adv", "discriminator": "d", "perceptual": "perc", "id_mrf": "mrf"}


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    checkpoint : Path
        The generator in the method's official checkpoint format (``weights=`` of ``inpaint()``).
    state : Path
        The training state for ``resume``.
    step : int
        Generator updates done in total (including those of earlier runs when resuming).
    history : list of dict
        One entry per validation (end of each epoch, and where training stopped early): ``epoch``,
        ``step``, mean training losses of the epoch (``loss``, ``reconstruction``, ``adversarial``,
        ``discriminator`` and, when used, ``perceptual``, ``id_mrf``) and, with validation,
        ``val_psnr`` (hole PSNR in dB on the [0, 1] normalised held-out crops), ``val_l1`` (mean
        absolute hole error) and ``val_loss`` (the reconstruction loss on the held-out crops). Earlier
        runs' entries come first when resuming.
    initial : dict or None
        The validation metrics of the starting weights (before the first step; None when resuming
        or without validation).
    stopped_early : bool
        True when ``time_limit`` ended training before ``epochs``.
    """

    checkpoint: Path
    state: Path
    step: int
    history: list = field(default_factory=list)
    initial: dict | None = None
    stopped_early: bool = False


def state_path(out) -> Path:
    """The training-state file that belongs to the checkpoint ``out``: ``<out>.state.pt``."""
    out = Path(os.fspath(out))
    return out.with_name(out.name + ".state.pt")


# --------------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------------
def _int(name: str, value, lo: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return int(value)


def _float(name: str, value, lo: float, hi: float = math.inf, *, open_lo: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if (value <= lo if open_lo else value < lo) or value > hi:
        bound = f"({lo}, {hi}]" if open_lo else f"[{lo}, {hi}]"
        raise ValueError(f"{name} must be in {bound}, got {value}")
    return value


def _path_arg(name: str, value, must_exist: bool = False):
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {value!r}")
    path = Path(os.fspath(value)).expanduser()
    if must_exist and not path.exists():
        raise ValueError(f"{name}={str(value)!r}: no such file")
    return path


# --------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------
@contextmanager
def _deterministic():
    """Switch torch's deterministic algorithms on (restoring the previous setting afterwards)."""
    import torch

    was, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn)


def _seeded(build, seed: int):
    """``build()`` with torch's global RNG seeded (its previous state restored)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class _Batches:
    """Training batches, validation crops and masks, all derived from the seed."""

    def __init__(self, planes, val_planes, *, crop_size, batch_size, families, augment, seed, val_crops):
        from .deep._train_data import plane_weights, sample_crop
        from ._masks import random_mask

        self._sample, self._mask = sample_crop, random_mask
        self.planes, self.weights = planes, plane_weights(planes)
        self.crop_size, self.batch_size = crop_size, batch_size
        self.families, self.augment, self.seed = families, augment, seed
        self.val = []
        if val_planes:
            rng = np.random.default_rng([seed, 1])
            weights = plane_weights(val_planes)
            for _ in range(val_crops):
                crop = sample_crop(val_planes, weights, crop_size, rng, augment=False)
                self.val.append((crop, random_mask((crop_size, crop_size), rng, families)))

    def batch(self, step: int):
        """Crops ``(N, s, s, 3)`` in [0, 1] and their shared mask ``(s, s)`` of training step ``step``."""
        rng = np.random.default_rng([self.seed, 0, step])
        crops = np.stack([self._sample(self.planes, self.weights, self.crop_size, rng, self.augment)
                          for _ in range(self.batch_size)])
        return crops, self._mask((self.crop_size, self.crop_size), rng, self.families)


def _to_tensors(crops: np.ndarray, mask: np.ndarray, device):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).to(device)
    m = torch.from_numpy(mask.astype(np.float32))[None, None].to(device).expand(x.shape[0], 1, -1, -1)
    return x, m


def _validate(recipe, generator, val, device) -> dict:
    """Metrics of the generator on the validation crops: hole PSNR (dB) and mean absolute hole error in
    [0, 1] units, and the mean reconstruction loss (the training objective without the adversarial term)."""
    import torch

    from .deep._train_losses import spatial_discount

    sq = ab = n = rec = 0.0
    generator.eval()
    with torch.no_grad():
        for crop, mask in val:
            x, m = _to_tensors(crop[None], mask, device)
            x = x * 2 - 1
            stage1, stage2 = recipe.forward(generator, x, m)
            discount = torch.from_numpy(spatial_discount(mask))[None, None].to(device)
            rec += float(recipe.reconstruction(x, stage1, stage2, m, discount))
            diff = ((stage2.clamp(-1, 1) - x) / 2)[m.expand_as(x) > 0.5]
            sq += float((diff**2).sum())
            ab += float(diff.abs().sum())
            n += diff.numel()
    generator.train()
    mse = sq / max(n, 1)
    return {"val_psnr": 10 * math.log10(1.0 / mse) if mse > 0 else math.inf, "val_l1": ab / max(n, 1),
            "val_loss": rec / len(val)}


def _load_state(path: Path, method: str) -> dict:
    import pickle

    import torch

    if not path.is_file():
        raise ValueError(f"resume: no training state at {str(path)!r} (it is written beside the checkpoint as "
                         f"<out>.state.pt); train without resume first")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"resume: {str(path)!r} is not a readable training state: {e}") from None
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
        raise ValueError(f"resume: {str(path)!r} is not an inpaint-plugin training state")
    if state.get("method") != method:
        raise ValueError(f"resume: {str(path)!r} belongs to method {state.get('method')!r}, not {method!r}")
    return state


def train(method: str, images, *, out, weights=None, resume=False, crop_size: int = 256, batch_size: int = 4,
          epochs: int = 10, steps_per_epoch: int | None = None, lr: float = 1e-4, seed: int = 0,
          val_fraction: float = 0.1, val_crops: int = 16, masks=None, normalize: str = "minmax",
          channel_axis: int | None = None, augment: bool = True, adv_weight: float | None = None,
          vgg_weights=None, perceptual_weight: float = 0.0, idmrf_weight: float = 0.0, device: str = "auto",
          time_limit: float | None = None, progress: bool = True) -> TrainResult:
    """Train (or fine-tune) a deep inpainting network on your own images, self-supervised.

    Parameters
    ----------
    method : str
        ``"deepfill_v2"`` or ``"deepfill_v1"``.
    images : array, path, or list of arrays and paths
        Training images: arrays, image files (TIFF, PNG, JPEG, ``.npy``), a directory of them or a
        glob pattern. Stacks (z, time, ...) count as many 2-D images. uint8/uint16/float data is
        normalised per image and channel (``normalize``); channels are mapped to the network's RGB
        input as ``inpaint()`` does (see :mod:`inpaint_plugin.deep._train_data`).
    out : str or os.PathLike
        Checkpoint to write, in the official format the method's loader reads; the training state
        goes to ``<out>.state.pt``.
    weights : str or os.PathLike, optional
        Official checkpoint to start from (fine-tuning); None trains from scratch (random weights
        from ``seed``).
    resume : bool or path
        Continue from ``<out>.state.pt`` (True) or from that training-state file; the run goes on
        until ``epochs`` epochs are done in total.
    crop_size : int
        Side of the square training crops, a multiple of 8, at least 32.
    batch_size : int
        Crops per step; a batch shares one mask (the networks' attention uses one mask per batch).
    epochs : int
        Total number of epochs (0: only validate the starting weights and save them).
    steps_per_epoch : int, optional
        Steps per epoch; default: enough crops to cover the training images once (at least 1), or
        the value of the resumed run.
    lr : float
        Adam learning rate of the generator and the discriminator (betas 0.5, 0.999).
    seed : int
        Seed of everything random (initial weights, split, crops, masks).
    val_fraction : float
        Fraction of the images held out for validation, in [0, 0.9] (a single image: its bottom rows).
    val_crops : int
        Number of fixed held-out crops on which the hole PSNR is measured after each epoch.
    masks : str or sequence of str, optional
        Mask families to train on (``strokes``, ``scratches``, ``stripes``, ``dead_pixels``,
        ``boxes``); None = all.
    normalize : {"minmax", "percentile"}
        Per-image normalisation to [0, 1]: finite min/max (as ``inpaint()``) or 0.5/99.5 percentiles.
    channel_axis : int, optional
        Axis of the channels of the images (None: single-channel, except RGB(A) image files).
    augment : bool
        Random rotations by 90 degrees and flips of the crops.
    adv_weight : float, optional
        Weight of the adversarial (SN-PatchGAN hinge) loss; None = the paper's (1 for DeepFill v2,
        0.001 for v1); 0 trains without discriminator.
    vgg_weights : str or os.PathLike, optional
        A torchvision VGG19 state_dict file, needed by ``perceptual_weight`` and ``idmrf_weight``
        (nothing is downloaded).
    perceptual_weight, idmrf_weight : float
        Weights of the VGG19 perceptual loss and of GMCNN's ID-MRF loss on the prediction (default 0).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    time_limit : float, optional
        Stop (validate and save) after this many seconds of training.
    progress : bool
        Show a tqdm progress bar with the losses and print a line per epoch.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError, TypeError
        For bad arguments (the message names the argument), untrainable methods, unreadable images.
    """
    from .deep._device import require_torch

    require_torch("train()")
    from .deep._train_data import load_sources, split_sources
    from .deep._train_recipes import get_recipe
    from ._masks import check_families

    recipe = get_recipe(method)
    out = _path_arg("out", out)
    if out is None:
        raise ValueError("out is required: the checkpoint file to write")
    if out.is_dir():
        raise ValueError(f"out={str(out)!r} is a directory; give a checkpoint file name (e.g. model.pth)")
    if out.suffix.lower() == ".safetensors":
        raise ValueError(f"out={str(out)!r}: checkpoints are written with torch.save in the official format; "
                         f"use a .pth or .pt name")
    weights = _path_arg("weights", weights, must_exist=True)
    if resume is True:
        resume_path = state_path(out)
    elif resume is False or resume is None:
        resume_path = None
    else:
        resume_path = _path_arg("resume", resume)
    if resume_path is not None and weights is not None:
        raise ValueError("give either weights (start from a checkpoint) or resume (continue a training run), not both")
    crop_size = _int("crop_size", crop_size, 32)
    if crop_size % 8:
        raise ValueError(f"crop_size must be a multiple of 8, got {crop_size}")
    batch_size = _int("batch_size", batch_size, 1)
    epochs = _int("epochs", epochs, 0)
    steps_per_epoch = _int("steps_per_epoch", steps_per_epoch, 1, allow_none=True)
    lr = _float("lr", lr, 0.0, 1.0, open_lo=True)
    seed = _int("seed", seed, 0)
    val_fraction = _float("val_fraction", val_fraction, 0.0, 0.9)
    val_crops = _int("val_crops", val_crops, 1)
    families = check_families(masks)
    adv_weight = _float("adv_weight", adv_weight, 0.0, allow_none=True)
    perceptual_weight = _float("perceptual_weight", perceptual_weight, 0.0)
    idmrf_weight = _float("idmrf_weight", idmrf_weight, 0.0)
    vgg_weights = _path_arg("vgg_weights", vgg_weights, must_exist=True)
    if (perceptual_weight > 0 or idmrf_weight > 0) and vgg_weights is None:
        raise ValueError("perceptual_weight and idmrf_weight need vgg_weights: a torchvision VGG19 state_dict file "
                         "(e.g. vgg19-dcbb9e9d.pth); it cannot be downloaded here")
    if vgg_weights is not None and perceptual_weight == 0 and idmrf_weight == 0:
        raise ValueError("vgg_weights is only used with perceptual_weight > 0 or idmrf_weight > 0")
    time_limit = _float("time_limit", time_limit, 0.0, open_lo=True, allow_none=True)
    if not isinstance(augment, bool):
        raise TypeError(f"augment must be True or False, got {augment!r}")

    from ._registry import get_backend
    from .deep._backend import find_spec
    from .deep._device import get_device

    dev = get_device(device)
    spec = _find_spec(method)
    sources = load_sources(images, channel_axis=channel_axis, normalize=normalize,
                           channels=get_backend(method).channels)
    train_planes, val_planes = split_sources(sources, val_fraction, crop_size, np.random.default_rng([seed, 2]))
    if steps_per_epoch is None and resume_path is None:
        pixels = sum(p.shape[0] * p.shape[1] for p in train_planes)
        steps_per_epoch = max(1, math.ceil(pixels / (batch_size * crop_size**2)))
    batches = _Batches(train_planes, val_planes, crop_size=crop_size, batch_size=batch_size, families=families,
                       augment=augment, seed=seed, val_crops=val_crops)
    with _deterministic():
        return _run(method, spec, recipe, batches, out=out, weights=weights, resume_path=resume_path, dev=dev,
                    epochs=epochs, steps_per_epoch=steps_per_epoch, lr=lr, seed=seed,
                    adv_weight=recipe.adv_weight if adv_weight is None else adv_weight, vgg_weights=vgg_weights,
                    perceptual_weight=perceptual_weight, idmrf_weight=idmrf_weight, time_limit=time_limit,
                    progress=progress)


def _run(method, spec, recipe, batches: _Batches, *, out: Path, weights, resume_path, dev, epochs, steps_per_epoch,
         lr, seed, adv_weight, vgg_weights, perceptual_weight, idmrf_weight, time_limit, progress) -> TrainResult:
    """The training loop of :func:`train` (arguments already checked)."""
    import torch
    from tqdm.auto import tqdm

    from .deep._discriminator import SNPatchGAN, hinge_d_loss, hinge_g_loss
    from .deep._train_losses import id_mrf_loss, load_vgg19, perceptual_loss, spatial_discount

    generator = _seeded(spec.build, seed)
    discriminator = _seeded(SNPatchGAN, seed + 1) if adv_weight > 0 else None
    if weights is not None:
        spec.load(generator, weights)
    generator = generator.to(dev).train()
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=_BETAS)
    d_opt = None
    if discriminator is not None:
        discriminator = discriminator.to(dev).train()
        d_opt = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=_BETAS)
    vgg = load_vgg19(vgg_weights).to(dev) if vgg_weights is not None else None

    step, history, initial = 0, [], None
    if resume_path is not None:
        state = _load_state(resume_path, method)
        generator.load_state_dict(state["generator"])
        g_opt.load_state_dict(state["g_optim"])
        if discriminator is not None:
            if state.get("discriminator") is None:
                raise ValueError(f"resume: {str(resume_path)!r} was trained without discriminator (adv_weight=0); "
                                 f"resume with adv_weight=0")
            discriminator.load_state_dict(state["discriminator"])
            d_opt.load_state_dict(state["d_optim"])
        step, history = int(state["step"]), list(state["history"])
        steps_per_epoch = steps_per_epoch or int(state["steps_per_epoch"])
        for group in g_opt.param_groups + (d_opt.param_groups if d_opt is not None else []):
            group["lr"] = lr
    total = epochs * steps_per_epoch

    def save():
        out.parent.mkdir(parents=True, exist_ok=True)
        from .deep._train_recipes import write_state_dict

        spec.save(generator, out)  # the official format: inpaint(..., weights=out) reads it
        write_state_dict({
            "format": _STATE_FORMAT, "version": _STATE_VERSION, "method": method, "step": step,
            "steps_per_epoch": steps_per_epoch, "seed": seed, "history": history,
            "generator": generator.state_dict(), "g_optim": g_opt.state_dict(),
            "discriminator": discriminator.state_dict() if discriminator is not None else None,
            "d_optim": d_opt.state_dict() if d_opt is not None else None,
        }, state_path(out))

    if step == 0 and batches.val:
        initial = _validate(recipe, generator, batches.val, dev)
        if progress:
            tqdm.write(f"{method}: starting weights: val hole PSNR {initial['val_psnr']:.2f} dB")
    sums: dict = {}
    count = 0
    start = time.monotonic()
    stopped_early = False
    bar = tqdm(total=total, initial=min(step, total), desc=f"train {method}", unit="step", disable=not progress,
               dynamic_ncols=True)

    def end_epoch():
        nonlocal sums, count
        entry = {"epoch": round(step / steps_per_epoch, 3), "step": step}
        entry.update({k: v / max(count, 1) for k, v in sums.items()})
        if batches.val:
            entry.update(_validate(recipe, generator, batches.val, dev))
        history.append(entry)
        sums, count = {}, 0
        save()
        if progress:
            extra = f", val hole PSNR {entry['val_psnr']:.2f} dB" if "val_psnr" in entry else ""
            tqdm.write(f"epoch {entry['epoch']:g}/{epochs} (step {step}): loss {entry.get('loss', float('nan')):.4f}"
                       + extra)

    try:
        while step < total:
            crops, mask = batches.batch(step)
            x, m = _to_tensors(crops, mask, dev)
            x = x * 2 - 1
            discount = torch.from_numpy(spatial_discount(mask))[None, None].to(dev)
            stage1, stage2 = recipe.forward(generator, x, m)
            complete = stage2 * m + x * (1 - m)
            losses = {"reconstruction": recipe.reconstruction(x, stage1, stage2, m, discount)}
            if discriminator is not None:
                d_loss = hinge_d_loss(discriminator(x, m), discriminator(complete.detach(), m))
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()
                discriminator.requires_grad_(False)
                losses["adversarial"] = hinge_g_loss(discriminator(complete, m))
                discriminator.requires_grad_(True)
            if vgg is not None:
                pred01, target01 = (stage2 + 1) / 2, (x + 1) / 2
                if perceptual_weight > 0:
                    losses["perceptual"] = perceptual_loss(vgg, pred01, target01)
                if idmrf_weight > 0:
                    losses["id_mrf"] = id_mrf_loss(vgg, pred01, target01)
            weights_of = {"reconstruction": 1.0, "adversarial": adv_weight, "perceptual": perceptual_weight,
                          "id_mrf": idmrf_weight}
            loss = sum(weights_of[k] * v for k, v in losses.items())
            g_opt.zero_grad(set_to_none=True)
            loss.backward()
            g_opt.step()
            step += 1
            count += 1
            logged = {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}
            if discriminator is not None:
                logged["discriminator"] = d_loss.item()
            for k, v in logged.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(1)
            bar.set_postfix({_SHORT.get(k, k): f"{v:.3f}" for k, v in logged.items()}, refresh=False)
            if step % steps_per_epoch == 0:
                end_epoch()
            if time_limit is not None and step < total and time.monotonic() - start >= time_limit:
                stopped_early = True
                break
        if not history or history[-1]["step"] != step:
            end_epoch()  # a partial epoch (time_limit), or epochs=0: validate and save the weights as they are
    except KeyboardInterrupt:
        save()
        bar.close()
        raise
    bar.close()
    return TrainResult(checkpoint=out, state=state_path(out), step=step, history=history, initial=initial,
                       stopped_early=stopped_early)


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------
def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inpaint-plugin train",
        description="Train a deep inpainting network on your own images (self-supervised: random holes are "
                    "punched into random crops). Writes OUT in the format that inpaint --param weights=OUT "
                    "reads, and OUT.state.pt for --resume.",
    )
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
    p.add_argument("--no-augment", action="store_true", help="no random rotations/flips")
    p.add_argument("--adv-weight", type=float, default=None, help="adversarial loss weight (paper's default)")
    p.add_argument("--vgg-weights", default=None, help="torchvision VGG19 state_dict for the feature losses")
    p.add_argument("--perceptual-weight", type=float, default=0.0, help="perceptual loss weight (0)")
    p.add_argument("--idmrf-weight", type=float, default=0.0, help="ID-MRF loss weight (0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--minutes", type=float, default=None, help="stop after this many minutes of training")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    """``inpaint-plugin train ...``; returns the exit code (0 done, 1 failure, 2 bad arguments)."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments and 0 on --help
        return int(exc.code or 0)
    try:
        result = train(
            args.method, args.images, out=args.out, weights=args.weights, resume=args.resume,
            crop_size=args.crop_size, batch_size=args.batch_size, epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch, lr=args.lr, seed=args.seed, val_fraction=args.val_fraction,
            val_crops=args.val_crops, masks=args.masks, normalize=args.normalize, channel_axis=args.channel_axis,
            augment=not args.no_augment, adv_weight=args.adv_weight, vgg_weights=args.vgg_weights,
            perceptual_weight=args.perceptual_weight, idmrf_weight=args.idmrf_weight, device=args.device,
            time_limit=None if args.minutes is None else args.minutes * 60, progress=not args.quiet,
        )
    except (ValueError, TypeError, FileNotFoundError, PermissionError) as exc:
        print(f"inpaint-plugin train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"inpaint-plugin train: interrupted; the last state is in {args.out} and "
              f"{state_path(args.out)} (continue with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure during training: report it without a traceback wall
        print(f"inpaint-plugin train: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    last = result.history[-1] if result.history else {}
    psnr = f", val hole PSNR {last['val_psnr']:.2f} dB" if "val_psnr" in last else ""
    print(f"wrote {result.checkpoint} (step {result.step}{psnr}); training state {result.state}")
    return 0
