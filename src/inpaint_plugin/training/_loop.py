"""Self-supervised training and fine-tuning of every deep backend on the user's own images.

The user's images have no ground truth for holes, so holes are made: every step draws random crops
of the images, punches a random mask into them (free-form strokes, scratches, stripes, dead
pixels, boxes; :mod:`inpaint_plugin._masks`) and trains the network to restore the crops with the
losses of its paper (:mod:`inpaint_plugin.training._recipes`, one recipe per network). A part of
the images is held out: after every epoch the hole PSNR on fixed held-out crops and masks is
measured, for the network **and** for classical methods (biharmonic, telea, navier_stokes, tv) on
the same crops and masks, so the result says plainly whether the trained network beats them.

Fine-tuning from official weights is the recommended path (``weights=``: any checkpoint the
method's loader reads); training from scratch needs hours on a GPU to beat biharmonic.

::

    >>> import inpaint_plugin
    >>> result = inpaint_plugin.train("deepfill_v2", "my_tiles/", out="tiles.pth",
    ...                               weights="states_tf_places2.pth", time_limit=600)  # doctest: +SKIP
    >>> result.val_psnr, result.baseline["biharmonic"], result.beats_biharmonic        # doctest: +SKIP
    >>> inpaint_plugin.inpaint(image, mask, method="deepfill_v2", weights="tiles.pth")  # doctest: +SKIP

or ``inpaint-plugin train --method deepfill_v2 --images my_tiles/ --out tiles.pth --weights
states_tf_places2.pth --time-limit 600``. The options can also be made and checked first, as one
:class:`~inpaint_plugin.training.TrainConfig` (the command line does so)::

    >>> config = inpaint_plugin.TrainConfig("deepfill_v2", "my_tiles/", out="tiles.pth", time_limit=600)  # doctest: +SKIP
    >>> result = inpaint_plugin.train(config=config, progress=False)  # doctest: +SKIP

The time limit bounds the whole call (data loading, validations, checkpoint writing included): a
step, an epoch-end validation or the final validation that would cross it, judged from the measured
durations (with a safety factor), is not started. Validation of the network runs it as ``inpaint()``
does on a window of the crop's size (fixed-size networks: the crop resized to their input, the mask
grown by one pixel, the prediction resized back; grey images: the repeated channels averaged; the fill
clipped to the range of the crop's known values, as ``inpaint(clip=True)``).

The checkpoint ``out`` is written in the official format that ``inpaint()`` loads; the full training
state (generator, discriminator, optimisers, step, history) goes to ``<out>.state.pt`` beside it, for
``resume``, and the held-out comparison with the classical methods to ``<out>.train.json``
(:func:`read_report`). Both are written after every validation and on Ctrl-C (a step cut short by Ctrl-C is done
again when resuming).

Determinism: every step draws its crops, augmentation and mask from its own generator
``numpy.random.default_rng([seed, 0, step])``, the validation crops from ``[seed, 1]`` and the split
from ``[seed, 2]``; the networks are initialised from ``seed``; torch's deterministic algorithms are
switched on during CUDA training. Without a time limit, the same seed on the same device therefore gives
the same weights, and a resumed run continues exactly as if it had not stopped (on the CPU; CUDA
convolutions may differ in the last bits). A time limit makes the number of steps depend on speed.

Memory: the images are kept in their own dtype; a step holds one batch of crops, the network's
activations for it, and the generator/discriminator with their Adam states. The peak resident memory
of the process (and the CUDA peak allocation) is reported in the result.

torch is imported only when training starts.
"""
from __future__ import annotations

import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._config import TrainConfig
from ._files import report_path, state_path, write_report

__all__ = ["CLASSICAL_BASELINES", "TrainResult", "train"]

_STATE_FORMAT = "inpaint-plugin-train-state"
_STATE_VERSION = 2
#: classical methods measured on the held-out crops (cheap ones; biharmonic first: the reference)
CLASSICAL_BASELINES = ("biharmonic", "telea", "navier_stokes", "tv")
#: loss names in the progress bar
_SHORT = {"reconstruction": "rec", "adversarial": "adv", "discriminator": "d", "perceptual": "perc", "id_mrf": "mrf"}
#: estimated durations are multiplied by this before deciding whether something fits the time limit
_SAFETY = 1.3
#: one validation may take at most this fraction of the time limit (fewer held-out crops otherwise)
_VAL_SHARE = 0.15


@dataclass
class TrainResult:
    """What :func:`train` did, and how the result compares with classical inpainting.

    Attributes
    ----------
    checkpoint : Path
        The generator in the method's official checkpoint format (``weights=`` of ``inpaint()``).
    state : Path
        The training state for ``resume``.
    report : Path
        ``<out>.train.json``: the held-out comparison of the saved weights (see :func:`read_report`).
    step : int
        Generator updates done in total (including those of earlier runs when resuming).
    history : list of dict
        One entry per validation: ``epoch``, ``step``, ``elapsed`` (s), mean training losses since the
        previous entry (``loss``, ``reconstruction``, ``adversarial``, ``discriminator``, and when used
        ``perceptual``, ``id_mrf``) and, with validation, ``val_psnr`` (hole PSNR in dB on the [0, 1]
        normalised held-out crops), ``val_l1`` (mean absolute hole error), ``val_loss`` (the
        reconstruction objective on the held-out crops) and ``vs_biharmonic`` (``val_psnr`` minus
        biharmonic's PSNR, dB). Earlier runs' entries come first when resuming.
    initial : dict or None
        The validation metrics of the starting weights (None when resuming or without validation).
    stopped_early : bool
        True when the time limit (or the callback) ended training before ``epochs``.
    stop_reason : str
        ``"epochs"``, ``"time_limit"`` or ``"callback"``.
    baseline : dict
        Hole PSNR (dB) of each classical method of :data:`CLASSICAL_BASELINES` on the same held-out
        crops and masks (empty without validation).
    best_classical : str or None
        The classical method with the highest hole PSNR there.
    val_psnr : float or None
        The final validation hole PSNR of the trained network.
    beats_biharmonic : bool or None
        Whether ``val_psnr`` is higher than biharmonic's (None without validation).
    verdict : str
        One plain sentence comparing the trained network with biharmonic and the best classical method.
    val_crops : int
        Held-out crops actually used (fewer than asked when one validation would take more than 15 %
        of the time limit).
    elapsed : float
        Seconds the whole call took.
    time_limit : float or None
    peak_rss_mb : float or None
        Peak resident memory of the process during the call (MiB; Linux: the process's peak-RSS mark
        is reset when training starts).
    cuda_max_allocated_mb : float or None
        Peak CUDA memory allocated by torch during the call (MiB; CUDA only).
    crop_size, batch_size, input_size : int
        Crop side, crops per step and network input side that were used.
    device : str
    """

    checkpoint: Path
    state: Path
    step: int
    report: Path | None = None
    history: list = field(default_factory=list)
    initial: dict | None = None
    stopped_early: bool = False
    stop_reason: str = "epochs"
    baseline: dict = field(default_factory=dict)
    best_classical: str | None = None
    val_psnr: float | None = None
    beats_biharmonic: bool | None = None
    verdict: str = ""
    val_crops: int = 0
    elapsed: float = 0.0
    time_limit: float | None = None
    peak_rss_mb: float | None = None
    cuda_max_allocated_mb: float | None = None
    crop_size: int = 0
    batch_size: int = 0
    input_size: int = 0
    device: str = "cpu"


# --------------------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------------------
def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux; ignored elsewhere)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float | None:
    """Peak resident memory (VmHWM) of this process in MiB, None where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------------------------------
# training pieces
# --------------------------------------------------------------------------------------------------
@contextmanager
def _deterministic(device):
    """Switch torch's deterministic algorithms on for CUDA (restoring the previous setting afterwards).

    The CPU kernels used here are deterministic already; the switch is left alone there because its
    first use imports torch's compiler stack (seconds that would count against the time limit).
    """
    import torch

    if device.type != "cuda":
        yield
        return
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


def _set_train(module, freeze_bn: bool) -> None:
    """Training mode; BatchNorm layers stay in evaluation mode when ``freeze_bn`` (fine-tuning)."""
    import torch

    module.train()
    if freeze_bn:
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def _channel_sets(crop: np.ndarray) -> list:
    """Groups of identical channels of a ``(s, s, 3)`` crop: ``[[0, 1, 2]]`` for a grey triple,
    ``[[0, 2], [1]]`` for ``(c0, c1, c0)``, ``[[0], [1], [2]]`` for colour. ``inpaint()`` averages the
    network's outputs over such repeated channels."""
    sets: list = []
    for c in range(crop.shape[-1]):
        for s in sets:
            if np.array_equal(crop[..., s[0]], crop[..., c]):
                s.append(c)
                break
        else:
            sets.append([c])
    return sets


class _Batches:
    """Training batches, validation crops and masks, all derived from the seed."""

    def __init__(self, planes, val_planes, *, crop_size, batch_size, families, augment, seed, val_crops):
        from .._masks import random_mask
        from ._data import plane_weights, sample_crop

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

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Crops ``(N, s, s, 3)`` in [0, 1] and their shared mask ``(s, s)`` of training step ``step``."""
        rng = np.random.default_rng([self.seed, 0, step])
        crops = np.stack([self._sample(self.planes, self.weights, self.crop_size, rng, self.augment)
                          for _ in range(self.batch_size)])
        return crops, self._mask((self.crop_size, self.crop_size), rng, self.families)


def _to_net(crops: np.ndarray, mask: np.ndarray, device, size: int):
    """``(N, 3, S, S)`` images and ``(N, 1, S, S)`` masks at the network side ``size``, prepared as
    ``inpaint()`` prepares a window (:class:`inpaint_plugin.deep._run.Predictor`): bilinear resize
    (antialiased when shrinking), the mask set wherever a hole contributes and grown by one pixel."""
    import torch
    import torch.nn.functional as F

    from ..deep._windows import resize

    x = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).to(device)
    m = torch.from_numpy(mask.astype(np.float32))[None, None].to(device)
    if x.shape[-1] != size:
        x = resize(x, (size, size)).clamp_(0.0, 1.0)
        m = F.max_pool2d((resize(m, (size, size)) > 0).float(), 3, stride=1, padding=1)
    return x, m.expand(x.shape[0], 1, -1, -1)


def _hole_psnr(sq: float, n: int) -> float:
    mse = sq / max(n, 1)
    return 10 * math.log10(1.0 / mse) if mse > 0 else math.inf


class _Validator:
    """Hole PSNR of the network and of the classical methods on the fixed held-out crops."""

    def __init__(self, val, recipe, spec, device, input_size, progress, callback):
        self.val, self.recipe, self.spec, self.device = val, recipe, spec, device
        self.input_size, self.progress, self.callback = input_size, progress, callback
        self.sets = [_channel_sets(crop) for crop, _ in val]
        self.crop_seconds = None  # network time per held-out crop (measured)

    def __len__(self):
        return len(self.val)

    def truncate(self, n: int) -> None:
        self.val, self.sets = self.val[:n], self.sets[:n]

    def _bar(self, total, desc):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="crop", leave=False, disable=not self.progress, dynamic_ncols=True)

    def _tell(self, done: int, total: int, step: int) -> bool:
        if self.callback is None:
            return True
        return self.callback({"event": "validation", "done": done, "total": total, "step": step}) is not False

    def classical_one(self, i: int) -> dict:
        """Squared hole error sums and counts of each classical method on held-out crop ``i``."""
        from .._engine import fill as inpaint  # inpaint() for numpy images (no facade import below it)

        crop, mask = self.val[i]
        chans = [s[0] for s in self.sets[i]]
        img = crop[..., chans] if len(chans) > 1 else crop[..., chans[0]]
        out = {}
        for name in CLASSICAL_BASELINES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                filled = inpaint(img, mask, method=name, channel_axis=-1 if len(chans) > 1 else None)
            diff = (np.asarray(filled, np.float64) - img)[mask]
            out[name] = (float((diff**2).sum()), diff.size)
        return out

    def network_one(self, generator, i: int):
        """``(squared error sum, abs error sum, count, reconstruction loss)`` of the network on crop ``i``."""
        from ..deep._windows import resize

        crop, mask = self.val[i]
        x, m = _to_net(crop[None], mask, self.device, self.input_size)
        outputs = self.recipe.forward(self.spec, generator, x, m)
        rec = float(sum(self.recipe.reconstruction(outputs, x, m).values()))
        y = outputs["out"].float()
        if y.shape[-1] != crop.shape[0]:
            y = resize(y, crop.shape[:2])
        y = y.clamp(0.0, 1.0)[0].permute(1, 2, 0).cpu().numpy().astype(np.float64)
        sq = ab = 0.0
        n = 0
        for s in self.sets[i]:
            truth = crop[..., s[0]]
            known = truth[~mask]
            # inpaint(clip=True, the default) clips the fill to the known values' range
            pred = np.clip(y[..., s].mean(axis=-1)[mask], known.min(), known.max()) if known.size else \
                y[..., s].mean(axis=-1)[mask]
            diff = pred - truth[mask]
            sq += float((diff**2).sum())
            ab += float(np.abs(diff).sum())
            n += diff.size
        return sq, ab, n, rec

    def run(self, generator, step: int, with_classical: bool = False, budget: float | None = None):
        """Validate; returns ``(metrics, classical)`` (classical: ``{name: psnr}`` or None).

        With ``budget`` (seconds, the first validation only), the crops are cut to those whose
        projected time fits it (at least one); the cut is permanent (the same crops every time).
        """
        import torch

        total = len(self.val)
        sq = ab = rec = 0.0
        n = 0
        csums: dict[str, tuple[float, int]] = {name: (0.0, 0) for name in CLASSICAL_BASELINES}
        bar = self._bar(total, f"validate ({total} held-out crops)")
        generator.eval()
        start = time.monotonic()
        done = 0
        stop = False
        times: list = []
        try:
            with torch.no_grad():
                for i in range(total):
                    t = time.monotonic()
                    a, b, c, r = self.network_one(generator, i)
                    times.append(time.monotonic() - t)
                    # the slowest crop of this validation, the first one (warm-up) left out when there are more
                    self.crop_seconds = max(times[1:]) if len(times) > 1 else times[0]
                    sq, ab, n, rec = sq + a, ab + b, n + c, rec + r
                    if with_classical:
                        for name, (s2, k) in self.classical_one(i).items():
                            s_sum, k_sum = csums[name]
                            csums[name] = (s_sum + s2, k_sum + k)
                    done = i + 1
                    bar.update(1)
                    if not self._tell(done, total, step):
                        stop = True
                    if budget is not None and done < total:
                        per = (time.monotonic() - start) / done
                        fits = max(1, int(budget / (per * _SAFETY)))
                        if fits <= done:
                            break
                    if stop:
                        break
        finally:
            bar.close()
        if done < total:
            self.truncate(done)
        metrics = {"val_psnr": _hole_psnr(sq, n), "val_l1": ab / max(n, 1), "val_loss": rec / max(done, 1)}
        classical = {k: _hole_psnr(s, c) for k, (s, c) in csums.items()} if with_classical else None
        return metrics, classical, stop

    def seconds(self) -> float:
        """Estimated seconds of one network validation."""
        return (self.crop_seconds or 0.0) * len(self.val)


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


def _best_classical(baseline: dict[str, float]) -> str:
    """The classical method of highest held-out hole PSNR in ``baseline`` (the first one on a tie)."""
    return max(baseline, key=lambda name: baseline[name])


def verdict(method: str, val_psnr, baseline: dict) -> tuple:
    """``(beats_biharmonic, sentence)`` comparing the network's held-out hole PSNR with the classical ones."""
    if val_psnr is None or "biharmonic" not in baseline:
        return None, f"{method}: no held-out validation (val_fraction=0), so no comparison with biharmonic"
    bh = baseline["biharmonic"]
    best = _best_classical(baseline)
    delta = val_psnr - bh
    if delta > 0:
        text = (f"trained {method} beats biharmonic on the held-out crops: {val_psnr:.2f} dB vs {bh:.2f} dB "
                f"(+{delta:.2f} dB)")
        if best != "biharmonic" and baseline[best] > val_psnr:
            text += f", but {best} is better still ({baseline[best]:.2f} dB)"
        return True, text
    return False, (f"trained {method} is WORSE than biharmonic on the held-out crops: {val_psnr:.2f} dB vs "
                   f"{bh:.2f} dB ({delta:+.2f} dB; best classical: {best} {baseline[best]:.2f} dB); use "
                   f"method='{best}' for these images, or fine-tune from official weights / train longer")


def train(method: str | None = None, images=None, *, out=None, weights=None, resume=False,
          crop_size: int | None = None, batch_size: int | None = None, input_size: int | None = None,
          epochs: int = 10, steps_per_epoch: int | None = None, lr: float | None = None, seed: int = 0,
          val_fraction: float = 0.1, val_crops: int = 16, masks=None, normalize: str = "range",
          channel_axis: int | None = None, augment: bool = True, adv_weight: float | None = None,
          vgg_weights=None, perceptual_weight: float | None = None, idmrf_weight: float | None = None,
          device: str = "auto", time_limit: float | None = None, progress: bool = True, callback=None,
          config: TrainConfig | None = None) -> TrainResult:
    """Train (or fine-tune) a deep inpainting network on your own images, self-supervised.

    The options (``method`` to ``time_limit``) are given as arguments, or all together as a
    :class:`~inpaint_plugin.training.TrainConfig` (``train(config=TrainConfig("deepfill_v2",
    "tiles/", out="tiles.pth"), callback=...)``; then no other option may be given). Either way they
    are checked by ``TrainConfig`` before any image is read; ``progress`` and ``callback`` say how
    the run reports and are not part of the configuration.

    Parameters
    ----------
    method : str
        A deep method: ``deepfill_v2``, ``deepfill_v1``, ``pennet``, ``gmcnn``, ``spl``, ``medfe``,
        ``lama`` (see :mod:`inpaint_plugin.training._recipes` for each one's losses). Required
        unless ``config`` is given.
    images : array, path, or list of arrays and paths
        Training images: arrays, image files (TIFF, PNG, JPEG, ``.npy``), a directory of them or a
        glob pattern. Stacks (z, time, ...) count as many 2-D images. uint8/uint16/float data is
        normalised per image and channel (``normalize``); channels are mapped to the network's RGB
        input as ``inpaint()`` does (see :mod:`inpaint_plugin.training._data`). Required unless
        ``config`` is given.
    out : str or os.PathLike
        Checkpoint to write, in the official format the method's loader reads (a folder for MEDFE);
        the training state goes to ``<out>.state.pt``. Required unless ``config`` is given.
    weights : str or os.PathLike, optional
        Official checkpoint to start from (fine-tuning, the recommended path); None trains from
        scratch (random weights from ``seed``).
    resume : bool or path
        Continue from ``<out>.state.pt`` (True) or from that training-state file; the run goes on
        until ``epochs`` epochs are done in total.
    crop_size : int, optional
        Side of the square training crops, a multiple of 8, at least 32. Default: the recipe's for
        the device (e.g. 64 for DeepFill on the CPU, 256 on a GPU).
    batch_size : int, optional
        Crops per step (they share one mask). Default: the recipe's for the device.
    input_size : int, optional
        Side of the network input: crops are resized to it for training and validation. Default: the
        network's fixed input (256 for PEN-Net, SPL, MEDFE; what ``inpaint()`` feeds them), else the
        crop size. Another value for a fixed-size network is faster but its validation no longer
        matches ``inpaint()`` (a warning says so).
    epochs : int
        Total number of epochs (0: only validate the starting weights and save them).
    steps_per_epoch : int, optional
        Steps per epoch; default: enough crops to cover the training images once (at least 1), or
        the value of the resumed run.
    lr : float, optional
        Adam learning rate of the generator (default: the paper's); the discriminator's is scaled
        alike.
    seed : int
        Seed of everything random (initial weights, split, crops, masks).
    val_fraction : float
        Fraction of the images held out for validation, in [0, 0.9] (a single image: its bottom rows).
    val_crops : int
        Number of fixed held-out crops (each with its own mask) on which the hole PSNR of the network
        and of the classical methods is measured.
    masks : str or sequence of str, optional
        Mask families to train on (``strokes``, ``scratches``, ``stripes``, ``dead_pixels``,
        ``boxes``); None = all.
    normalize : {"range", "minmax", "percentile"}
        Mapping of each image to [0, 1]: ``"range"`` as ``inpaint()`` maps data for the deep networks
        (uint8 / 255, other data by their 0.1/99.9 percentiles), so the network trains on what it will
        see; ``"minmax"`` / ``"percentile"`` stretch each channel (finite min/max, 0.5/99.5 percentiles).
    channel_axis : int, optional
        Axis of the channels of the images (None: single-channel, except RGB(A) image files).
    augment : bool
        Random rotations by 90 degrees and flips of the crops.
    adv_weight : float, optional
        Weight of the adversarial loss; None = the paper's; 0 trains without discriminator.
    vgg_weights : str or os.PathLike, optional
        A torchvision VGG19 state_dict file, for the VGG19 perceptual loss and GMCNN's ID-MRF loss
        (nothing is downloaded).
    perceptual_weight, idmrf_weight : float, optional
        Weights of those losses; None = the paper's when ``vgg_weights`` is given, else 0.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    time_limit : float, optional
        Seconds the whole call may take, validation and saving included.
    progress : bool
        tqdm progress bars (steps, and crops during validation) and a line per validation.
    callback : callable, optional
        ``callback(event)`` with a dict: ``{"event": "step", "step", "total", "losses", "elapsed",
        "time_limit"}`` after every step, ``{"event": "validation", "done", "total", "step"}`` after
        every held-out crop, ``{"event": "validated", "entry", "baseline"}`` after every validation.
        Returning False stops training (validated and saved, ``stop_reason="callback"``).
    config : TrainConfig, optional
        All the options at once, instead of ``method`` ... ``time_limit``.

    Returns
    -------
    TrainResult
        With the held-out comparison: ``val_psnr``, ``baseline`` (classical PSNRs),
        ``beats_biharmonic`` and ``verdict``. A warning is issued when the network is worse than
        biharmonic.

    Raises
    ------
    ValueError, TypeError
        For bad arguments (the message names the argument; the rules are those of
        :class:`~inpaint_plugin.training.TrainConfig`), untrainable methods, unreadable images.
    """
    t0 = time.monotonic()
    options = dict(method=method, images=images, out=out, weights=weights, resume=resume, crop_size=crop_size,
                   batch_size=batch_size, input_size=input_size, epochs=epochs, steps_per_epoch=steps_per_epoch,
                   lr=lr, seed=seed, val_fraction=val_fraction, val_crops=val_crops, masks=masks,
                   normalize=normalize, channel_axis=channel_axis, augment=augment, adv_weight=adv_weight,
                   vgg_weights=vgg_weights, perceptual_weight=perceptual_weight, idmrf_weight=idmrf_weight,
                   device=device, time_limit=time_limit)
    if config is None:
        if method is None or images is None:
            raise TypeError("train() needs method and images (or config=TrainConfig(...))")
        config = TrainConfig(**options)
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    else:
        defaults = {"method": None, "images": None, **(train.__kwdefaults__ or {})}
        given = [name for name, value in options.items() if value is not defaults[name]]
        if given:
            raise TypeError(f"give the training options either as arguments or as config, not both "
                            f"(config= with {', '.join(given)})")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    from ..deep._device import require_torch

    require_torch("train()")
    from .._registry import get_backend
    from ..deep._backend import find_spec
    from ..deep._device import get_device
    from ._data import load_sources, split_sources
    from ._recipes import get_recipe

    method = config.method
    recipe = get_recipe(method)
    dev = get_device(config.device)
    spec = find_spec(method)
    resolved = config.resolved(dev.type)
    crop_size, batch_size, net_size = resolved["crop_size"], resolved["batch_size"], resolved["input_size"]
    if spec.fixed_size is not None and net_size != spec.fixed_size:
        warnings.warn(f"input_size={net_size}: inpaint() runs {method} at {spec.fixed_size}x{spec.fixed_size}, so "
                      f"the validation PSNR at {net_size} is not what inpaint() will give", stacklevel=2)
    sources = load_sources(config.images, channel_axis=config.channel_axis, normalize=config.normalize,
                           channels=get_backend(method).channels)
    train_planes, val_planes = split_sources(sources, config.val_fraction, crop_size,
                                             np.random.default_rng([config.seed, 2]))
    steps_per_epoch = config.steps_per_epoch
    if steps_per_epoch is None and config.resume_path is None:
        pixels = sum(p.shape[0] * p.shape[1] for p in train_planes)
        steps_per_epoch = max(1, math.ceil(pixels / (batch_size * crop_size**2)))
    batches = _Batches(train_planes, val_planes, crop_size=crop_size, batch_size=batch_size, families=config.masks,
                       augment=config.augment, seed=config.seed, val_crops=config.val_crops)
    opts = dict(method=method, spec=spec, recipe=recipe, batches=batches, out=config.out, weights=config.weights,
                resume_path=config.resume_path, dev=dev, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
                lr=resolved["lr"], d_lr=resolved["d_lr"], seed=config.seed, adv_weight=resolved["adv_weight"],
                vgg_weights=config.vgg_weights, perceptual_weight=resolved["perceptual_weight"],
                idmrf_weight=resolved["idmrf_weight"], time_limit=config.time_limit, progress=progress,
                callback=callback, t0=t0, net_size=net_size)
    _reset_peak_rss()
    if dev.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(dev)
    with _deterministic(dev):
        result = _run(**opts)
    result.crop_size, result.batch_size, result.input_size, result.device = crop_size, batch_size, net_size, str(dev)
    result.peak_rss_mb = _peak_rss_mb()
    if dev.type == "cuda":
        import torch

        result.cuda_max_allocated_mb = torch.cuda.max_memory_allocated(dev) / 2**20
    result.elapsed = time.monotonic() - t0
    if result.beats_biharmonic is False:
        warnings.warn(result.verdict, UserWarning, stacklevel=2)
    return result


def _run(*, method, spec, recipe, batches: _Batches, out: Path, weights, resume_path, dev, epochs, steps_per_epoch,
         lr, d_lr, seed, adv_weight, vgg_weights, perceptual_weight, idmrf_weight, time_limit, progress, callback,
         t0, net_size) -> TrainResult:
    """The training loop of :func:`train` (arguments already checked)."""
    import torch
    from tqdm.auto import tqdm

    from ._discriminator import SNPatchGAN, d_loss, g_loss
    from ._losses import id_mrf_loss, load_vgg19, perceptual_loss

    deadline = math.inf if time_limit is None else t0 + time_limit

    def left() -> float:
        return deadline - time.monotonic()

    generator = _seeded(spec.build, seed)
    discriminator = None
    if adv_weight > 0:
        discriminator = _seeded(lambda: SNPatchGAN(in_channels=4 if recipe.disc_mask else 3), seed + 1)
    if weights is not None:
        spec.load(generator, weights)
    generator = generator.to(dev)
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=recipe.betas)
    d_opt = None
    if discriminator is not None:
        discriminator = discriminator.to(dev).train()
        d_opt = torch.optim.Adam(discriminator.parameters(), lr=d_lr, betas=recipe.betas)
    vgg = load_vgg19(vgg_weights).to(dev) if vgg_weights is not None else None
    freeze_bn = weights is not None

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
            if d_opt is None:  # created with the discriminator above
                raise RuntimeError("train: internal error, a discriminator without its optimiser")
            d_opt.load_state_dict(state["d_optim"])
        step, history = int(state["step"]), list(state["history"])
        steps_per_epoch = steps_per_epoch or int(state["steps_per_epoch"])
        freeze_bn = bool(state.get("freeze_bn", False))
        for group in g_opt.param_groups:
            group["lr"] = lr
        for group in d_opt.param_groups if d_opt is not None else []:
            group["lr"] = d_lr
    _set_train(generator, freeze_bn)
    total = epochs * steps_per_epoch

    def save():
        nonlocal save_seconds, saved_once
        t = time.monotonic()
        out.parent.mkdir(parents=True, exist_ok=True)
        from ._recipes import write_state_dict

        spec.save(generator, out)  # the official format: inpaint(..., weights=out) reads it
        write_state_dict({
            "format": _STATE_FORMAT, "version": _STATE_VERSION, "method": method, "step": step,
            "steps_per_epoch": steps_per_epoch, "seed": seed, "history": history, "freeze_bn": freeze_bn,
            "generator": generator.state_dict(), "g_optim": g_opt.state_dict(),
            "discriminator": discriminator.state_dict() if discriminator is not None else None,
            "d_optim": d_opt.state_dict() if d_opt is not None else None,
        }, state_path(out))
        last = history[-1] if history else {}
        beats, text = verdict(method, last.get("val_psnr"), baseline)
        write_report(out, {"method": method, "step": step, "val_psnr": last.get("val_psnr"),
                            "val_crops": len(validator), "baseline": baseline,
                            "best_classical": _best_classical(baseline) if baseline else None,
                            "beats_biharmonic": beats, "verdict": text, "history": history})
        took = time.monotonic() - t
        save_seconds = took if not saved_once else max(save_seconds, took)
        saved_once = True

    validator = _Validator(batches.val, recipe, spec, dev, net_size, progress, callback)
    last_metrics = None  # (step, metrics) of the latest validation
    baseline: dict = {}
    stop_reason = "epochs"
    # until the first save is measured: the bytes of the state (weights + Adam moments) at 100 MB/s
    n_bytes = sum(p.numel() * p.element_size() for p in generator.parameters()) * 4
    if discriminator is not None:
        n_bytes += sum(p.numel() * p.element_size() for p in discriminator.parameters()) * 3
    save_seconds = 0.2 + n_bytes / 100e6
    saved_once = False

    def log(text):
        if progress:
            tqdm.write(text)

    if validator.val:
        budget = None if time_limit is None else max(0.0, min(_VAL_SHARE * time_limit, left() / 2))
        metrics, baseline, stopped = validator.run(generator, step, with_classical=True, budget=budget)
        _set_train(generator, freeze_bn)
        if len(validator) < len(batches.val):
            log(f"{method}: validating on {len(validator)} of {len(batches.val)} held-out crops (a validation must "
                f"fit {_VAL_SHARE:.0%} of the time limit)")
        if step == 0:
            initial = metrics
        last_metrics = (step, metrics)
        best = _best_classical(baseline)
        which = "the starting weights" if step == 0 else f"the weights of step {step}"
        log(f"{method}: held-out hole PSNR of {which} {metrics['val_psnr']:.2f} dB; biharmonic "
            f"{baseline['biharmonic']:.2f} dB, best classical {best} {baseline[best]:.2f} dB")
        if stopped:
            stop_reason = "callback"

    def reserve() -> float:
        """Seconds to keep for the final validation and save."""
        return _SAFETY * (validator.seconds() + save_seconds)

    sums: dict = {}
    count = 0
    step_seconds: list = []
    first_step = None
    if step < total and time_limit is not None:
        if validator.crop_seconds is None:  # no validation: time one forward pass of the first batch
            generator.eval()
            with torch.no_grad():
                t = time.monotonic()
                recipe.forward(spec, generator, *_to_net(*batches.batch(step), dev, net_size))
                forward_seconds = (time.monotonic() - t) / batches.batch_size
            _set_train(generator, freeze_bn)
        else:
            forward_seconds = validator.crop_seconds
        # a training step: forward + backward (~3 forwards) per crop, plus the discriminator's share
        first_step = 4.0 * forward_seconds * batches.batch_size
    bar = tqdm(total=total, initial=min(step, total), desc=f"train {method}", unit="step", disable=not progress,
               dynamic_ncols=True)

    def validate_and_save(final: bool = False):
        nonlocal sums, count, stop_reason, last_metrics
        entry = {"epoch": round(step / steps_per_epoch, 3), "step": step}
        entry.update({k: v / max(count, 1) for k, v in sums.items()})
        if validator.val:
            if last_metrics is not None and last_metrics[0] == step:
                metrics, stopped = last_metrics[1], False  # no step since: the same weights
            else:
                metrics, _, stopped = validator.run(generator, step)
                _set_train(generator, freeze_bn)
            entry.update(metrics)
            last_metrics = (step, metrics)
            entry["vs_biharmonic"] = metrics["val_psnr"] - baseline["biharmonic"]
            if stopped:
                stop_reason = "callback"
        entry["elapsed"] = time.monotonic() - t0
        history.append(entry)
        sums, count = {}, 0
        save()
        loss_text = f": loss {entry['loss']:.4f}" if "loss" in entry else ": no step"
        if "val_psnr" in entry:
            log(f"step {step} (epoch {entry['epoch']:g}/{epochs}){loss_text}, held-out hole PSNR "
                f"{entry['val_psnr']:.2f} dB (biharmonic {baseline['biharmonic']:.2f} dB, {entry['vs_biharmonic']:+.2f} dB)")
        else:
            log(f"step {step} (epoch {entry['epoch']:g}/{epochs}){loss_text}")
        if callback is not None and callback({"event": "validated", "entry": dict(entry),
                                              "baseline": dict(baseline)}) is False:
            stop_reason = "callback"

    weights_of = {"reconstruction": 1.0, "adversarial": adv_weight, "perceptual": perceptual_weight,
                  "id_mrf": idmrf_weight}
    try:
        while step < total and stop_reason == "epochs":
            est = max(step_seconds[-5:]) if step_seconds else first_step
            if est is not None and time.monotonic() + _SAFETY * est + reserve() > deadline:
                stop_reason = "time_limit"
                break
            t_step = time.monotonic()
            crops, mask = batches.batch(step)
            x, m = _to_net(crops, mask, dev, net_size)
            outputs = recipe.forward(spec, generator, x, m)
            pred = outputs["out"]
            fake = pred * m + x * (1 - m) if recipe.disc_sees == "completed" else pred
            parts = recipe.reconstruction(outputs, x, m)
            losses = {"reconstruction": sum(parts.values())}
            if discriminator is not None:
                if d_opt is None:  # created with the discriminator above
                    raise RuntimeError("train: internal error, a discriminator without its optimiser")
                dm = m if recipe.disc_mask else None
                dl = d_loss(recipe.gan_loss, discriminator(x * 2 - 1, dm), discriminator(fake.detach() * 2 - 1, dm))
                d_opt.zero_grad(set_to_none=True)
                dl.backward()
                d_opt.step()
                discriminator.requires_grad_(False)
                losses["adversarial"] = g_loss(recipe.gan_loss, discriminator(fake * 2 - 1, dm))
                discriminator.requires_grad_(True)
            if vgg is not None:
                if perceptual_weight > 0:
                    losses["perceptual"] = perceptual_loss(vgg, pred, x)
                if idmrf_weight > 0:
                    losses["id_mrf"] = id_mrf_loss(vgg, pred, x)
            loss = sum(weights_of[k] * v for k, v in losses.items())
            g_opt.zero_grad(set_to_none=True)
            loss.backward()
            g_opt.step()
            step += 1
            count += 1
            logged = {"loss": loss.item(), **{k: v.item() for k, v in losses.items()},
                      **{k: v.item() for k, v in parts.items()}}
            if discriminator is not None:
                logged["discriminator"] = dl.item()
            for k, v in logged.items():
                sums[k] = sums.get(k, 0.0) + v
            step_seconds.append(time.monotonic() - t_step)
            bar.update(1)
            bar.set_postfix({_SHORT.get(k, k): f"{logged[k]:.3f}" for k in ("loss", *losses)}, refresh=False)
            if callback is not None and callback({
                "event": "step", "step": step, "total": total, "losses": logged, "elapsed": time.monotonic() - t0,
                "time_limit": time_limit,
            }) is False:
                stop_reason = "callback"
            if step % steps_per_epoch == 0 and step < total and stop_reason == "epochs":
                # an epoch-end validation only when the final one still fits after it
                if time.monotonic() + reserve() + reserve() <= deadline:
                    validate_and_save()
        if not history or history[-1]["step"] != step:
            validate_and_save(final=True)  # the last state: validate and save
    except KeyboardInterrupt:
        save()
        bar.close()
        raise
    bar.close()
    final = history[-1] if history else {}
    val_psnr = final.get("val_psnr")
    beats, text = verdict(method, val_psnr, baseline)
    log(text)
    return TrainResult(checkpoint=out, state=state_path(out), report=report_path(out), step=step, history=history,
                       initial=initial,
                       stopped_early=stop_reason != "epochs", stop_reason=stop_reason, baseline=baseline,
                       best_classical=_best_classical(baseline) if baseline else None, val_psnr=val_psnr,
                       beats_biharmonic=beats, verdict=text, val_crops=len(validator), time_limit=time_limit)
