"""How each trainable deep method is trained: forward pass and reconstruction loss.

``deepfill_v2`` (Yu et al., ICCV 2019, official ``inpaint_model.py``)
    Input ``cat([image * (1 - mask), ones, mask])`` with the image in [-1, 1]. Reconstruction: L1
    over the whole image for both stages, ``mean|y - x1| + mean|y - x2|`` (``l1_loss_alpha`` 1).
    Adversarial: SN-PatchGAN hinge loss on ``[completed image, mask]`` with weight 1
    (``gan_loss_alpha``).
``deepfill_v1`` (Yu et al., CVPR 2018, official v1 ``inpaint_model.py``)
    Input ``image * (1 - mask)`` in [-1, 1] and the mask. Reconstruction:
    ``1.2 * (1.2 * L_hole(x1) + L_hole(x2)) + 1.2 * (1.2 * L_known(x1) + L_known(x2))`` where
    ``L_hole`` is the spatially discounted L1 over the hole pixels (weights ``0.9 ** (l - 1)``,
    ``l`` the distance to the nearest known pixel) and ``L_known`` the L1 over the known pixels.
    Adversarial: the paper uses WGAN-GP with a global and a local critic; here the SN-PatchGAN
    hinge loss of DeepFill v2 (which also handles free-form holes, where the local critic's box is
    undefined), weighted 0.001 as the paper's ``GAN_LOSS_ALPHA``.

The trained generator is written by the backend's own ``ModelSpec.save`` (the official format its
``load`` reads: ``{'G': state_dict}`` for v2, a bare state_dict for v1).

Both networks apply contextual attention with the mask of the first batch item to the whole
batch, so every training batch shares one mask, as in the official training code. Other deep
methods are not trainable here (their official training losses are not implemented).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._checkpoint import write_checkpoint as write_state_dict# the training state uses the same atomic write

__all__ = ["RECIPES", "Recipe", "get_recipe", "write_state_dict"]


@dataclass(frozen=True)
class Recipe:
    """Training description of one method.

    Attributes
    ----------
    forward : callable
        ``forward(module, image, mask) -> (stage1, stage2)``; ``image`` ``(N, 3, H, W)`` in [-1, 1]
        (holes not yet erased), ``mask`` ``(N, 1, H, W)`` with 1 = hole; outputs in [-1, 1].
    reconstruction : callable
        ``reconstruction(image, stage1, stage2, mask, discount) -> loss``; ``discount`` ``(1, 1, H, W)``
        holds the spatially discounted hole weights.
    adv_weight : float
        Default weight of the generator's adversarial loss.
    """

    forward: Callable
    reconstruction: Callable
    adv_weight: float


# --- DeepFill v2 ----------------------------------------------------------------------------------
def _v2_forward(module, image, mask):
    x = image * (1.0 - mask)
    return module(torch.cat([x, torch.ones_like(mask), mask], dim=1), mask)


def _v2_reconstruction(image, stage1, stage2, mask, discount):
    return (image - stage1).abs().mean() + (image - stage2).abs().mean()


# --- DeepFill v1 ----------------------------------------------------------------------------------
_V1_ALPHA = 1.2  # COARSE_L1_ALPHA, L1_LOSS_ALPHA and AE_LOSS_ALPHA of the official configuration


def _v1_forward(module, image, mask):
    return module(image * (1.0 - mask), mask)


def _v1_reconstruction(image, stage1, stage2, mask, discount):
    # means over the hole (resp. known) pixels of every batch item and channel
    hole = mask.expand_as(image).sum().clamp_min(1.0)
    known = (1.0 - mask).expand_as(image).sum().clamp_min(1.0)

    def hole_l1(out):
        return ((image - out).abs() * discount).sum() / hole

    def known_l1(out):
        return ((image - out).abs() * (1.0 - mask)).sum() / known

    l1 = _V1_ALPHA * hole_l1(stage1) + hole_l1(stage2)
    ae = _V1_ALPHA * known_l1(stage1) + known_l1(stage2)
    return _V1_ALPHA * l1 + _V1_ALPHA * ae


RECIPES = {
    "deepfill_v2": Recipe(_v2_forward, _v2_reconstruction, adv_weight=1.0),
    "deepfill_v1": Recipe(_v1_forward, _v1_reconstruction, adv_weight=0.001),
}


def get_recipe(method: str) -> Recipe:
    """The recipe of ``method``.

    Raises
    ------
    ValueError
        If ``method`` cannot be trained, naming the methods that can.
    """
    if method not in RECIPES:
        raise ValueError(f"method={method!r} cannot be trained; trainable methods: {sorted(RECIPES)}")
    return RECIPES[method]
