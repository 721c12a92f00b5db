"""How each deep network is trained by :func:`inpaint_plugin.train`: one :class:`Recipe` per network.

A recipe gives the network's training forward pass (with the auxiliary outputs its losses need), its
reconstruction losses with the paper's weights, its adversarial loss (kind, weight, what the
discriminator sees), its optimiser settings and default crop/batch sizes. Every network is trained by
the same loop (:mod:`inpaint_plugin.training._loop`), with the SN-PatchGAN of
:mod:`inpaint_plugin.training._discriminator` as discriminator. What each paper uses and is *left out*
here is listed per network; the reason is nearly always the same: the loss needs pretrained weights
that are not part of the network (VGG16/VGG19, TResNet, an ADE20k segmentation ResNet) and cannot be
downloaded here. The VGG19 perceptual loss and GMCNN's ID-MRF loss are available when the user
supplies torchvision VGG19 weights (``vgg_weights``); they are then used with the paper's weight.

All images handed to a recipe are ``(N, 3, S, S)`` in [0, 1] with a mask ``(N, 1, S, S)`` (1 = hole),
one mask shared by the batch (DeepFill's contextual attention uses one mask per batch, as the
official training does). Loss values are in the units of each paper (images in [-1, 1] for the
networks that work in [-1, 1]), so they are comparable within a network, not across networks.

``deepfill_v2`` (Yu et al., ICCV 2019; official ``inpaint_model.py``)
    L1 over the whole image for both stages, ``mean|y - x1| + mean|y - x2|``; SN-PatchGAN hinge loss
    on ``[completed image, mask]``, weight 1. Adam 1e-4, betas (0.5, 0.999). Left out: nothing.
``deepfill_v1`` (Yu et al., CVPR 2018; official v1 ``inpaint_model.py``)
    ``1.2 * (1.2 * L_hole(x1) + L_hole(x2)) + 1.2 * (1.2 * L_known(x1) + L_known(x2))`` with
    ``L_hole`` the spatially discounted L1 in the holes (``0.9 ** (l - 1)``, ``l`` the distance to
    the nearest known pixel) and ``L_known`` the L1 on the known pixels; adversarial weight 0.001.
    Substituted: the paper's WGAN-GP global + local critics by the SN-PatchGAN hinge loss (the local
    critic's box is undefined for free-form holes).
``pennet`` (Zeng et al., CVPR 2019; official ``core/trainer.py``, ``configs/places2.json``)
    ``6 * hole L1 + 1 * valid L1 + 0.5 * pyramid L1`` (hole/valid L1 divided by the hole/valid
    fraction; the pyramid term compares each ``torgb`` output with the image resized bilinearly to its
    size); hinge loss on the completed RGB image, weight 0.1. Adam 1e-4, betas (0.5, 0.999). The
    network works on 256 x 256 (as at inference, crops are resized to it). Substituted: the
    reference's 5-layer spectral-norm discriminator by the SN-PatchGAN. Left out: the lr schedule.
``gmcnn`` (Wang et al., NeurIPS 2018; official PyTorch ``model/net.py``, ``train_options.py``)
    ``1.4 * confidence-driven L1 in the holes + 1.2 * L1 on the known pixels`` (each divided by the
    hole / known fraction; the confidence weights come from 7 propagations of the known region by a
    65 x 65 Gaussian of ``nsig = 1/40`` as the reference's ``ConfidenceDrivenMaskLayer``); hinge loss
    on the completed image, weight 0.001; ID-MRF weight 0.05 (only with ``vgg_weights``). Adam 1e-5,
    betas (0.5, 0.9). Crops below 196 pixels are mirror-extended as at inference. Substituted: the
    global + local SN discriminators by the SN-PatchGAN, one discriminator step per generator step
    (the reference does 5). Left out without ``vgg_weights``: ID-MRF (needs VGG19).
``spl`` (Zhang et al., IJCAI 2021; official ``main.py``, ``models_inpaint.py``)
    ``10 * mean(|out - y| * (1 + 2 * mask))`` in [0, 1] units; non-saturating GAN loss on the
    prediction (RGB), weight 1. Adam 1e-4, betas (0, 0.9). 256 x 256 input as at inference.
    Left out: the semantic-prior distillation loss (it needs the ImageNet-pretrained TResNet-L
    teacher); ``feature_mapping`` gets no gradient. Substituted: the reference's discriminator by the
    SN-PatchGAN.
``medfe`` (Liu et al., ECCV 2020; official ``models/MEDFE.py``, ``opt.txt``)
    ``1 * L1 over the image`` plus the two InnerCos terms of the feature equalisation: the
    training head ``netMEDFE.loss`` maps the structure and texture features (32 x 32) to RGB and
    is compared (L1) with the structure and texture targets at 32 x 32; adversarial weight 0.2.
    Adam 2e-4, betas (0.5, 0.999). 256 x 256 input (the network's fixed size). Approximated: the
    structure target is the image averaged over 8 x 8 blocks (the reference uses RTV-smoothed
    images made offline in Matlab); the texture target is the image resized bilinearly to 32 x 32
    as the reference. Substituted: the global + local (64 x 64) discriminators and their GAN loss by
    the SN-PatchGAN hinge loss. Left out: the VGG16 perceptual (0.2) and style (250) losses
    (``vgg_weights`` enables a VGG19 perceptual loss with weight 0.2 in their place).
``lama`` (Suvorov et al., WACV 2022; ``configs/training/big-lama.yaml`` of advimman/lama)
    ``10 * L1 on the known pixels`` (``weight_known`` 10, ``weight_missing`` 0) and a
    non-saturating GAN loss on the prediction, weight 10. Adam 1e-3 (generator), 1e-4
    (discriminator). Left out: the high-receptive-field perceptual loss (weight 30; it needs the
    ADE20k-pretrained dilated ResNet-50), the discriminator feature-matching loss (100) and the R1
    penalty. Substituted for the perceptual loss, so that the holes get a pixel-level signal: an L1
    in the holes with weight 10 (hence an L1 of weight 10 over the whole image).

When training starts from a checkpoint (fine-tuning), BatchNorm layers (MEDFE, LaMa) are kept in
evaluation mode: the official running statistics are used and not overwritten by the statistics of
small batches; their affine parameters are still trained.

The trained generator is written by the backend's own ``ModelSpec.save`` in the official format
that its ``load`` (and ``inpaint(..., weights=...)``) reads.

The recipes' functions import torch when they run: this module (the table of recipes, their
defaults, :func:`get_recipe`) imports without it, so that a training configuration is checked
before torch is loaded (:class:`inpaint_plugin.training.TrainConfig`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..deep._checkpoint import write_checkpoint as write_state_dict  # the training state uses the same atomic write

__all__ = ["RECIPES", "Recipe", "get_recipe", "trainable_methods", "write_state_dict"]


@dataclass(frozen=True)
class Recipe:
    """Training description of one network.

    Attributes
    ----------
    method : str
        The deep method (registry name).
    forward : callable
        ``forward(spec, module, image, mask) -> dict``; ``image`` ``(N, 3, S, S)`` in [0, 1] (holes not
        erased), ``mask`` ``(N, 1, S, S)``, 1 = hole. The dict holds ``"out"``, the prediction in
        [0, 1] (whole image), and whatever else the losses need.
    reconstruction : callable
        ``reconstruction(outputs, image, mask) -> {name: weighted loss}``: the paper's non-adversarial
        losses, already weighted; their sum is the reconstruction objective (also measured on the
        held-out crops as ``val_loss``).
    adv_weight : float
        The paper's weight of the generator's adversarial loss.
    gan_loss : {"hinge", "nsgan"}
        Hinge loss or the non-saturating (logistic) GAN loss.
    disc_sees : {"completed", "prediction"}
        What the discriminator judges as fake: the completed image (known pixels put back) or the raw
        prediction.
    disc_mask : bool
        Whether the mask is appended to the discriminator's input (DeepFill v2's "gan_with_mask").
    lr, d_lr : float
        Adam learning rates of the generator and of the discriminator.
    betas : tuple
        Adam betas (both optimisers).
    input_size : int or None
        Side of the network's input during training (crops are resized to it, as ``inpaint()`` resizes
        windows for fixed-size networks); None = the crop size.
    perceptual_weight, idmrf_weight : float
        The paper's weights of the VGG feature losses, used when ``vgg_weights`` is given (0: the
        paper has none).
    cpu, gpu : tuple
        Default ``(crop_size, batch_size)`` on the CPU and on a GPU.
    left_out : str
        What the paper uses and this recipe does not (and why), or substitutes.
    """

    method: str
    forward: Callable
    reconstruction: Callable
    adv_weight: float
    gan_loss: str = "hinge"
    disc_sees: str = "completed"
    disc_mask: bool = False
    lr: float = 1e-4
    d_lr: float = 1e-4
    betas: tuple = (0.5, 0.999)
    input_size: int | None = None
    perceptual_weight: float = 0.0
    idmrf_weight: float = 0.0
    cpu: tuple = (64, 4)
    gpu: tuple = (256, 8)
    left_out: str = ""


def _l1(a, b):
    return (a - b).abs().mean()


def _hole_mean(err, mask):
    """Mean of ``err`` over all elements divided by the hole fraction (= mean over the hole pixels)."""
    return (err * mask).mean() / mask.mean().clamp_min(1e-8)


def _known_mean(err, mask):
    return (err * (1 - mask)).mean() / (1 - mask).mean().clamp_min(1e-8)


# --- DeepFill v2 ----------------------------------------------------------------------------------
def _v2_forward(spec, module, image, mask):
    import torch

    y = image * 2 - 1
    s1, s2 = module(torch.cat([y * (1 - mask), torch.ones_like(mask), mask], dim=1), mask)
    return {"out": (s2 + 1) / 2, "stage1": s1, "stage2": s2}


def _v2_reconstruction(o, image, mask):
    y = image * 2 - 1
    return {"l1": _l1(y, o["stage1"]) + _l1(y, o["stage2"])}


# --- DeepFill v1 ----------------------------------------------------------------------------------
_V1_ALPHA = 1.2  # COARSE_L1_ALPHA, L1_LOSS_ALPHA and AE_LOSS_ALPHA of the official configuration


def spatial_discount_t(mask, gamma: float = 0.9):
    """Spatially discounted hole weights ``gamma ** (l - 1)`` (see ``_losses.spatial_discount``)
    for a ``(N, 1, H, W)`` mask tensor of one shared mask (computed on the first item)."""
    import torch

    from ._losses import spatial_discount

    w = spatial_discount(mask[0, 0].detach().cpu().numpy() > 0.5, gamma)
    return torch.from_numpy(w)[None, None].to(mask)


def _v1_forward(spec, module, image, mask):
    y = image * 2 - 1
    s1, s2 = module(y * (1 - mask), mask)
    return {"out": (s2 + 1) / 2, "stage1": s1, "stage2": s2}


def _v1_reconstruction(o, image, mask):
    y = image * 2 - 1
    discount = spatial_discount_t(mask)
    hole = mask.expand_as(y).sum().clamp_min(1.0)
    known = (1.0 - mask).expand_as(y).sum().clamp_min(1.0)

    def hole_l1(out):
        return ((y - out).abs() * discount).sum() / hole

    def known_l1(out):
        return ((y - out).abs() * (1.0 - mask)).sum() / known

    return {"l1_hole": _V1_ALPHA * (_V1_ALPHA * hole_l1(o["stage1"]) + hole_l1(o["stage2"])),
            "l1_known": _V1_ALPHA * (_V1_ALPHA * known_l1(o["stage1"]) + known_l1(o["stage2"]))}


# --- PEN-Net --------------------------------------------------------------------------------------
def _pennet_forward(spec, module, image, mask):
    import torch

    y = image * 2 - 1
    pyramid, out = module(torch.cat([y * (1 - mask) + mask, mask], dim=1), mask)
    return {"out": (out + 1) / 2, "pred": out, "pyramid": pyramid}


def _pennet_reconstruction(o, image, mask):
    import torch.nn.functional as F

    y = image * 2 - 1
    err = (o["pred"] - y).abs()
    pyramid = sum(_l1(p, F.interpolate(y, size=p.shape[-2:], mode="bilinear", align_corners=True))
                  for p in o["pyramid"])
    return {"l1_hole": 6.0 * _hole_mean(err, mask), "l1_valid": 1.0 * _known_mean(err, mask),
            "pyramid": 0.5 * pyramid}


# --- GMCNN ----------------------------------------------------------------------------------------
def _gauss_kernel(size: int = 65, nsig: float = 1.0 / 40) -> np.ndarray:
    """The reference's ``gauss_kernel(size, sigma)``: differences of the normal CDF over ``size`` bins
    spanning ``[-nsig - d/2, nsig + d/2]`` (``d = (2 nsig + 1) / size``), outer product, square root,
    normalised (with ``nsig = 1/40`` it is nearly flat)."""
    from scipy.stats import norm

    interval = (2 * nsig + 1.0) / size
    x = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, size + 1)
    k1 = np.diff(norm.cdf(x))
    k = np.sqrt(np.outer(k1, k1))
    return (k / k.sum()).astype(np.float32)


def confidence_weights(mask, iters: int = 7, size: int = 65):
    """GMCNN's confidence-driven hole weights of a ``(N, 1, H, W)`` mask tensor (1 = hole; one mask
    shared by the batch): the known region is propagated ``iters`` times into the hole by the
    reflect-padded ``size`` x ``size`` kernel of :func:`_gauss_kernel`, as the reference's
    ``ConfidenceDrivenMaskLayer`` (computed with FFTs in numpy; the mask needs no gradient)."""
    import torch
    from scipy.signal import fftconvolve

    m = (mask[0, 0].detach().cpu().numpy() > 0.5).astype(np.float64)
    kernel = _gauss_kernel(size).astype(np.float64)
    pad = size // 2
    mode: Literal["reflect", "symmetric"] = "reflect" if min(m.shape) > pad else "symmetric"
    init = 1.0 - m
    conf = m
    for _ in range(iters):
        conf = fftconvolve(np.pad(init, pad, mode=mode), kernel, mode="valid") * m
        init = conf + (1.0 - m)
    return torch.from_numpy(conf.astype(np.float32))[None, None].to(mask)


def _gmcnn_forward(spec, module, image, mask):
    out = spec.predict(module, image, mask)  # mirror extension to the network's minimum size, as inference
    return {"out": out}


def _gmcnn_reconstruction(o, image, mask):
    y, pred = image * 2 - 1, o["out"] * 2 - 1
    err = (pred - y).abs()
    conf = confidence_weights(mask)
    rec = (err * conf).mean() / mask.mean().clamp_min(1e-8)
    return {"l1_confidence": 1.4 * rec, "l1_known": 1.2 * _known_mean(err, mask)}


# --- SPL ------------------------------------------------------------------------------------------
def _spl_forward(spec, module, image, mask):
    out, prior = module(image, mask)
    return {"out": out, "prior": prior}


def _spl_reconstruction(o, image, mask):
    return {"l1": 10.0 * ((o["out"] - image).abs() * (1 + 2 * mask)).mean()}


# --- MEDFE ----------------------------------------------------------------------------------------
def _medfe_forward(spec, module, image, mask):
    y = image * 2 - 1
    hole = (mask > 0.5).to(y.dtype)
    skips = module.netEN(module.make_input(y, hole))
    dec_in, (st, de) = module.netMEDFE.pc_block(list(skips))
    out = module.netDE(*dec_in)
    head = module.netMEDFE.loss[0].down_model
    return {"out": (out + 1) / 2, "pred": out, "st": head(st), "de": head(de)}


def _medfe_reconstruction(o, image, mask):
    import torch.nn.functional as F

    y = image * 2 - 1
    side = o["st"].shape[-1]
    structure = F.adaptive_avg_pool2d(y, side)  # stands in for the RTV-smoothed structure image
    texture = F.interpolate(y, size=(side, side), mode="bilinear", align_corners=False)
    return {"l1": _l1(o["pred"], y), "structure": _l1(o["st"], structure), "texture": _l1(o["de"], texture)}


# --- LaMa -----------------------------------------------------------------------------------------
def _lama_forward(spec, module, image, mask):
    return {"out": spec.predict(module, image, mask)}


def _lama_reconstruction(o, image, mask):
    err = (o["out"] - image).abs()
    return {"l1_known": 10.0 * (err * (1 - mask)).mean(), "l1_hole": 10.0 * (err * mask).mean()}


RECIPES = {
    "deepfill_v2": Recipe("deepfill_v2", _v2_forward, _v2_reconstruction, adv_weight=1.0, disc_mask=True,
                          cpu=(64, 4), gpu=(256, 16), left_out="nothing"),
    "deepfill_v1": Recipe("deepfill_v1", _v1_forward, _v1_reconstruction, adv_weight=0.001, disc_mask=True,
                          cpu=(64, 4), gpu=(256, 16),
                          left_out="WGAN-GP global+local critics replaced by the SN-PatchGAN hinge loss"),
    "pennet": Recipe("pennet", _pennet_forward, _pennet_reconstruction, adv_weight=0.1, input_size=256,
                     cpu=(128, 1), gpu=(256, 16),
                     left_out="its 5-layer SN discriminator replaced by the SN-PatchGAN; no lr schedule"),
    "gmcnn": Recipe("gmcnn", _gmcnn_forward, _gmcnn_reconstruction, adv_weight=0.001, lr=1e-5, d_lr=1e-5,
                    betas=(0.5, 0.9), idmrf_weight=0.05, cpu=(200, 1), gpu=(256, 16),
                    left_out="ID-MRF without vgg_weights (needs VGG19); global+local SN discriminators "
                             "replaced by the SN-PatchGAN, 1 discriminator step instead of 5"),
    "spl": Recipe("spl", _spl_forward, _spl_reconstruction, adv_weight=1.0, gan_loss="nsgan",
                  disc_sees="prediction", betas=(0.0, 0.9), input_size=256, cpu=(128, 1), gpu=(256, 8),
                  left_out="semantic-prior distillation (needs the ImageNet TResNet-L teacher); its "
                           "discriminator replaced by the SN-PatchGAN"),
    "medfe": Recipe("medfe", _medfe_forward, _medfe_reconstruction, adv_weight=0.2, lr=2e-4, d_lr=2e-4,
                    input_size=256, perceptual_weight=0.2, cpu=(128, 1), gpu=(256, 8),
                    left_out="VGG16 perceptual (0.2) and style (250) losses (VGG19 perceptual with "
                             "vgg_weights); RTV structure target approximated by 8x8 block means; "
                             "global+local discriminators replaced by the SN-PatchGAN"),
    "lama": Recipe("lama", _lama_forward, _lama_reconstruction, adv_weight=10.0, gan_loss="nsgan",
                   disc_sees="prediction", lr=1e-3, d_lr=1e-4, betas=(0.9, 0.999), cpu=(128, 2),
                   gpu=(256, 16),
                   left_out="high-receptive-field perceptual loss (needs ADE20k ResNet-50; replaced by a "
                            "hole L1 of weight 10), discriminator feature matching, R1 penalty"),
}


def trainable_methods() -> list:
    """The methods with a recipe whose backend is registered (sorted).

    Returns
    -------
    list of str
    """
    from .._registry import backends

    names = set(backends())
    return sorted(m for m in RECIPES if m in names)


def get_recipe(method: str) -> Recipe:
    """The recipe of ``method``.

    Parameters
    ----------
    method : str
        A deep method, e.g. ``"deepfill_v2"``.

    Returns
    -------
    Recipe

    Raises
    ------
    ValueError
        If ``method`` cannot be trained, naming the methods that can.
    """
    if not isinstance(method, str) or method not in RECIPES or method not in trainable_methods():
        raise ValueError(f"method={method!r} cannot be trained; trainable methods: {trainable_methods()}")
    return RECIPES[method]
